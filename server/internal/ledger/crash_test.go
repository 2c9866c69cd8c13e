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
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"lotterycentral.example/lottery"
	"lotterycentral.example/protocol"
)

// The official round, every crash point of it enumerated.
//
// A round is driven as the agencies drive it: each sends batches of
// roundBatch bets, roundInFlight of them before it waits for their
// acknowledgement (Commit), the five agencies interleaved round-robin, and
// FINISH with its file's total once every bet of it is durable. Driven from
// one goroutine it is deterministic: the same writes and fsyncs in the same
// order every time, so a point — the k-th write or fsync of the bets file
// or the journal — names the same operation in every run.

const (
	roundBatch    = 500 // bets per batch
	roundInFlight = 3   // batches an agency sends before it waits for their acknowledgement
	roundMaxTicks = 500 // far past any round: more means an agency never gets through
)

// officialRound is the course's dataset: agencies 1..5.
type officialRound struct {
	bets    [][]lottery.Bet   // agency a's at index a-1, in file order
	winners [][]string        // the documents of each agency's winning bets, in file order
	digests []protocol.Digest // each agency's digest, as it computes it from its file
	// rows are the batches on the grid of roundBatch, formatted once: rows[a-1][i]
	// holds bets[a-1][i*roundBatch:]'s first batch. A resume from a count off
	// the grid formats its batches afresh.
	rows [][]*lottery.Rows
	// want is each agency's rows as the bets file must hold them, byte for
	// byte as encoding/csv writes them.
	want [][]byte
}

var (
	officialMu sync.Mutex
	official   *officialRound
)

// The official dataset's sizes and winners, per agency.
var (
	officialBets    = []int{26936, 25518, 16014, 9238, 991}
	officialWinners = []int{2, 3, 3, 2, 0}
)

// loadOfficial extracts the dataset into a temporary directory and reads it,
// once per test binary.
func loadOfficial(t *testing.T) *officialRound {
	t.Helper()
	officialMu.Lock()
	defer officialMu.Unlock()
	if official != nil {
		return official
	}
	paths, err := lottery.ExtractDataset("../../../.data/dataset.zip", t.TempDir())
	require.NoError(t, err)
	require.Len(t, paths, len(officialBets))
	o := &officialRound{}
	now := time.Now()
	for i, p := range paths {
		agency := i + 1
		require.Equal(t, lottery.AgencyFileName(agency), filepath.Base(p))
		var bets []lottery.Bet
		for b, err := range lottery.ReadAgencyFile(p, agency) {
			require.NoError(t, err)
			bets = append(bets, b)
		}
		require.Len(t, bets, officialBets[i], "agency %d's bets", agency)
		docs := winnersOf(bets)
		require.Len(t, docs, officialWinners[i], "agency %d's winners", agency)
		var grid []*lottery.Rows
		for from := 0; from < len(bets); from += roundBatch {
			grid = append(grid, rowsOf(t, bets[from:min(from+roundBatch, len(bets))]))
		}
		var want bytes.Buffer
		for _, b := range bets {
			require.NoError(t, b.Validate(now))
			want.WriteString(csvRow(b))
		}
		o.bets = append(o.bets, bets)
		o.winners = append(o.winners, docs)
		o.digests = append(o.digests, digestOf(bets))
		o.rows = append(o.rows, grid)
		o.want = append(o.want, want.Bytes())
	}
	official = o
	return o
}

// csvRow is b's row as encoding/csv writes it (no header, LF): what the
// store must write, computed without the store.
func csvRow(b lottery.Bet) string {
	var buf bytes.Buffer
	w := csv.NewWriter(&buf)
	_ = w.Write([]string{strconv.Itoa(b.Agency), b.FirstName, b.LastName, b.Document, b.Birthdate, strconv.Itoa(b.Number)})
	w.Flush()
	return buf.String()
}

// batch returns agency's batch of n bets from bet from, formatted, with its winners.
func (o *officialRound) batch(t testing.TB, agency, from, n int) (*lottery.Rows, []byte, []string) {
	bets := o.bets[agency-1][from : from+n]
	if from%roundBatch == 0 && n == min(roundBatch, len(o.bets[agency-1])-from) {
		return o.rows[agency-1][from/roundBatch], wireOf(bets), winnersOf(bets)
	}
	return rowsOf(t, bets), wireOf(bets), winnersOf(bets)
}

