package ledger

import (
	"slices"
	"syscall"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"lotterycentral.example/lottery"
)

// The two bugs of the old central's ledger, each held off by a test named for
// what it prevents.

// An agency locked out after a disk-full: the old ledger held an agency whose
// batch was lost, and released it only when its connection ended through
// the sync-failure branch; a connection that ended any other way left it
// held, and a second failure held again agencies whose last batch was
// already refused. Every later connection of that agency was refused with
// storage until the central restarted. Here the state is the connection's
// own (Batches): however its connections ended, a new one stores.
func TestAgencyNotLockedOutAfterDiskFull(t *testing.T) {
	tests := []struct {
		name      string
		breakDisk func(d *faultyDisk)
	}{
		{"writes fail (disk full)", func(d *faultyDisk) { d.set(true, false) }},
		{"fsyncs fail", func(d *faultyDisk) { d.set(false, true) }},
		{"writes fail, a short write leaving part of a row", func(d *faultyDisk) {
			d.tearNextWrite("2,Parti")
			d.set(true, false)
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			l, d, _ := openFaulty(t, 5)
			// sent[a-1] is how many of agency a's bets it sent; durable[a-1] how
			// many were acknowledged.
			sent, durable := make([]int, 5), make([]int, 5)
			next := func(a int) []lottery.Bet {
				bets := agencyBetsFor(a, sent[a-1], 4)
				sent[a-1] += 4
				return bets
			}
			for a := 1; a <= 5; a++ {
				commitOne(t, l.Batches(a), next(a))
				durable[a-1] = sent[a-1]
			}

			tt.breakDisk(d)
			// Five connections lose batches and go away without committing more,
			// each its own way.
			// Agency 1: its batch is lost to another's commit; it never commits.
			b1 := l.Batches(1)
			require.NoError(t, addBets(t, b1, next(1), nil))
			// Agency 2: its own commit reports the loss (of agency 1's batch too).
			b2 := l.Batches(2)
			require.NoError(t, addBets(t, b2, next(2), nil))
			n, err := b2.Commit()
			require.ErrorIs(t, err, ErrLost)
			require.Zero(t, n)
			// Agency 1 sends more and is refused, then its connection drops.
			require.Error(t, addBets(t, b1, next(1), nil))
			// Agency 3: HELLO is refused while the disk is broken.
			require.Error(t, l.Ready())
			// Agency 4: its Add heals (no probe) and its commit fails: a second failure.
			b4 := l.Batches(4)
			if err := addBets(t, b4, next(4), nil); err == nil {
				n, err = b4.Commit()
				require.ErrorIs(t, err, ErrLost)
				require.Zero(t, n)
			}
			// Agency 5: a batch added, and the connection drops before its commit.
			b5 := l.Batches(5)
			if err := addBets(t, b5, next(5), nil); err == nil {
				// Agency 3 again, still broken: another failure loses agency 5's batch.
				b3 := l.Batches(3)
				require.NoError(t, addBets(t, b3, next(3), nil))
				n, err = b3.Commit()
				require.ErrorIs(t, err, ErrLost)
				require.Zero(t, n)
			}
			// One connection fails again while it is still broken.
			b2 = l.Batches(2)
			if err := addBets(t, b2, next(2), nil); err == nil {
				_, err = b2.Commit()
				require.ErrorIs(t, err, ErrLost)
			}
			for a := 1; a <= 5; a++ {
				require.EqualValues(t, durable[a-1], l.Agency(a).Stored, "agency %d: nothing more durable while broken", a)
			}

			d.set(false, false)
			// A new connection of every agency stores and commits, from its count.
			for _, a := range []int{1, 2, 3, 4, 5} {
				require.NoError(t, l.Ready(), "HELLO of agency %d", a)
				sent[a-1] = int(l.Agency(a).Stored)
				b := l.Batches(a)
				require.NoError(t, addBets(t, b, next(a), nil), "agency %d locked out", a)
				require.NoError(t, addBets(t, b, next(a), nil), "agency %d locked out", a)
				n, err := b.Commit()
				require.NoError(t, err, "agency %d locked out", a)
				require.Equal(t, 2, n)
				durable[a-1] = sent[a-1]
			}
			got := storedBets(t, l.path)
			for a := 1; a <= 5; a++ {
				assert.Equal(t, agencyBetsFor(a, 0, durable[a-1]), got[a], "agency %d: its bets once, in order", a)
			}
			assertConsistent(t, l, l.path)
		})
	}
}

