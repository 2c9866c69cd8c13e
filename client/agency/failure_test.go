package agency

import (
	"bufio"
	"bytes"
	"context"
	"encoding/csv"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/sirupsen/logrus"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"

	"lotterycentral.example/client/internal/vocab"
	"lotterycentral.example/lottery"
	"lotterycentral.example/lottery/logfmt"
	"lotterycentral.example/protocol"
	"lotterycentral.example/protocol/identity"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// fakeWait only turns a hung exchange into a failure; nothing waits on it.
const fakeWait = 10 * time.Second

// fakeConn is the central's side of one connection, driven by a script.
type fakeConn struct {
	conn        net.Conn
	br          *bufio.Reader
	frames      []int    // the size of every frame the agency sent, header included
	received    []string // the rows of the batches received, each with its LF, in order
	batches     []int    // bets per batch
	batchFrames []int    // size of each batch's frame
	// held are the agency's bets the fake says it stored before this
	// connection (its HELLO_ACK's stored), in order: the start of its digest.
	held []lottery.Bet
	// tamper, when set, is a dishonest central's: the rows it answers FINISH
	// with, made from those it stored (a copy, free to change).
	tamper func(stored []lottery.Bet) []lottery.Bet
}

// read reads one frame of any size, so an oversized one is seen, not refused.
func (f *fakeConn) read() (protocol.Message, error) {
	if err := f.conn.SetReadDeadline(time.Now().Add(fakeWait)); err != nil {
		return nil, err
	}
	fr, err := protocol.ReadFrame(f.br, 1<<20, nil)
	if err != nil {
		return nil, fmt.Errorf("fake central: %w", err)
	}
	f.frames = append(f.frames, protocol.HeaderSize+len(fr.Payload))
	m, err := protocol.Decode(fr)
	if err != nil {
		return nil, fmt.Errorf("fake central: %w", err)
	}
	if b, ok := m.(*protocol.Batch); ok {
		// As the central reads a batch: its rows in place, split on LF.
		rows, count, err := protocol.BatchRows(fr.Payload)
		if err != nil {
			return nil, fmt.Errorf("fake central: %w", err)
		}
		if !bytes.Equal(rows, b.Rows) || count != b.Count {
			return nil, fmt.Errorf("fake central: BatchRows (%d rows) and Decode (%d) disagree", count, b.Count)
		}
		for _, row := range bytes.SplitAfter(rows, []byte{'\n'}) {
			if len(row) == 0 {
				continue
			}
			if _, err := parseRow(string(row)); err != nil {
				return nil, fmt.Errorf("fake central: batch %d, row %d: %w", b.Seq, len(f.received)+1, err)
			}
			f.received = append(f.received, string(row))
		}
		f.batches = append(f.batches, count)
		f.batchFrames = append(f.batchFrames, protocol.HeaderSize+len(fr.Payload))
	}
	return m, nil
}

func (f *fakeConn) expect(want protocol.MsgType) (protocol.Message, error) {
	m, err := f.read()
	if err != nil {
		return nil, err
	}
	if m.Type() != want {
		return nil, fmt.Errorf("fake central: got %s, want %s", m.Type(), want)
	}
	return m, nil
}

func (f *fakeConn) write(b []byte) error {
	if err := f.conn.SetWriteDeadline(time.Now().Add(fakeWait)); err != nil {
		return err
	}
	_, err := f.conn.Write(b)
	return err
}

func (f *fakeConn) send(m protocol.Message) error {
	b, err := protocol.AppendMessage(nil, m)
	if err != nil {
		return err
	}
	return f.write(b)
}

// hello answers the agency's HELLO.
func (f *fakeConn) hello() error {
	if _, err := f.expect(protocol.MsgHello); err != nil {
		return err
	}
	return f.send(protocol.HelloAck{Version: protocol.Version})
}

// ackBatches acknowledges the next n batches.
func (f *fakeConn) ackBatches(n int) error {
	for range n {
		m, err := f.expect(protocol.MsgBatch)
		if err != nil {
			return err
		}
		if err := f.send(protocol.BatchAck{Seq: m.(*protocol.Batch).Seq}); err != nil {
			return err
		}
	}
	return nil
}

// storedRows is the agency's rows the fake holds: those of the bets it held
// before this connection, then those it received on it as they came, in
// order.
func (f *fakeConn) storedRows() []byte {
	var rows []byte
	for _, b := range f.held {
		rows = lottery.AppendRow(rows, b)
	}
	for _, row := range f.received {
		rows = append(rows, row...)
	}
	return rows
}

// digest is what the fake answers FINISH with: an honest central's, the
// digest of the rows it stored as they came, unless tamper says otherwise.
func (f *fakeConn) digest() (protocol.Digest, error) {
	rows := f.storedRows()
	if f.tamper == nil {
		w := protocol.NewDigestWriter()
		w.Write(rows)
		return w.Sum(), nil
	}
	bets, err := parseRows(rows)
	if err != nil {
		return protocol.Digest{}, err
	}
	return digestOf(f.tamper(bets)), nil
}

// parseRows reads rows, as BATCH carries them: each one a bet of agency 3
// (see parseRow).
func parseRows(rows []byte) ([]lottery.Bet, error) {
	var bets []lottery.Bet
	for _, row := range bytes.SplitAfter(rows, []byte{'\n'}) {
		if len(row) == 0 {
			continue
		}
		b, err := parseRow(string(row))
		if err != nil {
			return nil, fmt.Errorf("fake central: row %d: %w", len(bets)+1, err)
		}
		bets = append(bets, b)
	}
	return bets, nil
}

// parseRow reads one row with encoding/csv, apart from the lottery's own
// readers: five fields, written exactly as AppendRow writes their bet (the
// agency sends nothing else).
func parseRow(row string) (lottery.Bet, error) {
	cr := csv.NewReader(strings.NewReader(row))
	cr.FieldsPerRecord = 5
	rec, err := cr.Read()
	if err != nil {
		return lottery.Bet{}, fmt.Errorf("row %q: %w", row, err)
	}
	number, err := strconv.Atoi(rec[4])
	if err != nil {
		return lottery.Bet{}, fmt.Errorf("row %q: %w", row, err)
	}
	b := lottery.Bet{Agency: 3, FirstName: rec[0], LastName: rec[1], Document: rec[2], Birthdate: rec[3], Number: number}
	if canonical := string(lottery.AppendRow(nil, b)); canonical != row {
		return lottery.Bet{}, fmt.Errorf("row %q is not written as AppendRow writes its bet: %q", row, canonical)
	}
	return b, nil
}

// answerConsult waits for CONSULT and answers it with w.
func (f *fakeConn) answerConsult(w protocol.Winners) error {
	if _, err := f.expect(protocol.MsgConsult); err != nil {
		return err
	}
	return f.send(w)
}

// ackUntilFinish acknowledges every batch, then the FINISH, as an honest
// central does: with the count and the digest of what it holds.
func (f *fakeConn) ackUntilFinish() error {
	for {
		m, err := f.read()
		if err != nil {
			return err
		}
		switch m := m.(type) {
		case *protocol.Batch:
			err = f.send(protocol.BatchAck{Seq: m.Seq})
		case *protocol.Finish:
			d, err := f.digest()
			if err != nil {
				return err
			}
			return f.send(protocol.FinishAck{Stored: m.Total, Digest: d})
		default:
			return fmt.Errorf("fake central: unexpected %s", m.Type())
		}
		if err != nil {
			return err
		}
	}
}

// die closes the connection the way a crashing central does: without a word.
func (f *fakeConn) die() error { return f.conn.Close() }

// drain reads until the agency closes the connection.
func (f *fakeConn) drain() error {
	if err := f.conn.SetReadDeadline(time.Now().Add(fakeWait)); err != nil {
		return err
	}
	_, err := io.Copy(io.Discard, f.br)
	return err
}

type fakeCentral struct {
	addr   string
	done   chan struct{}
	err    error // the script's, once done is closed
	fc     *fakeConn
	closed chan struct{}
}

// startFake serves one connection with script, then stops listening: an
// agency that reconnects is refused at once.
func startFake(t *testing.T, script func(f *fakeConn) error) *fakeCentral {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	fc := &fakeCentral{addr: ln.Addr().String(), done: make(chan struct{}), closed: make(chan struct{})}
	var conn net.Conn
	var mu sync.Mutex
	go func() {
		defer close(fc.done)
		c, err := ln.Accept()
		ln.Close()
		if err != nil {
			fc.err = err
			return
		}
		mu.Lock()
		conn = c
		mu.Unlock()
		defer c.Close()
		fc.fc = &fakeConn{conn: c, br: bufio.NewReader(c)}
		fc.err = script(fc.fc)
		// Like the real central after BATCH_REJECT, the connection stays
		// open until the agency hangs up, unless the script killed it.
		_ = fc.fc.drain()
	}()
	t.Cleanup(func() {
		ln.Close()
		mu.Lock()
		if conn != nil {
			conn.Close()
		}
		mu.Unlock()
		<-fc.done
	})
	return fc
}

// lineHook keeps the agency's log lines, and each one's level.
type lineHook struct {
	mu     sync.Mutex
	lines  []string
	levels []logrus.Level
}

func (h *lineHook) Levels() []logrus.Level { return logrus.AllLevels }
func (h *lineHook) Fire(e *logrus.Entry) error {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.lines = append(h.lines, e.Message)
	h.levels = append(h.levels, e.Level)
	return nil
}

// levelOf is the level of the first line holding every part, as find
// matches it; ok is false when there is none.
func (h *lineHook) levelOf(parts ...string) (level logrus.Level, ok bool) {
	h.mu.Lock()
	defer h.mu.Unlock()
	for i, l := range h.lines {
		if !slices.ContainsFunc(parts, func(p string) bool { return !strings.Contains(l, p) }) {
			return h.levels[i], true
		}
	}
	return 0, false
}

func (h *lineHook) find(parts ...string) bool {
	h.mu.Lock()
	defer h.mu.Unlock()
	return slices.ContainsFunc(h.lines, func(l string) bool {
		for _, p := range parts {
			if !strings.Contains(l, p) {
				return false
			}
		}
		return true
	})
}

func (h *lineHook) String() string {
	h.mu.Lock()
	defer h.mu.Unlock()
	return strings.Join(h.lines, "\n")
}

func testLog() (*logfmt.Logger, *lineHook) {
	log := logrus.New()
	log.SetOutput(io.Discard)
	log.SetFormatter(logfmt.Formatter{})
	log.SetLevel(logrus.DebugLevel)
	h := &lineHook{}
	log.AddHook(h)
	return logfmt.Wrap(log), h
}

// anyResult is how every line of action a starts, whatever its result.
func anyResult(a logfmt.Action) string { return a.Line("") }

// failed marks a line whose action failed, whatever the action.
const failed = "| result: " + string(logfmt.Fail)

// runBounded runs the agency and fails the test if it does not return in time.
func runBounded(t *testing.T, a *Agency, bound time.Duration) ([]string, time.Duration, error) {
	t.Helper()
	type result struct {
		docs []string
		err  error
	}
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	out := make(chan result, 1)
	start := time.Now()
	go func() {
		docs, err := a.Run(ctx)
		out <- result{docs, err}
	}()
	select {
	case r := <-out:
		return r.docs, time.Since(start), r.err
	case <-time.After(bound):
		cancel()
		<-out
		t.Fatalf("the agency hung for %s", bound)
		return nil, 0, nil
	}
}

func writeBets(t *testing.T, path string, bets []lottery.Bet) {
	t.Helper()
	f, err := os.Create(path)
	require.NoError(t, err)
	defer f.Close()
	require.NoError(t, lottery.WriteAgencyFile(f, slices.Values(bets)))
}

func failureConfig(addr, data string) Config {
	return Config{
		ID:             3,
		ServerAddress:  addr,
		DataPath:       data,
		BatchMaxAmount: 10,
		ConnectTimeout: 300 * time.Millisecond,
		ReplyTimeout:   2 * time.Second,
		MaxRetries:     1,
		LogLevel:       "DEBUG",
	}
}

// Whatever the central does wrong, the agency fails within a bounded time
// with an error, and a `result: fail` line (or the error) names the reason.
func TestAgencyFailsCleanly(t *testing.T) {
	tests := []struct {
		name    string
		reply   time.Duration // ReplyTimeout, when not the default
		script  func(f *fakeConn) error
		reason  string                      // named by the error or by a fail line
		wantErr func(t *testing.T, e error) // checks on the error itself, if any
	}{
		{"central dies mid-stream after two batches", 0, func(f *fakeConn) error {
			if err := f.hello(); err != nil {
				return err
			}
			if err := f.ackBatches(2); err != nil {
				return err
			}
			if _, err := f.expect(protocol.MsgBatch); err != nil {
				return err
			}
			return f.die() // batch 3 unanswered
		}, "send batch", nil},
		{"central refuses a batch", 0, func(f *fakeConn) error {
			if err := f.hello(); err != nil {
				return err
			}
			if err := f.ackBatches(1); err != nil {
				return err
			}
			if _, err := f.expect(protocol.MsgBatch); err != nil {
				return err
			}
			return f.send(protocol.BatchReject{Seq: 2, Code: protocol.CodeInvalidBet, Index: 3, Text: "document: not only digits"})
		}, "bet 14 of", func(t *testing.T, err error) {
			var re *protocol.RemoteError
			require.ErrorAs(t, err, &re)
			assert.Equal(t, protocol.CodeInvalidBet, re.Code)
			assert.ErrorContains(t, err, "not only digits")
		}},
		{"central refuses the batch as a whole", 0, func(f *fakeConn) error {
			if err := f.hello(); err != nil {
				return err
			}
			if _, err := f.expect(protocol.MsgBatch); err != nil {
				return err
			}
			return f.send(protocol.BatchReject{Seq: 1, Code: protocol.CodeDrawDone, Index: protocol.NoIndex, Text: "the draw already ran"})
		}, "draw_done", func(t *testing.T, err error) {
			var re *protocol.RemoteError
			require.ErrorAs(t, err, &re)
			assert.Equal(t, protocol.CodeDrawDone, re.Code)
		}},
		{"central refuses with ERROR mid-stream, then closes", 0, func(f *fakeConn) error {
			if err := f.hello(); err != nil {
				return err
			}
			if err := f.ackBatches(1); err != nil {
				return err
			}
			if _, err := f.expect(protocol.MsgBatch); err != nil {
				return err
			}
			if err := f.send(protocol.ErrorMessage{Code: protocol.CodeMalformed, Text: "BATCH shorter than its sequence number and count"}); err != nil {
				return err
			}
			return f.die() // ERROR closes the connection (SPEC rule 8)
		}, "malformed", func(t *testing.T, err error) {
			var re *protocol.RemoteError
			require.ErrorAs(t, err, &re, "a refusal that would only repeat is not retried")
			assert.Equal(t, protocol.CodeMalformed, re.Code)
		}},
		{"central refuses the agency", 0, func(f *fakeConn) error {
			if _, err := f.expect(protocol.MsgHello); err != nil {
				return err
			}
			return f.send(protocol.ErrorMessage{Code: protocol.CodeBadAgency, Text: "agency 3; this draw has agencies 1..2"})
		}, "bad_agency", func(t *testing.T, err error) {
			var re *protocol.RemoteError
			require.ErrorAs(t, err, &re)
			assert.Equal(t, protocol.CodeBadAgency, re.Code)
		}},
		{"central's operator excluded the agency", 0, func(f *fakeConn) error {
			if _, err := f.expect(protocol.MsgHello); err != nil {
				return err
			}
			return f.send(protocol.ErrorMessage{Code: protocol.CodeExcluded, Text: "agency 3 is out of this draw: its bets are not drawn"})
		}, "the central's operator excluded this agency from the draw", func(t *testing.T, err error) {
			var re *protocol.RemoteError
			require.ErrorAs(t, err, &re, "final: not retried")
			assert.Equal(t, protocol.CodeExcluded, re.Code)
			assert.Equal(t, vocab.ConsultaGanadores, FailedAction(err), "the course's line says why the agency stopped")
		}},
		{"central refuses a revoked certificate", 0, func(f *fakeConn) error {
			if _, err := f.expect(protocol.MsgHello); err != nil {
				return err
			}
			return f.send(protocol.ErrorMessage{Code: protocol.CodeRevoked,
				Text: `certificate "agency-3", serial 2a: certificate revoked: ask the lottery for a new one`})
		}, identity.ReasonRevoked, func(t *testing.T, err error) {
			var ae *AuthError
			require.ErrorAs(t, err, &ae, "final: not retried")
			assert.Equal(t, identity.ReasonRevoked, ae.Reason)
			assert.Equal(t, vocab.TLSHandshake, FailedAction(err), "the handshake's line says why the agency stopped")
		}},
		{"garbage instead of HELLO_ACK", 0, func(f *fakeConn) error {
			if _, err := f.expect(protocol.MsgHello); err != nil {
				return err
			}
			return f.write([]byte("HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\n\r\n"))
		}, "frame too large", func(t *testing.T, err error) {
			assert.ErrorIs(t, err, protocol.ErrFrameTooLarge)
		}},
		{"garbage instead of BATCH_ACK", 0, func(f *fakeConn) error {
			if err := f.hello(); err != nil {
				return err
			}
			if _, err := f.expect(protocol.MsgBatch); err != nil {
				return err
			}
			return f.write([]byte{0x13, 0x37, 0xde, 0xad, 0xbe, 0xef, 0, 0, 0})
		}, "send batch 1", func(t *testing.T, err error) {
			assert.ErrorIs(t, err, protocol.ErrFrameTooLarge)
		}},
		{"frame of an unknown type", 0, func(f *fakeConn) error {
			if err := f.hello(); err != nil {
				return err
			}
			if _, err := f.expect(protocol.MsgBatch); err != nil {
				return err
			}
			return f.write([]byte{0x7F, 0, 0, 0, 2, 1, 2})
		}, "unknown message type", func(t *testing.T, err error) {
			assert.ErrorIs(t, err, protocol.ErrUnknownType)
		}},
		{"an agency's message type from the central", 0, func(f *fakeConn) error {
			if _, err := f.expect(protocol.MsgHello); err != nil {
				return err
			}
			return f.send(protocol.Hello{Version: protocol.Version, Agency: 3})
		}, "unexpected HELLO", nil},
		{"malformed BATCH_ACK", 0, func(f *fakeConn) error {
			if err := f.hello(); err != nil {
				return err
			}
			if _, err := f.expect(protocol.MsgBatch); err != nil {
				return err
			}
			return f.write([]byte{byte(protocol.MsgBatchAck), 0, 0, 0, 2, 0, 1})
		}, "send batch 1", nil},
		{"BATCH_ACK for another batch", 0, func(f *fakeConn) error {
			if err := f.hello(); err != nil {
				return err
			}
			if _, err := f.expect(protocol.MsgBatch); err != nil {
				return err
			}
			return f.send(protocol.BatchAck{Seq: 7})
		}, "acknowledged batch 7", nil},
		{"wrong answer to a batch", 0, func(f *fakeConn) error {
			if err := f.hello(); err != nil {
				return err
			}
			if _, err := f.expect(protocol.MsgBatch); err != nil {
				return err
			}
			return f.send(protocol.Pong{})
		}, "unexpected PONG", nil},
		{"central never answers", 200 * time.Millisecond, func(f *fakeConn) error {
			if err := f.hello(); err != nil {
				return err
			}
			_, err := f.expect(protocol.MsgBatch)
			return err // and then only listens
		}, "i/o timeout", nil},
		{"central dies while the agency waits for its winners", 0, func(f *fakeConn) error {
			if err := f.hello(); err != nil {
				return err
			}
			if err := f.ackUntilFinish(); err != nil {
				return err
			}
			if _, err := f.expect(protocol.MsgConsult); err != nil {
				return err
			}
			return f.die()
		}, "consult winners", nil},
		{"central shutting down while the agency waits", 0, func(f *fakeConn) error {
			if err := f.hello(); err != nil {
				return err
			}
			if err := f.ackUntilFinish(); err != nil {
				return err
			}
			if _, err := f.expect(protocol.MsgConsult); err != nil {
				return err
			}
			return f.send(protocol.ErrorMessage{Code: protocol.CodeShuttingDown, Text: "the central is shutting down"})
		}, "shutting_down", nil},
		{"winners frame with more documents than its total", 0, func(f *fakeConn) error {
			if err := f.hello(); err != nil {
				return err
			}
			if err := f.ackUntilFinish(); err != nil {
				return err
			}
			if _, err := f.expect(protocol.MsgConsult); err != nil {
				return err
			}
			b := []byte{byte(protocol.MsgWinners), 0, 0, 0, 10, 0, 0, 0, 1, 0, 2, 1, '7', 1, '8'}
			return f.write(b)
		}, "consult winners", func(t *testing.T, err error) {
			assert.ErrorIs(t, err, protocol.ErrMalformed)
		}},
		{"winners frames that disagree on the total", 0, func(f *fakeConn) error {
			if err := f.hello(); err != nil {
				return err
			}
			if err := f.ackUntilFinish(); err != nil {
				return err
			}
			if _, err := f.expect(protocol.MsgConsult); err != nil {
				return err
			}
			if err := f.send(protocol.Winners{Total: 2, Documents: []string{"1"}}); err != nil {
				return err
			}
			return f.send(protocol.Winners{Total: 5, Documents: []string{"2"}})
		}, "disagree on the total", nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			dir := t.TempDir()
			_, err := lottery.GenerateAgencyFiles(dir, 3, 50, 8)
			require.NoError(t, err)
			fc := startFake(t, tt.script)
			cfg := failureConfig(fc.addr, filepath.Join(dir, lottery.AgencyFileName(3)))
			if tt.reply > 0 {
				cfg.ReplyTimeout = tt.reply
			}
			log, lines := testLog()
			docs, took, err := runBounded(t, New(cfg, log), fakeWait)
			require.Error(t, err, "winners %v", docs)
			t.Logf("error after %s: %v", took.Round(time.Millisecond), err)
			assert.Less(t, took, 5*time.Second)
			<-fc.done
			require.NoError(t, fc.err, "the fake central's script")

			named := strings.Contains(err.Error(), tt.reason) || lines.find(failed, tt.reason)
			assert.True(t, named, "neither the error nor a fail line names %q:\nerror: %v\n%s", tt.reason, err, lines)
			if tt.wantErr != nil {
				tt.wantErr(t, err)
			}
		})
	}
}

