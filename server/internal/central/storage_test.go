package central

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"lotterycentral.example/lottery"
	"lotterycentral.example/lottery/logfmt"
	"lotterycentral.example/lottery/logfmt/logfmttest"
	"lotterycentral.example/protocol"
	"lotterycentral.example/server/internal/config"
	"lotterycentral.example/server/internal/ledger"
	"lotterycentral.example/server/internal/vocab"
)

// faultyDisk is the ledger's disk in these tests (ledger.Options.Faults): a
// disk that fills up and empties again on the test's word.
type faultyDisk struct {
	mu       sync.Mutex
	bets     string // the bets file's path
	full     bool   // writes fail with ENOSPC
	syncFail bool   // fsyncs fail with EIO
	torn     string // appended to the bets file by the next failing write, as a short write leaves it
	fillAt   int    // the disk fills on the fillAt-th write to the bets file (0: never)
	writes   int
	onSync   func() // runs once, before the next fsync of the bets file
}

// hook is the ledger's fault hook.
func (d *faultyDisk) hook(op ledger.Op, file string) error {
	switch op {
	case ledger.OpWrite:
		return d.write(file)
	case ledger.OpSync:
		return d.sync(file)
	}
	return nil
}

func (d *faultyDisk) write(file string) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	if file == d.bets {
		d.writes++
		if d.writes == d.fillAt {
			d.full = true
		}
	}
	if !d.full {
		return nil
	}
	if file == d.bets && d.torn != "" {
		if err := appendFile(d.bets, d.torn); err != nil {
			return err
		}
		d.torn = ""
	}
	return &fs.PathError{Op: "write", Path: file, Err: syscall.ENOSPC}
}

func (d *faultyDisk) sync(file string) error {
	d.mu.Lock()
	hook := d.onSync
	if file == d.bets {
		d.onSync = nil
	} else {
		hook = nil
	}
	fail := d.syncFail
	d.mu.Unlock()
	if hook != nil {
		hook()
	}
	if fail {
		return &fs.PathError{Op: "sync", Path: file, Err: syscall.EIO}
	}
	return nil
}

// set fills or empties the disk and makes fsyncs fail or work.
func (d *faultyDisk) set(full, syncFail bool) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.full, d.syncFail = full, syncFail
}

func (d *faultyDisk) tearNextAppend(partial string) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.torn = partial
}

func appendFile(path, s string) error {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND, 0)
	if err != nil {
		return err
	}
	_, err = f.WriteString(s)
	return errors.Join(err, f.Close())
}

// startFaulty serves cfg, as startCentral does, on a faultyDisk.
func startFaulty(t *testing.T, cfg config.Config) (*testCentral, *faultyDisk) {
	d := &faultyDisk{bets: cfg.StoragePath}
	return startCentral(t, cfg, func(s *Server) { s.recovery.faults = d.hook }), d
}

// stored is how many bets of agency the central counts as stored.
func (tc *testCentral) stored(agency int) uint64 {
	return tc.srv.recovery.opened().Agency(agency).Stored
}

// agencyBetsIn reads agency files 1..n of dir.
func agencyBetsIn(t testing.TB, dir string, n int) map[int][]lottery.Bet {
	t.Helper()
	bets := make(map[int][]lottery.Bet)
	for id := 1; id <= n; id++ {
		for b, err := range lottery.ReadAgencyFile(filepath.Join(dir, lottery.AgencyFileName(id)), id) {
			require.NoError(t, err)
			bets[id] = append(bets[id], b)
		}
	}
	return bets
}

// storedBets reads the bets file, by agency in file order.
func storedBets(t *testing.T, path string) map[int][]lottery.Bet {
	t.Helper()
	got := make(map[int][]lottery.Bet)
	for b, err := range lottery.LoadBets(path) {
		require.NoError(t, err, "the bets file must stay parseable")
		got[b.Agency] = append(got[b.Agency], b)
	}
	return got
}

// fileSize is the bets file's length now.
func fileSize(t *testing.T, path string) int64 {
	t.Helper()
	fi, err := os.Stat(path)
	require.NoError(t, err)
	return fi.Size()
}

// sendPipelined writes batches seq, seq+1, … of size bets each at once,
// without waiting for answers, as an agency with batches in flight does.
func (c *rawConn) sendPipelined(bets []lottery.Bet, size int) {
	c.t.Helper()
	var frames []byte
	for seq := c.seq; len(bets) > 0; seq++ {
		n := min(size, len(bets))
		frame, err := protocol.AppendMessage(nil, batchOf(seq, bets[:n]...))
		require.NoError(c.t, err)
		frames = append(frames, frame...)
		bets = bets[n:]
	}
	c.write(frames)
}

