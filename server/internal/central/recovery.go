package central

import (
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"lotterycentral.example/lottery/logfmt"
	"lotterycentral.example/server/internal/draw"
	"lotterycentral.example/server/internal/ledger"
	"lotterycentral.example/server/internal/vocab"
)

// recoverEvery is how often a long recovery logs its progress.
const recoverEvery = 2 * time.Second

// recovery opens the ledger once, and hands it to whoever waits for it.
type recovery struct {
	// ticks paces the progress lines of a long recovery; hook, for tests,
	// runs after each part of the bets file is read; faults, for tests, is
	// the ledger's disk (ledger.Options.Faults).
	ticks  func() (<-chan time.Time, func())
	hook   func(rows uint64)
	faults func(ledger.Op, string) error

	mu      sync.Mutex
	started bool
	ledger  *ledger.Ledger // set before ready closes
	ready   chan struct{}  // closed once the ledger is open
	done    chan struct{}  // closed when a started recovery returns
}

func newRecovery() *recovery {
	return &recovery{ticks: recoverTicker, ready: make(chan struct{}), done: make(chan struct{})}
}

func recoverTicker() (<-chan time.Time, func()) {
	t := time.NewTicker(recoverEvery)
	return t.C, t.Stop
}

// begin marks the recovery started; false if it already was.
func (r *recovery) begin() bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.started {
		return false
	}
	r.started = true
	return true
}

// wait returns the ledger once it is open, or nil if quit closes first.
func (r *recovery) wait(quit <-chan struct{}) *ledger.Ledger {
	select {
	case <-r.ready:
		return r.ledger
	case <-quit:
		return nil
	}
}

// opened returns the ledger if it is open, nil otherwise, without waiting.
func (r *recovery) opened() *ledger.Ledger {
	select {
	case <-r.ready:
		return r.ledger
	default:
		return nil
	}
}

// finish waits for a started recovery to return, and returns the ledger
// if it opened one.
func (r *recovery) finish() *ledger.Ledger {
	r.mu.Lock()
	started := r.started
	r.mu.Unlock()
	if !started {
		return nil
	}
	<-r.done
	return r.opened()
}

// Recover rebuilds the round from the bets file and the journals, trusting
// none of it (ledger.Open). Serve may already be accepting: an agency's
// HELLO waits for the end of the recovery rather than for a port that
// refuses it, and a long recovery logs its progress every few seconds. When
// every agency had finished or been excluded, the draw runs again: the same
// bets give the same winners. An error leaves the central unable to serve:
// shut it down.
func (s *Server) Recover() error {
	s.mu.Lock()
	if s.stopping() || !s.recovery.begin() {
		s.mu.Unlock()
		return fmt.Errorf("recover: %w", ErrServerClosed)
	}
	s.mu.Unlock() // Shutdown now waits for the end of Recover
	defer close(s.recovery.done)

	r := s.recovery
	began := time.Now()
	s.log.Info(vocab.Recuperacion, logfmt.InProgress, vocab.Archivo.Str(s.cfg.StoragePath))
	var rows atomic.Uint64
	stopLog := s.logRecovery(began, &rows)
	l, rec, err := ledger.Open(s.cfg.StoragePath, ledger.Options{Agencies: s.cfg.Agencies, Log: s.log,
		ObserveFsync: s.metrics.ObserveFsync, Faults: r.faults, Progress: func(n uint64) error {
			rows.Store(n)
			if r.hook != nil {
				r.hook(n)
			}
			if s.stopping() {
				return ErrServerClosed
			}
			return nil
		}})
	stopLog()
	if errors.Is(err, ErrServerClosed) {
		// Nothing was written: the next start reads the file again.
		s.log.Warn(vocab.Recuperacion, logfmt.Fail, vocab.Motivo.Str("shutdown"), vocab.Filas.Uint(rows.Load()),
			vocab.Duracion.Any(time.Since(began).Round(time.Millisecond)))
		return fmt.Errorf("recover: %w", ErrServerClosed)
	}
	if err != nil {
		return fmt.Errorf("start central: %w", err)
	}
	took := time.Since(began)
	s.metrics.Recovered(took, rec.Bets)
	s.log.Info(vocab.Recuperacion, logfmt.Success, vocab.Apuestas.Uint(rec.Bets), vocab.AgenciasConApuestas.Int(rec.Agencies),
		vocab.AgenciasFinalizadas.Int(rec.Finished), vocab.BytesRecortadosApuestas.Any(rec.CutBets),
		vocab.BytesRecortadosDiario.Any(rec.CutJournal), vocab.AgenciasExcluidas.Int(rec.Excluded),
		vocab.BytesRecortadosOperador.Any(rec.CutOperator), vocab.Duracion.Any(took.Round(time.Millisecond)))
	if l.Round().Complete() {
		s.runDraw(l)
	}
	r.ledger = l
	close(r.ready)
	return nil
}

// logRecovery logs, every recoverEvery until the returned stop is called,
// how many rows the recovery has read.
func (s *Server) logRecovery(began time.Time, rows *atomic.Uint64) (stop func()) {
	ticks, stopTicks := s.recovery.ticks()
	done, ended := make(chan struct{}), make(chan struct{})
	go func() {
		defer close(ended)
		defer stopTicks()
		for {
			select {
			case <-done:
				return
			case <-ticks:
				s.log.Info(vocab.Recuperacion, logfmt.InProgress, vocab.Filas.Uint(rows.Load()),
					vocab.Duracion.Any(time.Since(began).Round(time.Millisecond)))
			}
		}
	}()
	return func() {
		close(done)
		<-ended
	}
}

// runDraw runs the draw once the ledger says every agency finished or was
// excluded: a lookup of the winners the ledger kept as batches were
// counted. The barrier runs it with its lock held, so the sorteo line is
// logged before any waiter wakes. The line counts the drawn bets only, and
// names the excluded agencies when there are any, then commits the round:
// its digest, published before any agency hears its winners.
func (s *Server) runDraw(l *ledger.Ledger) {
	s.barrier.Draw(func() {
		r := l.Round()
		fields := []logfmt.Field{vocab.Apuestas.Uint(r.Bets), vocab.Ganadores.Int(r.Winners)}
		if r.Excluded > 0 {
			fields = append(fields, vocab.Excluidas.Str(draw.FormatAgencies(r.ExcludedAgencies(), pendingListed)))
		}
		fields = append(fields, vocab.DigestoRonda.Str(r.Digest.String()))
		s.log.Info(vocab.Sorteo, logfmt.Success, fields...)
	})
}