// rowChecker holds bets-file bytes, fed in order, to each agency's rows in
// its file's order (the agencies' rows interleaved in any way), byte for byte
// as encoding/csv writes them. Every agency of the dataset has one digit.
type rowChecker struct {
	o    *officialRound
	off  []int // bytes of each agency's rows met so far
	rows []int // each agency's rows met so far
	end  int64 // bytes fed so far
	line int   // lines fed so far
}

func newRowChecker(o *officialRound) *rowChecker {
	return &rowChecker{o: o, off: make([]int, len(o.bets)), rows: make([]int, len(o.bets))}
}

// feed checks the next bytes of the file, whole lines.
func (c *rowChecker) feed(t testing.TB, data []byte, what string) {
	t.Helper()
	c.end += int64(len(data))
	for len(data) > 0 {
		c.line++
		end := bytes.IndexByte(data, '\n') + 1
		if end == 0 {
			t.Fatalf("%s: line %d is torn: %q", what, c.line, data)
		}
		row := data[:end]
		data = data[end:]
		a := int(row[0] - '0')
		if len(row) < 2 || row[1] != ',' || a < 1 || a > len(c.o.bets) {
			t.Fatalf("%s: line %d is no row of an agency 1..%d: %q", what, c.line, len(c.o.bets), row)
		}
		want, off := c.o.want[a-1], c.off[a-1]
		if off+len(row) > len(want) || !bytes.Equal(row, want[off:off+len(row)]) {
			t.Fatalf("%s: line %d is not agency %d's bet %d: %q", what, c.line, a, c.rows[a-1]+1, row)
		}
		c.off[a-1] += len(row)
		c.rows[a-1]++
	}
}

// counts requires each agency a to have had stored(a) rows so far.
func (c *rowChecker) counts(t testing.TB, stored func(a int) uint64, what string) {
	t.Helper()
	for a := 1; a <= len(c.o.bets); a++ {
		if want := stored(a); uint64(c.rows[a-1]) != want {
			t.Fatalf("%s: agency %d has %d rows, its count says %d", what, a, c.rows[a-1], want)
		}
	}
}

// A point is one write or fsync of the bets file or the journal, as the fault hook hears of it.
type point struct {
	op      Op
	journal bool
}

func (p point) String() string {
	if p.journal {
		return p.op.String() + " journal"
	}
	return p.op.String() + " bets"
}

// errCrash is what every hook call returns from the crash on: the process is gone.
var errCrash = errors.New("the central crashed")

// pointDisk is the fault hook of these tests: it numbers the points, records
// them, and crashes at one, or fails one (and then maybe the next of a kind).
// It also tracks, for each file, its length when it was last fsynced: the
// real fsync follows the hook that allowed it.
type pointDisk struct {
	bets, journal string

	mu      sync.Mutex
	points  int     // points so far
	record  []point // with recording set, every point in order
	crashAt int     // the point at which the central crashes (0: never)
	crashed bool
	failAt  int // the point that fails (0: none)
	// then, set, is the kind of point that fails too the next time after failAt.
	then     *Op
	armed    bool
	failures int // points failed so far
	synced   map[string]int64
}

func newPointDisk(path string) *pointDisk {
	return &pointDisk{bets: path, journal: JournalPath(path), synced: map[string]int64{}}
}

func (d *pointDisk) hook(op Op, path string) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.crashed {
		return errCrash
	}
	if op == OpTruncate || path != d.bets && path != d.journal {
		return nil // the probe's write and fsync, and every truncate, are not points
	}
	d.points++
	k := d.points
	if d.record != nil {
		d.record = append(d.record, point{op, path == d.journal})
	}
	switch {
	case k == d.crashAt:
		d.crashed = true
		return errCrash
	case k == d.failAt:
		d.armed = d.then != nil
		return d.fail(op, path)
	case d.armed && op == *d.then:
		d.armed = false
		return d.fail(op, path)
	}
	if op == OpSync {
		fi, err := os.Stat(path)
		if err != nil {
			return err
		}
		d.synced[path] = fi.Size()
	}
	return nil
}

