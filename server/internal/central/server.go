// Package central is the lottery central: it accepts agency connections,
// runs one goroutine per connection (session.go), stores bets through the
// ledger, and answers winners through the draw barrier. Server owns the
// lifecycle and the connections, like net/http's Server: Shutdown closes the
// listeners, releases parked agencies, closes every connection, waits for
// their goroutines, then closes the ledger. Recovery (recovery.go), the
// watcher of the agencies the draw waits for (pending.go) and the status
// snapshot (status.go) are types of their own.
package central

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"log"
	"net"
	"net/http"
	"strings"
	"sync"
	"syscall"
	"time"

	"lotterycentral.example/lottery/logfmt"
	"lotterycentral.example/protocol"
	"lotterycentral.example/protocol/identity"
	"lotterycentral.example/server/internal/admin"
	"lotterycentral.example/server/internal/config"
	"lotterycentral.example/server/internal/draw"
	"lotterycentral.example/server/internal/metrics"
	"lotterycentral.example/server/internal/vocab"
)

// ErrServerClosed is returned by Serve after Shutdown.
var ErrServerClosed = errors.New("central: server closed")

// Server is the lottery central.
type Server struct {
	cfg      config.Config
	log      *logfmt.Logger
	tls      *tls.Config      // nil: plaintext, for development only
	metrics  *metrics.Metrics // nil: no metrics (no admin listener)
	barrier  *draw.Barrier
	recovery *recovery     // opens the ledger; HELLO waits for it
	pending  *pendingWatch // logs the agencies the draw waits for
	// cas may sign the revocation list: SERVER_TLS_CLIENT_CA as read at
	// start, when SERVER_TLS_REVOKED is set.
	cas []*x509.Certificate
	// reloadMu keeps one reload at a time, so that the journal's order is
	// the lists' order, and the ledger open under a reload that journals.
	reloadMu sync.Mutex

	mu       sync.Mutex
	quit     chan struct{} // closed by Shutdown, with mu held: the one notion of "stopping"
	listener net.Listener
	admin    *http.Server          // the admin listener's server, once ServeAdmin runs
	conns    *connections          // every session, each agency's owner, the caps on unidentified ones
	revoked  *identity.Revocations // the revocation list in force; nil: none
}

// Option configures a Server.
type Option func(*Server)

// WithMetrics has the central count what it does into m; without it (or
// with a nil m) it counts nothing.
func WithMetrics(m *metrics.Metrics) Option {
	return func(s *Server) { s.metrics = m }
}

// New prepares a central: its TLS configuration, its revocation list and
// the draw barrier. Recover then reads the bets file, before or while Serve
// accepts.
func New(cfg config.Config, log *logfmt.Logger, opts ...Option) (*Server, error) {
	var tlsConfig *tls.Config
	var cas []*x509.Certificate
	var revoked *identity.Revocations
	if cfg.TLSEnabled() {
		var err error
		if tlsConfig, err = identity.ServerConfig(cfg.TLSCert, cfg.TLSKey, cfg.TLSClientCA); err != nil {
			return nil, fmt.Errorf("start central: %w", err)
		}
		if cfg.TLSRevoked != "" {
			if cas, err = identity.LoadCAs(cfg.TLSClientCA); err != nil {
				return nil, fmt.Errorf("start central: %w", err)
			}
			if revoked, err = identity.LoadRevocations(cfg.TLSRevoked, cas); err != nil {
				return nil, fmt.Errorf("start central: %w", err)
			}
		}
	}
	s := &Server{cfg: cfg, log: log, tls: tlsConfig, recovery: newRecovery(), pending: newPendingWatch(),
		quit: make(chan struct{}), conns: newConnections(), cas: cas, revoked: revoked}
	for _, o := range opts {
		o(s)
	}
	if tlsConfig == nil {
		s.log.Warn(vocab.TLS, logfmt.Success, vocab.Modo.Str("plaintext"),
			vocab.Aviso.Str("bets and winners travel unauthenticated: any peer can speak for any agency; set SERVER_TLS_CERT, SERVER_TLS_KEY and SERVER_TLS_CLIENT_CA"))
	} else {
		s.log.Info(vocab.TLS, logfmt.Success, vocab.Modo.Str("mutual_tls"), vocab.CertificadoTLS.Str(cfg.TLSCert),
			vocab.CAAgencias.Str(cfg.TLSClientCA))
	}
	if revoked != nil {
		s.log.Info(vocab.Revocaciones, logfmt.Success, vocab.Archivo.Str(cfg.TLSRevoked), vocab.Revocados.Int(revoked.Len()),
			vocab.NumeroLista.Str(revoked.Number()))
	}
	s.barrier = draw.New(func(agency int) {
		s.log.Info(vocab.EsperaSorteo, logfmt.InProgress, vocab.Agencia.Int(agency))
	})
	s.metrics.Watch(func() metrics.Round { return s.snapshot().metrics() })
	return s, nil
}

