package central

// The ledger's rules, in one place.
//
// Lock order: syncMu before mu. mu guards the store, the counts and the fault
// state; a sync leader drops it for its fsync, so batches are written while an
// fsync runs. Healing and close fsync under mu, when nothing can be stored anyway.
//
// A batch is written, then synced, then counted (write, sync, commit: the
// session calls them in that order). Written under mu, so that the batches
// written during an fsync share the next one (group commit): the store
// gathers their rows, and the next sync hands them to the OS in one write
// before its fsync. Synced before it is acknowledged, so that an
// acknowledged bet survives a crash; counted last, because the count is what
// a reconnecting agency skips and what FINISH is checked against, and it
// must never include a bet a crash could lose.
// TestBatchCountedOnlyAfterItsSync holds this order.
//
// A failed write or fsync loses every batch not synced yet: each is refused
// with `storage`, and the file is cut back to the synced rows, its tail checked,
// before the next append (failLocked, healLocked). No restart is needed.

import (
	"crypto/rand"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/sirupsen/logrus"

	"lotterycentral.example/lottery"
	"lotterycentral.example/lottery/logfmt"
	"lotterycentral.example/server/internal/metrics"
)

// ledger serialises every access to the bets file (the lottery store is not
// goroutine-safe) and counts the durable bets of each agency, which is what a
// reconnecting agency resumes from and what FINISH is checked against. Beside
// the bets file it keeps a journal of the agencies that finished, so a
// restarted central knows who finished and whether the draw ran: the draw
// itself is recomputed from the bets, which never change after it.
type ledger struct {
	path string
	log  *logrus.Logger
	// disk is nil but in tests: see diskFaults.
	disk diskFaults
	// metrics times each fsync of the bets file; nil counts nothing.
	metrics *metrics.Metrics

	mu        sync.Mutex
	store     *lottery.Store
	stored    map[int]uint64   // counted bets of each agency: durable, acknowledged
	winners   map[int][]string // documents of each agency's counted winning bets, in file order
	written   uint64           // generation of the last batch write handed out, stored or lost
	synced    uint64           // every generation up to it is durable, unless lost
	syncedEnd int64            // the bets file's length at generation synced
	failures  uint64           // failed writes and fsyncs so far
	lost      []span           // generations whose batches were not stored, in order
	last      map[int]uint64   // each agency's last generation
	held      map[int]bool     // agencies with a lost batch not refused yet: later ones are lost too
	fault     error            // a failure not healed yet: heal before the next append

	journal    *os.File
	journalEnd int64 // the journal's complete lines
	journalCut bool  // a failed FINISH may have left part of a line after journalEnd

	// Group commit: one fsync at a time, covering every batch written before
	// it started; whoever waited for it usually finds its batch covered.
	syncMu sync.Mutex
	syncFD *os.File // a second descriptor on the bets file: fsync needs no store lock
}

// span is the generations lo..hi, both included.
type span struct{ lo, hi uint64 }

// diskFaults is the ledger's test seam: a test in this package sets
// ledger.disk before the central serves, and each hook runs before the real
// operation on file (the bets file, its journal, or the free-space probe); an
// error it returns is handled as if the OS had returned it. A write hook may
// append part of a row to the bets file first, as a short write does.
type diskFaults interface {
	write(file string) error
	sync(file string) error
}

// errHeld refuses a batch of an agency whose earlier batch was lost.
var errHeld = errors.New("an earlier batch of this agency was not stored")

// errLost says a batch was not stored and must be refused, not acknowledged.
var errLost = errors.New("batch lost to a failed write or fsync of the bets file")

// recovered is what openLedger found on disk.
type recovered struct {
	bets     uint64
	agencies int
	finished []int // sorted
	cutBets  int64 // bytes of a partial last row cut off the bets file
	cutJour  int64 // the same for the journal
}

// journalPath is where the FINISH journal of a bets file lives.
func journalPath(betsPath string) string { return betsPath + ".finished" }

// probePath is the scratch file healing writes to learn that the disk has room again.
func probePath(betsPath string) string { return betsPath + ".probe" }

