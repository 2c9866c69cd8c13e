package draw

import (
	"context"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// newWatched returns a barrier and a channel that receives each parked agency.
func newWatched() (*Barrier, <-chan int) {
	ch := make(chan int, 16)
	return New(func(agency int) { ch <- agency }), ch
}

func waitAsync(ctx context.Context, b *Barrier, agency int) <-chan error {
	out := make(chan error, 1)
	go func() { out <- b.Wait(ctx, agency) }()
	return out
}

// The draw runs once, and not at all once the central is closing.
func TestDrawRunsOnce(t *testing.T) {
	tests := []struct {
		name     string
		closeAt  int // Close before draw call number closeAt; -1 never
		calls    int
		wantRuns int32
	}{
		{"once", -1, 1, 1},
		{"a second draw does nothing", -1, 3, 1},
		{"closed first: no draw", 0, 2, 0},
		{"closed after the draw: it stands", 1, 2, 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b := New(nil)
			var runs atomic.Int32
			for i := range tt.calls {
				if i == tt.closeAt {
					b.Close()
				}
				ran := b.Draw(func() { runs.Add(1) })
				assert.Equal(t, i == 0 && tt.closeAt != 0, ran, "draw call %d", i)
			}
			assert.Equal(t, tt.wantRuns, runs.Load())
			assert.Equal(t, tt.wantRuns == 1, b.Drawn())
		})
	}
}

// Waiters park until the draw, and none wakes before the draw returned.
func TestWaitIsReleasedByTheDraw(t *testing.T) {
	b, parked := newWatched()
	results := map[int]<-chan error{}
	for _, a := range []int{1, 2} {
		results[a] = waitAsync(context.Background(), b, a)
		assert.Equal(t, a, <-parked)
	}
	var drawing atomic.Bool
	b.Draw(func() {
		drawing.Store(true)
		for _, ch := range results {
			select {
			case <-ch:
				t.Error("a waiter woke during the draw")
			default:
			}
		}
	})
	require.True(t, drawing.Load())
	for a, ch := range results {
		require.NoError(t, <-ch, "agency %d", a)
	}
	// After the draw, a wait returns at once without parking.
	require.NoError(t, b.Wait(context.Background(), 3))
	select {
	case a := <-parked:
		t.Fatalf("agency %d parked after the draw", a)
	default:
	}
	assert.Empty(t, b.Snapshot().Parked)
}

// A waiter whose connection dies (its context ends) returns, and the draw
// still releases the others.
func TestWaitEndsWithItsContext(t *testing.T) {
	b, parked := newWatched()
	ctx, cancel := context.WithCancel(context.Background())
	gone := waitAsync(ctx, b, 1)
	<-parked
	stays := waitAsync(context.Background(), b, 2)
	<-parked
	cancel()
	require.ErrorIs(t, <-gone, context.Canceled)
	assert.Equal(t, []int{2}, b.Snapshot().Parked)
	b.Draw(func() {})
	require.NoError(t, <-stays)
}

// Close releases every waiter with ErrClosing and closes Over.
func TestCloseReleasesEveryWaiter(t *testing.T) {
	b, parked := newWatched()
	var results []<-chan error
	for a := 1; a <= 3; a++ {
		results = append(results, waitAsync(context.Background(), b, a))
		<-parked
	}
	b.Close()
	for _, ch := range results {
		require.ErrorIs(t, <-ch, ErrClosing)
	}
	require.ErrorIs(t, b.Wait(context.Background(), 4), ErrClosing)
	select {
	case <-b.Over():
	default:
		t.Fatal("Over is open after Close")
	}
	b.Close() // twice is harmless
}

// Over closes when the draw ran.
func TestOverClosesAtTheDraw(t *testing.T) {
	b := New(nil)
	select {
	case <-b.Over():
		t.Fatal("Over is closed before the draw")
	default:
	}
	b.Draw(func() {})
	<-b.Over()
	b.Close() // after the draw: Over stays closed, nothing panics
}

func TestSnapshot(t *testing.T) {
	b, parked := newWatched()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	w3 := waitAsync(ctx, b, 3)
	<-parked
	w1 := waitAsync(ctx, b, 1)
	<-parked
	s := b.Snapshot()
	assert.Equal(t, []int{1, 3}, s.Parked)
	assert.False(t, s.Drawn)
	assert.True(t, s.At.IsZero())

	before := time.Now()
	b.Draw(func() {})
	require.NoError(t, <-w1)
	require.NoError(t, <-w3)
	b.Answered(1)
	s = b.Snapshot()
	assert.True(t, s.Drawn)
	assert.False(t, s.At.Before(before))
	assert.GreaterOrEqual(t, s.Took, time.Duration(0))
	assert.Empty(t, s.Parked)
	assert.Equal(t, map[int]bool{1: true}, s.Answered)
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
