package ledger

import (
	"os"
	"path/filepath"
	"slices"
	"syscall"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"lotterycentral.example/lottery"
	"lotterycentral.example/protocol"
)

// The ledger's rules for group commit under faults, driven directly (the old
// central's TestLedgerStorageFaults, on the new API).
func TestLedgerStorageFaults(t *testing.T) {
	batch := func(agency int) []lottery.Bet { return agencyBetsFor(agency, 0, 3) }
	// big is a batch whose rows pass writeEvery: its Add hands them to the OS at once.
	big := func(agency int) []lottery.Bet { return agencyBetsFor(agency, 0, 2000) }
	add := func(t *testing.T, b *Batches, bets []lottery.Bet) error {
		t.Helper()
		return b.Add(rowsOf(t, bets), wireOf(bets), winnersOf(bets))
	}
	tests := []struct {
		name string
		// run plays the case; acked is the bets file's length with agency 5's
		// durable batch, before anything failed.
		run  func(t *testing.T, l *Ledger, d *faultyDisk, logs *logBuffer, acked int64)
		want map[int][]lottery.Bet // the bets file afterwards, besides agency 5's durable batch; nil: not checked
	}{
		{"a failed fsync loses every batch it was to cover", func(t *testing.T, l *Ledger, d *faultyDisk, logs *logBuffer, acked int64) {
			b1, b2 := l.Batches(1), l.Batches(2)
			require.NoError(t, add(t, b1, batch(1)))
			require.NoError(t, add(t, b2, batch(2)))
			d.set(false, true)
			n, err := b1.Commit()
			require.ErrorIs(t, err, ErrLost)
			require.ErrorIs(t, err, syscall.EIO)
			assert.Zero(t, n)
			d.set(false, false)
			// Agency 2's connection has not heard yet: nothing of it lands after its lost batch.
			err = add(t, b2, agencyBetsFor(2, 3, 3))
			require.ErrorIs(t, err, syscall.EIO, "refused for its lost batch")
			assert.Zero(t, logs.Count("action: reparar_almacenamiento"), "a refused batch heals nothing")
			assert.Equal(t, acked, fileSize(t, l.path), "the refused batch wrote nothing")
			n, err = b2.Commit()
			require.ErrorIs(t, err, ErrLost, "agency 2's batch shared the failed fsync")
			assert.Zero(t, n)
			assert.Zero(t, l.Agency(1).Stored)
			assert.Zero(t, l.Agency(2).Stored)
			assert.Zero(t, l.Agency(2).Batches)
		}, map[int][]lottery.Bet{}},
		{"a write failing during an fsync loses what the fsync covered", func(t *testing.T, l *Ledger, d *faultyDisk, _ *logBuffer, acked int64) {
			b1, b2 := l.Batches(1), l.Batches(2)
			require.NoError(t, add(t, b1, batch(1)))
			d.setOnSync(func() {
				// Agency 2's batch arrives during agency 1's fsync, and its write fails.
				d.set(true, false)
				assert.ErrorIs(t, add(t, b2, big(2)), syscall.ENOSPC)
			})
			n, err := b1.Commit()
			require.ErrorIs(t, err, ErrLost, "the fsync succeeded, but a write failed during it and cut the file")
			assert.Zero(t, n)
			assert.Zero(t, l.Agency(1).Stored)
			assert.Equal(t, acked, fileSize(t, l.path), "cut back to before agency 1's batch")

			// The fsync proved nothing: healing cuts back to before agency 1's batch and appends there.
			d.set(false, false)
			n, err = b2.Commit()
			require.ErrorIs(t, err, ErrLost)
			assert.Zero(t, n)
			commitOne(t, l.Batches(2), batch(2))
		}, map[int][]lottery.Bet{2: batch(2)}},
		{"a connection whose batch was lost writes nothing more until its Commit, then the next Add heals and stores",
			func(t *testing.T, l *Ledger, d *faultyDisk, logs *logBuffer, acked int64) {
				b1, b2 := l.Batches(1), l.Batches(2)
				require.NoError(t, add(t, b1, batch(1)))
				require.NoError(t, add(t, b2, batch(2)))
				d.set(true, false)
				n, err := b2.Commit() // its write fails: agency 1's batch is lost with it
				require.ErrorIs(t, err, syscall.ENOSPC)
				assert.Zero(t, n)
				d.set(false, false)
				require.ErrorIs(t, add(t, b1, agencyBetsFor(1, 3, 3)), syscall.ENOSPC, "after its lost batch")
				assert.Equal(t, acked, fileSize(t, l.path))
				n, err = b1.Commit()
				require.ErrorIs(t, err, ErrLost)
				assert.Zero(t, n, "neither its lost batch nor the one refused after it")
				assert.Zero(t, logs.Count("action: reparar_almacenamiento"), "nothing healed yet")
				// Its Commit said so: the connection may store again, and its next Add heals first.
				commitOne(t, b1, batch(1))
				assert.Equal(t, 1, logs.Count("action: reparar_almacenamiento | result: success"))
				assert.EqualValues(t, 3, l.Agency(1).Stored)
				assert.EqualValues(t, 1, l.Agency(1).Batches)
			}, map[int][]lottery.Bet{1: batch(1)}},
		{"an Add that fails refuses the connection's next Adds until its Commit", func(t *testing.T, l *Ledger, d *faultyDisk, _ *logBuffer, acked int64) {
			b := l.Batches(1)
			d.set(true, false)
			require.ErrorIs(t, add(t, b, big(1)), syscall.ENOSPC)
			d.set(false, false)
			require.ErrorIs(t, add(t, b, batch(1)), syscall.ENOSPC)
			require.ErrorIs(t, add(t, b, batch(1)), syscall.ENOSPC)
			assert.Equal(t, acked, fileSize(t, l.path))
			n, err := b.Commit()
			require.ErrorIs(t, err, ErrLost)
			assert.Zero(t, n)
			commitOne(t, b, batch(1))
		}, map[int][]lottery.Bet{1: batch(1)}},
		{"a batch after durable ones is lost alone", func(t *testing.T, l *Ledger, d *faultyDisk, _ *logBuffer, _ int64) {
			b := l.Batches(1)
			first, second := agencyBetsFor(1, 0, 3), agencyBetsFor(1, 3, 3)
			require.NoError(t, add(t, b, first))
			// Another connection's commit makes agency 1's first batch durable with its own.
			commitOne(t, l.Batches(2), batch(2))
			require.NoError(t, add(t, b, second))
			d.set(false, true)
			n, err := b.Commit()
			require.ErrorIs(t, err, ErrLost)
			assert.Equal(t, 1, n, "its first batch was durable")
			assert.EqualValues(t, 3, l.Agency(1).Stored)
			d.set(false, false)
		}, map[int][]lottery.Bet{1: agencyBetsFor(1, 0, 3), 2: batch(2)}},
		{"a write that fails leaving part of a row is cut back", func(t *testing.T, l *Ledger, d *faultyDisk, _ *logBuffer, acked int64) {
			b := l.Batches(1)
			require.NoError(t, add(t, b, batch(1)))
			d.tearNextWrite("1,Parti")
			d.set(true, false)
			n, err := b.Commit()
			require.ErrorIs(t, err, ErrLost)
			assert.Zero(t, n)
			assert.Equal(t, acked, fileSize(t, l.path), "the torn row was cut")
			d.set(false, false)
			commitOne(t, l.Batches(1), batch(1))
		}, map[int][]lottery.Bet{1: batch(1)}},
		{"a tail damaged while broken is cut before the next append", func(t *testing.T, l *Ledger, d *faultyDisk, _ *logBuffer, acked int64) {
			b := l.Batches(1)
			require.NoError(t, add(t, b, batch(1)))
			d.set(true, false)
			_, err := b.Commit()
			require.ErrorIs(t, err, ErrLost)
			require.NoError(t, appendFile(l.path, "1,Ana,Pérez,1"))
			d.set(false, false)
			commitOne(t, l.Batches(1), batch(1))
		}, map[int][]lottery.Bet{1: batch(1)}},
		{"Ready refuses while the disk is full and heals once it has room", func(t *testing.T, l *Ledger, d *faultyDisk, logs *logBuffer, acked int64) {
			require.NoError(t, l.Ready(), "nothing failed yet")
			b := l.Batches(1)
			require.NoError(t, add(t, b, batch(1)))
			d.set(true, false)
			_, err := b.Commit()
			require.ErrorIs(t, err, ErrLost)
			require.ErrorIs(t, l.Ready(), syscall.ENOSPC, "the probe finds no room")
			require.ErrorIs(t, l.Ready(), syscall.ENOSPC)
			assert.Equal(t, 2, logs.Count("action: reparar_almacenamiento | result: fail"))
			_, err = os.Stat(probePath(l.path))
			assert.ErrorIs(t, err, os.ErrNotExist, "the probe is removed")
			d.set(false, false)
			require.NoError(t, l.Ready())
			assert.Equal(t, 1, logs.Count("action: reparar_almacenamiento | result: success"))
			assert.Contains(t, d.Calls(), "write bets.csv.probe")
			assert.Equal(t, acked, fileSize(t, l.path))
			require.NoError(t, l.Ready(), "healed")
			commitOne(t, l.Batches(1), batch(1))
		}, map[int][]lottery.Bet{1: batch(1)}},
		{"a cut that fails is made before the next append", func(t *testing.T, l *Ledger, d *faultyDisk, _ *logBuffer, acked int64) {
			b := l.Batches(1)
			require.NoError(t, add(t, b, batch(1)))
			d.tearNextWrite("1,Parti")
			d.set(true, false)
			d.failTruncates(true)
			_, err := b.Commit()
			require.ErrorIs(t, err, ErrLost)
			assert.Greater(t, fileSize(t, l.path), acked, "the torn row stays: its cut failed")
			d.set(false, false)
			require.ErrorIs(t, add(t, l.Batches(1), batch(1)), syscall.EIO, "an append on an uncut tail")
			require.ErrorIs(t, l.Ready(), syscall.EIO)
			d.failTruncates(false)
			commitOne(t, l.Batches(1), batch(1))
		}, map[int][]lottery.Bet{1: batch(1)}},
		{"healing refuses a tail that is not a whole row", func(t *testing.T, l *Ledger, d *faultyDisk, _ *logBuffer, acked int64) {
			b := l.Batches(3)
			require.NoError(t, add(t, b, batch(3)))
			d.set(true, false)
			_, err := b.Commit()
			require.ErrorIs(t, err, ErrLost)
			d.set(false, false)
			require.NoError(t, os.Truncate(l.path, acked-2)) // an operator or a disk ate the end of a row
			assert.ErrorContains(t, l.Ready(), "does not end on a whole row")
			assert.ErrorContains(t, add(t, l.Batches(3), batch(3)), "does not end on a whole row")
		}, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			l, d, logs := openFaulty(t, 5)
			commitOne(t, l.Batches(5), batch(5)) // durable before anything fails
			acked := fileSize(t, l.path)

			tt.run(t, l, d, logs, acked)

			if tt.want != nil {
				tt.want[5] = batch(5)
				assert.Equal(t, tt.want, storedBets(t, l.path), "the file holds exactly the durable batches")
				assertConsistent(t, l, l.path)
				require.NoError(t, l.Close())
				assert.Equal(t, tt.want, storedBets(t, l.path), "and so it does once closed")
			}
		})
	}
}

