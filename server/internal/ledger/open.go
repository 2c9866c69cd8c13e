package ledger

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"time"

	"lotterycentral.example/lottery"
	"lotterycentral.example/protocol"
)

// Recovered is what Open found on disk.
type Recovered struct {
	Bets        uint64 // rows of the bets file
	Agencies    int    // agencies with bets
	Finished    int    // agencies whose FINISH is journaled
	Excluded    int    // agencies the operator journal excludes
	CutBets     int64  // bytes of a torn last row cut off the bets file
	CutJournal  int64  // the same for the FINISH journal
	CutOperator int64  // the same for the operator journal
}

// Open rebuilds a round's facts from the bets file at path and its
// journals, trusting none of it. It cuts a torn last line without its
// newline (only an unacknowledged write can be torn) off each file; every
// other row must be a bet the central would accept on the wire now, for an
// agency of the round, in the exact bytes the store writes; every FINISH
// journal line a canonical `agency,total,digest` for such an agency, whose
// total and digest are those of that agency's stored rows; every operator journal line an action the
// ledger would journal now (operator.go). Anything else fails, naming the
// file, the line and the reason.
func Open(path string, opts Options) (*Ledger, Recovered, error) {
	l := &Ledger{path: path, agencies: make([]facts, opts.Agencies), log: opts.Log, faults: opts.Faults,
		observe: opts.ObserveFsync}
	for i := range l.agencies {
		l.agencies[i].digest, l.agencies[i].id = protocol.NewDigestWriter(), i+1
	}
	rec, err := l.recover(opts.Progress)
	if err != nil {
		return nil, rec, fmt.Errorf("open ledger: %w", err)
	}
	if err := l.openFiles(); err != nil {
		return nil, rec, fmt.Errorf("open ledger: %w", err)
	}
	return l, rec, nil
}

// recover reads the bets file and the journal into l's facts.
func (l *Ledger) recover(progress func(rows uint64) error) (Recovered, error) {
	var rec Recovered
	var err error
	if rec.CutBets, err = lottery.RepairTail(l.path); err != nil {
		return rec, err
	}
	if err := os.Remove(probePath(l.path)); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return rec, err
	}
	agencies := len(l.agencies)
	inRange := func(b lottery.Bet) error {
		if b.Agency > agencies {
			return &lottery.FieldError{Field: "agency", Reason: fmt.Sprintf("not in 1..%d (SERVER_AGENCIES)", agencies)}
		}
		return nil
	}
	// Every row is held to the rules a batch's rows were held to at ingest.
	tally, err := lottery.ScanStore(l.path, lottery.ScanOptions{Now: time.Now(), Check: inRange, Progress: progress,
		Hash: func(agency int, rows []byte) { l.agencies[agency-1].digest.Write(rows) }})
	if err != nil {
		return rec, err
	}
	rec.Bets, rec.Agencies = tally.Rows, len(tally.Bets)
	for a, n := range tally.Bets {
		l.agencies[a-1].stored.Store(n)
	}
	for a, docs := range tally.Winners {
		l.agencies[a-1].winners = docs
		l.agencies[a-1].won.Store(int64(len(docs)))
	}
	jpath := JournalPath(l.path)
	if rec.CutJournal, err = lottery.RepairTail(jpath); err != nil {
		return rec, err
	}
	if err := l.readJournal(jpath); err != nil {
		return rec, err
	}
	opath := OperatorPath(l.path)
	if rec.CutOperator, err = lottery.RepairTail(opath); err != nil {
		return rec, err
	}
	if err := l.readOperator(opath); err != nil {
		return rec, err
	}
	rec.Finished, rec.Excluded = l.finished, l.excluded
	return rec, nil
}

// openFiles opens the bets file to append to, a second descriptor on it to
// fsync, and the journals.
func (l *Ledger) openFiles() (err error) {
	var files []interface{ Close() error }
	defer func() {
		if err != nil {
			for _, f := range files {
				f.Close()
			}
		}
	}()
	if l.store, err = lottery.OpenStore(l.path); err != nil {
		return err
	}
	files = append(files, l.store)
	if l.syncFD, err = os.Open(l.path); err != nil {
		return err
	}
	files = append(files, l.syncFD)
	if err = l.journal.open(JournalPath(l.path)); err != nil {
		return err
	}
	files = append(files, l.journal.f)
	if err = l.operator.open(OperatorPath(l.path)); err != nil {
		return err
	}
	files = append(files, l.operator.f)
	l.syncedEnd = l.store.Size()
	return nil
}
