package central

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"

	"lotterycentral.example/lottery"
	"lotterycentral.example/server/internal/draw"
)

// ledger serialises every access to the bets file (the lottery store is not
// goroutine-safe) and counts the durable bets of each agency, which is what a
// reconnecting agency resumes from and what FINISH is checked against. Beside
// the bets file it keeps a journal of the agencies that finished, so a
// restarted central knows who finished and whether the draw ran: the draw
// itself is recomputed from the bets, which never change after it.
type ledger struct {
	mu      sync.Mutex // the store, the counts, written, broken
	store   *lottery.Store
	stored  map[int]uint64 // durable bets of each agency
	written uint64         // batches handed to the OS so far
	broken  error          // a failed write or sync: nothing more is stored until a restart recovers
	journal *os.File

	// Group commit: one fsync at a time, covering every batch written before
	// it started; whoever waited for it usually finds its batch covered.
	syncMu sync.Mutex
	syncFD *os.File // a second descriptor on the bets file: fsync needs no store lock
	synced uint64
}

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

// openLedger rebuilds the central's state from disk: it cuts a torn last row
// (only an unacknowledged write can be torn), counts each agency's bets, and
// reads the FINISH journal, checking it against the bets.
func openLedger(path string) (*ledger, recovered, error) {
	var rec recovered
	var err error
	if rec.cutBets, err = lottery.RepairTail(path); err != nil {
		return nil, rec, fmt.Errorf("open ledger: %w", err)
	}
	stored := make(map[int]uint64)
	for bet, err := range lottery.LoadBets(path) {
		if err != nil {
			return nil, rec, fmt.Errorf("open ledger: %w", err)
		}
		stored[bet.Agency]++
		rec.bets++
	}
	rec.agencies = len(stored)

	jpath := journalPath(path)
	if rec.cutJour, err = lottery.RepairTail(jpath); err != nil {
		return nil, rec, fmt.Errorf("open ledger: %w", err)
	}
	finished, err := readJournal(jpath)
	if err != nil {
		return nil, rec, fmt.Errorf("open ledger: %w", err)
	}
	for agency, total := range finished {
		if stored[agency] != total {
			return nil, rec, fmt.Errorf("open ledger: agency %d finished with %d bets but %s holds %d of them",
				agency, total, path, stored[agency])
		}
		rec.finished = append(rec.finished, agency)
	}
	slices.Sort(rec.finished)

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
	if err != nil {
		store.Close()
		syncFD.Close()
		return nil, rec, fmt.Errorf("open ledger: %w", err)
	}
	return &ledger{store: store, stored: stored, journal: journal, syncFD: syncFD}, rec, nil
}

// readJournal parses the FINISH journal: one "agency,total" line per FINISH.
func readJournal(path string) (map[int]uint64, error) {
	finished := make(map[int]uint64)
	data, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return finished, nil
	}
	if err != nil {
		return nil, fmt.Errorf("read journal: %w", err)
	}
	for i, line := range strings.Split(strings.TrimSuffix(string(data), "\n"), "\n") {
		if line == "" {
			continue
		}
		a, t, ok := strings.Cut(line, ",")
		agency, err1 := strconv.Atoi(a)
		total, err2 := strconv.ParseUint(t, 10, 64)
		if !ok || err1 != nil || err2 != nil || agency < 1 {
			return nil, fmt.Errorf("read journal %s: line %d: %q is not agency,total", path, i+1, line)
		}
		finished[agency] = total
	}
	return finished, nil
}

// markFinished records agency's FINISH durably before it is acknowledged.
func (l *ledger) markFinished(agency int, total uint64) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if _, err := fmt.Fprintf(l.journal, "%d,%d\n", agency, total); err != nil {
		return fmt.Errorf("journal FINISH of agency %d: %w", agency, err)
	}
	if err := l.journal.Sync(); err != nil {
		return fmt.Errorf("journal FINISH of agency %d: %w", agency, err)
	}
	return nil
}

// write hands a batch to the OS (not yet durable) and returns the generation
// to pass to sync before acknowledging it.
func (l *ledger) write(agency int, bets []lottery.Bet) (uint64, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.broken != nil {
		return 0, fmt.Errorf("append bets of agency %d: %w", agency, l.broken)
	}
	if err := l.store.StoreBets(bets); err != nil {
		// The file may now end in a partial row: store nothing more.
		l.broken = err
		return 0, fmt.Errorf("append %d bets of agency %d: %w", len(bets), agency, err)
	}
	l.written++
	return l.written, nil
}

// sync makes every batch up to generation gen durable. Concurrent callers
// share fsyncs: while one runs, later batches are written, and the next
// fsync covers all of them.
func (l *ledger) sync(gen uint64) error {
	l.syncMu.Lock()
	defer l.syncMu.Unlock()
	if l.synced >= gen {
		return nil
	}
	l.mu.Lock()
	target, broken := l.written, l.broken
	l.mu.Unlock()
	if broken != nil {
		return fmt.Errorf("sync bets: %w", broken)
	}
	if err := l.syncFD.Sync(); err != nil {
		l.mu.Lock()
		l.broken = err
		l.mu.Unlock()
		return fmt.Errorf("sync bets: %w", err)
	}
	l.synced = target
	return nil
}

// commit counts a synced batch as stored: from now on a reconnecting agency
// skips it and FINISH counts it.
func (l *ledger) commit(agency, n int) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.stored[agency] += uint64(n)
}

// err is the failure that stopped the ledger, if any.
func (l *ledger) err() error {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.broken
}

// count is how many bets of agency are durably stored.
func (l *ledger) count(agency int) uint64 {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.stored[agency]
}

// drawResult is what one pass over the stored bets found.
type drawResult struct {
	winners map[int][]string
	scanned int
	won     int
}

// stopEvery is how many bets the draw reads between looks at its stop
// condition: often enough that a shutdown never waits long for it.
const stopEvery = 1 << 14

// draw reads every stored bet once and keeps the winners' documents by agency.
// It gives up with draw.ErrClosing when stop reports the central is stopping.
func (l *ledger) draw(stop func() bool) (drawResult, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	res := drawResult{winners: make(map[int][]string)}
	for bet, err := range l.store.LoadBets() {
		if err != nil {
			return drawResult{}, fmt.Errorf("draw: %w", err)
		}
		if res.scanned%stopEvery == 0 && stop() {
			return drawResult{}, fmt.Errorf("draw after %d bets: %w", res.scanned, draw.ErrClosing)
		}
		res.scanned++
		if lottery.HasWon(bet) {
			res.winners[bet.Agency] = append(res.winners[bet.Agency], bet.Document)
			res.won++
		}
	}
	return res, nil
}

func (l *ledger) close() error {
	l.mu.Lock()
	defer l.mu.Unlock()
	return errors.Join(wrapErr("close ledger: %w", l.store.Close()), wrapErr("close ledger: %w", l.syncFD.Close()),
		wrapErr("close journal: %w", l.journal.Close()))
}

// wrapErr wraps err with format, or returns nil for a nil err.
func wrapErr(format string, err error) error {
	if err == nil {
		return nil
	}
	return fmt.Errorf(format, err)
}
