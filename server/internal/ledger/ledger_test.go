package ledger

import (
	"bytes"
	"encoding/csv"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"

	"lotterycentral.example/lottery"
	"lotterycentral.example/lottery/logfmt"
	"lotterycentral.example/protocol"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// logBuffer collects the ledger's log lines; the ledger logs from whichever
// goroutine fails or heals, so writes take a lock.
type logBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *logBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

// Count is how many lines hold every one of parts.
func (b *logBuffer) Count(parts ...string) int {
	b.mu.Lock()
	defer b.mu.Unlock()
	n := 0
	for line := range strings.Lines(b.buf.String()) {
		all := true
		for _, p := range parts {
			all = all && strings.Contains(line, p)
		}
		if all {
			n++
		}
	}
	return n
}

func (b *logBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// testLog is a logger at DEBUG writing into a logBuffer.
func testLog(t testing.TB) (*logfmt.Logger, *logBuffer) {
	t.Helper()
	buf := &logBuffer{}
	log, err := logfmt.New(buf, "DEBUG")
	require.NoError(t, err)
	return log, buf
}

// openTest opens a ledger of agencies agencies on a fresh bets file in a
// temporary directory, closed when the test ends unless the test closed it.
func openTest(t *testing.T, agencies int, faults func(Op, string) error) (*Ledger, string, *logBuffer) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "bets.csv")
	log, logs := testLog(t)
	l, rec, err := Open(path, Options{Agencies: agencies, Log: log, Faults: faults})
	require.NoError(t, err)
	require.Equal(t, Recovered{}, rec, "a fresh bets file")
	// A second Close, after the test's own, only fails on the closed files.
	t.Cleanup(func() { _ = l.Close() })
	return l, path, logs
}

// agencyBetsFor returns n valid bets of agency, numbered from first: their
// documents are distinct, and a bet whose number is lottery.WinningNumber wins.
func agencyBetsFor(agency, first, n int) []lottery.Bet {
	bets := make([]lottery.Bet, n)
	for i := range bets {
		bets[i] = lottery.Bet{Agency: agency, FirstName: "Ana", LastName: "Pérez",
			Document: fmt.Sprint(10_000_000 + agency*100_000 + first + i), Birthdate: "1990-01-02", Number: (first + i) % 10_000}
	}
	return bets
}

// rowsOf checks and formats bets as a session hands them to the ledger.
func rowsOf(t testing.TB, bets []lottery.Bet) *lottery.Rows {
	t.Helper()
	var r lottery.Rows
	now := time.Now()
	for _, b := range bets {
		require.NoError(t, r.Add(b, now))
	}
	return &r
}

// winnersOf is what a session passes to Add: the documents of bets' winners, in order.
func winnersOf(bets []lottery.Bet) []string {
	var docs []string
	for _, b := range bets {
		if lottery.HasWon(b) {
			docs = append(docs, b.Document)
		}
	}
	return docs
}

// storedBets reads the bets file back, by agency in file order.
func storedBets(t testing.TB, path string) map[int][]lottery.Bet {
	t.Helper()
	got := make(map[int][]lottery.Bet)
	for b, err := range lottery.LoadBets(path) {
		require.NoError(t, err, "the bets file must stay parseable")
		got[b.Agency] = append(got[b.Agency], b)
	}
	return got
}

// fileSize is the length of the file at path now, 0 if it does not exist.
func fileSize(t testing.TB, path string) int64 {
	t.Helper()
	fi, err := os.Stat(path)
	if errors.Is(err, fs.ErrNotExist) {
		return 0
	}
	require.NoError(t, err)
	return fi.Size()
}

// appendFile appends s to the file at path, as a short write leaves part of its bytes.
func appendFile(path, s string) error {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND, 0)
	if err != nil {
		return err
	}
	_, err = f.WriteString(s)
	return errors.Join(err, f.Close())
}

// faultyDisk is a fault hook for the ledger: a disk that fills up and empties
// again, and whose fsyncs fail, on the test's word.
type faultyDisk struct {
	mu        sync.Mutex
	bets      string // the bets file's path
	full      bool   // writes fail with ENOSPC (bets file, journal, probe)
	syncFail  bool   // fsyncs fail with EIO (bets file, journal, probe)
	truncFail bool   // truncates fail with EIO
	torn      string // appended by the next failing write of the bets file or a journal, as a short write leaves it
	onSync    func() // runs once, before the next fsync of the bets file
	calls     []string
}

