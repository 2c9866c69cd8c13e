package ledger

import (
	"fmt"
	"io/fs"
	"path/filepath"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"lotterycentral.example/lottery"
)

// Group commit: a batch is written, then synced, then counted. While its
// fsync runs its rows are in the file, but it is neither durable nor
// counted, and the fsync runs without the ledger's lock: other agencies are
// served meanwhile, and the batches they write then wait for the next
// fsync, whose failure loses them alone.
func TestBatchWrittenDuringAnFsyncWaitsForTheNext(t *testing.T) {
	tests := []struct {
		name     string
		nextFail bool // the second fsync fails
	}{
		{"the next fsync succeeds", false},
		{"the next fsync fails", true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			l, d, _ := openFaulty(t, 3)
			var fsyncs atomic.Int32
			l.observe = func(time.Duration) { fsyncs.Add(1) }
			first := agencyBetsFor(1, 0, 10)
			// big passes writeEvery, so its Add writes it; small stays gathered.
			big, small := agencyBetsFor(2, 0, 2000), agencyBetsFor(3, 0, 5)
			b1, b2, b3 := l.Batches(1), l.Batches(2), l.Batches(3)
			require.NoError(t, b1.Add(rowsOf(t, first), wireOf(first), nil))
			d.setOnSync(func() {
				assert.Equal(t, map[int][]lottery.Bet{1: first}, storedBets(t, l.path), "written before its fsync")
				assert.Zero(t, l.Agency(1).Stored, "counted before its fsync returned")
				// The ledger's lock is free: a HELLO and two batches are served.
				assert.NoError(t, l.Ready())
				assert.NoError(t, b2.Add(rowsOf(t, big), wireOf(big), nil))
				assert.NoError(t, b3.Add(rowsOf(t, small), wireOf(small), nil))
			})
			n, err := b1.Commit()
			require.NoError(t, err)
			require.Equal(t, 1, n)
			assert.EqualValues(t, 1, fsyncs.Load())
			assert.EqualValues(t, len(first), l.Agency(1).Stored, "counted once its fsync returned")
			assert.Zero(t, l.Agency(2).Stored, "written during the fsync: not covered by it")
			assert.Zero(t, l.Agency(3).Stored, "gathered during the fsync: not covered by it")
			synced := fileSize(t, l.path) - int64(len(csvRows(big))) // agency 2's rows were written, not synced
			l.mu.Lock()
			assert.Equal(t, synced, l.syncedEnd, "the synced length is what the fsync covered")
			l.mu.Unlock()

			d.set(false, tt.nextFail)
			n, err = b3.Commit()
			if tt.nextFail {
				require.ErrorIs(t, err, ErrLost)
				require.Zero(t, n)
				n, err = b2.Commit()
				require.ErrorIs(t, err, ErrLost)
				require.Zero(t, n)
				assert.Equal(t, synced, fileSize(t, l.path), "cut back to agency 1's batch")
				assert.Equal(t, map[int][]lottery.Bet{1: first}, storedBets(t, l.path))
			} else {
				require.NoError(t, err)
				require.Equal(t, 1, n)
				n, err = b2.Commit()
				require.NoError(t, err)
				require.Equal(t, 1, n, "already durable: the fsync agency 3 led covered it")
				assert.EqualValues(t, 2, fsyncs.Load())
				assert.Equal(t, map[int][]lottery.Bet{1: first, 2: big, 3: small}, storedBets(t, l.path))
			}
			assertConsistent(t, l, l.path)
		})
	}
}

// csvRows is bets' rows as the store writes them.
func csvRows(bets []lottery.Bet) string {
	var s string
	for _, b := range bets {
		s += csvRow(b)
	}
	return s
}