// fail fails op on path as a disk does: a write fails full after a short
// write left part of a line, an fsync fails with EIO.
func (d *pointDisk) fail(op Op, path string) error {
	d.failures++
	if op == OpSync {
		return &fs.PathError{Op: "sync", Path: path, Err: syscall.EIO}
	}
	torn := "1,Parti"
	if path == d.journal {
		torn = "3,"
	}
	if err := appendFile(path, torn); err != nil {
		return err
	}
	return &fs.PathError{Op: "write", Path: path, Err: syscall.ENOSPC}
}

func (d *pointDisk) state() (points, failures int, crashed bool) {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.points, d.failures, d.crashed
}

// player is one agency as the real one behaves.
type player struct {
	id       int
	b        *Batches // its connection; nil: none (it reconnects at its next turn)
	next     int      // the next of its bets to send on this connection
	from     int      // the first bet of the batches in flight
	sizes    []int    // the batches in flight, a refused one included
	acked    int      // its bets acknowledged durable, from the start of its file
	finished bool     // its FINISH was acknowledged, or HELLO said it had finished
}

// roundRun drives one ledger through the round, from wherever its agencies are.
type roundRun struct {
	t       *testing.T
	o       *officialRound
	l       *Ledger
	path    string
	disk    *pointDisk
	players []*player
	// synced, set, holds Stored to the synced rows of the file after every
	// tick once a failure happened; it has checked synced.end bytes of them.
	synced     *rowChecker
	losses     int // commits that reported a loss
	finishErrs int // FINISHes refused for the journal
}

func newRoundRun(t *testing.T, o *officialRound, l *Ledger, path string, d *pointDisk) *roundRun {
	r := &roundRun{t: t, o: o, l: l, path: path, disk: d}
	for a := 1; a <= len(o.bets); a++ {
		r.players = append(r.players, &player{id: a})
	}
	return r
}

func (r *roundRun) crashed() bool {
	if r.disk == nil {
		return false
	}
	_, _, crashed := r.disk.state()
	return crashed
}

// drive plays the round until every agency finished, or the central crashes
// (it returns false: nothing more is driven on that ledger).
func (r *roundRun) drive() bool {
	t, l := r.t, r.l
	for tick := 0; ; tick++ {
		if !slices.ContainsFunc(r.players, func(p *player) bool { return !p.finished }) {
			return true
		}
		require.Less(t, tick, roundMaxTicks, "the round does not complete: an agency is locked out (%+v)", l.Round())

		// Each agency connects if it must (HELLO: Ready, then its count) and sends its batches.
		for _, p := range r.players {
			if p.finished {
				continue
			}
			if p.b == nil {
				err := l.Ready()
				if r.crashed() {
					return false
				}
				if err != nil {
					continue // refused with storage: it comes back later
				}
				st := l.Agency(p.id)
				require.GreaterOrEqual(t, st.Stored, uint64(p.acked), "agency %d: HELLO's count lost acknowledged bets", p.id)
				require.LessOrEqual(t, st.Stored, uint64(len(r.o.bets[p.id-1])), "agency %d: more stored than sent", p.id)
				if st.Finished {
					p.finished = true
					continue
				}
				p.b, p.next = l.Batches(p.id), int(st.Stored)
			}
			p.from, p.sizes = p.next, p.sizes[:0]
			for range roundInFlight {
				n := min(roundBatch, len(r.o.bets[p.id-1])-p.next)
				if n == 0 {
					break
				}
				rows, wire, winners := r.o.batch(t, p.id, p.next, n)
				err := p.b.Add(rows, wire, winners)
				if r.crashed() {
					return false
				}
				p.sizes = append(p.sizes, n)
				if err != nil {
					break // refused: the rest of its batches wait for the commit's verdict
				}
				p.next += n
			}
		}

		// Each waits for its batches' acknowledgements.
		for _, p := range r.players {
			if len(p.sizes) == 0 {
				continue
			}
			n, err := p.b.Commit()
			if r.crashed() {
				return false
			}
			require.LessOrEqual(t, n, len(p.sizes))
			if err != nil {
				require.ErrorIs(t, err, ErrLost, "agency %d", p.id)
				require.Less(t, n, len(p.sizes), "agency %d: an error, yet every batch durable", p.id)
			} else {
				require.Equal(t, len(p.sizes), n, "agency %d: no error, yet not every batch durable", p.id)
			}
			acked := p.from
			for _, size := range p.sizes[:n] {
				acked += size
			}
			p.acked = max(p.acked, acked)
			require.GreaterOrEqual(t, l.Agency(p.id).Stored, uint64(p.acked),
				"agency %d: acknowledged bets not counted", p.id)
			if n < len(p.sizes) {
				r.losses++
				p.b = nil // refused with storage: the connection ends, the next resumes from the count
			}
			p.sizes = p.sizes[:0]
		}

		// An agency whose bets are all durable sends FINISH.
		for _, p := range r.players {
			if p.finished || p.b == nil || p.next < len(r.o.bets[p.id-1]) {
				continue
			}
			pending, err := l.Finish(p.id, uint64(len(r.o.bets[p.id-1])))
			if r.crashed() {
				return false
			}
			if err != nil {
				require.NotErrorIs(t, err, ErrCount, "agency %d", p.id)
				require.NotErrorIs(t, err, ErrFinished, "agency %d", p.id)
				r.finishErrs++
				p.b = nil // ERROR storage: it comes back and sends FINISH again
				continue
			}
			p.finished = true
			require.Equal(t, len(l.Round().Pending()), pending, "FINISH's pending against Round")
		}

		if r.synced != nil {
			if _, failures, _ := r.disk.state(); failures > 0 {
				r.checkSynced()
			}
		}
	}
}

