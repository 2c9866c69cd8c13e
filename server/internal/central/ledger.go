package central

import (
	"fmt"
	"sync"

	"lotterycentral.example/lottery"
)

// ledger serialises every access to the bets file (the lottery store is not
// goroutine-safe) and counts the durable bets of each agency, which is what a
// reconnecting agency resumes from and what FINISH is checked against.
type ledger struct {
	mu     sync.Mutex
	store  *lottery.Store
	stored map[int]uint64
}

// openLedger opens the bets file and counts the bets it already holds.
func openLedger(path string) (*ledger, error) {
	stored := make(map[int]uint64)
	for bet, err := range lottery.LoadBets(path) {
		if err != nil {
			return nil, fmt.Errorf("open ledger: %w", err)
		}
		stored[bet.Agency]++
	}
	store, err := lottery.OpenStore(path)
	if err != nil {
		return nil, fmt.Errorf("open ledger: %w", err)
	}
	return &ledger{store: store, stored: stored}, nil
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
	if err := l.store.Close(); err != nil {
		return fmt.Errorf("close ledger: %w", err)
	}
	return nil
}