// openLedger rebuilds the central's state from disk and trusts none of it. It
// cuts a torn last row without its newline (only an unacknowledged write can
// be torn) off the bets file and the journal; every other row must be a bet
// the central would accept on the wire now, for an agency in 1..agencies, in
// the exact bytes the store writes; every journal line a canonical
// `agency,total` for such an agency, whose total is that agency's stored
// bets. Anything else fails, naming the file, the line and the reason.
// progress, if not nil, hears how many rows have been read as the scan goes;
// an error it returns ends the recovery.
func openLedger(path string, agencies int, log *logrus.Logger, progress func(rows uint64) error) (*ledger, recovered, error) {
	var rec recovered
	var err error
	if rec.cutBets, err = lottery.RepairTail(path); err != nil {
		return nil, rec, fmt.Errorf("open ledger: %w", err)
	}
	if err := os.Remove(probePath(path)); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return nil, rec, fmt.Errorf("open ledger: %w", err)
	}
	now := time.Now()
	valid := func(b lottery.Bet) error {
		if err := b.Validate(now); err != nil {
			return err
		}
		if b.Agency > agencies {
			return &lottery.FieldError{Field: "agency", Reason: fmt.Sprintf("not in 1..%d (SERVER_AGENCIES)", agencies)}
		}
		return nil
	}
	tally, err := lottery.ScanStore(path, lottery.ScanOptions{Check: valid, Progress: progress})
	if err != nil {
		return nil, rec, fmt.Errorf("open ledger: %w", err)
	}
	stored, winners := tally.Bets, tally.Winners
	rec.bets = tally.Rows
	rec.agencies = len(stored)

	jpath := journalPath(path)
	if rec.cutJour, err = lottery.RepairTail(jpath); err != nil {
		return nil, rec, fmt.Errorf("open ledger: %w", err)
	}
	if rec.finished, err = readJournal(jpath, agencies, path, stored); err != nil {
		return nil, rec, fmt.Errorf("open ledger: %w", err)
	}

	store, err := lottery.OpenStore(path)
	if err != nil {
		return nil, rec, fmt.Errorf("open ledger: %w", err)
	}
	syncFD, err := os.Open(path)
	if err != nil {
		store.Close()
		return nil, rec, fmt.Errorf("open ledger: %w", err)
	}
	journal, err := os.OpenFile(jpath, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o644)
	var jinfo os.FileInfo
	if err == nil {
		jinfo, err = journal.Stat()
	}
	if err != nil {
		store.Close()
		syncFD.Close()
		if journal != nil {
			journal.Close()
		}
		return nil, rec, fmt.Errorf("open ledger: %w", err)
	}
	return &ledger{
		path: path, log: log, store: store, stored: stored, winners: winners, syncedEnd: store.Size(),
		last: make(map[int]uint64), held: make(map[int]bool),
		journal: journal, journalEnd: jinfo.Size(), syncFD: syncFD,
	}, rec, nil
}

// readJournal checks the FINISH journal, one `agency,total` line per FINISH,
// and returns the agencies that finished, sorted. A repeated agency must
// repeat its total.
func readJournal(path string, agencies int, betsPath string, stored map[int]uint64) ([]int, error) {
	data, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("recover journal %q: %w", path, err)
	}
	totals := make(map[int]uint64)
	var finished []int
	// RepairTail left either nothing or complete lines.
	for n, text := 1, string(data); text != ""; n++ {
		var line string
		line, text, _ = strings.Cut(text, "\n")
		agency, total, err := parseJournalLine(line, agencies)
		prev, seen := totals[agency]
		switch {
		case err != nil:
		case seen && prev != total:
			err = fmt.Errorf("agency %d finished again with %d bets, first with %d", agency, total, prev)
		case stored[agency] != total:
			err = fmt.Errorf("agency %d finished with %d bets but %q holds %d of its bets", agency, total, betsPath, stored[agency])
		}
		if err != nil {
			return nil, fmt.Errorf("recover journal %q: line %d: %w", path, n, err)
		}
		if !seen {
			totals[agency] = total
			finished = append(finished, agency)
		}
	}
	slices.Sort(finished)
	return finished, nil
}

