package main

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"lotterycentral.example/lottery"
	"lotterycentral.example/lottery/logfmt"
	"lotterycentral.example/lottery/logfmt/logfmttest"
	"lotterycentral.example/protocol"
	"lotterycentral.example/server/internal/vocab"
)

const (
	// shutdownBound is the limit from SIGTERM to exit.
	shutdownBound = 2 * time.Second
	// recoverRows makes a recovery that lasts a good part of a second.
	recoverRows = 5_000_000
)

// terminate sends SIGTERM and returns the exit code and how long the process
// took to exit after the signal.
func terminate(t *testing.T, p *proc) (int, time.Duration) {
	t.Helper()
	start := time.Now()
	require.NoError(t, p.cmd.Process.Signal(syscall.SIGTERM))
	return exitOf(t, p, start)
}

// awaitLines waits until at least n lines contain every one of parts.
func (p *proc) awaitLines(t *testing.T, n int, parts ...string) {
	t.Helper()
	p.out.AwaitT(t, n, parts...)
}

var storedLine = regexp.MustCompile(linePattern(vocab.ApuestaRecibida.Line(logfmt.Success, vocab.Cantidad.Str(pat(`(\d+)`)))))

// ackedIn is the number of bets one log line says the central stored (it
// logs a batch after it is durable and before it acknowledges it).
func ackedIn(line string) int {
	m := storedLine.FindStringSubmatch(line)
	if m == nil {
		return 0
	}
	n, _ := strconv.Atoi(m[1])
	return n
}

func (p *proc) acked() int {
	n := 0
	for _, l := range p.out.Texts() {
		n += ackedIn(l)
	}
	return n
}

// assertServerClosedEverything checks the closure lines of a central that ended on SIGTERM.
// opened says whether the bets file was open for writing: not when the signal
// came during the recovery.
func assertServerClosedEverything(t *testing.T, srv *proc, opened bool) {
	t.Helper()
	closes := 0
	if opened {
		closes = 1
	}
	for line, want := range map[string]int{
		vocab.Signal.Line(logfmt.Success):                1,
		vocab.CerrarListener.Line(logfmt.Success):        1,
		vocab.CerrarArchivoApuestas.Line(logfmt.Success): closes,
		vocab.Shutdown.Line(logfmt.Success):              1,
	} {
		assert.Equal(t, want, srv.countParts(line), "%q:\n%s", line, srv.output())
	}
	assert.Zero(t, srv.countParts(logfmttest.AnyFail+" | "+vocab.Error.Str("").String()), "a resource failed to close:\n%s", srv.output())
}

// agencyBets reads agency id's file.
func agencyBets(t *testing.T, dir string, id int) []lottery.Bet {
	t.Helper()
	var bets []lottery.Bet
	for b, err := range lottery.ReadAgencyFile(filepath.Join(dir, lottery.AgencyFileName(id)), id) {
		require.NoError(t, err)
		bets = append(bets, b)
	}
	return bets
}

// assertStoredPrefixes checks that the bets file parses (no partial row), that
// each agency's rows are a prefix of its file in order, and returns the rows.
func assertStoredPrefixes(t *testing.T, store, dir string, agencies int) int {
	t.Helper()
	byAgency := make(map[int][]lottery.Bet)
	rows := 0
	for b, err := range lottery.LoadBets(store) {
		require.NoError(t, err, "the bets file must hold no partial row")
		byAgency[b.Agency] = append(byAgency[b.Agency], b)
		rows++
	}
	for id, got := range byAgency {
		require.True(t, id >= 1 && id <= agencies, "agency %d", id)
		want := agencyBets(t, dir, id)
		require.LessOrEqual(t, len(got), len(want), "agency %d", id)
		assert.Equal(t, want[:len(got)], got, "agency %d: the stored rows are not the start of its file", id)
	}
	return rows
}

func startClientEnv(t *testing.T, id, port int, dir string, extra ...string) *proc {
	env := append([]string{"CLI_ID=" + strconv.Itoa(id),
		fmt.Sprintf("CLI_SERVER_ADDRESS=127.0.0.1:%d", port),
		"CLI_DATA_PATH=" + filepath.Join(dir, lottery.AgencyFileName(id)),
		"CLI_CONNECT_TIMEOUT=1s", "CLI_MAX_RETRIES=1"}, extra...)
	return startProc(t, "client", env...)
}