// checkSynced holds each agency's Stored to its rows in the synced part of
// the bets file, which must be its first bets in order: what a crash now
// would leave, at the least. The synced part only grows (a failure cuts the
// file back to it), so only what it gained since the last check is read.
func (r *roundRun) checkSynced() {
	t := r.t
	r.l.mu.Lock()
	end, fault := r.l.syncedEnd, r.l.fault
	r.l.mu.Unlock()
	what := fmt.Sprintf("the synced rows (fault %v)", fault)
	require.GreaterOrEqual(t, end, r.synced.end, "the synced rows shrank")
	if end > r.synced.end {
		f, err := os.Open(r.path)
		require.NoError(t, err)
		defer f.Close()
		data := make([]byte, end-r.synced.end)
		_, err = f.ReadAt(data, r.synced.end)
		require.NoError(t, err, "the bets file is shorter than its synced rows")
		r.synced.feed(t, data, what)
	}
	r.synced.counts(t, func(a int) uint64 { return r.l.Agency(a).Stored }, what)
}

// finish holds the finished round to the agency files: every agency
// finished, its Stored and Winners as its file says, and, once closed, the
// bets file holding exactly each agency's bets in its file's order: byte for
// byte, and with load set also as lottery.LoadBets reads them back (a
// quarter of a second under -race: see loadBetsEveryRun).
func (r *roundRun) finish(load bool) {
	t, l, o := r.t, r.l, r.o
	round := l.Round()
	require.True(t, round.Complete(), "pending %v", round.Pending())
	require.Empty(t, round.Pending())
	assert.Equal(t, protocol.RoundDigest(o.digests), round.Digest, "the round's digest")
	for a := 1; a <= len(o.bets); a++ {
		st := l.Agency(a)
		assert.EqualValues(t, len(o.bets[a-1]), st.Stored, "agency %d: Stored", a)
		assert.True(t, st.Finished, "agency %d: Finished", a)
		assert.Equal(t, officialWinners[a-1], st.Winners, "agency %d: Winners count", a)
		// However the round was interrupted, its digests are an uninterrupted round's.
		assert.Equal(t, o.digests[a-1], st.Digest, "agency %d: Digest", a)
		got := l.Winners(a)
		if len(o.winners[a-1]) == 0 {
			assert.Empty(t, got, "agency %d: winners", a)
		} else {
			assert.Equal(t, o.winners[a-1], got, "agency %d: winners", a)
		}
	}
	require.NoError(t, l.Close())
	data, err := os.ReadFile(r.path)
	require.NoError(t, err)
	c := newRowChecker(o)
	c.feed(t, data, "the bets file")
	c.counts(t, func(a int) uint64 { return uint64(len(o.bets[a-1])) }, "the bets file")
	if !load {
		return
	}
	// LoadBets of the whole file, each bet held to the next of its agency's
	// file as it streams by (a map of 80,000 bets would take longer).
	next := make([]int, len(o.bets))
	row := 0
	for b, err := range lottery.LoadBets(r.path) {
		row++
		require.NoError(t, err, "the bets file must stay parseable")
		if b.Agency < 1 || b.Agency > len(o.bets) {
			t.Fatalf("row %d: a bet of agency %d", row, b.Agency)
		}
		bets, i := o.bets[b.Agency-1], next[b.Agency-1]
		if i == len(bets) || b != bets[i] {
			t.Fatalf("row %d: agency %d's bet %d is %+v, its file's is %+v", row, b.Agency, i+1, b, bets[min(i, len(bets)-1)])
		}
		next[b.Agency-1]++
	}
	for a := 1; a <= len(o.bets); a++ {
		require.Equal(t, len(o.bets[a-1]), next[a-1], "agency %d: bets in the bets file", a)
	}
}