// Whatever BatchMaxAmount says, no frame the agency sends exceeds 8 KiB, and
// every bet of its file arrives once, in order.
func TestAgencyNeverSendsOverEightKiB(t *testing.T) {
	long := strings.Repeat("ñ", lottery.MaxNameLen/2) // 100 bytes of two-byte runes
	tests := []struct {
		name     string
		maxCount int
		bets     func(t *testing.T, dir string) []lottery.Bet
	}{
		{"generated file, BatchMaxAmount 100000", 100000, func(t *testing.T, dir string) []lottery.Bet {
			return generated(t, dir, 3000)
		}},
		{"longest names, BatchMaxAmount 100000", 100000, func(t *testing.T, dir string) []lottery.Bet {
			bets := make([]lottery.Bet, 500)
			for i := range bets {
				bets[i] = lottery.Bet{Agency: 3, FirstName: long, LastName: long, Document: fmt.Sprint(1000000000 + i),
					Birthdate: "1970-01-01", Number: i % 10000}
			}
			return bets
		}},
		{"shortest bets, BatchMaxAmount 100000", 100000, func(t *testing.T, dir string) []lottery.Bet {
			bets := make([]lottery.Bet, 2000)
			for i := range bets {
				bets[i] = lottery.Bet{Agency: 3, FirstName: "A", LastName: "B", Document: fmt.Sprint(i % 10),
					Birthdate: "2000-01-01", Number: i % 10000}
			}
			return bets
		}},
		{"generated file, BatchMaxAmount -1", -1, func(t *testing.T, dir string) []lottery.Bet {
			return generated(t, dir, 2000)
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			dir := t.TempDir()
			bets := tt.bets(t, dir)
			data := filepath.Join(dir, "bets.csv")
			writeBets(t, data, bets)
			fc := startFake(t, func(f *fakeConn) error {
				if err := f.hello(); err != nil {
					return err
				}
				if err := f.ackUntilFinish(); err != nil {
					return err
				}
				return f.answerConsult(protocol.Winners{Total: 1, Documents: []string{"42"}})
			})
			cfg := failureConfig(fc.addr, data)
			cfg.BatchMaxAmount = tt.maxCount
			log, lines := testLog()
			docs, _, err := runBounded(t, New(cfg, log), 30*time.Second)
			require.NoError(t, err, "%s", lines)
			assert.Equal(t, []string{"42"}, docs)
			<-fc.done
			require.NoError(t, fc.err)

			for i, size := range fc.fc.frames {
				assert.LessOrEqual(t, size, protocol.MaxClientFrame, "frame %d", i)
			}
			require.Len(t, fc.fc.received, len(bets))
			for i, b := range bets {
				require.Equal(t, string(lottery.AppendRow(nil, b)), fc.fc.received[i], "bet %d", i)
			}
			// Nor is packing timid: a batch is cut only when its next bet would
			// not fit in the frame or the batch holds MaxBatchBets.
			next := 0
			for i, n := range fc.fc.batches {
				next += n
				if i == len(fc.fc.batches)-1 {
					break
				}
				rowSize := len(fc.fc.received[next])
				full := fc.fc.batchFrames[i]+rowSize > protocol.MaxClientFrame || n == protocol.MaxBatchBets
				assert.True(t, full, "batch %d: %d bets in %d bytes, and the next (%d bytes) would fit", i+1, n, fc.fc.batchFrames[i], rowSize)
			}
		})
	}
}

