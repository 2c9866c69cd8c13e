package ledger

import (
	"fmt"
	"sync"
	"time"

	"lotterycentral.example/lottery"
	"lotterycentral.example/lottery/logfmt"
	"lotterycentral.example/server/internal/vocab"
)

// Batches are one connection's batches between two commits. The connection
// that owns it is its only user, and commits what it adds before it ends:
// Commit adds the durable batches to the agency's digest. The central runs
// one connection of an agency at a time, so the digest has one writer.
type Batches struct {
	l       *Ledger
	agency  *facts
	tickets []*ticket // every batch handed to Add since the last Commit, in order
	last    *ticket   // the last of them that reached the store
	err     error     // why the batches from now on are not written
	// staged are the bets of the batches added since the last Commit, as
	// the wire encoded them, one after another (ticket.end marks each); nil
	// between commits (stagedPool).
	staged *[]byte
}

// stagedPool lends Batches their staged buffers from the first Add to the
// Commit: a connection between commits holds none, so the central's memory
// follows the batches in flight, not the connections open.
var stagedPool = sync.Pool{New: func() any { return new([]byte) }}

// ticket is one batch on its way to the disk.
type ticket struct {
	agency  *facts
	count   int
	winners []string
	end     int   // where its bets end in its Batches' staged
	state   state // under mu
	err     error // why it was lost
}

type state uint8

const (
	written state = iota // handed to the store, not yet covered by an fsync
	durable              // covered by a good fsync, and counted
	lost                 // not stored: refuse it
)

// Batches returns the batches of agency a (in 1..Agencies) for one connection.
func (l *Ledger) Batches(a int) *Batches { return &Batches{l: l, agency: &l.agencies[a-1]} }

// Add writes one batch's rows, with the documents of its winning bets and
// its bets as the wire encoded them (protocol.BatchBets: what the agency's
// digest covers); none of it durable yet: Commit says. An error means it was
// not written; nor will any later batch be until Commit, which reports them
// all lost: a later batch landing after a lost one would leave a gap in the
// agency's bets.
func (b *Batches) Add(rows *lottery.Rows, bets []byte, winners []string) error {
	l := b.l
	if b.staged == nil {
		b.staged = stagedPool.Get().(*[]byte)
	}
	*b.staged = append(*b.staged, bets...) // the caller reuses bets
	t := &ticket{agency: b.agency, count: rows.Len(), winners: winners, end: len(*b.staged)}
	l.mu.Lock()
	defer l.mu.Unlock()
	if n := len(b.tickets); b.err == nil && n > 0 && b.tickets[n-1].state == lost {
		b.err = b.tickets[n-1].err // lost since it was written, to another's failure
	}
	b.tickets = append(b.tickets, t)
	if b.err == nil && b.agency.closed != nil {
		b.err = b.agency.closed
	}
	if b.err == nil {
		b.err = l.appendLocked(rows)
	}
	if b.err != nil {
		t.state, t.err = lost, b.err
		return fmt.Errorf("store %d bets: %w", t.count, b.err)
	}
	l.pending = append(l.pending, t)
	b.last = t
	return nil
}

// Commit makes the batches added since the last Commit durable and counts
// them. It returns how many of them, from the first, are durable; err says
// why the rest were lost (ErrLost wrapping the failure). Concurrent commits
// share fsyncs. The durable batches' bets go into the agency's digest.
func (b *Batches) Commit() (n int, err error) {
	defer func() {
		clear(b.tickets)
		b.tickets, b.last, b.err = b.tickets[:0], nil, nil
		if b.staged != nil {
			*b.staged = (*b.staged)[:0]
			stagedPool.Put(b.staged)
			b.staged = nil
		}
	}()
	if b.last != nil {
		// Batches reach the store in order: once the last is settled, so are the others.
		b.l.settle(b.last)
	}
	b.l.mu.Lock()
	for _, t := range b.tickets {
		if t.state != durable {
			err = fmt.Errorf("%w: %w", ErrLost, t.err)
			break
		}
		n++
	}
	b.l.mu.Unlock()
	if n > 0 {
		// Without mu: the digest's one writer is this connection (see
		// Batches), and connections hash their batches at once.
		b.agency.digest.Write((*b.staged)[:b.tickets[n-1].end])
	}
	return n, err
}

