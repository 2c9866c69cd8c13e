package ledger

import (
	"fmt"
	"time"

	"lotterycentral.example/lottery"
	"lotterycentral.example/lottery/logfmt"
	"lotterycentral.example/protocol"
	"lotterycentral.example/server/internal/vocab"
)

// Batches are one connection's batches between two commits. The connection
// that owns it is its only user, and commits what it adds before it ends.
// The central runs one connection of an agency at a time, so the agency's
// digest, which Add writes, has one writer at a time.
type Batches struct {
	l       *Ledger
	agency  *facts
	tickets []*ticket // every batch handed to Add since the last Commit, in order
	last    *ticket   // the last of them that reached the store
	err     error     // why the batches from now on are not written
}

// ticket is one batch on its way to the disk.
type ticket struct {
	agency  *facts
	count   int
	winners []string
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
// its rows as BATCH carried them (protocol.BatchRows: what the agency's
// digest covers); none of it durable yet: Commit says. An error means it was
// not written; nor will any later batch be until Commit, which reports them
// all lost: a later batch landing after a lost one would leave a gap in the
// agency's bets.
//
// A written batch goes into the agency's digest at once, without mu, so
// connections hash their batches at once and nothing is copied to hash it
// later. Should it be lost after all (a failed write or fsync, rare), Commit
// marks the digest stale, and the next Add or Finish of the agency hashes
// its durable rows again from the bets file (rehash).
func (b *Batches) Add(rows *lottery.Rows, sent []byte, winners []string) error {
	f := b.agency
	if f.stale && b.err == nil {
		if err := b.l.rehash(f); err != nil {
			b.err = fmt.Errorf("rebuild the digest of its bets: %w", err)
		}
	}
	if err := b.write(rows, winners); err != nil {
		return err
	}
	f.digest.Write(sent)
	return nil
}

// write is Add's part under mu: the rows to the store, the ticket to the
// batches waiting for an fsync.
func (b *Batches) write(rows *lottery.Rows, winners []string) error {
	l := b.l
	l.mu.Lock()
	defer l.mu.Unlock()
	t := &ticket{agency: b.agency, count: rows.Len(), winners: winners}
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
// share fsyncs.
func (b *Batches) Commit() (n int, err error) {
	defer func() {
		clear(b.tickets)
		b.tickets, b.last, b.err = b.tickets[:0], nil, nil
	}()
	if b.last != nil {
		// Batches reach the store in order: once the last is settled, so are the others.
		b.l.settle(b.last)
	}
	b.l.mu.Lock()
	defer b.l.mu.Unlock()
	for _, t := range b.tickets {
		if t.state != durable {
			if b.last != nil && b.last.state == lost {
				// A batch Add hashed is lost: the digest holds bets the file does not.
				b.agency.stale = true
			}
			return n, fmt.Errorf("%w: %w", ErrLost, t.err)
		}
		n++
	}
	return n, nil
}

// rehash rebuilds f's digest from its durable rows in the bets file, after
// a batch it hashed was lost. f has no batch on its way (its connection
// committed them all, and the next has not added one), so its rows up to
// the last good fsync are exactly its durable bets: the scan stops there,
// while other agencies' rows may still be written past it.
func (l *Ledger) rehash(f *facts) error {
	l.mu.Lock()
	if l.fault != nil {
		// The rows up to the last good fsync are the file's only once it healed.
		if err := l.healLocked(false); err != nil {
			l.mu.Unlock()
			return err
		}
	}
	end, stored := l.syncedEnd, f.stored.Load()
	l.mu.Unlock()
	w := protocol.NewDigestWriter()
	if end > 0 {
		tally, err := lottery.ScanStore(l.path, lottery.ScanOptions{Limit: end,
			Hash: func(agency int, rows []byte) {
				if agency == f.id {
					w.Write(rows)
				}
			}})
		if err != nil {
			return err
		}
		if got := tally.Bets[f.id]; got != stored {
			return fmt.Errorf("agency %d: %d of its rows in %q up to byte %d, %d stored", f.id, got, l.path, end, stored)
		}
	}
	f.digest, f.stale = w, false
	return nil
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