func generated(t *testing.T, dir string, n int) []lottery.Bet {
	t.Helper()
	gen := filepath.Join(dir, "gen")
	_, err := lottery.GenerateAgencyFiles(gen, 3, n, 21)
	require.NoError(t, err)
	var bets []lottery.Bet
	for b, err := range lottery.ReadAgencyFile(filepath.Join(gen, lottery.AgencyFileName(3)), 3) {
		require.NoError(t, err)
		bets = append(bets, b)
	}
	return bets
}

// A failure of the agency's own bets file is never retried: no new
// connection fixes it. A file that cannot be opened fails before any
// connection; one that breaks mid-way fails on the connection it was on.
func TestLocalFileErrorsAreNotRetried(t *testing.T) {
	tests := []struct {
		name string
		// data writes the bets file in dir and returns its path.
		data       func(t *testing.T, dir string) string
		script     func(f *fakeConn) error // nil: the agency must not connect
		wantIs     error                   // errors.Is the returned error, if set
		wantClosed int                     // cerrar_archivo lines
	}{
		{"missing", func(t *testing.T, dir string) string {
			return filepath.Join(dir, "agency-3.csv")
		}, nil, fs.ErrNotExist, 0},
		{"a directory", func(t *testing.T, dir string) string {
			return dir
		}, nil, nil, 0},
		{"a malformed row after two batches", func(t *testing.T, dir string) string {
			path := filepath.Join(dir, "agency-3.csv")
			var rows strings.Builder
			for i := range 25 {
				fmt.Fprintf(&rows, "Ana,Pérez,%d,1990-01-01,%d\r\n", 30000000+i, i)
			}
			rows.WriteString("Ana,Pérez,\"unterminated,1990-01-01,1\r\n")
			require.NoError(t, os.WriteFile(path, []byte(rows.String()), 0o644))
			return path
		}, func(f *fakeConn) error {
			if err := f.hello(); err != nil {
				return err
			}
			// Batches read before the bad row may have gone out (or still sat
			// in the agency's send buffer): none is answered, and only
			// batches come before the agency hangs up.
			for {
				_, err := f.expect(protocol.MsgBatch)
				if errors.Is(err, io.EOF) {
					return nil
				}
				if err != nil {
					return err
				}
			}
		}, csv.ErrQuote, 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			dir := t.TempDir()
			data := tt.data(t, dir)
			fc := startFake(t, func(f *fakeConn) error {
				if tt.script == nil {
					return fmt.Errorf("the agency connected")
				}
				return tt.script(f)
			})
			cfg := failureConfig(fc.addr, data)
			cfg.MaxRetries = 5
			log, lines := testLog()
			_, took, err := runBounded(t, New(cfg, log), fakeWait)
			require.Error(t, err)
			var fe *DataFileError
			require.ErrorAs(t, err, &fe)
			assert.Equal(t, data, fe.Path)
			assert.Contains(t, err.Error(), data, "the message names the file")
			if tt.wantIs != nil {
				assert.ErrorIs(t, err, tt.wantIs)
			}
			assert.Equal(t, vocab.LeerArchivo, FailedAction(err))
			assert.False(t, lines.find(anyResult(vocab.Conexion)), "retried:\n%s", lines)
			assert.Equal(t, tt.wantClosed, strings.Count(lines.String(), anyResult(vocab.CerrarArchivo)), "%s", lines)
			if tt.script == nil {
				assert.False(t, lines.find(anyResult(vocab.Conectar)), "it tried to connect:\n%s", lines)
				assert.Less(t, took, time.Second)
				return
			}
			<-fc.done
			require.NoError(t, fc.err)
		})
	}
}

