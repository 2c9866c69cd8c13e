// Package central is the lottery central: it accepts agency connections, runs
// one goroutine per connection, stores bets through the ledger, and answers
// winners through the draw barrier. Server owns the whole lifecycle, like
// net/http's Server: Shutdown closes the listener, releases parked agencies,
// closes every connection, waits for their goroutines, then closes the store.
package central

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"net/http"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/sirupsen/logrus"

	"lotterycentral.example/lottery/logfmt"
	"lotterycentral.example/protocol"
	"lotterycentral.example/protocol/identity"
	"lotterycentral.example/server/internal/config"
	"lotterycentral.example/server/internal/draw"
	"lotterycentral.example/server/internal/metrics"
)

// ErrServerClosed is returned by Serve after Shutdown.
var ErrServerClosed = errors.New("central: server closed")

// Server is the lottery central.
type Server struct {
	cfg     config.Config
	log     *logrus.Logger
	ledger  *ledger
	barrier *draw.Barrier
	tls     *tls.Config      // nil: plaintext, for development only
	metrics *metrics.Metrics // nil: no metrics (no admin listener)

	mu       sync.Mutex
	listener net.Listener
	admin    *http.Server // the admin listener's server, once ServeAdmin runs
	sessions map[*session]struct{}
	owners   map[int]*session // the one live session of each identified agency
	answered map[int]bool     // agencies whose winners were sent, for the status page
	// Connections that have not completed HELLO, in total and by source IP:
	// a flood of silent sockets must not keep identified agencies out.
	unidentified int
	bySource     map[string]int
	wg           sync.WaitGroup // one per session goroutine

	// stopping is the one notion of "the central is stopping". Shutdown sets
	// it once, with mu held, so a connection is either among the sessions
	// Shutdown closes or never started; it is read without the lock anywhere
	// else, by the draw too, which runs under the barrier's lock and gives up
	// rather than make Shutdown wait for a whole pass over the bets. The
	// barrier hears of it from Shutdown's barrier.Close.
	stopping atomic.Bool

	// ready is closed once Recover has succeeded: HELLO waits for it.
	// recoverTicks paces the progress lines of a long recovery; recoverHook,
	// for tests, runs after each part of the bets file is read.
	ready          chan struct{}
	recoverTicks   func() (<-chan time.Time, func())
	recoverHook    func(rows uint64)
	recoverStarted bool          // under mu
	recoverDone    chan struct{} // closed when a started Recover returns

	// The watcher that logs which agencies the draw still waits for (see
	// watchPending): pendingTicks makes its ticker, quit stops it.
	pendingTicks func() (<-chan time.Time, func())
	quit         chan struct{}
	drawDone     chan struct{} // closed once the draw ran: nothing is pending any more
	drawDoneOnce sync.Once
	watcher      sync.WaitGroup
	drawn        atomic.Pointer[drawInfo] // when the draw ran and how long it took
}

// Option configures a Server.
type Option func(*Server)

// WithMetrics has the central count what it does into m; without it (or
// with a nil m) it counts nothing.
func WithMetrics(m *metrics.Metrics) Option {
	return func(s *Server) { s.metrics = m }
}

// New prepares a central: its TLS configuration and the draw barrier.
// Recover then reads the bets file, before or while Serve accepts.
func New(cfg config.Config, log *logrus.Logger, opts ...Option) (*Server, error) {
	var tlsConfig *tls.Config
	if cfg.TLSEnabled() {
		var err error
		if tlsConfig, err = identity.ServerConfig(cfg.TLSCert, cfg.TLSKey, cfg.TLSClientCA); err != nil {
			return nil, fmt.Errorf("start central: %w", err)
		}
	}
	s := &Server{
		cfg:          cfg,
		log:          log,
		tls:          tlsConfig,
		sessions:     make(map[*session]struct{}),
		owners:       make(map[int]*session),
		answered:     make(map[int]bool),
		bySource:     make(map[string]int),
		pendingTicks: pendingTicker,
		quit:         make(chan struct{}),
		drawDone:     make(chan struct{}),
		ready:        make(chan struct{}),
		recoverDone:  make(chan struct{}),
		recoverTicks: recoverTicker,
	}
	for _, o := range opts {
		o(s)
	}
	if tlsConfig == nil {
		s.log.Warn(logfmt.Line("tls", logfmt.Success, "modo", "plaintext",
			"aviso", "bets and winners travel unauthenticated: any peer can speak for any agency; set SERVER_TLS_CERT, SERVER_TLS_KEY and SERVER_TLS_CLIENT_CA"))
	} else {
		s.log.Info(logfmt.Line("tls", logfmt.Success, "modo", "mutual_tls", "certificado", cfg.TLSCert, "ca_agencias", cfg.TLSClientCA))
	}
	s.barrier = draw.New(cfg.Agencies, s.runDraw)
	s.barrier.OnPark(func(agency int) {
		s.log.Info(logfmt.Line("espera_sorteo", logfmt.InProgress, "agencia", agency))
	})
	s.metrics.WatchBarrier(func() metrics.BarrierCounts {
		finished, pending, parked := s.barrier.Counts()
		return metrics.BarrierCounts{Agencies: cfg.Agencies, Finished: finished, Pending: pending, Parked: parked}
	})
	return s, nil
}

