package draw

import (
	"context"
	"errors"
	"fmt"
	"sync/atomic"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// fixedDraw returns a Func with a fixed result that counts its runs.
func fixedDraw(winners map[int][]string, runs *atomic.Int32) Func {
	return func() (map[int][]string, error) {
		runs.Add(1)
		return winners, nil
	}
}

// parked returns a barrier hook and a channel that receives each parked agency.
func parkedChan(b *Barrier) <-chan int {
	ch := make(chan int, 16)
	b.OnPark(func(agency int) { ch <- agency })
	return ch
}

type waitResult struct {
	docs []string
	err  error
}

func waitAsync(ctx context.Context, b *Barrier, agency int) <-chan waitResult {
	out := make(chan waitResult, 1)
	go func() {
		docs, err := b.Wait(ctx, agency)
		out <- waitResult{docs, err}
	}()
	return out
}

func TestFinish(t *testing.T) {
	tests := []struct {
		name     string
		agencies int
		finishes []int
		wantRuns int32
		drewAt   int // index in finishes of the call that drew, -1 for none
	}{
		{"one agency draws at once", 1, []int{1}, 1, 0},
		{"all distinct", 3, []int{3, 1, 2}, 1, 2},
		{"repeated finish counts once", 3, []int{1, 1, 2, 2}, 0, -1},
		{"repeat after completion draws no more", 2, []int{1, 2, 2, 1}, 1, 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var runs atomic.Int32
			b := New(tt.agencies, fixedDraw(nil, &runs))
			for i, a := range tt.finishes {
				drew, err := b.Finish(a)
				require.NoError(t, err)
				assert.Equal(t, i == tt.drewAt, drew, "finish #%d (agency %d)", i, a)
			}
			assert.Equal(t, tt.wantRuns, runs.Load())
		})
	}
}

func TestWaitIsReleasedByTheLastFinishOnly(t *testing.T) {
	var runs atomic.Int32
	winners := map[int][]string{1: {"111"}, 2: {"222", "2222"}}
	b := New(3, fixedDraw(winners, &runs))
	parked := parkedChan(b)

	results := map[int]<-chan waitResult{}
	for _, a := range []int{1, 2} {
		_, err := b.Finish(a)
		require.NoError(t, err)
		results[a] = waitAsync(t.Context(), b, a)
		require.Equal(t, a, <-parked)
	}
	for a, ch := range results {
		select {
		case r := <-ch:
			t.Fatalf("agency %d answered before the draw: %+v", a, r)
		default:
		}
	}
	assert.Zero(t, runs.Load())

	drew, err := b.Finish(3)
	require.NoError(t, err)
	require.True(t, drew)
	for a, ch := range results {
		r := <-ch
		require.NoError(t, r.err)
		assert.Equal(t, winners[a], r.docs, "agency %d gets its own winners only", a)
	}
	// After the draw, Wait answers at once, and an agency without winners gets none.
	docs, err := b.Wait(t.Context(), 3)
	require.NoError(t, err)
	assert.Empty(t, docs)
	assert.Equal(t, int32(1), runs.Load())
}

func TestWaitEndsWithItsContext(t *testing.T) {
	var runs atomic.Int32
	b := New(2, fixedDraw(nil, &runs))
	parked := parkedChan(b)
	ctx1, cancel1 := context.WithCancel(t.Context())
	gone := waitAsync(ctx1, b, 1)
	stays := waitAsync(t.Context(), b, 2)
	<-parked
	<-parked

	cancel1() // agency 1's connection died
	r := <-gone
	require.ErrorIs(t, r.err, context.Canceled)
	select {
	case r := <-stays:
		t.Fatalf("the other agency was released too: %+v", r)
	default:
	}

	_, _ = b.Finish(1)
	_, _ = b.Finish(2)
	r = <-stays
	require.NoError(t, r.err)
}

func TestCloseReleasesEveryWaiter(t *testing.T) {
	var runs atomic.Int32
	b := New(5, fixedDraw(nil, &runs))
	parked := parkedChan(b)
	var chans []<-chan waitResult
	for a := 1; a <= 4; a++ {
		chans = append(chans, waitAsync(t.Context(), b, a))
		<-parked
	}
	b.Close()
	for _, ch := range chans {
		require.ErrorIs(t, (<-ch).err, ErrClosing)
	}
	_, err := b.Finish(5)
	require.ErrorIs(t, err, ErrClosing, "no draw once closing")
	assert.Zero(t, runs.Load())
}