func TestRetryable(t *testing.T) {
	tests := []struct {
		name string
		err  error
		want bool
	}{
		{"connection reset", fmt.Errorf("send batch 3: %w", syscall.ECONNRESET), true},
		{"central closed the socket", fmt.Errorf("identify: %w", io.EOF), true},
		{"timeout", &net.OpError{Op: "read", Err: os.ErrDeadlineExceeded}, true},
		{"central shutting down", &protocol.RemoteError{Code: protocol.CodeShuttingDown}, true},
		{"invalid bet", &protocol.RemoteError{Code: protocol.CodeInvalidBet}, false},
		{"excluded by the central's operator", &protocol.RemoteError{Code: protocol.CodeExcluded}, false},
		{"gave up connecting", fmt.Errorf("connect: %w", errGaveUp), false},
		{"counts disagree", &CountMismatchError{Central: 3, File: 2}, false},
		{"digests disagree", &DigestMismatchError{Central: protocol.Digest{1}, File: protocol.Digest{2}}, false},
		{"missing bets file", &DataFileError{Path: "a.csv", Err: &fs.PathError{Op: "open", Path: "a.csv", Err: fs.ErrNotExist}}, false},
		// A bets file on a network file system fails like a socket: still local.
		{"bets file read reset", &DataFileError{Path: "a.csv", Err: &fs.PathError{Op: "read", Path: "a.csv", Err: syscall.ECONNRESET}}, false},
		{"bets file cut short", &DataFileError{Path: "a.csv", Err: fmt.Errorf("a.csv: %w", io.EOF)}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			assert.Equal(t, tt.want, retryable(tt.err))
		})
	}
}