// expectStorageRefusal: batch seq and maybe batches after it are refused with
// storage, in order, then ERROR storage closes the connection.
func (c *rawConn) expectStorageRefusal(seq uint32) {
	c.t.Helper()
	c.expectReject(seq, protocol.CodeStorage, protocol.NoIndex)
	for {
		m, err := c.read()
		require.NoError(c.t, err)
		if e, ok := m.(*protocol.ErrorMessage); ok {
			assert.Equal(c.t, protocol.CodeStorage, e.Code, "text: %s", e.Text)
			c.expectClosed()
			return
		}
		seq++
		r, ok := m.(*protocol.BatchReject)
		require.True(c.t, ok, "got %+v", m)
		assert.Equal(c.t, seq, r.Seq)
		assert.Equal(c.t, protocol.CodeStorage, r.Code, "text: %s", r.Text)
	}
}

// rehello opens a new connection as agency id once its earlier ones have
// ended: in plaintext a second live connection gets agency_busy.
func rehello(t *testing.T, tc *testCentral, id int) (*rawConn, *protocol.HelloAck) {
	t.Helper()
	tag := vocab.Agencia.Int(id).String() + " |"
	tc.logs.AwaitT(t, tc.logs.Count(vocab.Identificacion.Line(logfmt.Success), tag), vocab.CerrarConexion.Line(logfmt.Success), tag)
	c := dialRaw(t, tc.addr)
	return c, c.hello(id)
}

// helloRefused: HELLO earns ERROR storage while the disk has not healed.
func helloRefused(t *testing.T, tc *testCentral, agency int) {
	t.Helper()
	c := dialRaw(t, tc.addr)
	c.send(protocol.Hello{Version: protocol.Version, Agency: uint32(agency)})
	c.expectError(protocol.CodeStorage)
}

// A failed write or fsync refuses the batches it lost with storage and
// acknowledges none of them; the central heals by itself once the disk
// does, the agency resumes from its count, and in the end the bets file
// holds every bet exactly once, in each agency's order, and the draw is right.
func TestStorageFaultsHeal(t *testing.T) {
	const agencies, perAgency = 2, 200
	tests := []struct {
		name string
		// fail breaks the disk before batches 3..5 of agency 1 (20 bets each),
		// which are sent together; 40 bets were acknowledged before.
		fail func(d *faultyDisk, path string)
		// meanwhile runs while the disk is still broken, after the refusal.
		meanwhile func(t *testing.T, tc *testCentral, d *faultyDisk)
	}{
		{"write fails", func(d *faultyDisk, _ string) { d.set(true, false) }, nil},
		{"write fails leaving part of a row", func(d *faultyDisk, _ string) {
			d.tearNextAppend("1,Parti")
			d.set(true, false)
		}, nil},
		{"fsync fails", func(d *faultyDisk, _ string) { d.set(false, true) }, nil},
		{"tail damaged while broken is cut before the next append", func(d *faultyDisk, _ string) { d.set(true, false) },
			func(t *testing.T, tc *testCentral, _ *faultyDisk) {
				require.NoError(t, appendFile(tc.path, "1,Ana,Pérez,1"))
			}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			_, err := lottery.GenerateAgencyFiles(dir, agencies, perAgency, 5)
			require.NoError(t, err)
			bets := agencyBetsIn(t, dir, agencies)
			cfg := testConfig(t)
			cfg.Agencies = agencies
			tc, d := startFaulty(t, cfg)

			c := dialRaw(t, tc.addr)
			c.hello(1)
			c.sendBets(bets[1][:40], 20)
			acked := fileSize(t, tc.path)

			tt.fail(d, tc.path)
			c.sendPipelined(bets[1][40:100], 20)
			c.expectStorageRefusal(3)
			tc.logs.AwaitT(t, 1, vocab.RechazoLote.Line(logfmt.Fail, vocab.Agencia.Int(1), vocab.Lote.Int(3), vocab.Motivo.Str("storage")))
			tc.logs.AwaitT(t, 1, vocab.ApuestaRecibida.Line(logfmt.Fail, vocab.Cantidad.Int(20)))
			assert.Zero(t, tc.logs.Count("bad_sequence"), "the batches after a storage refusal are not out of order")
			assert.Equal(t, 2, tc.logs.Count(vocab.ApuestaRecibida.Line(logfmt.Success, vocab.Cantidad.Int(20))),
				"only batches 1 and 2 were acknowledged")
			assert.Equal(t, acked, fileSize(t, tc.path), "the file was cut back to the acknowledged rows")
			assert.Equal(t, map[int][]lottery.Bet{1: bets[1][:40]}, storedBets(t, tc.path))

			helloRefused(t, tc, 1)
			helloRefused(t, tc, 2)
			if tt.meanwhile != nil {
				tt.meanwhile(t, tc, d)
			}

			d.set(false, false)
			c, ack := rehello(t, tc, 1)
			require.EqualValues(t, 40, ack.Stored, "the agency resumes after its acknowledged bets")
			tc.logs.AwaitT(t, 1, vocab.RepararAlmacenamiento.Line(logfmt.Success))
			assert.Equal(t, map[int][]lottery.Bet{1: bets[1][:40]}, storedBets(t, tc.path), "healing cut the tail first")
			c.sendBets(bets[1][40:], 20)
			c.finish(perAgency)

			other := runAgency(t.Context(), agencyConfig(tc, dir, 2))
			assert.ElementsMatch(t, expectedWinners(t, filepath.Join(dir, lottery.AgencyFileName(1)), 1), c.consult())
			r := <-other
			require.NoError(t, r.err)
			assert.ElementsMatch(t, expectedWinners(t, filepath.Join(dir, lottery.AgencyFileName(2)), 2), r.docs)
			assert.Equal(t, 1, tc.logs.Count(vocab.Sorteo.Line(logfmt.Success)))

			tc.stop()
			assert.Equal(t, bets, storedBets(t, tc.path), "every bet once, in each agency's order")
			assert.Equal(t, 1, tc.logs.Count(vocab.CerrarArchivoApuestas.Line(logfmt.Success)))
		})
	}
}