func TestDrawErrorReachesWaiters(t *testing.T) {
	boom := errors.New("disk on fire")
	b := New(1, func() (map[int][]string, error) { return nil, boom })
	drew, err := b.Finish(1)
	assert.True(t, drew)
	require.ErrorIs(t, err, boom)
	_, err = b.Wait(t.Context(), 1)
	require.ErrorIs(t, err, boom)
}

// A draw that gives up for a shutdown draws nothing: the barrier closes and
// every waiter is told so.
func TestDrawInterruptedByShutdown(t *testing.T) {
	b := New(2, func() (map[int][]string, error) { return nil, fmt.Errorf("draw after 16384 bets: %w", ErrClosing) })
	parked := parkedChan(b)
	waiting := waitAsync(t.Context(), b, 1)
	<-parked
	_, err := b.Finish(1)
	require.NoError(t, err)
	drew, err := b.Finish(2)
	require.ErrorIs(t, err, ErrClosing)
	assert.False(t, drew)
	require.ErrorIs(t, (<-waiting).err, ErrClosing)
	finished, drawn := b.State(2)
	assert.True(t, finished)
	assert.False(t, drawn)
}

// A snapshot names who the draw waits for and who is parked, then counts
// winners, never their documents; a waiter that leaves is no longer parked.
func TestSnapshot(t *testing.T) {
	var runs atomic.Int32
	b := New(4, fixedDraw(map[int][]string{1: {"111", "1111"}, 3: {"333"}}, &runs))
	parked := parkedChan(b)
	s := b.Snapshot()
	assert.Equal(t, Snapshot{Agencies: 4, Pending: []int{1, 2, 3, 4}, Parked: []int{}}, s)

	_, _ = b.Finish(3)
	_, _ = b.Finish(1)
	ctx, cancel := context.WithCancel(t.Context())
	gone := waitAsync(ctx, b, 1)
	<-parked
	stays := waitAsync(t.Context(), b, 3)
	<-parked
	s = b.Snapshot()
	assert.Equal(t, []int{2, 4}, s.Pending)
	assert.Equal(t, 2, s.Finished)
	assert.Equal(t, []int{1, 3}, s.Parked)
	assert.False(t, s.Drawn)
	assert.Nil(t, s.Winners)
	finished, pending, nParked := b.Counts()
	assert.Equal(t, [3]int{2, 2, 2}, [3]int{finished, pending, nParked})

	cancel()
	require.ErrorIs(t, (<-gone).err, context.Canceled)
	assert.Equal(t, []int{3}, b.Snapshot().Parked, "a waiter whose connection died is not parked")

	_, _ = b.Finish(2)
	_, _ = b.Finish(4)
	require.NoError(t, (<-stays).err)
	s = b.Snapshot()
	assert.True(t, s.Drawn)
	assert.False(t, s.Failed)
	assert.Empty(t, s.Pending)
	assert.Empty(t, s.Parked)
	assert.Equal(t, map[int]int{1: 2, 3: 1}, s.Winners)

	failed := New(1, func() (map[int][]string, error) { return nil, errors.New("disk on fire") })
	_, _ = failed.Finish(1)
	s = failed.Snapshot()
	assert.True(t, s.Drawn)
	assert.True(t, s.Failed)
	b.Close()
	assert.True(t, b.Snapshot().Closing)
}

func TestFormatAgencies(t *testing.T) {
	many := make([]int, 0, 500)
	for a := 1; a <= 1000; a += 2 {
		many = append(many, a)
	}
	tests := []struct {
		name     string
		agencies []int
		maxRuns  int
		want     string
	}{
		{"none", nil, 0, "none"},
		{"one", []int{3}, 0, "3"},
		{"two apart", []int{2, 5}, 0, "2,5"},
		{"two in a row", []int{4, 5}, 0, "4,5"},
		{"a range", []int{1, 2, 3}, 0, "1-3"},
		{"ranges and singles", []int{1, 2, 3, 7, 9, 10, 12, 13, 14, 15}, 0, "1-3,7,9,10,12-15"},
		{"every one", []int{1, 2, 3, 4, 5, 6, 7, 8, 9, 10}, 1, "1-10"},
		{"cut after maxRuns", []int{1, 2, 3, 7, 9, 11, 12, 13}, 2, "1-3,7,...+4 more"},
		{"many scattered", many, 3, "1,3,5,...+497 more"},
		{"no cut at maxRuns exactly", []int{1, 3}, 2, "1,3"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			assert.Equal(t, tt.want, FormatAgencies(tt.agencies, tt.maxRuns))
		})
	}
}
