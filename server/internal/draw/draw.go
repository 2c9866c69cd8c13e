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
	"slices"
	"strconv"
	"strings"
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
	parked   map[int]int // waiters of each agency (briefly two while a connection takes over)
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
	b := &Barrier{agencies: agencies, finished: make(map[int]struct{}), parked: make(map[int]int), run: run}
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
	if !b.drawn && !b.closing && ctx.Err() == nil {
		b.parked[agency]++
		defer b.unpark(agency) // before the unlock: defers run last in, first out
		if b.onPark != nil {
			b.onPark(agency)
		}
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

func (b *Barrier) unpark(agency int) {
	if b.parked[agency]--; b.parked[agency] <= 0 {
		delete(b.parked, agency)
	}
}

// Counts is how many agencies have finished, how many the draw still waits
// for, and how many are parked waiting for their winners right now.
func (b *Barrier) Counts() (finished, pending, parked int) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return len(b.finished), b.agencies - len(b.finished), len(b.parked)
}

// Snapshot is the barrier's state at one moment, for the operator's eyes:
// the log line naming the agencies still awaited, the status page, metrics.
type Snapshot struct {
	Agencies int   // in the draw, numbered 1..Agencies
	Pending  []int // agencies that have not finished, ascending
	Finished int   // agencies that have finished
	Parked   []int // agencies waiting for their winners now, ascending
	Drawn    bool
	Failed   bool // the draw ran and failed: nobody gets winners
	Closing  bool // the central is shutting down
	// Winners counts each agency's winners once drawn (an agency without
	// winners is absent); documents never leave the barrier through it.
	Winners map[int]int
}

// Snapshot copies the barrier's state. It costs one pass over the agencies:
// call it from an operator's request or a timer, not per bet.
func (b *Barrier) Snapshot() Snapshot {
	b.mu.Lock()
	defer b.mu.Unlock()
	s := Snapshot{Agencies: b.agencies, Finished: len(b.finished), Drawn: b.drawn,
		Failed: b.drawn && b.drawErr != nil, Closing: b.closing}
	s.Pending = make([]int, 0, b.agencies-len(b.finished))
	for a := 1; a <= b.agencies; a++ {
		if _, ok := b.finished[a]; !ok {
			s.Pending = append(s.Pending, a)
		}
	}
	s.Parked = make([]int, 0, len(b.parked))
	for a := range b.parked {
		s.Parked = append(s.Parked, a)
	}
	slices.Sort(s.Parked)
	if b.drawn {
		s.Winners = make(map[int]int, len(b.winners))
		for a, docs := range b.winners {
			s.Winners[a] = len(docs)
		}
	}
	return s
}

// FormatAgencies writes ascending agency numbers compactly: runs of three or
// more as ranges ("1-3,7,9,10"). After maxRuns runs it stops and says how
// many agencies it left out ("1-3,7,...+120 more"); maxRuns <= 0 lists all.
// It is "none" for no agency.
func FormatAgencies(agencies []int, maxRuns int) string {
	if len(agencies) == 0 {
		return "none"
	}
	var sb strings.Builder
	runs := 0
	for i := 0; i < len(agencies); {
		j := i
		for j+1 < len(agencies) && agencies[j+1] == agencies[j]+1 {
			j++
		}
		if maxRuns > 0 && runs == maxRuns {
			fmt.Fprintf(&sb, ",...+%d more", len(agencies)-i)
			break
		}
		if runs > 0 {
			sb.WriteByte(',')
		}
		switch {
		case j-i >= 2:
			fmt.Fprintf(&sb, "%d-%d", agencies[i], agencies[j])
		case j == i+1:
			fmt.Fprintf(&sb, "%d,%d", agencies[i], agencies[j])
		default:
			sb.WriteString(strconv.Itoa(agencies[i]))
		}
		runs++
		i = j + 1
	}
	return sb.String()
}

// Close releases every waiter with ErrClosing (unless the draw already ran)
// and refuses further FINISHes.
func (b *Barrier) Close() {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.closing = true
	b.cond.Broadcast()
}