// stopping reports whether Shutdown has begun.
func (s *Server) stopping() bool {
	select {
	case <-s.quit:
		return true
	default:
		return false
	}
}

// Serve accepts connections on ln until Shutdown, then returns ErrServerClosed.
func (s *Server) Serve(ln net.Listener) error {
	s.mu.Lock()
	if s.stopping() {
		s.mu.Unlock()
		ln.Close()
		return ErrServerClosed
	}
	s.listener = ln
	s.pending.start(s)
	s.mu.Unlock()
	s.log.Info(vocab.Escuchar, logfmt.Success, vocab.Direccion.Any(ln.Addr()))

	var backoff time.Duration
	for {
		conn, err := ln.Accept()
		if err != nil {
			if s.stopping() {
				return ErrServerClosed
			}
			// Out of file descriptors and the like passes once connections close:
			// wait and retry, as net/http does.
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() || errors.Is(err, syscall.EMFILE) || errors.Is(err, syscall.ENFILE) {
				backoff = min(max(2*backoff, 5*time.Millisecond), time.Second)
				s.log.Warn(vocab.AceptarConexion, logfmt.Fail, vocab.Error.Any(err), vocab.ReintentoEn.Any(backoff))
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
	if s.stopping() {
		s.mu.Unlock()
		s.metrics.ConnectionRefused(metrics.RefusedShuttingDown)
		conn.Close()
		return
	}
	if limit, reason := s.conns.full(s.cfg, source); limit != "" {
		s.mu.Unlock()
		s.metrics.ConnectionRefused(reason)
		s.log.Warn(vocab.AceptarConexion, logfmt.Fail, vocab.Remoto.Any(conn.RemoteAddr()),
			vocab.Motivo.Any(protocol.CodeTooManyConns), vocab.Detalle.Str(limit))
		s.refuse(conn, protocol.CodeTooManyConns, limit+"; retry later")
		return
	}
	// Only an accepted connection gets a session; its read buffer waits for HELLO.
	sess := newSession(s, conn, source)
	s.conns.add(sess)
	s.mu.Unlock()
	s.metrics.ConnectionAccepted()
	s.log.Debug(vocab.AceptarConexion, logfmt.Success, vocab.Remoto.Any(conn.RemoteAddr()))
	go func() {
		defer s.conns.wg.Done()
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
	s.conns.identified(sess)
}

// claim binds agency to sess. When another live session holds it, a session
// authenticated by its certificate takes the agency over and gets the old
// session back to close (a real agency whose old socket is half-dead gets back
// in at once); without TLS nothing proves the newcomer is the agency, so it is
// refused (errAgencyBusy), as it is while an exclusion of the agency is
// under way (errExcluding).
func (s *Server) claim(agency int, sess *session) (old *session, err error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.conns.claim(agency, sess, s.tls != nil)
}

// release forgets a session that ended.
func (s *Server) release(sess *session) {
	s.metrics.ConnectionClosed()
	s.mu.Lock()
	defer s.mu.Unlock()
	s.conns.remove(sess)
}

// ServeAdmin serves the admin endpoints (see package admin) on ln until
// Shutdown, which closes it; it then returns nil. It logs the address.
// With mutual TLS, ln serves TLS beside plain HTTP (admin.Listen), with the
// central's certificate, and the Server itself does the operators' actions
// (admin.Operator: Exclude, ReloadRevocations) for a certificate that the
// agencies' CA signed, that names an operator, and that the revocation list
// does not name (CheckRevoked).
func (s *Server) ServeAdmin(ln net.Listener) error {
	opts := []admin.Option{admin.WithPprof(s.cfg.Pprof)}
	if s.tls != nil {
		adminTLS := identity.AdminConfig(s.tls)
		ln = admin.Listen(ln, adminTLS)
		opts = append(opts, admin.WithOperators(s, adminTLS.ClientCAs, s.log))
	}
	srv := &http.Server{
		Handler:           admin.New(s, s.metrics.Gatherer(), opts...),
		ReadHeaderTimeout: 5 * time.Second,
		ReadTimeout:       10 * time.Second,
		WriteTimeout:      30 * time.Second,
		IdleTimeout:       time.Minute,
		ErrorLog:          log.New(httpErrors{s.log}, "", 0),
	}
	s.mu.Lock()
	if s.stopping() {
		s.mu.Unlock()
		ln.Close()
		return nil
	}
	s.admin = srv
	s.mu.Unlock()
	s.log.Info(vocab.EscucharAdmin, logfmt.Success, vocab.Direccion.Any(ln.Addr()),
		vocab.URL.Str("http://"+ln.Addr().String()+"/"))
	if err := srv.Serve(ln); !errors.Is(err, http.ErrServerClosed) {
		return fmt.Errorf("serve admin: %w", err)
	}
	return nil
}

// httpErrors logs what net/http reports of the admin listener (a request it
// could not read, a handler that panicked).
type httpErrors struct{ log *logfmt.Logger }

func (h httpErrors) Write(p []byte) (int, error) {
	h.log.Warn(vocab.AdminHTTP, logfmt.Fail, vocab.Error.Str(strings.TrimSpace(string(p))))
	return len(p), nil
}

// Serving reports whether the central serves agencies: it listens and is
// not stopping (/healthz).
func (s *Server) Serving() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.listener != nil && !s.stopping()
}

// Shutdown stops the central, like net/http's Server.Shutdown: it closes the
// listener and the admin listener (within ctx, for the requests in
// progress), releases the agencies parked for the draw (each is told the
// central is shutting down), closes every other connection, waits for every
// session goroutine to return, then flushes and closes the ledger. It logs
// each step.
//
// ctx bounds the wait. If ctx ends first, Shutdown closes the connections
// that remain, parked ones included, and waits for their goroutines: with
// its socket closed only a disk can still hold one, and the bets file could
// not be closed under it anyway. It then still closes the ledger and returns
// ctx.Err() joined with any error closing it. Calls after the first return
// nil at once.
func (s *Server) Shutdown(ctx context.Context) error {
	s.mu.Lock()
	if s.stopping() {
		s.mu.Unlock()
		return nil
	}
	close(s.quit)
	ln, adm, sessions := s.listener, s.admin, s.conns.list()
	s.mu.Unlock()

	s.log.Info(vocab.Shutdown, logfmt.InProgress, vocab.Conexiones.Int(len(sessions)))
	if ln != nil {
		if err := ln.Close(); err != nil {
			s.log.Error(vocab.CerrarListener, logfmt.Fail, vocab.Error.Any(err))
		} else {
			s.log.Info(vocab.CerrarListener, logfmt.Success)
		}
	}
	s.pending.wait()
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
	late := s.awaitSessions(ctx, sessions)
	if err := s.closeLedger(); err != nil {
		return errors.Join(late, err)
	}
	if late != nil {
		s.log.Warn(vocab.Shutdown, logfmt.Fail, vocab.Error.Any(late))
		return late
	}
	s.log.Info(vocab.Shutdown, logfmt.Success)
	return nil
}

// awaitSessions waits for every session goroutine, within ctx; past it, it
// cuts the connections that remain, waits again, and returns ctx's error.
func (s *Server) awaitSessions(ctx context.Context, sessions []*session) error {
	ended := make(chan struct{})
	go func() {
		s.conns.wg.Wait()
		close(ended)
	}()
	select {
	case <-ended:
		return nil
	case <-ctx.Done():
	}
	select {
	case <-ended:
		return nil
	default:
	}
	s.mu.Lock()
	left := len(s.conns.sessions)
	s.mu.Unlock()
	s.log.Warn(vocab.EsperarConexiones, logfmt.Fail, vocab.Conexiones.Int(left), vocab.Error.Any(ctx.Err()))
	for _, sess := range sessions {
		sess.close()
	}
	<-ended
	return ctx.Err()
}

// closeLedger waits for a recovery in progress (it stops at its next look at
// quit) and for a reload that journals, then closes the ledger if one was
// opened.
func (s *Server) closeLedger() error {
	l := s.recovery.finish()
	// A reload that began journaling finishes; one after it sees the central stopping.
	s.reloadMu.Lock()
	defer s.reloadMu.Unlock()
	if l == nil {
		return nil // no recovery read the whole file: nothing was opened
	}
	if err := l.Close(); err != nil {
		s.log.Error(vocab.CerrarArchivoApuestas, logfmt.Fail, vocab.Error.Any(err))
		return fmt.Errorf("shutdown: %w", err)
	}
	s.log.Info(vocab.CerrarArchivoApuestas, logfmt.Success, vocab.Archivo.Str(s.cfg.StoragePath))
	return nil
}

// closeAdmin closes the admin listener and waits, within ctx, for the
// requests in progress (a scrape, a page).
func (s *Server) closeAdmin(ctx context.Context, srv *http.Server) {
	err := srv.Shutdown(ctx)
	if err != nil {
		err = errors.Join(err, srv.Close())
		s.log.Error(vocab.CerrarAdmin, logfmt.Fail, vocab.Error.Any(err))
		return
	}
	s.log.Info(vocab.CerrarAdmin, logfmt.Success)
}