// FINISH: checked against the stored bets, journaled durably before it is
// acknowledged, never twice; a failed one leaves no line behind and the
// same FINISH succeeds when retried; recovery marks the agency finished.
func TestFinish(t *testing.T) {
	bets := agencyBetsFor(1, lottery.WinningNumber-1, 3) // its second bet wins
	tests := []struct {
		name string
		// fail breaks the disk before the first FINISH of agency 1 (3 bets stored);
		// nil leaves it whole.
		fail    func(d *faultyDisk)
		total   uint64
		wantErr error // the first FINISH's; nil: it succeeds
	}{
		{"the stored total", nil, 3, nil},
		{"a total above the stored bets", nil, 4, ErrCount},
		{"a total below the stored bets", nil, 2, ErrCount},
		{"the journal's write fails", func(d *faultyDisk) { d.set(true, false) }, 3, syscall.ENOSPC},
		{"the journal's write fails leaving part of a line", func(d *faultyDisk) {
			d.tearNextWrite("1,")
			d.set(true, false)
		}, 3, syscall.ENOSPC},
		{"the journal's fsync fails", func(d *faultyDisk) { d.set(false, true) }, 3, syscall.EIO},
		{"the journal's write fails and so does its cut", func(d *faultyDisk) {
			d.tearNextWrite("1,")
			d.set(true, false)
			d.failTruncates(true)
		}, 3, syscall.ENOSPC},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			l, d, _ := openFaulty(t, 2)
			commitOne(t, l.Batches(1), bets)
			if tt.fail != nil {
				tt.fail(d)
			}
			pending, err := l.Finish(1, tt.total)
			if tt.wantErr == nil {
				require.NoError(t, err)
				assert.Equal(t, 1, pending)
			} else {
				require.ErrorIs(t, err, tt.wantErr)
				assert.False(t, l.Agency(1).Finished)
				if tt.fail == nil {
					assert.Empty(t, readJournal(t, l.path), "a refused FINISH writes nothing")
				} else if !d.truncFail {
					assert.Empty(t, readJournal(t, l.path), "a FINISH not acknowledged leaves nothing in the journal")
				}
				// The agency comes back once the disk has room, with the right total.
				d.set(false, false)
				d.failTruncates(false)
				pending, err = l.Finish(1, 3)
				require.NoError(t, err)
				assert.Equal(t, 1, pending)
			}
			assert.Equal(t, finLine(1, bets), readJournal(t, l.path))
			assert.True(t, l.Agency(1).Finished)
			assert.Equal(t, digestOf(bets), l.Agency(1).Digest, "the digest of its rows, journaled")
			_, err = l.Finish(1, 3)
			require.ErrorIs(t, err, ErrFinished, "a second FINISH")
			require.ErrorIs(t, l.Batches(1).Add(rowsOf(t, agencyBetsFor(1, 10, 1)), wireOf(agencyBetsFor(1, 10, 1)), nil), ErrFinished, "bets after FINISH")
			assert.Equal(t, finLine(1, bets), readJournal(t, l.path), "one line per agency")
			assert.Equal(t, []int{2}, l.Round().Pending())
			assert.False(t, l.Round().Complete())

			require.NoError(t, l.Close())
			l2, rec, err := Open(l.path, Options{Agencies: 2})
			require.NoError(t, err)
			defer l2.Close()
			assert.Equal(t, Recovered{Bets: 3, Agencies: 1, Finished: 1}, rec)
			assert.Equal(t, Agency{Stored: 3, Finished: true, Winners: 1, Digest: digestOf(bets)}, l2.Agency(1))
			assert.Equal(t, []string{bets[1].Document}, l2.Winners(1))
			_, err = l2.Finish(1, 3)
			require.ErrorIs(t, err, ErrFinished, "a FINISH after the restart")
			pending, err = l2.Finish(2, 0)
			require.NoError(t, err, "an agency without bets finishes with 0")
			assert.Zero(t, pending)
			assert.True(t, l2.Round().Complete())
			assert.Equal(t, protocol.RoundDigest([]protocol.Digest{digestOf(bets), digestOf(nil)}), l2.Round().Digest)
		})
	}
}

