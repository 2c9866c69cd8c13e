// Package draw holds the draw barrier: the one place a session waits for
// others. An agency asking for its winners parks here until the draw ran;
// nobody polls: waiters sleep on a sync.Cond and are woken by the draw, by
// shutdown, or by their own connection going away. Which agencies finished
// is the ledger's fact, not the barrier's: the caller that learns from the
// ledger that the round is complete runs the draw (Draw).
package draw

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"
)

// ErrClosing is returned to waiters when the central shuts down before the draw.
var ErrClosing = errors.New("central shutting down")

// Barrier is the lottery's synchronisation point. The zero value is not
// usable: call New.
type Barrier struct {
	mu       sync.Mutex
	cond     *sync.Cond
	drawn    bool
	closing  bool
	at       time.Time     // when the draw ran
	took     time.Duration // how long it took
	parked   map[int]int   // waiters of each agency (briefly two while a connection takes over)
	answered map[int]bool  // agencies whose winners were sent
	over     chan struct{} // closed once drawn or closing
	onPark   func(agency int)
}

// New returns a barrier nobody has passed yet. onPark, if not nil, is
// called with the lock held each time a waiter parks: the central logs the
// moment, and tests await it.
func New(onPark func(agency int)) *Barrier {
	b := &Barrier{parked: make(map[int]int), answered: make(map[int]bool), over: make(chan struct{}), onPark: onPark}
	b.cond = sync.NewCond(&b.mu)
	return b
}

// Draw runs run once, with the lock held so that no waiter wakes before it
// returned, then releases every waiter. It reports false, without running
// run, when the draw already ran or the central is shutting down.
func (b *Barrier) Draw(run func()) bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.drawn || b.closing {
		return false
	}
	began := time.Now()
	run()
	b.at = time.Now()
	b.took = b.at.Sub(began)
	b.drawn = true
	close(b.over)
	b.cond.Broadcast()
	return true
}

// Wait blocks until the draw ran. It returns early with ErrClosing on
// shutdown, or with ctx's error when ctx ends — the caller cancels ctx when
// the agency's connection dies, so a parked goroutine never outlives its socket.
func (b *Barrier) Wait(ctx context.Context, agency int) error {
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
	case b.drawn:
		return nil
	case b.closing:
		return ErrClosing
	}
	return fmt.Errorf("wait for draw: %w", ctx.Err())
}

func (b *Barrier) unpark(agency int) {
	if b.parked[agency]--; b.parked[agency] <= 0 {
		delete(b.parked, agency)
	}
}

// Answered records that agency's winners were sent.
func (b *Barrier) Answered(agency int) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.answered[agency] = true
}

// Over is closed once the draw ran or the central began shutting down:
// nothing is pending any more.
func (b *Barrier) Over() <-chan struct{} { return b.over }

// Drawn reports whether the draw ran.
func (b *Barrier) Drawn() bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.drawn
}

// Close releases every waiter with ErrClosing (unless the draw already ran)
// and refuses the draw from now on.
func (b *Barrier) Close() {
	b.mu.Lock()
	defer b.mu.Unlock()
	if !b.closing && !b.drawn {
		close(b.over)
	}
	b.closing = true
	b.cond.Broadcast()
}

// Snapshot is the barrier's state at one moment, for the operator's eyes.
type Snapshot struct {
	Drawn    bool
	Closing  bool          // the central is shutting down
	At       time.Time     // when the draw ran
	Took     time.Duration // how long it took
	Parked   []int         // agencies waiting for their winners now, ascending
	Answered map[int]bool  // agencies whose winners were sent
}

// Snapshot copies the barrier's state: call it from an operator's request
// or a timer, not per bet.
func (b *Barrier) Snapshot() Snapshot {
	b.mu.Lock()
	defer b.mu.Unlock()
	s := Snapshot{Drawn: b.drawn, Closing: b.closing, At: b.at, Took: b.took,
		Parked: make([]int, 0, len(b.parked)), Answered: make(map[int]bool, len(b.answered))}
	for a := range b.parked {
		s.Parked = append(s.Parked, a)
	}
	slices.Sort(s.Parked)
	for a := range b.answered {
		s.Answered[a] = true
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