// recoverEvery is how often a long recovery logs its progress.
const recoverEvery = 2 * time.Second

// Recover rebuilds the central's state from the bets file and the journal,
// trusting none of it (openLedger). Serve may already be accepting: an
// agency's HELLO waits for the end of the recovery rather than for a port
// that refuses it, and a long recovery logs its progress every few seconds.
// An error leaves the central unable to serve: shut it down.
func (s *Server) Recover() error {
	s.mu.Lock()
	if s.stopping.Load() || s.recoverStarted {
		s.mu.Unlock()
		return fmt.Errorf("recover: %w", ErrServerClosed)
	}
	s.recoverStarted = true // Shutdown now waits for the end of Recover
	s.mu.Unlock()
	defer close(s.recoverDone)

	began := time.Now()
	s.log.Info(logfmt.Line("recuperar", logfmt.InProgress, "archivo", s.cfg.StoragePath))
	var rows atomic.Uint64
	stopLog := s.logRecovery(began, &rows)
	l, rec, err := openLedger(s.cfg.StoragePath, s.cfg.Agencies, s.log, func(n uint64) error {
		rows.Store(n)
		if s.recoverHook != nil {
			s.recoverHook(n)
		}
		if s.stopping.Load() {
			return ErrServerClosed
		}
		return nil
	})
	stopLog()
	if errors.Is(err, ErrServerClosed) {
		// Nothing was written: the next start reads the file again.
		s.log.Warn(logfmt.Line("recuperar", logfmt.Fail, "motivo", "shutdown", "rows", rows.Load(),
			"elapsed", time.Since(began).Round(time.Millisecond)))
		return fmt.Errorf("recover: %w", ErrServerClosed)
	}
	if err != nil {
		return fmt.Errorf("start central: %w", err)
	}
	s.metrics.Recovered(time.Since(began), rec.bets, l.stored)
	l.metrics = s.metrics
	s.mu.Lock()
	s.ledger = l // Shutdown closes it from now on
	s.mu.Unlock()
	s.log.Info(logfmt.Line("recuperacion", logfmt.Success, "apuestas", rec.bets, "agencias_con_apuestas", rec.agencies,
		"agencias_finalizadas", len(rec.finished), "bytes_recortados_apuestas", rec.cutBets, "bytes_recortados_diario", rec.cutJour,
		"duracion", time.Since(began).Round(time.Millisecond)))
	// Replaying the journal's FINISHes reruns the draw when every agency had
	// finished: the same bets give the same winners. openLedger checked
	// that each is an agency of this draw.
	for _, agency := range rec.finished {
		if _, err := s.barrier.Finish(agency); err != nil {
			return fmt.Errorf("start central: %w", err)
		}
	}
	close(s.ready)
	return nil
}

// logRecovery logs, every recoverEvery until the returned stop is called,
// how many rows the recovery has read.
func (s *Server) logRecovery(began time.Time, rows *atomic.Uint64) (stop func()) {
	ticks, stopTicks := s.recoverTicks()
	done, ended := make(chan struct{}), make(chan struct{})
	go func() {
		defer close(ended)
		defer stopTicks()
		for {
			select {
			case <-done:
				return
			case <-ticks:
				s.log.Info(logfmt.Line("recuperar", logfmt.InProgress, "rows", rows.Load(),
					"elapsed", time.Since(began).Round(time.Millisecond)))
			}
		}
	}()
	return func() {
		close(done)
		<-ended
	}
}

func recoverTicker() (<-chan time.Time, func()) {
	t := time.NewTicker(recoverEvery)
	return t.C, t.Stop
}

// isRecovered reports, without waiting, whether Recover has succeeded.
func (s *Server) isRecovered() bool {
	select {
	case <-s.ready:
		return true
	default:
		return false
	}
}

// recovered waits for Recover to succeed; false if the central stops first.
func (s *Server) recovered() bool {
	select {
	case <-s.ready:
		return true
	case <-s.quit:
		return false
	}
}

