// Package central is the lottery central: it accepts agency connections, runs
// one goroutine per connection, stores bets through the ledger, and answers
// winners through the draw barrier. Server owns the whole lifecycle, like
// net/http's Server: Shutdown closes the listener, releases parked agencies,
// closes every connection, waits for their goroutines, then closes the store.
package central

import (
	"errors"
	"fmt"
	"net"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/sirupsen/logrus"

	"lotterycentral.example/lottery/logfmt"
	"lotterycentral.example/protocol"
	"lotterycentral.example/server/internal/config"
	"lotterycentral.example/server/internal/draw"
)

// ErrServerClosed is returned by Serve after Shutdown.
var ErrServerClosed = errors.New("central: server closed")

// Server is the lottery central.
type Server struct {
	cfg     config.Config
	log     *logrus.Logger
	ledger  *ledger
	barrier *draw.Barrier

	mu       sync.Mutex
	listener net.Listener
	sessions map[*session]struct{}
	owners   map[int]*session // the one live session of each identified agency
	closing  bool
	wg       sync.WaitGroup // one per session goroutine
	// stopping is closing for the draw, which runs under the barrier's lock
	// and must not make Shutdown wait for a whole pass over the bets.
	stopping atomic.Bool
}

// New opens the bets file and prepares the draw barrier.
func New(cfg config.Config, log *logrus.Logger) (*Server, error) {
	l, rec, err := openLedger(cfg.StoragePath)
	if err != nil {
		return nil, fmt.Errorf("start central: %w", err)
	}
	s := &Server{
		cfg:      cfg,
		log:      log,
		ledger:   l,
		sessions: make(map[*session]struct{}),
		owners:   make(map[int]*session),
	}
	s.barrier = draw.New(cfg.Agencies, s.runDraw)
	s.barrier.OnPark(func(agency int) {
		s.log.Info(logfmt.Line("espera_sorteo", logfmt.InProgress, "agencia", agency))
	})
	s.log.Info(logfmt.Line("recuperacion", logfmt.Success, "apuestas", rec.bets, "agencias_con_apuestas", rec.agencies,
		"agencias_finalizadas", len(rec.finished), "bytes_recortados", rec.cutBets+rec.cutJour))
	// Replaying the journal's FINISHes reruns the draw when every agency had
	// finished: the same bets give the same winners.
	for _, agency := range rec.finished {
		if agency > cfg.Agencies {
			l.close()
			return nil, fmt.Errorf("start central: agency %d finished in %s but SERVER_AGENCIES is %d",
				agency, journalPath(cfg.StoragePath), cfg.Agencies)
		}
		if _, err := s.barrier.Finish(agency); err != nil {
			l.close()
			return nil, fmt.Errorf("start central: %w", err)
		}
	}
	return s, nil
}

// runDraw is the draw.Func: one pass over the stored bets. The barrier calls
// it with its lock held, so the sorteo line is logged before any waiter wakes.
func (s *Server) runDraw() (map[int][]string, error) {
	res, err := s.ledger.draw(s.stopping.Load)
	if errors.Is(err, draw.ErrClosing) {
		// The journal still holds every FINISH: the next start draws again.
		s.log.Warn(logfmt.Line("sorteo", logfmt.Fail, "motivo", "shutdown", "error", err))
		return nil, err
	}
	if err != nil {
		s.log.Error(logfmt.Line("sorteo", logfmt.Fail, "error", err))
		return nil, err
	}
	s.log.Info(logfmt.Line("sorteo", logfmt.Success, "apuestas", res.scanned, "ganadores", res.won))
	return res.winners, nil
}

// ListenAndServe listens on the configured address and serves until Shutdown.
func (s *Server) ListenAndServe() error {
	ln, err := net.Listen("tcp", s.cfg.Address())
	if err != nil {
		return fmt.Errorf("listen on %s: %w", s.cfg.Address(), err)
	}
	return s.Serve(ln)
}

// Serve accepts connections on ln until Shutdown, then returns ErrServerClosed.
func (s *Server) Serve(ln net.Listener) error {
	s.mu.Lock()
	if s.closing {
		s.mu.Unlock()
		ln.Close()
		return ErrServerClosed
	}
	s.listener = ln
	s.mu.Unlock()
	s.log.Info(logfmt.Line("escuchar", logfmt.Success, "direccion", ln.Addr()))

	var backoff time.Duration
	for {
		conn, err := ln.Accept()
		if err != nil {
			if s.isClosing() {
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
// or at its connection cap.
func (s *Server) start(conn net.Conn) {
	s.mu.Lock()
	if s.closing {
		s.mu.Unlock()
		conn.Close()
		return
	}
	if len(s.sessions) >= s.cfg.MaxConnections {
		s.mu.Unlock()
		s.log.Warn(logfmt.Line("aceptar_conexion", logfmt.Fail, "remoto", conn.RemoteAddr(),
			"motivo", protocol.CodeTooManyConns, "limite", s.cfg.MaxConnections))
		refuse(conn, protocol.CodeTooManyConns, fmt.Sprintf("the central serves at most %d connections; retry later", s.cfg.MaxConnections))
		return
	}
	// Only an accepted connection gets a session and its read buffer.
	sess := newSession(s, conn)
	s.sessions[sess] = struct{}{}
	s.wg.Add(1)
	s.mu.Unlock()
	s.log.Debug(logfmt.Line("aceptar_conexion", logfmt.Success, "remoto", conn.RemoteAddr()))
	go func() {
		defer s.wg.Done()
		sess.run()
	}()
}

// refuse tells a connection the central will not serve it why, and closes it.
// The write is bounded: the accept loop must not wait on a peer that does not read.
func refuse(conn net.Conn, code protocol.Code, text string) {
	_ = conn.SetWriteDeadline(time.Now().Add(shutdownWriteTimeout))
	_ = protocol.WriteMessage(conn, protocol.ErrorMessage{Code: code, Text: protocol.Text(text)})
	_ = conn.Close()
}

func (s *Server) isClosing() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.closing
}

// claim binds agency to sess; it fails while another live session holds it.
func (s *Server) claim(agency int, sess *session) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, taken := s.owners[agency]; taken {
		return false
	}
	s.owners[agency] = sess
	return true
}

// release forgets a session that ended.
func (s *Server) release(sess *session) {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.sessions, sess)
	if s.owners[sess.agency] == sess {
		delete(s.owners, sess.agency)
	}
}

// Shutdown stops the central: it closes the listener, releases agencies
// parked for the draw, closes every connection, waits for every session
// goroutine, and flushes and closes the bets file. It logs each step.
func (s *Server) Shutdown() error {
	s.mu.Lock()
	if s.closing {
		s.mu.Unlock()
		return nil
	}
	s.closing = true
	s.stopping.Store(true)
	ln := s.listener
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
	// Parked agencies wake with ErrClosing and tell their agency the central
	// is shutting down, then close their own connections; the rest are closed now.
	s.barrier.Close()
	for _, sess := range sessions {
		if !sess.parked.Load() {
			sess.close()
		}
	}
	s.wg.Wait()
	if err := s.ledger.close(); err != nil {
		s.log.Error(logfmt.Line("cerrar_archivo_apuestas", logfmt.Fail, "error", err))
		return fmt.Errorf("shutdown: %w", err)
	}
	s.log.Info(logfmt.Line("cerrar_archivo_apuestas", logfmt.Success, "archivo", s.cfg.StoragePath))
	s.log.Info(logfmt.Line("shutdown", logfmt.Success))
	return nil
}