// helloRaw identifies a bare connection as agency id.
func helloRaw(t *testing.T, conn net.Conn, id int) {
	t.Helper()
	require.NoError(t, conn.SetDeadline(time.Now().Add(10*time.Second)))
	require.NoError(t, protocol.WriteMessage(conn, protocol.Hello{Version: protocol.Version, Agency: uint32(id)}))
	m, err := protocol.ReadMessage(conn, protocol.MaxServerFrame)
	require.NoError(t, err)
	require.Equal(t, protocol.MsgHelloAck, m.Type())
}

// SIGTERM at every phase of the draw: the central exits 0 within 2 s, logs
// the closing of each resource, and its bets file holds every acknowledged
// batch and no partial row.
func TestServerShutdownAtEveryPhase(t *testing.T) {
	tests := []struct {
		name string
		// phase brings the central to the moment of the signal and returns a
		// check to run after it exited.
		phase func(t *testing.T, srv *proc, port int, dir string) func(t *testing.T)
		// agencies, bets per agency and extra server settings
		agencies, bets int
		env            []string
		// prefill: bets of agency 1 in the bets file before the central
		// starts (checked by count: they are not from the agency file). The
		// signal comes while it still reads them: it never opens the file to write.
		prefill int
	}{
		{"before any agency connects", func(t *testing.T, srv *proc, port int, dir string) func(t *testing.T) {
			return func(t *testing.T) {
				assert.Zero(t, srv.countParts(logfmttest.AnyLine(vocab.CerrarConexion)))
			}
		}, 5, 10, nil, 0},
		{"in the middle of the batches", func(t *testing.T, srv *proc, port int, dir string) func(t *testing.T) {
			for id := 1; id <= 3; id++ {
				startClientEnv(t, id, port, dir, "CLI_BATCH_MAXAMOUNT=20")
			}
			srv.awaitLines(t, 30, vocab.ApuestaRecibida.Line(logfmt.Success))
			return func(t *testing.T) {
				assert.Zero(t, srv.countParts(logfmttest.AnyLine(vocab.Sorteo)))
				assert.GreaterOrEqual(t, srv.countParts(vocab.CerrarConexion.Line(logfmt.Success)),
					srv.countParts(vocab.Identificacion.Line(logfmt.Success)), "a connection was not closed:\n%s", srv.output())
			}
		}, 3, 30000, nil, 0},
		{"while agencies are parked", func(t *testing.T, srv *proc, port int, dir string) func(t *testing.T) {
			parked := []*proc{startClientEnv(t, 1, port, dir), startClientEnv(t, 2, port, dir)}
			srv.awaitLines(t, 2, vocab.EsperaSorteo.Line(logfmt.InProgress))
			return func(t *testing.T) {
				assert.Zero(t, srv.countParts(logfmttest.AnyLine(vocab.Sorteo)))
				for id := 1; id <= 2; id++ {
					assert.Equal(t, 1, srv.countParts(vocab.CerrarConexion.Line(logfmt.Success), vocab.Agencia.Int(id).String()+" |"),
						"agency %d:\n%s", id, srv.output())
				}
				// Every acknowledged bet is there: both files whole.
				assert.Equal(t, 2*500, assertStoredPrefixes(t, filepath.Join(dir, "bets.csv"), dir, 3))
				for i, c := range parked {
					code, _ := exitOf(t, c, time.Now())
					assert.NotZero(t, code, "agency %d got no winners, yet exited 0:\n%s", i+1, c.output())
					assert.Contains(t, c.output(), logfmttest.AnyFail, "agency %d", i+1)
				}
			}
		}, 3, 500, nil, 0},
		{"while it recovers a large bets file", func(t *testing.T, srv *proc, port int, dir string) func(t *testing.T) {
			// The store holds recoverRows bets of agency 1 (see prefill). An
			// agency that connects meanwhile waits on its socket for HELLO_ACK.
			srv.awaitLines(t, 1, vocab.Recuperacion.Line(logfmt.InProgress))
			conn, err := net.Dial("tcp", fmt.Sprintf("127.0.0.1:%d", port))
			require.NoError(t, err)
			t.Cleanup(func() { conn.Close() })
			require.NoError(t, protocol.WriteMessage(conn, protocol.Hello{Version: protocol.Version, Agency: 1}))
			return func(t *testing.T) {
				// The recovery gave up for the shutdown rather than holding it
				// up; the file is untouched (checked above) and read again next time.
				require.Equal(t, 1, srv.countParts(vocab.Recuperacion.Line(logfmt.Fail, vocab.Motivo.Str("shutdown"))),
					"the recovery was not interrupted (did it end before the signal?):\n%s", srv.output())
				assert.Zero(t, srv.countParts(vocab.Recuperacion.Line(logfmt.Success)), srv.output())
				require.NoError(t, conn.SetReadDeadline(time.Now().Add(10*time.Second)))
				m, err := protocol.ReadMessage(conn, protocol.MaxServerFrame)
				if err == nil {
					require.Equal(t, protocol.MsgError, m.Type(), "the waiting agency got %v", m)
					assert.Equal(t, protocol.CodeShuttingDown, m.(*protocol.ErrorMessage).Code)
					_, err = protocol.ReadMessage(conn, protocol.MaxServerFrame)
				}
				var ne net.Error
				require.False(t, errors.As(err, &ne) && ne.Timeout(), "the waiting connection was left open: %v", err)
			}
		}, 1, 0, nil, recoverRows},
		{"while idle connections are open", func(t *testing.T, srv *proc, port int, dir string) func(t *testing.T) {
			var conns []net.Conn
			for range 3 {
				c, err := net.Dial("tcp", fmt.Sprintf("127.0.0.1:%d", port))
				require.NoError(t, err)
				t.Cleanup(func() { c.Close() })
				conns = append(conns, c)
			}
			helloRaw(t, conns[0], 2)
			srv.awaitLines(t, 3, vocab.AceptarConexion.Line(logfmt.Success))
			return func(t *testing.T) {
				assert.Equal(t, 3, srv.countParts(vocab.CerrarConexion.Line(logfmt.Success)), srv.output())
				for i, c := range conns {
					require.NoError(t, c.SetReadDeadline(time.Now().Add(10*time.Second)))
					m, err := protocol.ReadMessage(c, protocol.MaxServerFrame)
					if err == nil { // the central may say why before it closes
						require.Equal(t, protocol.MsgError, m.Type(), "connection %d", i)
						assert.Equal(t, protocol.CodeShuttingDown, m.(*protocol.ErrorMessage).Code)
						_, err = protocol.ReadMessage(c, protocol.MaxServerFrame)
					}
					var ne net.Error
					require.False(t, errors.As(err, &ne) && ne.Timeout(), "connection %d left open: %v", i, err)
				}
			}
		}, 5, 10, []string{"SERVER_LOG_LEVEL=DEBUG", "SERVER_IDLE_TIMEOUT=1m"}, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			dir := t.TempDir()
			_, err := lottery.GenerateAgencyFiles(dir, tt.agencies, tt.bets, 99)
			require.NoError(t, err)
			store := filepath.Join(dir, "bets.csv")
			var prefilled []byte
			if tt.prefill > 0 {
				prefilled = bytes.Repeat([]byte("1,Ana,Pérez,12345678,1990-01-01,1\n"), tt.prefill)
				require.NoError(t, os.WriteFile(store, prefilled, 0o644))
			}
			srv, port := startServer(t, tt.agencies, store, tt.env...)
			check := tt.phase(t, srv, port, dir)
			ackedBefore := srv.acked()

			code, took := terminate(t, srv)
			require.Equal(t, 0, code, srv.output())
			assert.Less(t, took, shutdownBound, "exit after SIGTERM")
			t.Logf("exit %s after SIGTERM", took.Round(time.Millisecond))
			assertServerClosedEverything(t, srv, tt.prefill == 0)
			if tt.prefill > 0 {
				// Nothing was added: the file is byte for byte what it was.
				got, err := os.ReadFile(store)
				require.NoError(t, err)
				require.True(t, bytes.Equal(prefilled, got), "the bets file changed: %d bytes, want %d", len(got), len(prefilled))
			} else {
				rows := assertStoredPrefixes(t, store, dir, tt.agencies)
				assert.GreaterOrEqual(t, rows, ackedBefore, "an acknowledged batch is missing")
			}
			check(t)
		})
	}
}