func TestFailedAction(t *testing.T) {
	tests := []struct {
		name string
		err  error
		want logfmt.Action
	}{
		{"bets file", &DataFileError{Path: "a.csv", Err: fs.ErrNotExist}, vocab.LeerArchivo},
		{"central unreachable", fmt.Errorf("connect to x:1: %w after 3 attempts", errGaveUp), vocab.Conectar},
		{"lost, then unreachable", fmt.Errorf("%w; reconnecting failed: %w", io.EOF, fmt.Errorf("connect: %w", errGaveUp)), vocab.Conectar},
		{"refused batch", &protocol.RemoteError{Code: protocol.CodeInvalidBet}, vocab.ConsultaGanadores},
		{"refused certificate", fmt.Errorf("identify: %w", &AuthError{Reason: "refused_by_central", Err: io.EOF}), vocab.TLSHandshake},
		{"counts disagree", &CountMismatchError{Central: 3, File: 2}, vocab.VerificarConteo},
		{"digests disagree", fmt.Errorf("finish: %w", &DigestMismatchError{Central: protocol.Digest{1}, File: protocol.Digest{2}}), vocab.VerificarDigesto},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			assert.Equal(t, tt.want, FailedAction(tt.err))
		})
	}
}

// openCount is how many of this process's file descriptors are open on path.
func openCount(t *testing.T, path string) int {
	t.Helper()
	fds, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		t.Skipf("no /proc/self/fd to see open files: %v", err)
	}
	n := 0
	for _, fd := range fds {
		if target, err := os.Readlink(filepath.Join("/proc/self/fd", fd.Name())); err == nil && target == path {
			n++
		}
	}
	return n
}

