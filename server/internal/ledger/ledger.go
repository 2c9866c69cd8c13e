// Package ledger is the one owner of a round's facts: the bets file, the
// FINISH journal and the operator journal beside it, each agency's stored
// bets, batches and winners, which agencies finished and which the operator
// excluded. Everything else asks it.
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
//   - An agency leaves the round by its FINISH (journal.go) or by the
//     operator's exclusion (operator.go): each journaled and fsynced before
//     it takes effect, and each stops the agency's batches.
//   - Digests. Each agency's durable bets, in order, have a digest
//     (protocol.Digest, over their rows as BATCH carries them): the
//     agency's connection hashes each batch it wrote, without mu, so
//     connections hash at once; a batch lost after all has the digest
//     rebuilt from the file (Batches.Add). FINISH journals it; recovery
//     hashes the rows read back, and refuses a finished agency
//     whose bets no longer match.
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
	"lotterycentral.example/protocol"
)

// Errors a caller tells apart.
var (
	// ErrFinished refuses bets or a FINISH of an agency that already finished.
	ErrFinished = errors.New("this agency already sent FINISH")
	// ErrCount refuses a FINISH whose total is not the agency's stored bets.
	ErrCount = errors.New("FINISH total differs from the bets stored")
	// ErrLost says a batch was not stored: a write or fsync of the bets file failed.
	ErrLost = errors.New("batch lost to a failed write or fsync of the bets file")
	// ErrExcluded refuses bets, a FINISH or an exclusion of an agency the operator excluded.
	ErrExcluded = errors.New("the operator excluded this agency from the draw")
	// ErrLastAgency refuses an exclusion that would leave no agency to draw.
	ErrLastAgency = errors.New("excluding it would leave no agency to draw")
	// ErrNoAgency refuses an operator action for an agency outside 1..Agencies.
	ErrNoAgency = errors.New("no such agency")
	// ErrInvalid refuses an operator action the journal could not hold: an
	// unknown action, an empty operator or reason, a control character or a '|'.
	ErrInvalid = errors.New("invalid operator action")
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
	// and truncate of the ledger's files (the bets file, the journals, the
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
	excluded  int       // agencies the operator excluded

	syncMu sync.Mutex
	syncFD *os.File // a second descriptor on the bets file: fsync needs no store lock

	jmu      sync.Mutex // one journal append at a time: a FINISH, an operator action
	journal  lineFile   // the FINISH journal
	operator lineFile   // the operator journal
}

// facts are one agency's: written under mu, read by anyone.
type facts struct {
	stored   atomic.Uint64
	batches  atomic.Uint64 // committed since Open
	won      atomic.Int64
	finished atomic.Bool
	excluded atomic.Pointer[Exclusion]       // set once, when its exclusion is journaled
	final    atomic.Pointer[protocol.Digest] // set once, when its FINISH is journaled
	// closed, under mu, is why no batch of it may be added: ErrFinished from
	// the moment its FINISH is being journaled, ErrExcluded from the moment
	// its exclusion is; nil while it may send bets.
	closed  error
	winners []string // under mu; documents of its stored winning bets, in file order
	// digest has hashed its bets written so far, durable once their commit
	// says so; stale: it hashed a batch that was lost, and must be rebuilt
	// (rehash). Both are its connection's, one at a time (Batches), which
	// also calls Finish; recovery sets them before any connection.
	digest *protocol.DigestWriter
	stale  bool
	id     int // its agency number
}

// Agency is one agency's facts at one moment.
type Agency struct {
	Stored   uint64     // bets stored for good
	Batches  uint64     // batches stored for good since the central started
	Finished bool       // its FINISH is journaled
	Excluded *Exclusion // who excluded it from the draw, when and why; nil if no one did
	Winners  int        // winning bets among the stored ones
	// Digest is the digest of its stored rows journaled with its FINISH:
	// what FINISH_ACK carries. Zero until it finished.
	Digest protocol.Digest
}

// Exclusion is an operator's exclusion of an agency, as journaled.
type Exclusion struct {
	At       time.Time
	Operator string // the operator's certificate name
	Reason   string
}

// Round is every agency's facts at one moment, read without waiting for the
// bets file: agency i+1 at index i.
type Round struct {
	Agencies []Agency
	Finished int
	Excluded int
	// Bets and Winners count the agencies not excluded only: what the draw
	// draws. An excluded agency's rows stay in the bets file, undrawn.
	Bets    uint64
	Winners int
	// Digest commits the draw's input once the round is Complete: the
	// protocol.RoundDigest of the finished agencies' digests, in agency
	// order (excluded agencies are not drawn, so not in it). Zero before.
	Digest protocol.Digest
}

// Complete reports whether every agency finished or was excluded: the
// draw's input is final.
func (r Round) Complete() bool { return r.Finished+r.Excluded == len(r.Agencies) }

// Pending lists the agencies that neither finished nor were excluded, ascending.
func (r Round) Pending() []int {
	out := make([]int, 0, len(r.Agencies)-r.Finished-r.Excluded)
	for i, a := range r.Agencies {
		if !a.Finished && a.Excluded == nil {
			out = append(out, i+1)
		}
	}
	return out
}

// ExcludedAgencies lists the agencies the operator excluded, ascending.
func (r Round) ExcludedAgencies() []int {
	out := make([]int, 0, r.Excluded)
	for i, a := range r.Agencies {
		if a.Excluded != nil {
			out = append(out, i+1)
		}
	}
	return out
}

// Agency returns agency a's facts (a in 1..Agencies).
func (l *Ledger) Agency(a int) Agency {
	f := &l.agencies[a-1]
	st := Agency{Stored: f.stored.Load(), Batches: f.batches.Load(), Finished: f.finished.Load(),
		Excluded: f.excluded.Load(), Winners: int(f.won.Load())}
	if d := f.final.Load(); d != nil {
		st.Digest = *d
	}
	return st
}

// Round returns every agency's facts.
func (l *Ledger) Round() Round {
	r := Round{Agencies: make([]Agency, len(l.agencies))}
	for i := range l.agencies {
		a := l.Agency(i + 1)
		r.Agencies[i] = a
		switch {
		case a.Excluded != nil:
			r.Excluded++
			continue // not drawn
		case a.Finished:
			r.Finished++
		}
		r.Bets += a.Stored
		r.Winners += a.Winners
	}
	if r.Complete() {
		digests := make([]protocol.Digest, 0, r.Finished)
		for _, a := range r.Agencies {
			if a.Excluded == nil {
				digests = append(digests, a.Digest)
			}
		}
		r.Digest = protocol.RoundDigest(digests)
	}
	return r
}

// pendingLocked is how many agencies neither finished nor were excluded.
func (l *Ledger) pendingLocked() int { return len(l.agencies) - l.finished - l.excluded }

// Winners returns the documents of agency a's winning bets, in file order.
// Once the agency finished or was excluded they never change; the caller
// must not modify them.
func (l *Ledger) Winners(a int) []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return slices.Clip(l.agencies[a-1].winners)
}

// Close flushes and closes the bets file and the journals.
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
		wrapErr("close ledger: %w", l.syncFD.Close()), wrapErr("close journal: %w", l.journal.f.Close()),
		wrapErr("close operator journal: %w", l.operator.f.Close()))
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