// SIGTERM to an agency: it stops, exits 0 within 2 s and says so; nothing it
// had acknowledged is lost, and a restarted agency finishes the job exactly.
func TestClientShutdown(t *testing.T) {
	tests := []struct {
		name     string
		agencies int
		bets     int
		// until brings the agency to the moment of the signal.
		until func(t *testing.T, srv *proc)
	}{
		{"in the middle of the batches", 1, 60000, func(t *testing.T, srv *proc) {
			srv.awaitLines(t, 10, vocab.ApuestaRecibida.Line(logfmt.Success))
		}},
		{"while parked for the draw", 2, 300, func(t *testing.T, srv *proc) {
			srv.awaitLines(t, 1, vocab.EsperaSorteo.Line(logfmt.InProgress), vocab.Agencia.Int(1).String())
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			dir := t.TempDir()
			_, err := lottery.GenerateAgencyFiles(dir, tt.agencies, tt.bets, 5)
			require.NoError(t, err)
			store := filepath.Join(dir, "bets.csv")
			srv, port := startServer(t, tt.agencies, store)
			c := startClientEnv(t, 1, port, dir, "CLI_BATCH_MAXAMOUNT=20")
			tt.until(t, srv)

			code, took := terminate(t, c)
			require.Equal(t, 0, code, c.output())
			assert.Less(t, took, shutdownBound, "exit after SIGTERM")
			assert.Equal(t, 1, c.countParts(agencyShutdown), c.output())
			assert.Zero(t, c.countParts(agencyWinners))
			srv.awaitLines(t, 1, vocab.CerrarConexion.Line(logfmt.Success), vocab.Agencia.Int(1).String()+" |")

			// The agencies run again from the start and get exactly their winners.
			clients := make([]*proc, tt.agencies)
			for i := range clients {
				clients[i] = startClientEnv(t, i+1, port, dir, "CLI_BATCH_MAXAMOUNT=20")
			}
			for i, cl := range clients {
				require.Equal(t, 0, cl.wait(t), cl.output())
				want := 0
				for _, b := range agencyBets(t, dir, i+1) {
					if lottery.HasWon(b) {
						want++
					}
				}
				assert.Equal(t, strconv.Itoa(want), cl.await(t, winnersLine)[1], "agency %d", i+1)
			}
			code, _ = terminate(t, srv)
			require.Equal(t, 0, code, srv.output())
			got := rows(t, lottery.LoadBets(store))
			want := make(map[lottery.Bet]int)
			for id := 1; id <= tt.agencies; id++ {
				for _, b := range agencyBets(t, dir, id) {
					want[b]++
				}
			}
			assert.Equal(t, want, got, "every bet stored exactly once")
		})
	}
}

