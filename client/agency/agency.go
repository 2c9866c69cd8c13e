// Package agency is a betting agency's side of the draw: it streams the
// agency's bets file to the central in batches, says FINISH, asks for its
// winners and waits on the same connection until the central answers.
package agency

import (
	"bufio"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"os"
	"strings"
	"syscall"
	"time"

	"lotterycentral.example/client/internal/vocab"
	"lotterycentral.example/lottery/logfmt"
	"lotterycentral.example/protocol"
)

// Agency runs one agency's exchange with the central.
type Agency struct {
	cfg      Config
	log      *logfmt.Logger
	conn     net.Conn
	br       *bufio.Reader
	tls      *tls.Config // nil: plaintext
	progress int         // batches and FINISH acknowledged: resets the retry count

	// dial's own: reached once the central's name has resolved in this run
	// (an address was dialled, answering or not), hinted once the agency has
	// said what to do about a name that does not; dialContext is
	// net.Dialer's when nil (tests fake the lookups).
	reached, hinted bool
	dialContext     func(ctx context.Context, network, address string) (net.Conn, error)
}

// New returns an agency for cfg that logs to log.
func New(cfg Config, log *logfmt.Logger) *Agency {
	return &Agency{cfg: cfg, log: log}
}

// Run does the whole exchange and returns the agency's winning documents.
// A lost connection is retried (up to MaxRetries times in a row without
// progress) and resumed where the central's stored bets end. Cancelling ctx
// (SIGTERM) closes the connection and returns ctx's error.
//
// A bets file that cannot be opened fails Run at once, before it connects:
// no retry fixes a local file.
func (a *Agency) Run(ctx context.Context) ([]string, error) {
	if err := checkDataFile(a.cfg.DataPath); err != nil {
		return nil, err
	}
	if _, err := a.tlsConfig(); err != nil {
		return nil, err
	}
	failures := 0
	var lost error // why the last connection ended
	for {
		before := a.progress
		winners, err := a.connection(ctx)
		switch {
		case err == nil:
			return winners, nil
		case ctx.Err() != nil:
			return nil, ctx.Err() // the failure was our own shutdown closing the socket
		case errors.Is(err, errGaveUp) && lost != nil:
			return nil, fmt.Errorf("%w; reconnecting failed: %w", lost, err)
		case !retryable(err):
			return nil, err
		}
		lost = err
		if a.progress > before {
			failures = 0
		}
		failures++
		if failures > a.cfg.MaxRetries {
			return nil, fmt.Errorf("gave up after %d connections in a row without progress: %w", failures, err)
		}
		wait := jitter(min(100*time.Millisecond<<min(failures, 5), 2*time.Second)) // capped: a long shift overflows
		a.log.Warn(vocab.Conexion, logfmt.Fail, vocab.Servidor.Str(a.cfg.ServerAddress), vocab.Reintento.Int(failures),
			vocab.ReintentoEn.Any(wait.Round(time.Millisecond)), vocab.Error.Any(err))
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-time.After(wait):
		}
	}
}

// jitter spreads d over [d/2, d] so agencies that lost the central together
// do not all come back in the same instant.
func jitter(d time.Duration) time.Duration { return d/2 + rand.N(d/2+1) }

// connection runs the exchange over one connection, resuming from what the
// central already holds.
func (a *Agency) connection(ctx context.Context) ([]string, error) {
	conn, err := a.dial(ctx)
	if err != nil {
		return nil, err
	}
	a.conn, a.br = conn, bufio.NewReader(conn)
	stop := context.AfterFunc(ctx, func() { conn.Close() })
	defer func() {
		stop()
		_ = conn.Close() // also after a SIGTERM already closed it: the socket is released either way
		a.log.Info(vocab.CerrarConexion, logfmt.Success, vocab.Servidor.Str(a.cfg.ServerAddress))
	}()
	return a.exchange()
}