// readJournal is the FINISH journal's content.
func readJournal(t *testing.T, betsPath string) string {
	t.Helper()
	data, err := os.ReadFile(JournalPath(betsPath))
	require.NoError(t, err)
	return string(data)
}

// Round adds up the agencies; Pending lists the ones that have not finished,
// and Complete says when none is left; each FINISH says how many are.
func TestRound(t *testing.T) {
	l, path, _ := openTest(t, 4, nil)
	r := l.Round()
	assert.Equal(t, []int{1, 2, 3, 4}, r.Pending())
	assert.False(t, r.Complete())
	assert.Equal(t, Round{Agencies: make([]Agency, 4)}, r)

	sizes := []int{5, 0, lottery.WinningNumber + 1, 2} // agency 3's last bet wins
	for a, n := range sizes {
		if n > 0 {
			commitOne(t, l.Batches(a+1), agencyBetsFor(a+1, 0, n))
		}
	}
	r = l.Round()
	assert.EqualValues(t, 5+lottery.WinningNumber+1+2, r.Bets)
	assert.Equal(t, 1, r.Winners)
	assert.Equal(t, Agency{Stored: uint64(lottery.WinningNumber + 1), Batches: 1, Winners: 1}, r.Agencies[2])

	for i, a := range []int{3, 1, 4, 2} {
		pending, err := l.Finish(a, uint64(sizes[a-1]))
		require.NoError(t, err)
		assert.Equal(t, 3-i, pending, "FINISH of agency %d", a)
		r = l.Round()
		assert.Equal(t, i+1, r.Finished)
		assert.Equal(t, 3-i, len(r.Pending()))
		assert.NotContains(t, r.Pending(), a)
		assert.Equal(t, pending == 0, r.Complete())
	}
	assert.Empty(t, l.Round().Pending())
	assert.True(t, l.Round().Complete())
	assertConsistent(t, l, path)

	require.NoError(t, l.Close())
	l2, rec, err := Open(path, Options{Agencies: 4})
	require.NoError(t, err)
	defer l2.Close()
	assert.Equal(t, Recovered{Bets: r.Bets, Agencies: 3, Finished: 4}, rec)
	r2 := l2.Round()
	for i := range r2.Agencies {
		r2.Agencies[i].Batches = r.Agencies[i].Batches // counted since the central started
	}
	assert.Equal(t, r, r2)
	assert.True(t, slices.Equal([]string{agencyBetsFor(3, 0, lottery.WinningNumber+1)[lottery.WinningNumber].Document},
		l2.Winners(3)))
	assert.Equal(t, filepath.Join(filepath.Dir(path), "bets.csv.finished"), JournalPath(path))
}

