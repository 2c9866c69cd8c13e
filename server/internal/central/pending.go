package central

import (
	"sync"
	"time"

	"lotterycentral.example/lottery/logfmt"
	"lotterycentral.example/server/internal/draw"
	"lotterycentral.example/server/internal/ledger"
	"lotterycentral.example/server/internal/vocab"
)

// pendingEvery is how often the central looks at which agencies the draw
// still waits for; it logs them only when they changed.
const pendingEvery = 5 * time.Second

// pendingListed is how many runs of agencies ("1-3", "7") a line or the page
// lists before it only says how many more there are.
const pendingListed = 64

// pendingWatch logs, while the draw waits (at least one agency has
// finished or been excluded, not all), the agencies it waits for, each time
// they change:
//
//	action: esperando_agencias | result: in_progress | pendientes: 2,5
//
// Many agencies are written compactly (draw.FormatAgencies: "1-3,7", and
// after pendingListed runs only how many more).
type pendingWatch struct {
	ticks func() (<-chan time.Time, func()) // its ticker; tests drive it
	last  string                            // the agencies it logged last
	wg    sync.WaitGroup
}

func newPendingWatch() *pendingWatch { return &pendingWatch{ticks: pendingTicker} }

func pendingTicker() (<-chan time.Time, func()) {
	t := time.NewTicker(pendingEvery)
	return t.C, t.Stop
}

// start runs the watch until the draw ran or the central stops; call it once.
func (w *pendingWatch) start(s *Server) {
	w.wg.Add(1)
	go func() {
		defer w.wg.Done()
		l := s.recovery.wait(s.quit)
		if l == nil {
			return // who is pending is known once the journal is read
		}
		ticks, stop := w.ticks()
		defer stop()
		for {
			select {
			case <-s.quit:
				return
			case <-s.barrier.Over():
				return
			case <-ticks:
			}
			if !w.look(s, l) {
				return
			}
		}
	}()
}

// look logs the agencies the draw waits for if some agency has finished and
// they changed since the last look. It reports false once there is nothing
// left to wait for: the draw ran, or the central stops.
func (w *pendingWatch) look(s *Server, l *ledger.Ledger) bool {
	select {
	case <-s.barrier.Over():
		return false
	default:
	}
	r := l.Round()
	pending := r.Pending()
	if len(pending) == len(r.Agencies) {
		return true
	}
	if text := draw.FormatAgencies(pending, pendingListed); text != w.last {
		w.last = text
		s.log.Info(vocab.EsperandoAgencias, logfmt.InProgress, vocab.Pendientes.Str(text))
	}
	return true
}

// wait waits for the watch to stop (after quit closed).
func (w *pendingWatch) wait() { w.wg.Wait() }