func (a *Agency) exchange() ([]string, error) {
	ack, err := a.hello()
	if err != nil {
		return nil, err
	}
	if ack.Finished {
		// Finished before this connection: by this agency, or by an impostor
		// without TLS. Only the file's count and digest are worth a result.
		total, digest, err := a.readFile()
		if err != nil {
			return nil, err
		}
		if err := a.checkCount(ack.Stored, total); err != nil {
			return nil, err
		}
		if err := a.checkDigest(ack.Digest, digest); err != nil {
			return nil, err
		}
	} else {
		total, digest, err := a.sendBets(ack.Stored)
		if err != nil {
			return nil, err
		}
		if err := a.finish(total, digest); err != nil {
			return nil, err
		}
	}
	return a.consult()
}

// errGaveUp marks a connect that already retried until ConnectTimeout.
var errGaveUp = errors.New("gave up connecting")

// DataFileError is a failure of the agency's own bets file: missing,
// unreadable, or holding a row that cannot be sent. It is never retried.
type DataFileError struct {
	Path string
	Err  error
}

func (e *DataFileError) Error() string {
	if msg := e.Err.Error(); strings.Contains(msg, e.Path) {
		return "bets file: " + msg
	}
	return fmt.Sprintf("bets file %s: %v", e.Path, e.Err)
}

func (e *DataFileError) Unwrap() error { return e.Err }

// checkDataFile opens the bets file and closes it again: a file that is
// missing, unreadable or a directory is reported before any connection.
func checkDataFile(path string) error {
	f, err := os.Open(path)
	if err != nil {
		return &DataFileError{Path: path, Err: err}
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return &DataFileError{Path: path, Err: err}
	}
	if fi.IsDir() {
		return &DataFileError{Path: path, Err: fmt.Errorf("%s is a directory, not a file", path)}
	}
	return nil
}

// FailedAction is the action of the log line that reports err, an error of
// Run: leer_archivo for the bets file, tls_handshake for a refused
// certificate, verificar_conteo for counts that disagree, verificar_digesto
// for digests that disagree, conectar when the central could not be reached
// (an address that does not resolve, a refused port), and consulta_ganadores
// for anything else, the exchange's own action.
func FailedAction(err error) logfmt.Action {
	var fe *DataFileError
	var ae *AuthError
	var ce *CountMismatchError
	var de *DigestMismatchError
	switch {
	case errors.As(err, &fe):
		return vocab.LeerArchivo
	case errors.As(err, &ae):
		return vocab.TLSHandshake
	case errors.As(err, &ce):
		return vocab.VerificarConteo
	case errors.As(err, &de):
		return vocab.VerificarDigesto
	case errors.Is(err, errGaveUp):
		return vocab.Conectar
	}
	return vocab.ConsultaGanadores
}

// retryable tells a lost or refused-for-now connection, worth a new one,
// from a refusal that would only repeat (an invalid bet, a wrong agency) and
// from a local failure (the bets file), which no new connection fixes.
func retryable(err error) bool {
	var fe *DataFileError
	var ae *AuthError
	var ce *CountMismatchError
	var de *DigestMismatchError
	if errors.As(err, &fe) || errors.As(err, &ae) || errors.As(err, &ce) || errors.As(err, &de) ||
		errors.Is(err, errGaveUp) {
		return false
	}
	var re *protocol.RemoteError
	if errors.As(err, &re) {
		switch re.Code {
		case protocol.CodeShuttingDown, protocol.CodeAgencyBusy, protocol.CodeTooManyConns,
			protocol.CodeIdleTimeout, protocol.CodeStorage:
			return true
		}
		return false
	}
	var ne net.Error
	return errors.As(err, &ne) || errors.Is(err, io.EOF) || errors.Is(err, protocol.ErrTruncated) ||
		errors.Is(err, syscall.ECONNRESET) || errors.Is(err, syscall.EPIPE)
}