// A real agency rides out a disk that fills in the middle of its stream: it
// is refused with storage, retries with backoff, is refused at HELLO while
// the disk is full, and resumes once it has room.
func TestAgencyRidesOutAFullDisk(t *testing.T) {
	dir := t.TempDir()
	_, err := lottery.GenerateAgencyFiles(dir, 1, 2000, 9)
	require.NoError(t, err)
	cfg := testConfig(t)
	cfg.Agencies = 1
	tc, d := startFaulty(t, cfg)
	d.mu.Lock()
	d.fillAt = 2
	d.mu.Unlock()

	acfg := agencyConfig(tc, dir, 1)
	acfg.BatchMaxAmount = 50
	acfg.MaxRetries = 50
	result := runAgency(t.Context(), acfg)
	tc.logs.AwaitT(t, 1, vocab.RepararAlmacenamiento.Line(logfmt.Fail))
	d.set(false, false)

	r := <-result
	require.NoError(t, r.err)
	assert.ElementsMatch(t, expectedWinners(t, acfg.DataPath, 1), r.docs)
	tc.stop()
	assert.Equal(t, agencyBetsIn(t, dir, 1), storedBets(t, tc.path))
}

// A FINISH the journal cannot record is refused with storage and leaves no
// line behind; once the disk has room, the same FINISH is recorded.
func TestFinishJournalHeals(t *testing.T) {
	cfg := testConfig(t)
	cfg.Agencies = 2
	tc, d := startFaulty(t, cfg)
	bets := []lottery.Bet{{Agency: 1, FirstName: "Ana", LastName: "Pérez", Document: "1", Birthdate: "1990-01-02", Number: 7574}}

	c := dialRaw(t, tc.addr)
	c.hello(1)
	c.sendBets(bets, 1)
	d.set(true, false)
	c.send(protocol.Finish{Total: 1})
	c.expectError(protocol.CodeStorage)
	tc.logs.AwaitT(t, 1, vocab.GuardarFin.Line(logfmt.Fail, vocab.Agencia.Int(1)))
	journal, err := os.ReadFile(ledger.JournalPath(tc.path))
	require.NoError(t, err)
	assert.Empty(t, journal, "a FINISH not acknowledged leaves nothing in the journal")

	d.set(false, false)
	c, ack := rehello(t, tc, 1)
	require.False(t, ack.Finished)
	c.finish(1)
	journal, err = os.ReadFile(ledger.JournalPath(tc.path))
	require.NoError(t, err)
	assert.Regexp(t, `^1,1,[0-9a-f]{64}\n$`, string(journal))
}