// runDraw is the draw.Func: a lookup of the winners kept as bets were
// counted. The barrier calls it with its lock held, so the sorteo line is
// logged before any waiter wakes.
func (s *Server) runDraw() (map[int][]string, error) {
	began := time.Now()
	res := s.ledger.draw()
	s.log.Info(logfmt.Line("sorteo", logfmt.Success, "apuestas", res.bets, "ganadores", res.won))
	s.recordDraw(began, res.winners)
	s.drawDoneOnce.Do(func() { close(s.drawDone) })
	return res.winners, nil
}

// Serve accepts connections on ln until Shutdown, then returns ErrServerClosed.
func (s *Server) Serve(ln net.Listener) error {
	s.mu.Lock()
	if s.stopping.Load() {
		s.mu.Unlock()
		ln.Close()
		return ErrServerClosed
	}
	s.listener = ln
	s.watcher.Add(1)
	s.mu.Unlock()
	s.log.Info(logfmt.Line("escuchar", logfmt.Success, "direccion", ln.Addr()))
	go func() {
		defer s.watcher.Done()
		if !s.recovered() {
			return // who is pending is known once the journal is read
		}
		ticks, stop := s.pendingTicks()
		defer stop()
		s.watchPending(ticks)
	}()

	var backoff time.Duration
	for {
		conn, err := ln.Accept()
		if err != nil {
			if s.stopping.Load() {
				return ErrServerClosed
			}
			// Out of file descriptors and the like passes once connections close:
			// wait and retry, as net/http does.
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() || errors.Is(err, syscall.EMFILE) || errors.Is(err, syscall.ENFILE) {
				backoff = min(max(2*backoff, 5*time.Millisecond), time.Second)
				s.log.Warn(logfmt.Line("aceptar_conexion", logfmt.Fail, "error", err, "reintento_en", backoff))
				time.Sleep(backoff)
				continue
			}
			return fmt.Errorf("accept: %w", err)
		}
		backoff = 0
		s.start(conn)
	}
}

// start hands conn to a new session goroutine, unless the central is closing
// or at one of its connection caps.
func (s *Server) start(conn net.Conn) {
	source := sourceOf(conn.RemoteAddr())
	s.mu.Lock()
	if s.stopping.Load() {
		s.mu.Unlock()
		s.metrics.ConnectionRefused(metrics.RefusedShuttingDown)
		conn.Close()
		return
	}
	var limit, reason string
	switch {
	case len(s.sessions) >= s.cfg.MaxConnections:
		limit = fmt.Sprintf("the central serves at most %d connections", s.cfg.MaxConnections)
		reason = metrics.RefusedMaxConnections
	case s.unidentified >= s.cfg.MaxUnidentified:
		limit = fmt.Sprintf("at most %d connections may be waiting to identify", s.cfg.MaxUnidentified)
		reason = metrics.RefusedMaxUnidentified
	case s.bySource[source] >= s.cfg.MaxUnidentifiedPerSource:
		limit = fmt.Sprintf("at most %d connections from one address may be waiting to identify", s.cfg.MaxUnidentifiedPerSource)
		reason = metrics.RefusedMaxPerSource
	}
	if limit != "" {
		s.mu.Unlock()
		s.metrics.ConnectionRefused(reason)
		s.log.Warn(logfmt.Line("aceptar_conexion", logfmt.Fail, "remoto", conn.RemoteAddr(),
			"motivo", protocol.CodeTooManyConns, "detalle", limit))
		s.refuse(conn, protocol.CodeTooManyConns, limit+"; retry later")
		return
	}
	// Only an accepted connection gets a session; its read buffer waits for HELLO.
	sess := newSession(s, conn, source)
	s.sessions[sess] = struct{}{}
	s.unidentified++
	s.bySource[source]++
	s.wg.Add(1)
	s.mu.Unlock()
	s.metrics.ConnectionAccepted()
	s.log.Debug(logfmt.Line("aceptar_conexion", logfmt.Success, "remoto", conn.RemoteAddr()))
	go func() {
		defer s.wg.Done()
		sess.run()
	}()
}

// refuse tells a connection the central will not serve it why, and closes it.
// The write is bounded: the accept loop must not wait on a peer that does not read.
// With TLS the connection is only closed: a handshake for a peer that is turned
// away anyway would cost more than the refusal, and the agency retries a
// connection closed before its handshake.
func (s *Server) refuse(conn net.Conn, code protocol.Code, text string) {
	if s.tls == nil {
		_ = conn.SetWriteDeadline(time.Now().Add(shutdownWriteTimeout))
		_ = protocol.WriteMessage(conn, protocol.ErrorMessage{Code: code, Text: protocol.Text(text)})
	}
	_ = conn.Close()
}

// sourceOf is the key of the per-source cap: the peer's IP without its port.
func sourceOf(addr net.Addr) string {
	if host, _, err := net.SplitHostPort(addr.String()); err == nil {
		return host
	}
	return addr.String()
}