// dial connects, retrying with jittered exponential backoff until
// ConnectTimeout: under compose the central may start after its agencies.
//
// The first time the central's name does not resolve, the agency says, once,
// what to set outside Docker (the default, server:12345, is the compose
// service's name). A name that does not exist ("no such host") is given up at
// once when no lookup has succeeded yet in this run and a resolver other than
// Docker's answered: outside Docker a missing name does not appear within
// seconds. Docker's DNS (127.0.0.11) is retried like a refused port, because
// there a central's name exists only while its container runs (compose
// starting it or restarting it, swarm's dnsrr until its health check
// passes), and so is a name that resolved before, one whose resolver is not
// known, and any failure that is not a definite "no such host".
func (a *Agency) dial(ctx context.Context) (net.Conn, error) {
	deadline := time.Now().Add(a.cfg.ConnectTimeout)
	backoff := 100 * time.Millisecond
	dialContext := a.dialContext
	if dialContext == nil {
		dialContext = (&net.Dialer{}).DialContext
	}
	for attempt := 1; ; attempt++ {
		dctx, cancel := context.WithDeadline(ctx, deadline)
		conn, err := dialContext(dctx, "tcp", a.cfg.ServerAddress)
		cancel()
		var (
			op     *net.OpError
			dnsErr *net.DNSError
		)
		switch {
		case err == nil, errors.As(err, &op) && op.Addr != nil:
			a.reached = true // an address was dialled: the name resolved
		case errors.As(err, &dnsErr):
			if !a.hinted {
				a.hinted = true
				a.log.Warn(vocab.Conectar, logfmt.InProgress, vocab.Servidor.Str(a.cfg.ServerAddress),
					vocab.Aviso.Str(unresolvedHint(a.cfg.ServerAddress)))
			}
			if dnsErr.IsNotFound && !a.reached && !dockerDNS(dnsErr.Server) && ctx.Err() == nil {
				return nil, fmt.Errorf("connect to %s: %w: %w", a.cfg.ServerAddress, errGaveUp, err)
			}
		}
		if err == nil && a.tls != nil {
			var ae *AuthError
			if conn, err = a.handshake(ctx, conn); errors.As(err, &ae) {
				return nil, err // a certificate failure: no retry fixes it
			}
		}
		if err == nil {
			return conn, nil
		}
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		wait := jitter(backoff)
		if time.Now().Add(wait).After(deadline) {
			return nil, fmt.Errorf("connect to %s: %w after %d attempts in %s: %w",
				a.cfg.ServerAddress, errGaveUp, attempt, a.cfg.ConnectTimeout, err)
		}
		a.log.Info(vocab.Conectar, logfmt.InProgress, vocab.Servidor.Str(a.cfg.ServerAddress),
			vocab.Intento.Int(attempt), vocab.ReintentoEn.Any(wait.Round(time.Millisecond)), vocab.Error.Any(err))
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-time.After(wait):
		}
		backoff = min(2*backoff, 2*time.Second)
	}
}

// unresolvedHint says what to set when the central's address, addr, does not
// resolve: outside Docker, the central on this machine.
func unresolvedHint(addr string) string {
	_, port, _ := net.SplitHostPort(addr) // checked by Validate
	return fmt.Sprintf("%s does not resolve here; outside Docker set CLI_SERVER_ADDRESS=%s",
		addr, net.JoinHostPort("127.0.0.1", port))
}

// dockerDNS reports whether server, the resolver that answered a lookup
// (host:port, "" when the system's resolver answered), may be Docker's
// embedded DNS, 127.0.0.11, which every container on a user-defined network
// asks: there a name appears once its container runs. A resolver that is not
// known counts as Docker's.
func dockerDNS(server string) bool {
	host, _, err := net.SplitHostPort(server)
	return err != nil || host == "127.0.0.11"
}