// Acknowledged bets lost after two storage failures: in the old ledger a
// batch refused for an earlier lost one, between two failures, could make a
// later batch of another agency look durable when the second failure had
// lost it, and counts then disagreed with the file. Agencies 1 and 2 write,
// the fsync fails; agency 3 writes (healing the file) and agency 4 writes;
// agency 1 writes again on its old connection and is refused; the next
// fsync fails too. No commit may report a lost batch durable, every count
// and winner must be the file's, and once the agencies resume every
// acknowledged bet is in the file exactly once.
func TestNoAcknowledgedBetsLostAfterTwoStorageFailures(t *testing.T) {
	tests := []struct {
		name  string
		leads int // the agency whose commit leads the second, failing fsync
	}{
		{"agency 3 leads the second fsync", 3},
		{"agency 4 leads the second fsync", 4},
		{"agency 1 commits first, then agency 4 leads", 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			l, d, _ := openFaulty(t, 4)
			// Bets of 5 each, every agency's third a winner: batch i of agency a
			// is its bets 5i..5i+4.
			const size = 5
			bets := func(a, batch int) []lottery.Bet {
				out := agencyBetsFor(a, batch*size, size)
				out[2].Number = lottery.WinningNumber
				return out
			}
			add := func(b *Batches, a, batch int) error {
				return b.Add(rowsOf(t, bets(a, batch)), wireOf(bets(a, batch)), winnersOf(bets(a, batch)))
			}
			acked := make([]int, 4) // each agency's acknowledged batches, from its first
			commit := func(b *Batches, a, from, added int) (int, error) {
				n, err := b.Commit()
				if n > 0 {
					require.Equal(t, acked[a-1], from, "agency %d: acknowledged past a gap", a)
					acked[a-1] = from + n
				}
				require.LessOrEqual(t, n, added)
				return n, err
			}
			// Every agency has a durable batch first.
			for a := 1; a <= 4; a++ {
				b := l.Batches(a)
				require.NoError(t, add(b, a, 0))
				n, err := commit(b, a, 0, 1)
				require.NoError(t, err)
				require.Equal(t, 1, n)
			}

			b1, b2 := l.Batches(1), l.Batches(2)
			require.NoError(t, add(b1, 1, 1))
			require.NoError(t, add(b2, 2, 1))
			d.set(false, true)
			n, err := commit(b2, 2, 1, 1) // the fsync fails: agencies 1 and 2 lost
			require.ErrorIs(t, err, ErrLost)
			require.Zero(t, n)
			d.set(false, false)

			b3, b4 := l.Batches(3), l.Batches(4)
			require.NoError(t, add(b3, 3, 1), "agency 3's batch heals the file")
			require.NoError(t, add(b4, 4, 1))
			err = add(b1, 1, 2)
			require.ErrorIs(t, err, syscall.EIO, "agency 1's old connection is refused: its batch was lost")

			d.set(false, true) // the next fsync fails too
			if tt.leads == 1 {
				n, err := commit(b1, 1, 1, 2)
				require.ErrorIs(t, err, ErrLost)
				require.Zero(t, n, "agency 1: both its batches were lost")
			}
			order := []struct {
				a int
				b *Batches
			}{{3, b3}, {4, b4}}
			if tt.leads != 3 {
				order[0], order[1] = order[1], order[0]
			}
			for _, c := range order {
				n, err := commit(c.b, c.a, 1, 1)
				require.ErrorIs(t, err, ErrLost, "agency %d: its batch was lost to the second failure", c.a)
				require.Zero(t, n, "agency %d: a lost batch reported durable", c.a)
			}
			if tt.leads != 1 {
				n, err := commit(b1, 1, 1, 2)
				require.ErrorIs(t, err, ErrLost)
				require.Zero(t, n, "agency 1: both its batches were lost")
			}
			d.set(false, false)
			for a := 1; a <= 4; a++ {
				assert.EqualValues(t, size, l.Agency(a).Stored, "agency %d: only its first batch is durable", a)
			}
			assertConsistent(t, l, l.path)

			// Every agency resumes on a new connection from its count.
			for a := 1; a <= 4; a++ {
				require.NoError(t, l.Ready())
				from := int(l.Agency(a).Stored) / size
				b := l.Batches(a)
				require.NoError(t, add(b, a, from))
				require.NoError(t, add(b, a, from+1))
				n, err := commit(b, a, from, 2)
				require.NoError(t, err)
				require.Equal(t, 2, n)
			}
			assertEveryAckedOnce(t, l.path, acked, bets)
			assertConsistent(t, l, l.path)
			for a := 1; a <= 4; a++ {
				assert.EqualValues(t, acked[a-1]*size, l.Agency(a).Stored)
				assert.Equal(t, acked[a-1], l.Agency(a).Winners)
			}
			require.NoError(t, l.Close())
			assertEveryAckedOnce(t, l.path, acked, bets)
		})
	}
}

// assertEveryAckedOnce requires the file to hold, for each agency, exactly
// its first acked batches (made by bets), in order.
func assertEveryAckedOnce(t *testing.T, path string, acked []int, bets func(a, batch int) []lottery.Bet) {
	t.Helper()
	got := storedBets(t, path)
	for a := 1; a <= len(acked); a++ {
		var want []lottery.Bet
		for i := range acked[a-1] {
			want = append(want, bets(a, i)...)
		}
		assert.True(t, slices.Equal(want, got[a]), "agency %d: its %d acknowledged batches, each once, in order; the file holds %d bets of it",
			a, acked[a-1], len(got[a]))
	}
}