// A finished agency's bets are final: its FINISH is checked against its
// stored bets, and a batch of it still in flight at that moment (added, not
// committed) must not be counted after it. Otherwise the journal says one
// total and the bets file holds more: its winners change after the round
// completed (Winners promises they never do), and the next Open refuses the
// files ("agency 1 finished with 3 bets but ... holds 6 of its bets"), so the
// central cannot restart. Either Finish refuses while a batch of the agency
// is in flight, or the batch is refused at its commit; both keep the facts
// final and the files recoverable.
func TestNoBetsCountedAfterFinish(t *testing.T) {
	tests := []struct {
		name  string
		cover bool // agency 3's commit covers agency 1's batch before agency 1's own commit
	}{
		{"its own commit", false},
		{"another agency's commit covers it", true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			l, path, _ := openTest(t, 3, nil)
			first := agencyBetsFor(1, 0, 3)
			commitOne(t, l.Batches(1), first)
			b := l.Batches(1)
			late := agencyBetsFor(1, lottery.WinningNumber, 3) // its first bet wins
			require.NoError(t, b.Add(rowsOf(t, late), wireOf(late), winnersOf(late)))

			_, finishErr := l.Finish(1, 3)
			require.ErrorIs(t, finishErr, ErrCount, "FINISH while a batch of the agency is on its way")
			_, err := l.Finish(2, 0)
			require.NoError(t, err)
			if !tt.cover {
				_, err = l.Finish(3, 0)
				require.NoError(t, err)
				require.False(t, l.Round().Complete(), "agency 1's FINISH was refused")
			}
			winners := slices.Clone(l.Winners(1))
			if tt.cover {
				commitOne(t, l.Batches(3), agencyBetsFor(3, 0, 1))
			}
			_, _ = b.Commit()
			if tt.cover {
				_, err = l.Finish(3, 1)
				require.NoError(t, err)
			}

			if finishErr == nil {
				assert.EqualValues(t, 3, l.Agency(1).Stored, "a batch counted after its agency's FINISH of 3 bets")
				assert.Equal(t, winners, l.Winners(1), "winners changed after the agency finished")
			}
			require.NoError(t, l.Close())
			l2, _, err := Open(path, Options{Agencies: 3})
			require.NoError(t, err, "the files the ledger left must be recoverable")
			l2.Close()
		})
	}
}