// Agencies served at once, as the central serves them: each on its own
// goroutine adds batches and commits them, sharing fsyncs, reconnecting
// after a loss, and sends FINISH once everything is durable. With failures
// injected on a fixed schedule of points, the file still holds each agency's
// bets exactly once in order, and the counts and winners are the file's.
func TestConcurrentAgencies(t *testing.T) {
	tests := []struct {
		name  string
		every int // one point in every fails, on average (0: none)
	}{
		{"no failure", 0},
		{"one write or fsync in 7 fails", 7},
		{"one write or fsync in 3 fails", 3},
	}
	const agencies, perAgency, batch, inFlight = 5, 3000, 100, 4
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "bets.csv")
			var points, failed atomic.Int64
			hook := func(op Op, p string) error {
				if tt.every == 0 || op == OpTruncate || p != path && p != JournalPath(path) {
					return nil
				}
				// Which points fail is a hash of their number: a period would
				// lock into step with an agency's retries (heal, write, fsync)
				// and fail the same one of them every time.
				h := uint64(points.Add(1)) * 0x9E3779B97F4A7C15
				if (h^h>>29)%uint64(tt.every) != 0 {
					return nil
				}
				failed.Add(1)
				return &fs.PathError{Op: op.String(), Path: p, Err: syscall.EIO}
			}
			var fsyncs atomic.Int64
			l, _, err := Open(path, Options{Agencies: agencies, Faults: hook,
				ObserveFsync: func(time.Duration) { fsyncs.Add(1) }})
			require.NoError(t, err)
			bets := make([][]lottery.Bet, agencies)
			for a := range bets {
				bets[a] = agencyBetsFor(a+1, lottery.WinningNumber-perAgency/2, perAgency) // one winner each
			}
			var wg sync.WaitGroup
			errs := make(chan error, 2*agencies)
			for a := 1; a <= agencies; a++ {
				wg.Go(func() { errs <- playAgency(l, a, bets[a-1], batch, inFlight) })
			}
			// A status page reads the facts meanwhile, without waiting for the bets file.
			done, read := make(chan struct{}), make(chan struct{})
			go func() {
				defer close(read)
				for {
					select {
					case <-done:
						return
					default:
					}
					r := l.Round()
					for a := 1; a <= agencies; a++ {
						if w := l.Winners(a); len(w) > 1 || r.Agencies[a-1].Stored > uint64(perAgency) {
							errs <- fmt.Errorf("agency %d: %d winners, %d stored", a, len(w), r.Agencies[a-1].Stored)
							return
						}
					}
				}
			}()
			wg.Wait()
			close(done)
			<-read
			close(errs)
			for err := range errs {
				require.NoError(t, err)
			}
			require.True(t, l.Round().Complete())
			for a := 1; a <= agencies; a++ {
				assert.Equal(t, winnersOf(bets[a-1]), l.Winners(a))
			}
			assertConsistent(t, l, path)
			require.NoError(t, l.Close())
			got := storedBets(t, path)
			for a := 1; a <= agencies; a++ {
				assert.Equal(t, bets[a-1], got[a], "agency %d: its bets once, in order", a)
			}
			t.Logf("%d points, %d failed, %d fsyncs of the bets file for %d commits at most",
				points.Load(), failed.Load(), fsyncs.Load(), agencies*perAgency/(batch*inFlight))
		})
	}
}

// playAgency sends bets as agency a does, batch bets a batch, inFlight
// batches a commit, reconnecting (Ready, then a new Batches from its count)
// after a loss, until its FINISH is acknowledged.
func playAgency(l *Ledger, a int, bets []lottery.Bet, batch, inFlight int) error {
	now := time.Now()
	acked := 0
	for attempt := 0; attempt < 10_000; attempt++ {
		if l.Ready() != nil {
			continue
		}
		st := l.Agency(a)
		if st.Stored < uint64(acked) {
			return fmt.Errorf("agency %d: HELLO says %d stored, %d were acknowledged", a, st.Stored, acked)
		}
		b, next, lost := l.Batches(a), int(st.Stored), false
		for next < len(bets) && !lost {
			from, added := next, 0
			var sizes []int
			for range inFlight {
				n := min(batch, len(bets)-next)
				if n == 0 {
					break
				}
				var rows lottery.Rows
				for _, bet := range bets[next : next+n] {
					if err := rows.Add(bet, now); err != nil {
						return err
					}
				}
				added++
				sizes = append(sizes, n)
				if b.Add(&rows, wireOf(bets[next:next+n]), winnersOf(bets[next:next+n])) != nil {
					break
				}
				next += n
			}
			durable, err := b.Commit()
			if (err == nil) != (durable == added) || durable > added {
				return fmt.Errorf("agency %d: Commit says %d of %d durable, error %v", a, durable, added, err)
			}
			for _, n := range sizes[:durable] {
				from += n
			}
			acked = max(acked, from)
			if stored := l.Agency(a).Stored; stored < uint64(acked) {
				return fmt.Errorf("agency %d: %d stored, %d acknowledged", a, stored, acked)
			}
			lost = err != nil
		}
		if lost {
			continue // refused with storage: the connection ends, the next resumes from the count
		}
		if _, err := l.Finish(a, uint64(len(bets))); err != nil {
			if st := l.Agency(a); st.Stored != uint64(len(bets)) {
				return fmt.Errorf("agency %d: FINISH refused with %d of %d stored: %w", a, st.Stored, len(bets), err)
			}
			continue
		}
		return nil
	}
	return fmt.Errorf("agency %d locked out", a)
}