// settle returns once t is durable or lost, leading an fsync if no other
// commit's covered it. Whoever holds syncMu leads: it writes what the store
// gathered, then fsyncs without mu, so later batches are written meanwhile
// and wait for the next fsync.
func (l *Ledger) settle(t *ticket) {
	l.syncMu.Lock()
	defer l.syncMu.Unlock()
	l.mu.Lock()
	defer l.mu.Unlock()
	if t.state != written {
		return
	}
	if l.store.Buffered() > 0 {
		if err := l.writeLocked(); err != nil {
			l.failLocked(fmt.Errorf("write bets: %w", err))
			return
		}
	}
	covered, end, failures := len(l.pending), l.store.Size(), l.failures
	l.mu.Unlock()
	err := l.fsync()
	l.mu.Lock()
	switch {
	case err != nil:
		l.failLocked(fmt.Errorf("sync bets: %w", err))
	case l.failures != failures:
		// A write failed meanwhile and cut the file: what this fsync covered is lost.
	default:
		l.syncedEnd = end
		l.countLocked(covered)
	}
}

// countLocked makes the first n pending batches durable: their bets count,
// and their winners are the agency's.
func (l *Ledger) countLocked(n int) {
	for _, t := range l.pending[:n] {
		t.state = durable
		t.agency.stored.Add(uint64(t.count))
		t.agency.batches.Add(1)
		if len(t.winners) > 0 {
			t.agency.winners = append(t.agency.winners, t.winners...)
			t.agency.won.Add(int64(len(t.winners)))
		}
	}
	rest := copy(l.pending, l.pending[n:])
	clear(l.pending[rest:])
	l.pending = l.pending[:rest]
}

// writeEvery is how many bytes of rows the store gathers before the ledger
// hands them to the OS: the rows of several batches in one write. Whatever is
// gathered when a commit leads an fsync is written first.
const writeEvery = 64 << 10

// appendLocked hands rows to the store, healing a past failure first.
func (l *Ledger) appendLocked(rows *lottery.Rows) error {
	if l.fault != nil {
		// The append itself probes for room.
		if err := l.healLocked(false); err != nil {
			return err
		}
	}
	err := l.store.StoreRows(rows)
	if err == nil && l.store.Buffered() >= writeEvery {
		err = l.writeLocked()
	}
	if err != nil {
		err = fmt.Errorf("write bets: %w", err)
		l.failLocked(err)
		return err
	}
	return nil
}

// writeLocked hands the rows the store gathered to the OS.
func (l *Ledger) writeLocked() error {
	if err := l.before(OpWrite, l.path); err != nil {
		return err
	}
	return l.store.Flush()
}

// failLocked handles a failed write or fsync: every batch not synced yet is
// lost, and the file is cut back to the synced rows (healLocked cuts again
// if this fails).
func (l *Ledger) failLocked(err error) {
	l.fault = err
	l.failures++
	for _, t := range l.pending {
		t.state, t.err = lost, err
	}
	l.log.Error(vocab.GuardarApuestas, logfmt.Fail, vocab.Lotes.Int(len(l.pending)), vocab.Error.Any(err))
	clear(l.pending)
	l.pending = l.pending[:0]
	if l.before(OpTruncate, l.path) == nil {
		_ = l.store.Rewind(l.syncedEnd)
	}
}

// fsync makes the bets file durable.
func (l *Ledger) fsync() error {
	if err := l.before(OpSync, l.path); err != nil {
		return err
	}
	began := time.Now()
	err := l.syncFD.Sync()
	if l.observe != nil {
		l.observe(time.Since(began))
	}
	return err
}