// Close after a storage failure (SIGTERM while the disk is broken): a
// failure not healed yet is repaired first — the bets file cut back to its
// synced rows and fsynced — and Close succeeds when the file then holds
// exactly the acknowledged bets; it fails, naming the repair, when the
// repair cannot be made durable.
func TestCloseAfterStorageFailure(t *testing.T) {
	tests := []struct {
		name     string
		heal     bool // a HELLO heals the ledger before Close
		syncFail bool // fsyncs still fail at Close
		wantErr  error
	}{
		{"healed before Close", true, false, nil},
		{"repaired at Close", false, false, nil},
		{"fsyncs still fail at Close", false, true, syscall.EIO},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			l, d, logs := openFaulty(t, 2)
			acked := agencyBetsFor(1, 0, 10)
			commitOne(t, l.Batches(1), acked)
			size := fileSize(t, l.path)
			b := l.Batches(1)
			require.NoError(t, b.Add(rowsOf(t, agencyBetsFor(1, 10, 5)), wireOf(agencyBetsFor(1, 10, 5)), nil))
			d.tearNextWrite("1,Parti")
			d.set(true, false)
			_, err := b.Commit()
			require.ErrorIs(t, err, ErrLost)
			d.set(false, false)
			if tt.heal {
				require.NoError(t, l.Ready())
			}
			d.set(false, tt.syncFail)

			err = l.Close()
			if tt.wantErr == nil {
				require.NoError(t, err)
			} else {
				require.ErrorIs(t, err, tt.wantErr)
				assert.ErrorContains(t, err, "repair the bets file after a storage failure")
			}
			assert.Zero(t, logs.Count("action: reparar_almacenamiento | result: fail"))
			assert.Equal(t, size, fileSize(t, l.path), "the file holds exactly the acknowledged bets")
			assert.Equal(t, map[int][]lottery.Bet{1: acked}, storedBets(t, l.path))
		})
	}
}