// Stopped mid-stream, the agency closes its bets file, and the line that says
// so is there because the file was closed.
func TestAgencyClosesItsFileWhenStopped(t *testing.T) {
	dir := t.TempDir()
	data := filepath.Join(dir, "bets.csv")
	writeBets(t, data, generated(t, dir, 3000))
	acked := make(chan struct{})
	fc := startFake(t, func(f *fakeConn) error {
		if err := f.hello(); err != nil {
			return err
		}
		if err := f.ackBatches(2); err != nil {
			return err
		}
		close(acked) // and then only listens: the agency waits with its window full
		return nil
	})
	log, lines := testLog()
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	done := make(chan error, 1)
	go func() {
		_, err := New(failureConfig(fc.addr, data), log).Run(ctx)
		done <- err
	}()
	select {
	case <-acked:
	case <-time.After(fakeWait):
		t.Fatalf("no batches:\n%s", lines)
	}
	require.Equal(t, 1, openCount(t, data), "the file is open while batches are in flight")
	assert.False(t, lines.find(anyResult(vocab.CerrarArchivo)), "closing logged while the file is open:\n%s", lines)

	cancel()
	select {
	case err := <-done:
		require.ErrorIs(t, err, context.Canceled)
	case <-time.After(fakeWait):
		t.Fatal("the agency did not stop")
	}
	assert.Zero(t, openCount(t, data), "the bets file is still open")
	assert.Equal(t, 1, strings.Count(lines.String(), vocab.CerrarArchivo.Line(logfmt.Success, vocab.Archivo.Str(data))), "%s", lines)
	<-fc.done
	require.NoError(t, fc.err)
}