func (a *Agency) hello() (*protocol.HelloAck, error) {
	werr := protocol.WriteMessage(a.conn, protocol.Hello{Version: protocol.Version, Agency: uint32(a.cfg.ID)})
	// Read even when the write failed: the central's refusal may be waiting,
	// and it says more than a broken pipe. Under TLS 1.3 the central checks
	// the agency's certificate after the agency's handshake returned, so its
	// refusal arrives here, as an alert (or ERROR revoked: authError names
	// both a certificate failure).
	ack, err := expect[*protocol.HelloAck](a, a.cfg.ReplyTimeout)
	if err != nil {
		err = authError(err)
		var ae *AuthError
		var re *protocol.RemoteError
		switch {
		case errors.As(err, &ae):
			a.logRefused(ae)
		case errors.As(err, &re) && re.Code == protocol.CodeExcluded:
			// Final, like every refusal retryable does not list.
			return nil, fmt.Errorf("identify: the central's operator excluded this agency from the draw: %w", err)
		case werr != nil && retryable(err):
			err = werr
		}
		return nil, fmt.Errorf("identify: %w", err)
	}
	if werr != nil {
		return nil, fmt.Errorf("identify: %w", werr)
	}
	a.log.Info(vocab.Conectar, logfmt.Success, vocab.Servidor.Str(a.cfg.ServerAddress),
		vocab.Almacenadas.Uint(ack.Stored), vocab.Finalizada.Any(ack.Finished))
	return ack, nil
}

// finish says FINISH with the file's count, total, and checks the central's
// answer against the file: its count, then its digest of the agency's stored
// rows against digest, the file's (SPEC.md, "The digest").
func (a *Agency) finish(total uint64, digest protocol.Digest) error {
	if err := protocol.WriteMessage(a.conn, protocol.Finish{Total: total}); err != nil {
		return fmt.Errorf("finish: %w", err)
	}
	ack, err := expect[*protocol.FinishAck](a, a.cfg.ReplyTimeout)
	if err != nil {
		return fmt.Errorf("finish: %w", err)
	}
	if err := a.checkCount(ack.Stored, total); err != nil {
		return err
	}
	if err := a.checkDigest(ack.Digest, digest); err != nil {
		return err
	}
	a.progress++
	a.log.Info(vocab.FinApuestas, logfmt.Success, vocab.Apuestas.Uint(ack.Stored), vocab.Digesto.Str(digest.String()))
	return nil
}

// consult asks for the winners and waits, with no deadline, for the draw:
// it happens when the last agency finishes, however long that takes.
func (a *Agency) consult() ([]string, error) {
	if err := protocol.WriteMessage(a.conn, protocol.Consult{Agency: uint32(a.cfg.ID)}); err != nil {
		return nil, fmt.Errorf("consult winners: %w", err)
	}
	a.log.Debug(vocab.ConsultaGanadores, logfmt.InProgress)
	var docs []string
	want := -1
	for {
		w, err := expect[*protocol.Winners](a, 0)
		if err != nil {
			return nil, fmt.Errorf("consult winners: %w", err)
		}
		if want < 0 {
			want = int(w.Total)
			docs = make([]string, 0, min(want, 1<<16)) // a bogus total must not allocate much
		}
		if int(w.Total) != want || len(docs)+len(w.Documents) > want {
			return nil, fmt.Errorf("consult winners: frames disagree on the total (%d, then %d with %d documents after %d)",
				want, w.Total, len(w.Documents), len(docs))
		}
		docs = append(docs, w.Documents...)
		if len(docs) == want {
			return docs, nil
		}
	}
}

// receive reads one message, turning an ERROR from the central into an error.
// timeout 0 waits forever.
func (a *Agency) receive(timeout time.Duration) (protocol.Message, error) {
	if f, ok := a.conn.(flusher); ok {
		// Nothing the agency sent may wait below TLS while it waits for an answer.
		if err := f.Flush(); err != nil {
			return nil, err
		}
	}
	var deadline time.Time
	if timeout > 0 {
		deadline = time.Now().Add(timeout)
	}
	if err := a.conn.SetReadDeadline(deadline); err != nil {
		return nil, err
	}
	m, err := protocol.ReadMessage(a.br, protocol.MaxServerFrame)
	if err != nil {
		return nil, err
	}
	if e, ok := m.(*protocol.ErrorMessage); ok {
		return nil, e.Err()
	}
	return m, nil
}

// expect receives one message of type T.
func expect[T protocol.Message](a *Agency, timeout time.Duration) (T, error) {
	var zero T
	m, err := a.receive(timeout)
	if err != nil {
		return zero, err
	}
	t, ok := m.(T)
	if !ok {
		return zero, fmt.Errorf("unexpected %s", m.Type())
	}
	return t, nil
}