// recordRound plays the round once without a fault and returns its points.
func recordRound(t *testing.T, o *officialRound) []point {
	t.Helper()
	path := filepath.Join(t.TempDir(), "bets.csv")
	d := newPointDisk(path)
	d.record = []point{}
	l, _, err := Open(path, Options{Agencies: len(o.bets), Faults: d.hook})
	require.NoError(t, err)
	r := newRoundRun(t, o, l, path, d)
	require.True(t, r.drive())
	points, _, _ := d.state()
	r.finish(true)
	d.mu.Lock()
	defer d.mu.Unlock()
	// Close's own flush and fsync, if any, are not points of the round.
	return d.record[:points]
}

// allPoints reports whether LEDGER_CRASH_POINTS=all asks for every point.
func allPoints() bool { return os.Getenv("LEDGER_CRASH_POINTS") == "all" }

// loadBetsEveryRun reports whether every run reads its bets file back with
// lottery.LoadBets, besides comparing it byte for byte with the agency
// files' rows: with LEDGER_CRASH_POINTS=all. A sampled run reads back one
// run of each point, keeping make test short (LoadBets of the round's 3.7 MB
// takes a quarter of a second under -race, most of a run).
func loadBetsEveryRun() bool { return allPoints() }

// samplePoints is which points of 1..len(points) a run visits: all of them
// with LEDGER_CRASH_POINTS=all, else the first and the last, every journal
// point and spread of the bets file's.
func samplePoints(points []point, spread int) []int {
	if allPoints() {
		all := make([]int, len(points))
		for i := range all {
			all[i] = i + 1
		}
		return all
	}
	keep := map[int]bool{1: true, len(points): true}
	var bets []int
	for i, p := range points {
		if p.journal {
			keep[i+1] = true
		} else {
			bets = append(bets, i+1)
		}
	}
	for i := range spread {
		keep[bets[(i*(len(bets)-1))/max(spread-1, 1)]] = true
	}
	out := make([]int, 0, len(keep))
	for k := range keep {
		out = append(out, k)
	}
	slices.Sort(out)
	return out
}

// pointsSummary counts points by kind, for the log.
func pointsSummary(points []point) string {
	counts := map[string]int{}
	for _, p := range points {
		counts[p.String()]++
	}
	return fmt.Sprintf("%d bets-file writes, %d bets-file fsyncs, %d journal writes, %d journal fsyncs",
		counts["write bets"], counts["sync bets"], counts["write journal"], counts["sync journal"])
}

// tearMode says what of a file's unsynced tail survives a crash: the bytes
// after the file's length at its last fsync.
type tearMode struct {
	name string
	keep func(tail []byte) int // how many bytes of tail survive
}

var tearModes = []tearMode{
	{"tail dropped", func([]byte) int { return 0 }},
	{"torn at a row boundary", func(tail []byte) int {
		// The page cache survived: every whole line written.
		return bytes.LastIndexByte(tail, '\n') + 1
	}},
	{"torn mid-row", func(tail []byte) int {
		// The whole lines but one, and half of that last one.
		whole := bytes.LastIndexByte(tail, '\n') + 1
		if whole == 0 {
			return len(tail) / 2
		}
		last := bytes.LastIndexByte(tail[:whole-1], '\n') + 1
		return last + (whole-last)/2
	}},
}

