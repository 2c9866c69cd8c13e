// Package ledger is the one owner of a round's facts: the bets file, the
// FINISH journal beside it, each agency's stored bets, batches and winners,
// and which agencies finished. Everything else asks it.
//
// A session hands it a connection's batches (Batches.Add) and learns once
// which of them are durable (Batches.Commit); how they reach the disk is the
// ledger's business, after nsq's diskqueue, whose callers Put and whose queue
// decides when to write and fsync:
//
//   - Group commit. A batch's rows are appended under mu; the commit that
//     finds its batch not yet durable leads one fsync (under syncMu, without
//     mu) covering every batch written before it started, so batches keep
//     being written while an fsync runs and most commits find theirs done.
//   - Written, synced, counted. A batch counts (Stored, what a reconnecting
//     agency skips and FINISH is checked against) only once an fsync covered
//     it: an acknowledged bet survives a crash, and no count includes a bet a
//     crash could lose.
//   - Lost writes. A failed write or fsync loses every batch not yet synced:
//     each is refused, the file is cut back to the synced rows (checked and
//     fsynced before the next append: healing), and the central stays up.
//     A connection whose batch was lost stores nothing more until its commit
//     says so, or its next batches would leave a gap; that state is its own
//     Batches value, so it ends with the connection.
//   - Recovery (Open) trusts nothing on disk: every row and journal line is
//     checked, a torn last line cut.
//
// Lock order: jmu, then syncMu, then mu. The per-agency counts are atomics,
// written under mu and read without it: a status page or a scrape never
// queues behind the bets file.
package ledger

import (
	"errors"
	"fmt"
	"os"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"lotterycentral.example/lottery"
	"lotterycentral.example/lottery/logfmt"
)

// Errors a caller tells apart.
var (
	// ErrFinished refuses bets or a FINISH of an agency that already finished.
	ErrFinished = errors.New("this agency already sent FINISH")
	// ErrCount refuses a FINISH whose total is not the agency's stored bets.
	ErrCount = errors.New("FINISH total differs from the bets stored")
	// ErrLost says a batch was not stored: a write or fsync of the bets file failed.
	ErrLost = errors.New("batch lost to a failed write or fsync of the bets file")
)

// Op is an operation on one of the ledger's files, as Options.Faults sees it.
type Op uint8

// The operations a fault hook hears of.
const (
	OpWrite Op = iota
	OpSync
	OpTruncate
)

func (o Op) String() string {
	switch o {
	case OpWrite:
		return "write"
	case OpSync:
		return "sync"
	}
	return "truncate"
}

// Options configure Open.
type Options struct {
	// Agencies is how many agencies the round has, numbered 1..Agencies.
	Agencies int
	// Log hears of storage failures and repairs; nil logs nothing.
	Log *logfmt.Logger
	// Progress, if set, hears how many rows recovery has read so far; an
	// error it returns ends the recovery with it.
	Progress func(rows uint64) error
	// ObserveFsync, if set, is told how long each fsync of the bets file took.
	ObserveFsync func(time.Duration)
	// Faults is the test seam: when set, it runs before every write, fsync
	// and truncate of the ledger's files (the bets file, the journal, the
	// free-space probe), and an error it returns is handled as if the OS had
	// returned it.
	Faults func(op Op, path string) error
}

// Ledger is a round's facts. Open one per bets file.
type Ledger struct {
	path     string
	agencies []facts // agency i+1 at index i
	log      *logfmt.Logger
	faults   func(Op, string) error
	observe  func(time.Duration)

	mu        sync.Mutex
	store     *lottery.Store
	pending   []*ticket // written since the last good fsync, in file order
	syncedEnd int64     // the bets file's length at the last good fsync
	fault     error     // a failure not healed yet: heal before the next append
	failures  uint64    // failed writes and fsyncs so far
	finished  int       // agencies finished

	syncMu sync.Mutex
	syncFD *os.File // a second descriptor on the bets file: fsync needs no store lock

	jmu        sync.Mutex // one FINISH at a time
	journal    *os.File
	journalEnd int64 // the journal's complete lines
	journalCut bool  // a failed FINISH may have left part of a line after journalEnd
}

// facts are one agency's: written under mu, read by anyone.
type facts struct {
	stored   atomic.Uint64
	batches  atomic.Uint64 // committed since Open
	won      atomic.Int64
	finished atomic.Bool
	closing  bool     // under mu: its FINISH is being journaled or is; no batch may be added
	winners  []string // under mu; documents of its stored winning bets, in file order
}

// Agency is one agency's facts at one moment.
type Agency struct {
	Stored   uint64 // bets stored for good
	Batches  uint64 // batches stored for good since the central started
	Finished bool   // its FINISH is journaled
	Winners  int    // winning bets among the stored ones
}

// Round is every agency's facts at one moment, read without waiting for the
// bets file: agency i+1 at index i.
type Round struct {
	Agencies []Agency
	Finished int
	Bets     uint64
	Winners  int
}

// Complete reports whether every agency finished: the draw's input is final.
func (r Round) Complete() bool { return r.Finished == len(r.Agencies) }

// Pending lists the agencies that have not finished, ascending.
func (r Round) Pending() []int {
	out := make([]int, 0, len(r.Agencies)-r.Finished)
	for i, a := range r.Agencies {
		if !a.Finished {
			out = append(out, i+1)
		}
	}
	return out
}

// Agency returns agency a's facts (a in 1..Agencies).
func (l *Ledger) Agency(a int) Agency {
	f := &l.agencies[a-1]
	return Agency{Stored: f.stored.Load(), Batches: f.batches.Load(), Finished: f.finished.Load(), Winners: int(f.won.Load())}
}

// Round returns every agency's facts.
func (l *Ledger) Round() Round {
	r := Round{Agencies: make([]Agency, len(l.agencies))}
	for i := range l.agencies {
		a := l.Agency(i + 1)
		r.Agencies[i] = a
		r.Bets += a.Stored
		r.Winners += a.Winners
		if a.Finished {
			r.Finished++
		}
	}
	return r
}

// Winners returns the documents of agency a's winning bets, in file order.
// Once every agency finished they never change; the caller must not modify them.
func (l *Ledger) Winners(a int) []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return slices.Clip(l.agencies[a-1].winners)
}

// Close flushes and closes the bets file and the journal.
//
// A storage failure not healed yet is repaired first — the bets file cut
// back to its synced rows, checked and fsynced — so that the file holds
// exactly the acknowledged bets. Close fails only if that repair, or the
// final flush, fsync or close, fails.
func (l *Ledger) Close() error {
	l.jmu.Lock()
	defer l.jmu.Unlock()
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
	var flush error
	if repair == nil && l.store.Buffered() > 0 {
		flush = l.writeLocked()
	}
	if repair != nil || flush != nil {
		l.store.Discard() // rows the disk refused must not land when the store closes
	}
	return errors.Join(repair, wrapErr("close ledger: %w", flush), wrapErr("close ledger: %w", l.store.Close()),
		wrapErr("close ledger: %w", l.syncFD.Close()), wrapErr("close journal: %w", l.journal.Close()))
}

// before runs the fault hook, if any, before op on path.
func (l *Ledger) before(op Op, path string) error {
	if l.faults == nil {
		return nil
	}
	return l.faults(op, path)
}

// wrapErr wraps err with format, or returns nil for a nil err.
func wrapErr(format string, err error) error {
	if err == nil {
		return nil
	}
	return fmt.Errorf(format, err)
}