// SIGTERM after a storage failure: Shutdown repairs a failure not healed yet
// and succeeds (the central exits 0) when the file then holds exactly the
// acknowledged bets; it fails (exit 1) with `cerrar_archivo_apuestas |
// result: fail` only when that repair cannot be made durable.
func TestShutdownAfterStorageFailure(t *testing.T) {
	tests := []struct {
		name     string
		heal     bool // an agency's HELLO heals the ledger before the shutdown
		syncFail bool // fsyncs still fail at shutdown
		wantErr  bool
	}{
		{"healed before shutdown", true, false, false},
		{"repaired at shutdown", false, false, false},
		{"disk still failing at shutdown", false, true, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tc, d := startFaulty(t, testConfig(t))
			bets := agencyBetsFor(1, 30)
			c := dialRaw(t, tc.addr)
			c.hello(1)
			c.sendBets(bets[:10], 10)
			acked := fileSize(t, tc.path)
			d.tearNextAppend("1,Parti")
			d.set(true, true)
			c.send(batchOf(c.seq, bets[10:]...))
			c.expectStorageRefusal(c.seq)
			d.set(false, tt.syncFail)
			if tt.heal {
				rehello(t, tc, 1)
			}

			err := tc.srv.Shutdown(context.Background())
			if tt.wantErr {
				require.ErrorIs(t, err, syscall.EIO)
				assert.ErrorContains(t, err, "repair the bets file after a storage failure")
				tc.logs.AwaitT(t, 1, vocab.CerrarArchivoApuestas.Line(logfmt.Fail))
			} else {
				require.NoError(t, err)
				tc.logs.AwaitT(t, 1, vocab.CerrarArchivoApuestas.Line(logfmt.Success))
			}
			assert.Equal(t, acked, fileSize(t, tc.path))
			assert.Equal(t, map[int][]lottery.Bet{1: bets[:10]}, storedBets(t, tc.path))
		})
	}
}

// holdNextSync makes the next fsync of the bets file wait, once it has
// started, until the test closes the returned resume; synced is closed when
// it starts.
func holdNextSync(d *faultyDisk) (synced <-chan struct{}, resume chan<- struct{}) {
	started, release := make(chan struct{}), make(chan struct{})
	d.mu.Lock()
	d.onSync = func() {
		close(started)
		<-release
	}
	d.mu.Unlock()
	return started, release
}

// awaitClosed waits for ch to close; the deadline only turns a hang into a failure.
func awaitClosed(t *testing.T, ch <-chan struct{}, what string) {
	t.Helper()
	select {
	case <-ch:
	case <-time.After(replyWait):
		t.Fatalf("waited for %s", what)
	}
}

// The ledger's order (ledger.go): a batch is written, then synced, then
// counted. While its fsync runs, its rows are in the file, but it is neither
// acknowledged nor in the count a HELLO answers with; and the fsync runs
// without the ledger's lock, so another agency is identified meanwhile.
func TestBatchCountedOnlyAfterItsSync(t *testing.T) {
	cfg := testConfig(t)
	cfg.Agencies = 2
	tc, d := startFaulty(t, cfg)
	synced, resume := holdNextSync(d)
	bets := agencyBetsFor(1, 10)

	c := dialRaw(t, tc.addr)
	c.hello(1)
	c.send(batchOf(1, bets...))
	awaitClosed(t, synced, "the batch's fsync")
	assert.Equal(t, map[int][]lottery.Bet{1: bets}, storedBets(t, tc.path), "written before its fsync")
	assert.Zero(t, tc.stored(1), "counted before its fsync returned")
	assert.Zero(t, tc.logs.Count(vocab.ApuestaRecibida.Line(logfmt.Success)), "acknowledged before its fsync returned")
	assert.Zero(t, dialRaw(t, tc.addr).hello(2).Stored, "HELLO waits for no fsync")

	close(resume)
	c.expect(protocol.MsgBatchAck)
	assert.EqualValues(t, len(bets), tc.stored(1))
	require.NoError(t, c.conn.Close())
	_, ack := rehello(t, tc, 1)
	assert.EqualValues(t, len(bets), ack.Stored, "counted once its fsync returned")
}