// cutFile is data as a crash leaves it under mode, synced bytes of it fsynced.
func cutFile(data []byte, synced int64, mode tearMode) []byte {
	return data[:synced+int64(mode.keep(data[synced:]))]
}

// A crash at any write or fsync of a round, the unsynced tail of each file
// dropped or torn, loses no acknowledged bet and no FINISH: recovery
// succeeds, every agency resumes from its recovered count, and the round
// completes with the bets file holding exactly each agency's bets in its
// file's order and the right winners. Sampled points by default;
// LEDGER_CRASH_POINTS=all visits every one (make chaos).
func TestEveryCrashPointOfARound(t *testing.T) {
	o := loadOfficial(t)
	began := time.Now()
	points := recordRound(t, o)
	visit := samplePoints(points, 8)
	// The point after the last: the round completed, the central dies before Close.
	visit = append(visit, len(points)+1)
	var runs atomic.Int64
	t.Cleanup(func() {
		t.Logf("%d crash points (%s); visited %d of them (LEDGER_CRASH_POINTS=%q) and the end, in %d recoveries, %v",
			len(points), pointsSummary(points), len(visit)-1, os.Getenv("LEDGER_CRASH_POINTS"), runs.Load(),
			time.Since(began).Round(time.Millisecond))
	})
	for _, k := range visit {
		what := "after the last"
		if k <= len(points) {
			what = points[k-1].String()
		}
		t.Run(fmt.Sprintf("point %03d %s", k, what), func(t *testing.T) {
			runs.Add(int64(crashAt(t, o, k)))
		})
	}
}

// crashAt plays a round that crashes at point k, then recovers from each
// tear mode of its files and completes the round; it returns how many
// recoveries it ran (modes that leave the same files are run once).
func crashAt(t *testing.T, o *officialRound, k int) int {
	dir := t.TempDir()
	path := filepath.Join(dir, "bets.csv")
	d := newPointDisk(path)
	d.crashAt = k
	l, _, err := Open(path, Options{Agencies: len(o.bets), Faults: d.hook})
	require.NoError(t, err)
	before := newRoundRun(t, o, l, path, d)
	completed := before.drive()
	if _, _, crashed := d.state(); !crashed {
		require.True(t, completed)
	}
	// The process is gone: its ledger is abandoned, not closed (Close would
	// write). Its descriptors that write nothing are closed here; the bets
	// file's is left to the collector.
	_ = l.syncFD.Close()
	_ = l.journal.f.Close()
	_ = l.operator.f.Close()
	bets, err := os.ReadFile(path)
	require.NoError(t, err)
	journal, err := os.ReadFile(JournalPath(path))
	require.NoError(t, err)
	d.mu.Lock()
	syncedBets, syncedJournal := d.synced[path], d.synced[JournalPath(path)]
	d.mu.Unlock()
	require.LessOrEqual(t, syncedBets, int64(len(bets)), "the bets file shrank after its fsync")
	require.LessOrEqual(t, syncedJournal, int64(len(journal)), "the journal shrank after its fsync")

	runs := 0
	var seen [][2][]byte
	for _, mode := range tearModes {
		files := [2][]byte{cutFile(bets, syncedBets, mode), cutFile(journal, syncedJournal, mode)}
		if slices.ContainsFunc(seen, func(s [2][]byte) bool {
			return bytes.Equal(s[0], files[0]) && bytes.Equal(s[1], files[1])
		}) {
			continue // the same files as a mode already run: the same recovery
		}
		seen = append(seen, files)
		runs++
		t.Run(mode.name, func(t *testing.T) {
			recoverAndFinish(t, o, before.players, files[0], files[1], loadBetsEveryRun() || runs == 1)
		})
	}
	return runs
}