// parseJournalLine reads `agency,total` exactly as markFinished writes it.
func parseJournalLine(line string, agencies int) (int, uint64, error) {
	a, t, comma := strings.Cut(line, ",")
	agency, okA := parseDecimal(a)
	total, okT := parseDecimal(t)
	if !comma || !okA || !okT {
		return 0, 0, fmt.Errorf("%q is not agency,total in decimal digits without sign or leading zero", line)
	}
	if agency < 1 || agency > uint64(agencies) {
		return 0, 0, fmt.Errorf("agency %d not in 1..%d (SERVER_AGENCIES)", agency, agencies)
	}
	return int(agency), total, nil
}

// parseDecimal reads a number as strconv.Itoa writes it: 1 to 19 digits, no
// leading zero.
func parseDecimal(s string) (uint64, bool) {
	if s == "" || len(s) > 19 || len(s) > 1 && s[0] == '0' {
		return 0, false
	}
	var n uint64
	for i := range len(s) {
		if s[i] < '0' || s[i] > '9' {
			return 0, false
		}
		n = n*10 + uint64(s[i]-'0')
	}
	return n, true
}

// markFinished records agency's FINISH durably before it is acknowledged. A
// failed attempt leaves no line behind: the next one starts on a clean line.
func (l *ledger) markFinished(agency int, total uint64) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	line := fmt.Appendf(nil, "%d,%d\n", agency, total)
	var err error
	if l.journalCut {
		err = l.journal.Truncate(l.journalEnd)
	}
	if err == nil {
		l.journalCut = false
		if err = l.faultBefore(l.journal.Name(), false); err == nil {
			_, err = l.journal.Write(line)
		}
	}
	if err == nil {
		if err = l.faultBefore(l.journal.Name(), true); err == nil {
			err = l.journal.Sync()
		}
	}
	if err != nil {
		l.journalCut = true
		if terr := l.journal.Truncate(l.journalEnd); terr == nil {
			l.journalCut = false
		}
		return fmt.Errorf("journal FINISH of agency %d: %w", agency, err)
	}
	l.journalEnd += int64(len(line))
	return nil
}

// write hands a batch to the OS (not yet durable) and returns its generation,
// for sync to report on before the batch is acknowledged. An error means the
// batch was not stored: its generation is lost, sync will say so, and so is
// every later batch of the agency until release.
func (l *ledger) write(agency int, rows *lottery.Rows) (uint64, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.written++
	gen := l.written
	l.last[agency] = gen
	err := errHeld
	if !l.held[agency] {
		err = l.appendLocked(rows)
	}
	if err != nil {
		l.held[agency] = true
		l.loseLocked(gen, gen)
		return gen, fmt.Errorf("append %d bets of agency %d: %w", rows.Len(), agency, err)
	}
	return gen, nil
}

func (l *ledger) appendLocked(rows *lottery.Rows) error {
	if l.fault != nil {
		// The append itself probes for room.
		if err := l.healLocked(false); err != nil {
			return err
		}
	}
	err := l.faultBefore(l.path, false)
	if err == nil {
		err = l.store.StoreRows(rows)
	}
	if err != nil {
		l.failLocked(err)
	}
	return err
}

// failLocked handles a failed write or fsync: every batch written since the
// last good fsync is lost, the agencies that wrote one are held, and the file
// is cut back to the synced rows (healLocked cuts again if this fails).
func (l *ledger) failLocked(err error) {
	l.fault = err
	l.failures++
	l.loseLocked(l.synced+1, l.written)
	for agency, gen := range l.last {
		if gen > l.synced {
			l.held[agency] = true
		}
	}
	_ = l.store.Rewind(l.syncedEnd)
}

// loseLocked marks the generations lo..hi lost.
func (l *ledger) loseLocked(lo, hi uint64) {
	if lo > hi {
		return
	}
	if n := len(l.lost); n > 0 && lo <= l.lost[n-1].hi+1 {
		l.lost[n-1].hi = max(l.lost[n-1].hi, hi)
		return
	}
	l.lost = append(l.lost, span{lo, hi})
}

func (l *ledger) isLostLocked(gen uint64) bool {
	i, _ := slices.BinarySearchFunc(l.lost, gen, func(s span, g uint64) int {
		if s.hi < g {
			return -1
		}
		return 1
	})
	return i < len(l.lost) && l.lost[i].lo <= gen
}