func (d *faultyDisk) hook(op Op, path string) error {
	d.mu.Lock()
	d.calls = append(d.calls, op.String()+" "+filepath.Base(path))
	var hook func()
	if op == OpSync && path == d.bets {
		hook, d.onSync = d.onSync, nil
	}
	d.mu.Unlock()
	if hook != nil {
		hook() // without d.mu: it may set the disk and call the ledger
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	switch {
	case op == OpWrite && d.full:
		if (path == d.bets || path == JournalPath(d.bets) || path == OperatorPath(d.bets)) && d.torn != "" {
			if err := appendFile(path, d.torn); err != nil {
				return err
			}
			d.torn = ""
		}
		return &fs.PathError{Op: "write", Path: path, Err: syscall.ENOSPC}
	case op == OpSync && d.syncFail:
		return &fs.PathError{Op: "sync", Path: path, Err: syscall.EIO}
	case op == OpTruncate && d.truncFail:
		return &fs.PathError{Op: "truncate", Path: path, Err: syscall.EIO}
	}
	return nil
}

// set fills or empties the disk and makes fsyncs fail or work.
func (d *faultyDisk) set(full, syncFail bool) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.full, d.syncFail = full, syncFail
}

func (d *faultyDisk) failTruncates(fail bool) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.truncFail = fail
}

func (d *faultyDisk) tearNextWrite(partial string) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.torn = partial
}

func (d *faultyDisk) setOnSync(f func()) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.onSync = f
}

// Calls lists the hook calls so far, "op file" each.
func (d *faultyDisk) Calls() []string {
	d.mu.Lock()
	defer d.mu.Unlock()
	return append([]string(nil), d.calls...)
}

// openFaulty is openTest under a faultyDisk.
func openFaulty(t *testing.T, agencies int) (*Ledger, *faultyDisk, *logBuffer) {
	t.Helper()
	d := &faultyDisk{}
	l, path, logs := openTest(t, agencies, d.hook)
	d.mu.Lock()
	d.bets = path
	d.mu.Unlock()
	return l, d, logs
}

// commitOne adds one batch of bets on b and commits it, requiring it durable.
func commitOne(t *testing.T, b *Batches, bets []lottery.Bet) {
	t.Helper()
	require.NoError(t, b.Add(rowsOf(t, bets), wireOf(bets), winnersOf(bets)))
	n, err := b.Commit()
	require.NoError(t, err)
	require.Equal(t, 1, n)
}

// assertConsistent holds the ledger's facts to the bets file: each agency's
// Stored is the number of its rows in the file, and its Winners the
// documents of its winning rows, in file order.
func assertConsistent(t *testing.T, l *Ledger, path string) {
	t.Helper()
	file := storedBets(t, path)
	for a := 1; a <= len(l.agencies); a++ {
		assert.EqualValues(t, len(file[a]), l.Agency(a).Stored, "agency %d: Stored against its rows in the file", a)
		want := winnersOf(file[a])
		got := l.Winners(a)
		if len(want) == 0 {
			assert.Empty(t, got, "agency %d: winners", a)
		} else {
			assert.Equal(t, want, got, "agency %d: winners against its winning rows in the file", a)
		}
		assert.Equal(t, len(want), l.Agency(a).Winners, "agency %d: Winners count", a)
	}
}

// digestOf is the digest of bets, in order: an agency's, as it computes it
// from its file.
func digestOf(bets []lottery.Bet) protocol.Digest {
	w := protocol.NewDigestWriter()
	w.Write(wireOf(bets))
	return w.Sum()
}

// addBets adds bets to b as a session does: their rows, the rows as BATCH
// carried them and the given winners.
func addBets(t testing.TB, b *Batches, bets []lottery.Bet, winners []string) error {
	t.Helper()
	return b.Add(rowsOf(t, bets), wireOf(bets), winners)
}

// wireOf is bets' rows as BATCH carries them (each with its LF, without the
// agency column): what a session passes to Add and what the digest covers.
func wireOf(bets []lottery.Bet) []byte {
	var wire []byte
	for _, b := range bets {
		wire = lottery.AppendRow(wire, b)
	}
	return wire
}