// Shutdown's deadline, as in net/http: when ctx ends before every session
// has ended — here one held in its fsync — Shutdown cuts every connection
// that remains, parked ones included, waits for their goroutines, still
// closes the bets file, and returns ctx's error.
func TestShutdownDeadline(t *testing.T) {
	cfg := testConfig(t)
	cfg.Agencies = 2
	tc, d := startFaulty(t, cfg)
	parked := dialRaw(t, tc.addr)
	parked.hello(1)
	parked.finish(0)
	parked.send(protocol.Consult{Agency: 1})
	tc.logs.AwaitT(t, 1, vocab.EsperaSorteo.Line(logfmt.InProgress), vocab.Agencia.Int(1).String())
	synced, resume := holdNextSync(d)
	busy := dialRaw(t, tc.addr)
	busy.hello(2)
	busy.send(batchOf(1, agencyBetsFor(2, 5)...))
	awaitClosed(t, synced, "the batch's fsync")

	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	shut := make(chan error, 1)
	go func() { shut <- tc.srv.Shutdown(ctx) }()
	tc.logs.AwaitT(t, 1, vocab.EsperarConexiones.Line(logfmt.Fail), "context canceled")
	// The parked agency may have heard why before it was cut: either way its
	// connection ends.
	if m, err := parked.read(); err == nil {
		e, ok := m.(*protocol.ErrorMessage)
		require.True(t, ok, "got %+v", m)
		assert.Equal(t, protocol.CodeShuttingDown, e.Code)
		parked.expectClosed()
	} else {
		require.True(t, errors.Is(err, io.EOF) || errors.Is(err, syscall.ECONNRESET), "%v", err)
	}
	busy.expectClosed()
	assert.Zero(t, tc.logs.Count(logfmttest.AnyLine(vocab.CerrarArchivoApuestas)), "the bets file closed under a session")

	close(resume)
	require.ErrorIs(t, <-shut, context.Canceled)
	lines := strings.Split(tc.logs.String(), "\n")
	ended := slices.IndexFunc(lines, func(l string) bool {
		return strings.Contains(l, vocab.CerrarConexion.Line(logfmt.Success, vocab.Agencia.Int(2))+" |")
	})
	closed := slices.IndexFunc(lines, func(l string) bool {
		return strings.Contains(l, vocab.CerrarArchivoApuestas.Line(logfmt.Success))
	})
	require.NotEqual(t, -1, ended)
	assert.Greater(t, closed, ended, "the bets file closed before the session held in its fsync ended")
	assert.Equal(t, 1, tc.logs.Count(vocab.Shutdown.Line(logfmt.Fail), "context canceled"))
}

func agencyBetsFor(agency, n int) []lottery.Bet {
	bets := make([]lottery.Bet, n)
	for i := range bets {
		bets[i] = lottery.Bet{Agency: agency, FirstName: "Ana", LastName: "Pérez", Document: fmt.Sprint(10000000 + i),
			Birthdate: "1990-01-02", Number: i}
	}
	return bets
}

// While the disk is full, an agency that already finished may still
// reconnect and wait for its winners: it has nothing more to store.
func TestFinishedAgencyServedWhileDiskFull(t *testing.T) {
	cfg := testConfig(t)
	cfg.Agencies = 2
	tc, d := startFaulty(t, cfg)
	first, second := agencyBetsFor(1, 10), agencyBetsFor(2, 10)
	first[3].Number = lottery.WinningNumber

	c1 := dialRaw(t, tc.addr)
	c1.hello(1)
	c1.sendBets(first, 5)
	c1.finish(len(first))
	require.NoError(t, c1.conn.Close()) // the agency lost its connection before CONSULT

	c2 := dialRaw(t, tc.addr)
	c2.hello(2)
	d.set(true, false)
	c2.send(batchOf(1, second...))
	c2.expectStorageRefusal(1)
	helloRefused(t, tc, 2)

	c1, ack := rehello(t, tc, 1)
	require.True(t, ack.Finished)
	c1.send(protocol.Consult{Agency: 1})
	tc.logs.AwaitT(t, 1, vocab.EsperaSorteo.Line(logfmt.InProgress, vocab.Agencia.Int(1)))

	d.set(false, false)
	c2, ack = rehello(t, tc, 2)
	require.Zero(t, ack.Stored)
	c2.sendBets(second, 5)
	c2.finish(len(second))
	assert.Equal(t, []string{first[3].Document}, c1.readWinners())
	assert.Empty(t, c2.consult())
}