// outcomeLocked tells whether generation gen is settled: nil if durable,
// errLost if lost.
func (l *ledger) outcomeLocked(gen uint64) (settled bool, err error) {
	switch {
	case l.isLostLocked(gen):
		return true, fmt.Errorf("generation %d: %w", gen, errLost)
	case gen <= l.synced:
		return true, nil
	}
	return false, nil
}

// sync makes every batch up to generation gen durable and returns nil if
// batch gen is, or an error if it was lost. Concurrent callers share fsyncs:
// while one runs, later batches are written, and the next fsync covers all
// of them. A failed fsync loses every batch it was to cover (failLocked).
func (l *ledger) sync(gen uint64) error {
	l.syncMu.Lock()
	defer l.syncMu.Unlock()
	l.mu.Lock()
	// While a fault is unhealed every batch is settled: failLocked lost
	// the ones written before it, and nothing is written until healLocked.
	if settled, err := l.outcomeLocked(gen); settled {
		l.mu.Unlock()
		return wrapErr("sync bets: %w", err)
	}
	// The rows gathered since the last sync reach the file in one write.
	if err := l.store.Flush(); err != nil {
		l.failLocked(fmt.Errorf("write bets: %w", err))
		_, err = l.outcomeLocked(gen)
		l.mu.Unlock()
		return wrapErr("sync bets: %w", err)
	}
	target, end, failures := l.written, l.store.Size(), l.failures
	l.mu.Unlock()

	err := l.fsync()
	l.mu.Lock()
	defer l.mu.Unlock()
	if err != nil {
		err = fmt.Errorf("sync bets: %w", err)
		l.failLocked(err)
		return err
	}
	if l.failures == failures {
		l.synced, l.syncedEnd = target, end
	} // else a write failed meanwhile and cut the file: what this fsync covered is lost.
	_, err = l.outcomeLocked(gen)
	return wrapErr("sync bets: %w", err)
}

// durable reports whether the batch of generation gen is stored for good.
func (l *ledger) durable(gen uint64) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	settled, err := l.outcomeLocked(gen)
	return settled && err == nil
}

// release lets agency store batches again once its connection has refused
// its lost ones: that connection ends, and the next one resumes from count.
func (l *ledger) release(agency int) {
	l.mu.Lock()
	defer l.mu.Unlock()
	delete(l.held, agency)
}

// commit counts a synced batch of n bets as stored, with the documents of
// its winners: from now on a reconnecting agency skips it, FINISH counts it
// and the draw names its winners.
func (l *ledger) commit(agency, n int, winners []string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.stored[agency] += uint64(n)
	if len(winners) > 0 {
		l.winners[agency] = append(l.winners[agency], winners...)
	}
}

// ready is nil when the ledger can store bets. After a failure it first
// heals, which includes writing a probe to learn that the disk has room
// again: HELLO asks, so an agency hears `storage` at once while it has not.
func (l *ledger) ready() error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.fault == nil {
		return nil
	}
	return l.healLocked(true)
}

// probeSize is the free space healing asks for: several full batches.
const probeSize = 64 << 10

// healLocked makes the bets file fit to append to after a failure: it cuts
// the file back to its synced rows, checks that it ends there on a newline,
// and fsyncs the cut; with probe set, it first writes and fsyncs probeSize
// bytes beside the file.
func (l *ledger) healLocked(probe bool) error {
	if probe {
		if err := l.probeSpace(); err != nil {
			return fmt.Errorf("heal bets file: %w", err)
		}
	}
	if err := l.cutTailLocked(); err != nil {
		return fmt.Errorf("heal bets file: %w", err)
	}
	if err := l.fsync(); err != nil {
		return fmt.Errorf("heal bets file: sync: %w", err)
	}
	l.log.Warn(logfmt.Line("recuperar_almacenamiento", logfmt.Success, "archivo", l.path, "bytes", l.syncedEnd,
		"fallo_previo", l.fault))
	l.fault = nil
	return nil
}