// An agency stopped by SIGTERM logs the closing of what it held open, and
// only that: each line comes from the closing itself, names the resource, and
// is printed before the agency says it has shut down. (The bets file's line
// used to be deferred on entry to the sending loop, so it was printed
// whether or not the file had been opened, and counting it proved nothing.)
func TestClientShutdownLogsClosures(t *testing.T) {
	tests := []struct {
		name string
		// reach starts what the agency talks to, returns the port it is
		// given, and a wait that brings it to the moment of the signal.
		reach          func(t *testing.T, dir string) (port int, until func(t *testing.T, c *proc))
		file, conn     int // closing lines wanted for the bets file and the connection
		connectTimeout string
	}{
		{"in the middle of the batches", func(t *testing.T, dir string) (int, func(t *testing.T, c *proc)) {
			srv, port := startServer(t, 1, filepath.Join(dir, "bets.csv"))
			return port, func(t *testing.T, c *proc) {
				srv.awaitLines(t, 10, vocab.ApuestaRecibida.Line(logfmt.Success))
			}
		}, 1, 1, "1s"},
		{"while connecting, nothing open yet", func(t *testing.T, dir string) (int, func(t *testing.T, c *proc)) {
			return freePort(t), func(t *testing.T, c *proc) { // nothing listens there
				c.awaitLines(t, 1, agencyConnecting)
			}
		}, 0, 0, "1m"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			dir := t.TempDir()
			_, err := lottery.GenerateAgencyFiles(dir, 1, 60000, 5)
			require.NoError(t, err)
			port, until := tt.reach(t, dir)
			c := startClientEnv(t, 1, port, dir, "CLI_BATCH_MAXAMOUNT=20", "CLI_CONNECT_TIMEOUT="+tt.connectTimeout)
			until(t, c)
			code, _ := terminate(t, c)
			require.Equal(t, 0, code, c.output())

			lines := strings.Split(c.output(), "\n")
			shutdown := slices.IndexFunc(lines, func(l string) bool { return strings.Contains(l, agencyShutdown) })
			require.NotEqual(t, -1, shutdown, "no shutdown line:\n%s", c.output())
			for _, closing := range []struct {
				what string
				want int
			}{
				{agencyFileClosed + filepath.Join(dir, lottery.AgencyFileName(1)), tt.file},
				{agencyConnClosed + fmt.Sprintf("127.0.0.1:%d", port), tt.conn},
			} {
				assert.Equal(t, closing.want, c.countParts(closing.what), "%q:\n%s", closing.what, c.output())
				if i := slices.IndexFunc(lines, func(l string) bool { return strings.Contains(l, closing.what) }); i != -1 {
					assert.Less(t, i, shutdown, "%q after the shutdown line:\n%s", closing.what, c.output())
				}
			}
			assert.Zero(t, c.countParts(logfmttest.AnyFail), c.output())
		})
	}
}