// recoverAndFinish recovers a crashed round from the files it left and
// completes it; acked is what each agency heard before the crash.
func recoverAndFinish(t *testing.T, o *officialRound, acked []*player, bets, journal []byte, load bool) {
	path := filepath.Join(t.TempDir(), "bets.csv")
	require.NoError(t, os.WriteFile(path, bets, 0o644))
	require.NoError(t, os.WriteFile(JournalPath(path), journal, 0o644))
	l, rec, err := Open(path, Options{Agencies: len(o.bets)})
	require.NoError(t, err, "recovery")
	recovered, err := os.ReadFile(path)
	require.NoError(t, err)

	// What recovery kept: each agency's first bets, in order, every one
	// acknowledged before the crash among them, and every FINISH acknowledged.
	var rows uint64
	finished := 0
	for _, p := range acked {
		st := l.Agency(p.id)
		rows += st.Stored
		require.GreaterOrEqual(t, st.Stored, uint64(p.acked), "agency %d: acknowledged bets lost in the crash", p.id)
		if p.finished {
			require.True(t, st.Finished, "agency %d: its acknowledged FINISH lost in the crash", p.id)
		}
		if st.Finished {
			finished++
		}
	}
	c := newRowChecker(o)
	c.feed(t, recovered, "the recovered bets file")
	c.counts(t, func(a int) uint64 { return l.Agency(a).Stored }, "the recovered bets file")
	require.Equal(t, rows, rec.Bets)
	require.Equal(t, finished, rec.Finished)
	require.EqualValues(t, len(bets)-len(recovered), rec.CutBets)

	r := newRoundRun(t, o, l, path, nil)
	require.True(t, r.drive())
	r.finish(load)
	final, err := os.ReadFile(path)
	require.NoError(t, err)
	require.True(t, bytes.HasPrefix(final, recovered), "the recovered rows were rewritten")
}

// The failure variants: a write or fsync fails once, and maybe the next
// write or fsync after it fails too, before the first failure is settled.
var failureVariants = []struct {
	name string
	then *Op
}{
	{"fails once", nil},
	{"then the next fsync fails too", ptr(OpSync)},
	{"then the next write fails too", ptr(OpWrite)},
}

func ptr[T any](v T) *T { return &v }

// A write or fsync failing at any point of a round, with the ledger staying
// up, loses no acknowledged bet and stores none twice: the agencies whose
// commit reported a loss resume on a new connection from their count, one
// whose FINISH failed sends it again, no agency is locked out, and the
// round completes with the bets file holding exactly each agency's bets.
// Sampled points by default; LEDGER_CRASH_POINTS=all visits every one.
func TestEveryFailurePointOfARound(t *testing.T) {
	o := loadOfficial(t)
	began := time.Now()
	points := recordRound(t, o)
	visit := samplePoints(points, 8)
	var runs atomic.Int64
	t.Cleanup(func() {
		t.Logf("%d failure points (%s); visited %d of them (LEDGER_CRASH_POINTS=%q) in %d rounds, %v",
			len(points), pointsSummary(points), len(visit), os.Getenv("LEDGER_CRASH_POINTS"), runs.Load(),
			time.Since(began).Round(time.Millisecond))
	})
	for _, k := range visit {
		t.Run(fmt.Sprintf("point %03d %s", k, points[k-1]), func(t *testing.T) {
			for i, v := range failureVariants {
				runs.Add(1)
				t.Run(v.name, func(t *testing.T) {
					failAt(t, o, k, points[k-1], v.then, loadBetsEveryRun() || i == 0)
				})
			}
		})
	}
}

// failAt plays a round in which point k fails, and with then set the next
// point of that kind after it too.
func failAt(t *testing.T, o *officialRound, k int, at point, then *Op, load bool) {
	path := filepath.Join(t.TempDir(), "bets.csv")
	d := newPointDisk(path)
	d.failAt, d.then = k, then
	log, logs := testLog(t)
	l, _, err := Open(path, Options{Agencies: len(o.bets), Log: log, Faults: d.hook})
	require.NoError(t, err)
	r := newRoundRun(t, o, l, path, d)
	r.synced = newRowChecker(o)
	require.True(t, r.drive())
	_, failures, _ := d.state()
	require.GreaterOrEqual(t, failures, 1, "point %d never failed", k)
	if then != nil && failures < 2 {
		t.Logf("no %v came after point %d: one failure only", *then, k)
	}
	if !at.journal {
		// A lost write or fsync of the bets file is a loss someone heard of.
		assert.Positive(t, r.losses, "a bets-file failure that lost no batch")
		assert.Positive(t, logs.Count("action: guardar_apuestas | result: fail"))
	} else {
		assert.Positive(t, r.finishErrs, "a journal failure that refused no FINISH")
	}
	r.finish(load)
}
