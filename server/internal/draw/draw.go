// Package draw holds the draw barrier: the one value that knows which agencies
// have finished, runs the draw exactly once when the last one does, and parks
// every agency asking for its winners until then. Nobody polls: waiters sleep
// on a sync.Cond and are woken by the draw, by shutdown, or by their own
// connection going away.
package draw

import (
	"context"
	"errors"
	"fmt"
	"sync"
)

// ErrClosing is returned to waiters when the central shuts down before the draw.
var ErrClosing = errors.New("central shutting down")

// Func runs the draw: it returns the winning documents of each agency.
// It is called once, with the barrier's lock held, so that no waiter can see
// a half-made result. It may give up with ErrClosing when the central stops:
// the barrier then closes instead of drawing.
type Func func() (map[int][]string, error)

// Barrier is the lottery's synchronisation point.
type Barrier struct {
	mu       sync.Mutex
	cond     *sync.Cond
	agencies int
	finished map[int]struct{}
	drawn    bool
	closing  bool
	winners  map[int][]string
	drawErr  error
	run      Func
	onPark   func(agency int)
}

// New returns a barrier that draws with run once agencies distinct agencies
// have finished.
func New(agencies int, run Func) *Barrier {
	b := &Barrier{agencies: agencies, finished: make(map[int]struct{}), run: run}
	b.cond = sync.NewCond(&b.mu)
	return b
}

// OnPark registers f to be called, with the lock held, each time a waiter
// parks. It lets the central log the moment and tests await it. Call it
// before the barrier is shared.
func (b *Barrier) OnPark(f func(agency int)) { b.onPark = f }

// Finish records agency's FINISH. A repeated FINISH counts once. The call
// that completes the set runs the draw, wakes every waiter, and reports
// drew=true (with the draw's error, if any).
func (b *Barrier) Finish(agency int) (drew bool, err error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.closing {
		return false, ErrClosing
	}
	b.finished[agency] = struct{}{}
	if b.drawn || len(b.finished) < b.agencies {
		return false, nil
	}
	winners, err := b.run()
	if errors.Is(err, ErrClosing) {
		// The draw gave up for a shutdown: nothing was drawn.
		b.closing = true
		b.cond.Broadcast()
		return false, err
	}
	b.winners, b.drawErr = winners, err
	b.drawn = true
	b.cond.Broadcast()
	if b.drawErr != nil {
		return true, fmt.Errorf("run draw: %w", b.drawErr)
	}
	return true, nil
}

// State tells whether agency has finished and whether the draw ran.
func (b *Barrier) State(agency int) (finished, drawn bool) {
	b.mu.Lock()
	defer b.mu.Unlock()
	_, finished = b.finished[agency]
	return finished, b.drawn
}

// Pending is how many agencies have not finished yet.
func (b *Barrier) Pending() int {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.agencies - len(b.finished)
}

// Wait blocks until the draw ran, then returns agency's winners (and only
// agency's). It returns early with ErrClosing on shutdown, or with ctx's
// error when ctx ends — the caller cancels ctx when the agency's connection
// dies, so a parked goroutine never outlives its socket.
func (b *Barrier) Wait(ctx context.Context, agency int) ([]string, error) {
	// Cond cannot select on a channel: wake every waiter when ctx ends, and
	// let each re-check its own condition.
	stop := context.AfterFunc(ctx, func() {
		b.mu.Lock()
		defer b.mu.Unlock()
		b.cond.Broadcast()
	})
	defer stop()

	b.mu.Lock()
	defer b.mu.Unlock()
	if !b.drawn && !b.closing && ctx.Err() == nil && b.onPark != nil {
		b.onPark(agency)
	}
	for !b.drawn && !b.closing && ctx.Err() == nil {
		b.cond.Wait()
	}
	switch {
	case b.drawn && b.drawErr != nil:
		return nil, fmt.Errorf("wait for draw: %w", b.drawErr)
	case b.drawn:
		return b.winners[agency], nil
	case b.closing:
		return nil, ErrClosing
	default:
		return nil, fmt.Errorf("wait for draw: %w", ctx.Err())
	}
}

// Close releases every waiter with ErrClosing (unless the draw already ran)
// and refuses further FINISHes.
func (b *Barrier) Close() {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.closing = true
	b.cond.Broadcast()
}