// finLine is the FINISH journal's line for agency a holding bets.
func finLine(a int, bets []lottery.Bet) string {
	return fmt.Sprintf("%d,%d,%s\n", a, len(bets), digestOf(bets))
}

// sentRows is bets' rows as encoding/csv's Writer writes them, without the
// agency column: what a batch carries, written here without the lottery
// package, so the digests below do not take the ledger's word for it.
func sentRows(bets []lottery.Bet) []byte {
	var buf bytes.Buffer
	w := csv.NewWriter(&buf)
	for _, b := range bets {
		_ = w.Write([]string{b.FirstName, b.LastName, b.Document, b.Birthdate, strconv.Itoa(b.Number)})
	}
	w.Flush()
	return buf.Bytes()
}

// quotedBetsFor is agencyBetsFor with names csv quotes: a comma, inner
// quotes, a leading space, a leading no-break space, the field \.
func quotedBetsFor(agency, first, n int) []lottery.Bet {
	names := [][2]string{{"Juan", "Pérez, Jr."}, {`Ana "la"`, "Gómez"}, {" Sol", "Ruiz"}, {"Luis", "\u00a0Díaz"}, {`\.`, `O"Brien, "Jr"`}}
	bets := agencyBetsFor(agency, first, n)
	for i := range bets {
		bets[i].FirstName, bets[i].LastName = names[i%len(names)][0], names[i%len(names)][1]
	}
	return bets
}

// An agency's digest over rows that csv quotes is the digest of those rows
// as they came, whichever way the ledger gets it: hashing the batches it
// stores, hashing its durable rows again after a lost batch (rehash), or
// reading them back at Open, where it must match the FINISH journal.
func TestDigestOfQuotedRows(t *testing.T) {
	first, lost, last := quotedBetsFor(1, 7570, 6), quotedBetsFor(1, 7576, 4), quotedBetsFor(1, 7580, 5)
	require.NotEmpty(t, winnersOf(first), "a quoted winner among the rows")
	tests := []struct {
		name string
		run  func(t *testing.T, l *Ledger, d *faultyDisk) []lottery.Bet // returns agency 1's durable bets
	}{
		{"hashed as stored", func(t *testing.T, l *Ledger, _ *faultyDisk) []lottery.Bet {
			b := l.Batches(1)
			for _, bets := range [][]lottery.Bet{first, last} {
				require.NoError(t, b.Add(rowsOf(t, bets), sentRows(bets), winnersOf(bets)))
				_, err := b.Commit()
				require.NoError(t, err)
			}
			return slices.Concat(first, last)
		}},
		{"hashed again from the file after a lost batch", func(t *testing.T, l *Ledger, d *faultyDisk) []lottery.Bet {
			b := l.Batches(1)
			require.NoError(t, b.Add(rowsOf(t, first), sentRows(first), winnersOf(first)))
			_, err := b.Commit()
			require.NoError(t, err)
			require.NoError(t, b.Add(rowsOf(t, lost), sentRows(lost), winnersOf(lost)))
			d.set(false, true)
			_, err = b.Commit()
			require.ErrorIs(t, err, ErrLost, "its digest holds rows the file does not")
			d.set(false, false)
			require.NoError(t, b.Add(rowsOf(t, last), sentRows(last), winnersOf(last)), "rehashes, then adds")
			_, err = b.Commit()
			require.NoError(t, err)
			return slices.Concat(first, last)
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			l, d, _ := openFaulty(t, 1)
			bets := tt.run(t, l, d)
			want := protocol.NewDigestWriter()
			want.Write(sentRows(bets))
			_, err := l.Finish(1, uint64(len(bets)))
			require.NoError(t, err)
			assert.Equal(t, want.Sum(), l.Agency(1).Digest, "FINISH's digest")
			assert.Equal(t, map[int][]lottery.Bet{1: bets}, storedBets(t, l.path))
			require.NoError(t, l.Close())

			l2, rec, err := Open(l.path, Options{Agencies: 1})
			require.NoError(t, err, "the rows read back must hash to the journaled digest")
			defer l2.Close()
			assert.Equal(t, Recovered{Bets: uint64(len(bets)), Agencies: 1, Finished: 1}, rec)
			assert.Equal(t, want.Sum(), l2.Agency(1).Digest, "the digest recovered")
			assert.Equal(t, winnersOf(bets), l2.Winners(1))
		})
	}
}