// Close makes no write behind the fault hook's back: Options.Faults says an
// error the hook returns is handled as if the OS had returned it, and rows
// reach the bets file only in writes the hook hears of. Close skips its own
// flush when the repair of an unhealed failure fails, and its flush goes
// through the hook; but lottery.Store.Close then flushes the rows the store
// still gathers by itself, without the hook, and fsyncs them. Here the hook
// refuses those writes, yet the rows — of a batch already reported lost, or
// of one never committed — end up durable in the bets file.
func TestCloseMakesNoWriteTheHookRefused(t *testing.T) {
	tests := []struct {
		name  string
		setup func(t *testing.T, l *Ledger, d *faultyDisk)
	}{
		{"a lost batch's rows, after the repair at Close fails", func(t *testing.T, l *Ledger, d *faultyDisk) {
			// A batch lost to a failed write whose cut fails too: its rows stay
			// gathered in the store, the failure unhealed.
			b := l.Batches(1)
			require.NoError(t, b.Add(rowsOf(t, agencyBetsFor(1, 10, 5)), wireOf(agencyBetsFor(1, 10, 5)), nil))
			d.set(true, false)
			d.failTruncates(true)
			_, err := b.Commit()
			require.ErrorIs(t, err, ErrLost)
		}},
		{"an uncommitted batch's rows, the disk full at Close", func(t *testing.T, l *Ledger, d *faultyDisk) {
			require.NoError(t, l.Batches(2).Add(rowsOf(t, agencyBetsFor(2, 0, 5)), wireOf(agencyBetsFor(2, 0, 5)), nil))
			d.set(true, false)
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			l, d, _ := openFaulty(t, 2)
			acked := agencyBetsFor(1, 0, 10)
			commitOne(t, l.Batches(1), acked)
			size := fileSize(t, l.path)
			tt.setup(t, l, d)

			require.Error(t, l.Close(), "the hook refused Close's writes")
			assert.Equal(t, size, fileSize(t, l.path), "rows written after the hook refused them")
			assert.Equal(t, map[int][]lottery.Bet{1: acked}, storedBets(t, l.path))
		})
	}
}
