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
)

// ledger serialises every access to the bets file (the lottery store is not
// goroutine-safe) and counts the durable bets of each agency, which is what a
// reconnecting agency resumes from and what FINISH is checked against. Beside
// the bets file it keeps a journal of the agencies that finished, so a
// restarted central knows who finished and whether the draw ran: the draw
// itself is recomputed from the bets, which never change after it.
type ledger struct {
	mu      sync.Mutex
	store   *lottery.Store
	stored  map[int]uint64
	journal *os.File
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
	journal, err := os.OpenFile(jpath, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o644)
	if err != nil {
		store.Close()
		return nil, rec, fmt.Errorf("open ledger: %w", err)
	}
	return &ledger{store: store, stored: stored, journal: journal}, rec, nil
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

// append stores bets durably: when it returns nil they are on disk.
func (l *ledger) append(agency int, bets []lottery.Bet) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if err := l.store.StoreBets(bets); err != nil {
		return fmt.Errorf("append %d bets of agency %d: %w", len(bets), agency, err)
	}
	if err := l.store.Sync(); err != nil {
		return fmt.Errorf("sync %d bets of agency %d: %w", len(bets), agency, err)
	}
	l.stored[agency] += uint64(len(bets))
	return nil
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

// draw reads every stored bet once and keeps the winners' documents by agency.
func (l *ledger) draw() (drawResult, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	res := drawResult{winners: make(map[int][]string)}
	for bet, err := range l.store.LoadBets() {
		if err != nil {
			return drawResult{}, fmt.Errorf("draw: %w", err)
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
	return errors.Join(wrapErr("close ledger: %w", l.store.Close()), wrapErr("close journal: %w", l.journal.Close()))
}

// wrapErr wraps err with format, or returns nil for a nil err.
func wrapErr(format string, err error) error {
	if err == nil {
		return nil
	}
	return fmt.Errorf(format, err)
}
