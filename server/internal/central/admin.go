package central

import (
	"context"
	"errors"
	"fmt"
	"log"
	"net"
	"net/http"
	"strings"
	"time"

	"lotterycentral.example/lottery/logfmt"
	"lotterycentral.example/server/internal/admin"
	"lotterycentral.example/server/internal/draw"
)

// What the operator sees of the central besides its log: the admin listener
// (metrics, health, the status page; see package admin) and the line that
// names the agencies the draw still waits for.

// pendingEvery is how often the central looks at which agencies the draw
// still waits for; it logs them only when they changed.
const pendingEvery = 5 * time.Second

// pendingListed is how many runs of agencies ("1-3", "7") a line or the page
// lists before it only says how many more there are.
const pendingListed = 64

// maxRows is how many agencies the status page lists; past it, the page
// lists the agencies seen so far and says how many it left out.
const maxRows = 1000

func pendingTicker() (<-chan time.Time, func()) {
	t := time.NewTicker(pendingEvery)
	return t.C, t.Stop
}

// watchPending calls logPending on each tick until the draw ran or the
// central stops.
func (s *Server) watchPending(ticks <-chan time.Time) {
	last := ""
	for {
		select {
		case <-s.quit:
			return
		case <-s.drawDone:
			return
		case <-ticks:
		}
		if !s.logPending(&last) {
			return
		}
	}
}

// logPending logs, while the draw waits (at least one agency has finished,
// not all), the agencies it waits for, when they differ from *last, the
// ones it logged before:
//
//	action: esperando_agencias | result: in_progress | pending: 2,5
//
// Many agencies are written compactly (draw.FormatAgencies: "1-3,7", and
// after pendingListed runs only how many more). It reports false once
// there is nothing left to wait for: the draw ran, or the central stops.
func (s *Server) logPending(last *string) bool {
	snap := s.barrier.Snapshot()
	if snap.Drawn || snap.Closing {
		return false
	}
	if snap.Finished == 0 {
		return true
	}
	pending := draw.FormatAgencies(snap.Pending, pendingListed)
	if pending != *last {
		*last = pending
		s.log.Info(logfmt.Line("esperando_agencias", logfmt.InProgress, "pending", pending))
	}
	return true
}

// drawInfo is when the draw ran and how long its pass over the bets took.
type drawInfo struct {
	at   time.Time
	took time.Duration
}

// recordDraw keeps the draw's time for the status page and metrics.
func (s *Server) recordDraw(began time.Time, winners map[int][]string) {
	now := time.Now()
	d := &drawInfo{at: now, took: now.Sub(began)}
	s.drawn.Store(d)
	counts := make(map[int]int, len(winners))
	for a, docs := range winners {
		counts[a] = len(docs)
	}
	s.metrics.Drawn(d.at, d.took, counts)
}

// markAnswered records that agency's winners went out.
func (s *Server) markAnswered(agency int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.answered[agency] = true
}

// ServeAdmin serves the admin endpoints (see package admin) on ln until
// Shutdown, which closes it; it then returns nil. It logs the address.
func (s *Server) ServeAdmin(ln net.Listener) error {
	srv := &http.Server{
		Handler:           admin.New(s, s.metrics.Gatherer()),
		ReadHeaderTimeout: 5 * time.Second,
		ReadTimeout:       10 * time.Second,
		WriteTimeout:      30 * time.Second,
		IdleTimeout:       time.Minute,
		ErrorLog:          log.New(httpErrors{s}, "", 0),
	}
	s.mu.Lock()
	if s.stopping.Load() {
		s.mu.Unlock()
		ln.Close()
		return nil
	}
	s.admin = srv
	s.mu.Unlock()
	s.log.Info(logfmt.Line("escuchar_admin", logfmt.Success, "direccion", ln.Addr(),
		"url", "http://"+ln.Addr().String()+"/"))
	if err := srv.Serve(ln); !errors.Is(err, http.ErrServerClosed) {
		return fmt.Errorf("serve admin: %w", err)
	}
	return nil
}

// closeAdmin closes the admin listener and waits, within ctx, for the
// requests in progress (a scrape, a page).
func (s *Server) closeAdmin(ctx context.Context, srv *http.Server) {
	err := srv.Shutdown(ctx)
	if err != nil {
		err = errors.Join(err, srv.Close())
		s.log.Error(logfmt.Line("cerrar_admin", logfmt.Fail, "error", err))
		return
	}
	s.log.Info(logfmt.Line("cerrar_admin", logfmt.Success))
}

// httpErrors logs what net/http reports of the admin listener (a request it
// could not read, a handler that panicked).
type httpErrors struct{ s *Server }

func (h httpErrors) Write(p []byte) (int, error) {
	h.s.log.Warn(logfmt.Line("admin_http", logfmt.Fail, "error", strings.TrimSpace(string(p))))
	return len(p), nil
}

// Serving reports whether the central serves agencies: it listens and is
// not stopping (/healthz).
func (s *Server) Serving() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.listener != nil && !s.stopping.Load()
}

// Status is the central's state for the status page. It reads the barrier
// once and the server's own maps once, and the bets stored from the
// metrics' per-agency counters, never the ledger: an operator's page must
// not queue behind the bets file.
func (s *Server) Status() admin.Status {
	snap := s.barrier.Snapshot()
	st := admin.Status{Agencies: snap.Agencies, Pending: draw.FormatAgencies(snap.Pending, pendingListed),
		PendingN: len(snap.Pending), Parked: len(snap.Parked), Drawn: snap.Drawn, DrawFailed: snap.Failed,
		Closing: snap.Closing || s.stopping.Load()}
	if d := s.drawn.Load(); d != nil {
		st.DrawAt, st.DrawTook = d.at, d.took
	}

	stored := make(map[int]uint64)
	if s.metrics != nil {
		for _, c := range s.metrics.StoredBets() {
			stored[c.ID] = c.Bets
		}
	}
	// The agencies listed: all of them, or those seen so far when they are many.
	var ids []int
	if snap.Agencies <= maxRows {
		ids = make([]int, snap.Agencies)
		for i := range ids {
			ids[i] = i + 1
		}
	} else {
		for _, c := range s.metrics.StoredBets() {
			if len(ids) == maxRows {
				break
			}
			ids = append(ids, c.ID)
		}
	}
	st.Unlisted = snap.Agencies - len(ids)
	if s.metrics == nil && s.isRecovered() {
		for _, id := range ids {
			stored[id] = s.ledger.count(id)
		}
	}

	parked := make(map[int]bool, len(snap.Parked))
	for _, a := range snap.Parked {
		parked[a] = true
	}
	pending := make(map[int]bool, len(snap.Pending))
	for _, a := range snap.Pending {
		pending[a] = true
	}
	s.mu.Lock()
	st.Connections = len(s.sessions)
	st.Rows = make([]admin.Agency, len(ids))
	for i, id := range ids {
		_, connected := s.owners[id]
		st.Rows[i] = admin.Agency{ID: id, Stored: stored[id], Connected: connected, Finished: !pending[id],
			Parked: parked[id], Answered: s.answered[id], Winners: -1}
		if snap.Drawn && !snap.Failed {
			st.Rows[i].Winners = snap.Winners[id]
		}
	}
	s.mu.Unlock()
	return st
}