// The agency binary, facing a central that fails it, prints a `result: fail`
// line naming the reason and exits non-zero, promptly.
func TestClientBinaryFailsCleanly(t *testing.T) {
	tests := []struct {
		name   string
		script func(conn net.Conn, br *bufio.Reader) error
		reason string
	}{
		{"central answers garbage", func(conn net.Conn, br *bufio.Reader) error {
			if _, err := protocol.ReadMessage(br, protocol.MaxClientFrame); err != nil {
				return err
			}
			_, err := conn.Write([]byte("HTTP/1.1 400 Bad Request\r\n\r\n"))
			return err
		}, "frame too large"},
		{"central refuses a batch", func(conn net.Conn, br *bufio.Reader) error {
			if _, err := protocol.ReadMessage(br, protocol.MaxClientFrame); err != nil {
				return err
			}
			if err := protocol.WriteMessage(conn, protocol.HelloAck{Version: protocol.Version}); err != nil {
				return err
			}
			if _, err := protocol.ReadMessage(br, protocol.MaxClientFrame); err != nil {
				return err
			}
			return protocol.WriteMessage(conn, protocol.BatchReject{Seq: 1, Code: protocol.CodeInvalidBet, Index: 0, Text: "document: empty"})
		}, "invalid_bet"},
		{"central dies mid-stream", func(conn net.Conn, br *bufio.Reader) error {
			if _, err := protocol.ReadMessage(br, protocol.MaxClientFrame); err != nil {
				return err
			}
			if err := protocol.WriteMessage(conn, protocol.HelloAck{Version: protocol.Version}); err != nil {
				return err
			}
			m, err := protocol.ReadMessage(br, protocol.MaxClientFrame)
			if err != nil {
				return err
			}
			if err := protocol.WriteMessage(conn, protocol.BatchAck{Seq: m.(*protocol.Batch).Seq}); err != nil {
				return err
			}
			if _, err = protocol.ReadMessage(br, protocol.MaxClientFrame); err != nil {
				return err
			}
			return conn.Close() // batch 2 unanswered: the central died
		}, "send batch"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			dir := t.TempDir()
			_, err := lottery.GenerateAgencyFiles(dir, 1, 100, 3)
			require.NoError(t, err)
			ln, err := net.Listen("tcp", "127.0.0.1:0")
			require.NoError(t, err)
			scripted := make(chan error, 1)
			go func() {
				conn, err := ln.Accept()
				ln.Close() // a reconnecting agency is refused
				if err != nil {
					scripted <- err
					return
				}
				defer conn.Close()
				_ = conn.SetDeadline(time.Now().Add(30 * time.Second))
				br := bufio.NewReader(conn)
				scripted <- tt.script(conn, br)
				// Like the real central after BATCH_REJECT, the connection stays
				// open until the agency hangs up, unless the script killed it.
				_, _ = io.Copy(io.Discard, br)
			}()
			t.Cleanup(func() { ln.Close() })

			start := time.Now()
			port := ln.Addr().(*net.TCPAddr).Port
			c := startClientEnv(t, 1, port, dir, "CLI_BATCH_MAXAMOUNT=10", "CLI_CONNECT_TIMEOUT=300ms")
			code, took := exitOf(t, c, start)
			require.NoError(t, <-scripted)
			assert.NotZero(t, code, c.output())
			assert.Less(t, took, 10*time.Second)
			assert.Positive(t, c.countParts(logfmttest.AnyFail, tt.reason), "no fail line names %q:\n%s", tt.reason, c.output())
		})
	}
}