// identified takes sess out of the unidentified counts, once.
func (s *Server) identified(sess *session) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.forgetUnidentified(sess)
}

func (s *Server) forgetUnidentified(sess *session) {
	if !sess.unidentified {
		return
	}
	sess.unidentified = false
	s.unidentified--
	if s.bySource[sess.source]--; s.bySource[sess.source] <= 0 {
		delete(s.bySource, sess.source)
	}
}

// claim binds agency to sess. When another live session holds it, a session
// authenticated by its certificate takes the agency over and gets the old
// session back to close (a real agency whose old socket is half-dead gets back
// in at once); without TLS nothing proves the newcomer is the agency, so it is
// refused (ok false).
func (s *Server) claim(agency int, sess *session) (old *session, ok bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	old = s.owners[agency]
	if old != nil && s.tls == nil {
		return nil, false
	}
	s.owners[agency] = sess
	return old, true
}

// release forgets a session that ended.
func (s *Server) release(sess *session) {
	s.metrics.ConnectionClosed()
	s.mu.Lock()
	defer s.mu.Unlock()
	s.forgetUnidentified(sess)
	delete(s.sessions, sess)
	if s.owners[sess.agency] == sess {
		delete(s.owners, sess.agency)
	}
}

// Shutdown stops the central, like net/http's Server.Shutdown: it closes the
// listener and the admin listener (within ctx, for the requests in
// progress), releases the agencies parked for the draw (each is told the
// central is shutting down), closes every other connection, waits for every
// session goroutine to return, then flushes and closes the bets file. It
// logs each step.
//
// ctx bounds the wait. If ctx ends first, Shutdown closes the connections
// that remain, parked ones included, and waits for their goroutines: with
// its socket closed only a disk can still hold one, and the bets file could
// not be closed under it anyway. It then still closes the bets file and
// returns ctx.Err() joined with any error closing it. Calls after the first
// return nil at once.
func (s *Server) Shutdown(ctx context.Context) error {
	s.mu.Lock()
	if !s.stopping.CompareAndSwap(false, true) {
		s.mu.Unlock()
		return nil
	}
	ln, adm := s.listener, s.admin
	sessions := make([]*session, 0, len(s.sessions))
	for sess := range s.sessions {
		sessions = append(sessions, sess)
	}
	s.mu.Unlock()

	s.log.Info(logfmt.Line("shutdown", logfmt.InProgress, "conexiones", len(sessions)))
	if ln != nil {
		if err := ln.Close(); err != nil {
			s.log.Error(logfmt.Line("cerrar_listener", logfmt.Fail, "error", err))
		} else {
			s.log.Info(logfmt.Line("cerrar_listener", logfmt.Success))
		}
	}
	close(s.quit) // the watcher of the pending agencies
	s.watcher.Wait()
	if adm != nil {
		s.closeAdmin(ctx, adm)
	}
	// Parked agencies wake with ErrClosing and tell their agency the central
	// is shutting down, then close their own connections; the rest are closed now.
	s.barrier.Close()
	for _, sess := range sessions {
		if !sess.parked.Load() {
			sess.close()
		}
	}
	ended := make(chan struct{})
	go func() {
		s.wg.Wait()
		close(ended)
	}()
	var late error
	select {
	case <-ended:
	case <-ctx.Done():
	}
	select {
	case <-ended:
	default: // ctx ended first: cut what remains
		late = ctx.Err()
		s.mu.Lock()
		left := len(s.sessions)
		s.mu.Unlock()
		s.log.Warn(logfmt.Line("esperar_conexiones", logfmt.Fail, "conexiones", left, "error", late))
		for _, sess := range sessions {
			sess.close()
		}
		<-ended
	}
	s.mu.Lock()
	started := s.recoverStarted
	s.mu.Unlock()
	if started {
		<-s.recoverDone // it stops at its next look at stopping
	}
	s.mu.Lock()
	l := s.ledger // nil if no recovery read the whole file: nothing was opened
	s.mu.Unlock()
	if l != nil {
		if err := l.close(); err != nil {
			s.log.Error(logfmt.Line("cerrar_archivo_apuestas", logfmt.Fail, "error", err))
			return errors.Join(late, fmt.Errorf("shutdown: %w", err))
		}
		s.log.Info(logfmt.Line("cerrar_archivo_apuestas", logfmt.Success, "archivo", s.cfg.StoragePath))
	}
	if late != nil {
		s.log.Warn(logfmt.Line("shutdown", logfmt.Fail, "error", late))
		return late
	}
	s.log.Info(logfmt.Line("shutdown", logfmt.Success))
	return nil
}