// cutTailLocked cuts the bets file back to its synced rows and checks the
// result: exactly syncedEnd bytes, the last one a newline.
func (l *ledger) cutTailLocked() error {
	if err := l.store.Rewind(l.syncedEnd); err != nil {
		return err
	}
	fi, err := l.syncFD.Stat()
	if err != nil {
		return fmt.Errorf("check tail: %w", err)
	}
	if fi.Size() != l.syncedEnd {
		return fmt.Errorf("check tail: %s is %d bytes after the cut, want %d", l.path, fi.Size(), l.syncedEnd)
	}
	if l.syncedEnd > 0 {
		var last [1]byte
		if _, err := l.syncFD.ReadAt(last[:], l.syncedEnd-1); err != nil {
			return fmt.Errorf("check tail: %w", err)
		}
		if last[0] != '\n' {
			return fmt.Errorf("check tail: %s does not end on a whole row at %d bytes", l.path, l.syncedEnd)
		}
	}
	return nil
}

func (l *ledger) probeSpace() error {
	path := probePath(l.path)
	err := l.faultBefore(path, false)
	if err == nil {
		err = writeProbe(path)
	}
	if rerr := os.Remove(path); rerr != nil && !errors.Is(rerr, fs.ErrNotExist) {
		err = errors.Join(err, rerr)
	}
	if err != nil {
		return fmt.Errorf("probe free space: %w", err)
	}
	return nil
}

func writeProbe(path string) error {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o644)
	if err != nil {
		return err
	}
	buf := make([]byte, probeSize)
	rand.Read(buf) // incompressible: a compressing filesystem must allocate it
	_, err = f.Write(buf)
	if err == nil {
		err = f.Sync()
	}
	return errors.Join(err, f.Close())
}

// fsync makes the bets file durable.
func (l *ledger) fsync() error {
	if err := l.faultBefore(l.path, true); err != nil {
		return err
	}
	began := time.Now()
	err := l.syncFD.Sync()
	l.metrics.ObserveFsync(time.Since(began))
	return err
}

// faultBefore runs the test seam's hook, if any, before a write or an fsync of file.
func (l *ledger) faultBefore(file string, fsync bool) error {
	switch {
	case l.disk == nil:
		return nil
	case fsync:
		return l.disk.sync(file)
	}
	return l.disk.write(file)
}

// count is how many bets of agency are durably stored.
func (l *ledger) count(agency int) uint64 {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.stored[agency]
}

// drawResult is the draw: each agency's winners and the bets they came from.
type drawResult struct {
	winners map[int][]string
	bets    uint64
	won     int
}

// draw is a lookup, not a pass over the bets file: the rule is fixed, so
// each batch's winners were kept when it was counted (commit), and the
// stored ones at recovery. The bets never change once every agency finished.
func (l *ledger) draw() drawResult {
	l.mu.Lock()
	defer l.mu.Unlock()
	res := drawResult{winners: make(map[int][]string, len(l.winners))}
	for agency, docs := range l.winners {
		res.winners[agency] = slices.Clone(docs)
		res.won += len(docs)
	}
	for _, n := range l.stored {
		res.bets += n
	}
	return res
}

// close flushes and closes the bets file and the journal.
//
// SIGTERM after a storage failure: a failure not healed yet is repaired here
// — the bets file is cut back to its synced rows, checked and fsynced — so
// that it holds exactly the acknowledged bets. close fails only if that
// repair, or the final flush, fsync or close, fails: Shutdown then logs
// `cerrar_archivo_apuestas | result: fail` and the central exits 1. A failure
// that healed, while serving or here, exits 0: nothing acknowledged was lost.
func (l *ledger) close() error {
	l.mu.Lock()
	defer l.mu.Unlock()
	var repair error
	if l.fault != nil {
		repair = l.cutTailLocked()
		if repair == nil {
			repair = l.fsync()
		}
		repair = wrapErr("close ledger: repair the bets file after a storage failure: %w", repair)
	}
	return errors.Join(repair, wrapErr("close ledger: %w", l.store.Close()), wrapErr("close ledger: %w", l.syncFD.Close()),
		wrapErr("close journal: %w", l.journal.Close()))
}

// wrapErr wraps err with format, or returns nil for a nil err.
func wrapErr(format string, err error) error {
	if err == nil {
		return nil
	}
	return fmt.Errorf(format, err)
}
