package central

import (
	"bufio"
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"net"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"lotterycentral.example/lottery"
	"lotterycentral.example/lottery/logfmt"
	"lotterycentral.example/protocol"
	"lotterycentral.example/protocol/identity"
	"lotterycentral.example/server/internal/draw"
	"lotterycentral.example/server/internal/ledger"
	"lotterycentral.example/server/internal/metrics"
	"lotterycentral.example/server/internal/vocab"
)

// shutdownWriteTimeout bounds a last message: to an agency during shutdown,
// or to a connection the central refuses.
const shutdownWriteTimeout = time.Second

// readBuffer holds several whole batches; the rest of the batches an agency
// keeps in flight wait in the socket, and batchBuffered takes them from
// there, so that all of them are stored with one sync.
const readBuffer = 16 * protocol.MaxClientFrame

// Under TLS: tlsRecordsBuffer holds encrypted records as they arrive (a
// dozen batches; the rest wait in the socket, as in plaintext),
// tlsReadBuffer the decrypted bytes, two records of the largest size.
const (
	tlsRecordsBuffer = 12 * protocol.MaxClientFrame
	tlsReadBuffer    = 2 * 16 << 10
)

// errDataWhileParked: an agency waiting for its winners must not send anything.
var errDataWhileParked = errors.New("message received while waiting for the draw")

// session serves one connection. Its fields are used by its own goroutine
// only, except raw, which Shutdown, a replacing session or a reload may close
// from outside, and unidentified and leaf, which the server's lock guards.
type session struct {
	srv          *Server
	raw          net.Conn          // the TCP connection
	socket       syscall.RawConn   // raw's file descriptor, to ask what has arrived; nil if it has none
	conn         net.Conn          // raw, or the TLS connection over it
	source       string            // the peer's IP: the key of the per-source cap
	unidentified bool              // counted among the connections that have not said HELLO
	leaf         *x509.Certificate // the peer's verified certificate, once the handshake: a reload looks for revoked ones
	certAgency   int               // the agency the peer's verified certificate names; 0 for none
	// When HELLO was accepted and the agency's bets then, for the status
	// page's rate: written before claim, read under the server's lock.
	helloAt     time.Time
	helloStored uint64
	done        chan struct{}
	records     *recordConn     // under TLS: the socket's own buffer, below the TLS layer
	br          *bufio.Reader   // allocated after HELLO
	agency      int             // 0 until HELLO
	ledger      *ledger.Ledger  // set at HELLO
	batches     *ledger.Batches // this connection's batches on their way to the disk
	nextSeq     uint32          // the sequence number the next batch must carry
	payload     []byte          // reused frame buffer
	rows        lottery.Rows    // the batch being staged, checked and formatted
	staged      []staged
	answers     []protocol.Message // reused: the answers to the staged batches
	stored      *logfmt.Lines      // reused: their lines, logged with one write
	wbuf        []byte
	closeOnce   sync.Once
	parked      atomic.Bool // waiting at the draw barrier: Shutdown lets it say goodbye
}

func newSession(srv *Server, conn net.Conn, source string) *session {
	var socket syscall.RawConn
	if sc, ok := conn.(syscall.Conn); ok {
		socket, _ = sc.SyscallConn()
	}
	conn = srv.metrics.CountReads(conn)
	s := &session{srv: srv, raw: conn, socket: socket, conn: conn, source: source, unidentified: true,
		done: make(chan struct{}), stored: srv.log.Lines()}
	if srv.tls != nil {
		s.records = newRecordConn(conn)
		s.conn = tls.Server(s.records, srv.tls)
	}
	return s
}

// result is what a handler decided should happen; the loop does it. A
// handler reads the socket and logs what it did (a batch stored or
// refused, an agency identified), but never writes to the socket, logs a
// refusal or ends the session: that is the loop's job.
type result struct {
	// answers are written in order, with one write: a group commit's acks
	// leave together. Only a long run of WINNERS goes out a frame's worth at
	// a time.
	answers []protocol.Message
	// err ends the session after answers. A *protoErr is logged as a refusal
	// and told to the peer in an ERROR; any other error was logged where it
	// happened, and the peer hears nothing, unless it is a plaintext agency
	// at a TLS central, which is told so in its own framing.
	err error
	// end ends the session once answers are written.
	end bool
	// answered: answers are the agency's winners, this many of them; once
	// written, the central logs it and the barrier records it.
	answered bool
	winners  int
}

// protoErr is a protocol error: the code and text of the ERROR that ends a
// session.
type protoErr struct {
	code protocol.Code
	text string
	// unheard: the connection broke, so the refusal is logged, not sent.
	unheard bool
	// logged: the refusal was logged, and counted, where it was decided (a
	// revoked certificate, as a failed handshake); it is only sent.
	logged bool
}

func (e *protoErr) Error() string { return fmt.Sprintf("%s: %s", e.code, e.text) }

// answer is the result that sends msgs and goes on.
func answer(msgs ...protocol.Message) result { return result{answers: msgs} }

// refuse is the result that ends the session with a protocol error.
func refuse(code protocol.Code, text string) result {
	return result{err: &protoErr{code: code, text: text}}
}

// run is the session's loop, after nsq's IOLoop: it reads a frame, asks the
// frame's handler what to do, and does it, until the peer leaves, breaks the
// protocol, or the central shuts down.
func (s *session) run() {
	defer s.end()
	r := s.identify()
	for s.act(r) {
		r = s.next()
	}
}

// act does what r says; false ends the session. With the write helpers it
// calls, it is the only code that writes to the socket, logs a refusal and
// ends the session.
func (s *session) act(r result) bool {
	for _, m := range r.answers {
		if !s.queue(m) {
			return false
		}
		// A long run of WINNERS goes out a frame's worth at a time, not held whole.
		if len(s.wbuf) >= protocol.MaxServerFrame && !s.flush() {
			return false
		}
	}
	if r.err != nil {
		s.endWith(r.err)
		return false
	}
	if !s.flush() {
		return false
	}
	if r.answered {
		s.srv.barrier.Answered(s.agency)
		s.srv.log.Info(vocab.EnvioGanadores, logfmt.Success, vocab.Agencia.Int(s.agency), vocab.CantGanadores.Int(r.winners))
	}
	return !r.end
}

// next reads one frame of an identified agency and hands it to its handler.
func (s *session) next() result {
	if err := s.conn.SetReadDeadline(time.Now().Add(s.srv.cfg.IdleTimeout)); err != nil {
		return result{end: true}
	}
	f, err := protocol.ReadFrame(s.br, protocol.MaxClientFrame, s.payload)
	if err != nil {
		return s.readFailed(f.Type, err)
	}
	s.payload = f.Payload
	switch f.Type {
	case protocol.MsgPing:
		return answer(protocol.Pong{})
	case protocol.MsgHello:
		return s.hello(f.Payload)
	case protocol.MsgBatch:
		return s.storeBatches(f.Payload)
	case protocol.MsgFinish:
		return s.finish(f.Payload)
	case protocol.MsgConsult:
		return s.consult(f.Payload)
	}
	return refuse(protocol.CodeUnexpected, fmt.Sprintf("%s is not a message an agency sends", f.Type))
}

// readFailed says what a failed read of a frame means: the normal end of a
// connection, or a refusal, told to the peer when it can still hear it.
func (s *session) readFailed(t protocol.MsgType, err error) result {
	var ne net.Error
	switch {
	case errors.Is(err, io.EOF):
		// The agency closed its side: the normal end of a connection.
	case errors.Is(err, net.ErrClosed):
		// Shutdown closed the connection.
	case errors.As(err, &ne) && ne.Timeout():
		wait := s.srv.cfg.IdleTimeout
		if s.agency == 0 {
			wait = min(wait, s.srv.cfg.HelloTimeout)
		}
		return refuse(protocol.CodeIdleTimeout, fmt.Sprintf("no complete message for %s", wait))
	case errors.Is(err, protocol.ErrFrameTooLarge):
		if t == protocol.MsgBatch {
			s.logBatchFail(0, protocol.CodeFrameTooLarge)
		}
		return refuse(protocol.CodeFrameTooLarge, err.Error())
	case errors.Is(err, protocol.ErrUnknownType):
		return refuse(protocol.CodeUnknownType, err.Error())
	default:
		return result{err: &protoErr{code: protocol.CodeMalformed, text: err.Error(), unheard: true}}
	}
	return result{end: true}
}

// identify proves who the peer is before anything costly is allocated for
// it: the TLS handshake and then HELLO must each complete within
// HelloTimeout, and the first frame is read straight from the socket. A PING
// is answered without identifying (health probes) and the connection closed.
func (s *session) identify() result {
	wait := min(s.srv.cfg.HelloTimeout, s.srv.cfg.IdleTimeout)
	if tc, ok := s.conn.(*tls.Conn); ok {
		if err := s.handshake(tc, wait); err != nil {
			return result{err: err}
		}
	}
	if err := s.conn.SetReadDeadline(time.Now().Add(wait)); err != nil {
		return result{end: true}
	}
	f, err := protocol.ReadFrame(s.conn, protocol.MaxClientFrame, nil)
	if err != nil {
		return s.readFailed(f.Type, err)
	}
	switch f.Type {
	case protocol.MsgPing:
		return result{answers: []protocol.Message{protocol.Pong{}}, end: true}
	case protocol.MsgHello:
		return s.hello(f.Payload)
	}
	return refuse(protocol.CodeNotIdentified, fmt.Sprintf("%s before HELLO: identify the agency first", f.Type))
}

// handshake runs the TLS handshake within wait, refuses a certificate on
// the revocation list, and reads the agency the peer's verified certificate
// names.
//
// A revoked certificate completes the TLS handshake (crypto/tls could only
// refuse it with a bad_certificate alert, which would not say why) and gets
// ERROR revoked as its first and only frame, nothing read from it: the
// agency names the reason, as the central does.
func (s *session) handshake(tc *tls.Conn, wait time.Duration) error {
	if err := tc.SetDeadline(time.Now().Add(wait)); err != nil {
		return err
	}
	if err := tc.Handshake(); err != nil {
		s.handshakeFailed(err)
		return err
	}
	state := tc.ConnectionState()
	if len(state.PeerCertificates) > 0 {
		if err := s.srv.verified(s, state.PeerCertificates[0]); err != nil {
			s.handshakeFailed(err)
			return &protoErr{code: protocol.CodeRevoked, text: err.Error() + ": ask the lottery for a new one", logged: true}
		}
	}
	// A certificate that names no agency (the central's own, for its health
	// probe) may only PING.
	if agency, err := identity.ConnAgency(state); err == nil {
		s.certAgency = agency
	}
	return nil
}

// handshakeFailed logs and counts a handshake the central or the peer refused, or that broke.
func (s *session) handshakeFailed(err error) {
	reason, ok := identity.DescribeServerHandshakeError(err)
	if !ok {
		reason = metrics.HandshakeNetworkFailure
	}
	s.srv.metrics.HandshakeFailed(reason)
	s.srv.log.Warn(vocab.TLSHandshake, logfmt.Fail, vocab.Remoto.Any(s.conn.RemoteAddr()), vocab.Motivo.Str(reason),
		vocab.Error.Any(err))
}

func (s *session) hello(payload []byte) result {
	if s.agency != 0 {
		return refuse(protocol.CodeAlreadyIdentified, fmt.Sprintf("this connection is already agency %d", s.agency))
	}
	var m protocol.Hello
	if err := protocol.DecodeInto(payload, &m); err != nil {
		return refuse(protocol.CodeMalformed, err.Error())
	}
	if r, ok := s.checkHello(m); !ok {
		return r
	}
	// A central still recovering its bets answers once it knows them: the
	// agency waits on its socket, not on a port that refuses it.
	l := s.srv.recovery.wait(s.srv.quit)
	if l == nil {
		return refuse(protocol.CodeShuttingDown, "the central is shutting down")
	}
	agency := int(m.Agency)
	if l.Agency(agency).Excluded != nil {
		return refuse(protocol.CodeExcluded, excludedText(agency))
	}
	s.helloAt, s.helloStored = time.Now(), l.Agency(agency).Stored
	// A storage failure not healed yet (most likely a full disk) turns away the
	// agencies that still have bets to store; a finished one goes on to its winners.
	if !l.Agency(agency).Finished {
		if err := l.Ready(); err != nil {
			return refuse(protocol.CodeStorage, "the central cannot store bets yet; reconnect later")
		}
	}
	old, err := s.srv.claim(agency, s)
	if err != nil {
		return refuse(protocol.CodeAgencyBusy, fmt.Sprintf("agency %d %v", agency, err))
	}
	if old != nil {
		// The old session may be between writing a batch and counting it: the
		// count this HELLO answers with is exact only once it has ended.
		old.close()
		<-old.done
		s.srv.log.Info(vocab.ReemplazarConexion, logfmt.Success, vocab.Agencia.Int(agency),
			vocab.RemotoAnterior.Any(old.conn.RemoteAddr()), vocab.Remoto.Any(s.conn.RemoteAddr()))
	}
	// Again now that it holds the agency: an exclusion that ended while this
	// HELLO waited is seen here, and one that starts from now on ends this
	// session before it journals (Server.Exclude).
	if l.Agency(agency).Excluded != nil {
		return refuse(protocol.CodeExcluded, excludedText(agency))
	}
	s.srv.identified(s)
	s.agency, s.nextSeq, s.ledger, s.batches = agency, 1, l, l.Batches(agency)
	s.growBuffers()
	facts := l.Agency(agency)
	s.srv.log.Info(vocab.Identificacion, logfmt.Success, vocab.Agencia.Int(agency), vocab.Almacenadas.Uint(facts.Stored),
		vocab.Remoto.Any(s.conn.RemoteAddr()))
	return answer(protocol.HelloAck{Version: protocol.Version, Stored: facts.Stored, Finished: facts.Finished,
		Drawn: s.srv.barrier.Drawn(), Digest: facts.Digest})
}

// checkHello refuses a HELLO of the wrong version, for an agency the
// certificate does not name, or for no agency of the round.
func (s *session) checkHello(m protocol.Hello) (result, bool) {
	if m.Version != protocol.Version {
		return refuse(protocol.CodeBadVersion, fmt.Sprintf("protocol version %d; this central speaks %d", m.Version, protocol.Version)), false
	}
	if s.srv.tls != nil && uint64(m.Agency) != uint64(s.certAgency) {
		named := "none"
		if s.certAgency != 0 {
			named = identity.AgencyName(s.certAgency)
		}
		s.srv.log.Warn(vocab.Autorizacion, logfmt.Fail, vocab.Remoto.Any(s.conn.RemoteAddr()),
			vocab.AgenciaCertificado.Str(named), vocab.AgenciaDeclarada.Uint(uint64(m.Agency)))
		return refuse(protocol.CodeUnauthorized,
			fmt.Sprintf("this connection's certificate names agency %s; it may not speak for agency %d", named, m.Agency)), false
	}
	if m.Agency < 1 || uint64(m.Agency) > uint64(s.srv.cfg.Agencies) {
		return refuse(protocol.CodeBadAgency, fmt.Sprintf("agency %d; this draw has agencies 1..%d", m.Agency, s.srv.cfg.Agencies)), false
	}
	return result{}, true
}

// growBuffers gives an identified agency its read buffers: only now are
// they worth their memory.
func (s *session) growBuffers() {
	size := readBuffer
	if s.records != nil {
		// Most of the memory stays below TLS, where records wait whole;
		// batchBuffered decrypts the next one as the last is staged.
		s.records.grow(tlsRecordsBuffer)
		size = tlsReadBuffer
	}
	s.br = bufio.NewReaderSize(s.conn, size)
}

// maxStaged bounds the batches answered by one commit on one connection.
const maxStaged = 64

// staged is a batch read and handled but not answered yet: a written one
// waits for the commit that says whether it is durable.
type staged struct {
	reply   protocol.Message // BatchAck, or BatchReject for one refused before it was written
	seq     uint32
	count   int
	written bool // handed to the ledger
}

// storeBatches handles the batch in payload and every further batch that is
// already buffered whole (an agency keeps several in flight), commits all
// of them at once, then answers each in order.
func (s *session) storeBatches(payload []byte) result {
	s.staged = s.staged[:0]
	malformed := false
	for {
		st, ok := s.stageBatch(payload)
		if !ok {
			malformed = true
			break
		}
		s.staged = append(s.staged, st)
		if len(s.staged) == maxStaged || !s.batchBuffered() {
			break
		}
		f, err := protocol.ReadFrame(s.br, protocol.MaxClientFrame, s.payload)
		if err != nil {
			break // cannot happen, the frame is buffered whole; if it did, the next read says why
		}
		s.payload, payload = f.Payload, f.Payload
	}
	r := s.answerStaged()
	if r.err == nil && malformed {
		r.err = &protoErr{code: protocol.CodeMalformed, text: "BATCH shorter than its sequence number and count"}
	}
	return r
}

// batchBuffered reports whether a whole BATCH frame is waiting in the buffer.
func (s *session) batchBuffered() bool {
	for {
		if h, whole, ok := protocol.Buffered(s.br); ok {
			// An oversized frame is left to the read loop, which refuses it after the
			// batches already written are committed and answered.
			if h.Type() != protocol.MsgBatch || h.Length() > protocol.MaxClientPayload {
				return false
			}
			if whole {
				return true
			}
		}
		// Under TLS the frame's rest may sit in a whole record that arrived but
		// was not decrypted yet. Read only what has arrived: that record may
		// carry no data, and TLS would wait on the socket for the next one.
		if s.recordWaiting() {
			if err := s.records.readBuffered(func() error {
				_, err := s.br.Peek(s.br.Buffered() + 1)
				return err
			}); err != nil {
				return false
			}
			continue
		}
		// Or it is still in the socket: take what has arrived, which never
		// waits, so that the batches an agency keeps in flight share a sync
		// however little of them the buffer held.
		if !s.pull() {
			return false
		}
	}
}

// pull moves the bytes that have reached the socket into the lowest read
// buffer (the records' under TLS), as many as it has room for; false when
// none could be moved.
func (s *session) pull() bool {
	br := s.br
	if s.records != nil {
		br = s.records.br
	}
	room := br.Size() - br.Buffered()
	if room == 0 {
		return false
	}
	n := min(arrived(s.socket), room)
	if n == 0 {
		return false
	}
	_, err := br.Peek(br.Buffered() + n)
	return err == nil
}

// recordWaiting reports whether, under TLS, a whole record has arrived below
// the TLS layer and there is room to decrypt it into the read buffer.
func (s *session) recordWaiting() bool {
	return s.records != nil && s.br.Buffered() < s.br.Size() && s.records.recordBuffered()
}

// stageBatch checks one batch and hands it to the ledger whole, or refuses
// it whole. ok is false when the payload is too short to even name the batch.
func (s *session) stageBatch(payload []byte) (st staged, ok bool) {
	seq, count, ok := protocol.PeekBatch(payload)
	if !ok {
		s.logBatchFail(count, protocol.CodeMalformed)
		return staged{}, false
	}
	st = staged{seq: seq, count: count}
	rows, code, text := s.checkBatch(payload, seq)
	if code != 0 {
		st.reply = s.reject(seq, count, code, protocol.NoIndex, text)
		return st, true
	}
	// Every row checked in place and appended with the agency's column, or
	// the whole batch refused, naming the bet.
	s.rows.Reset()
	winners, bad, err := s.rows.AddBatch(s.agency, rows, time.Now())
	if err != nil {
		st.reply = s.reject(seq, count, protocol.CodeInvalidBet, uint32(bad), err.Error())
		return st, true
	}
	// A batch the ledger could not write is staged like a written one, using
	// up its number, so that the commit refuses it and the batches sent after
	// it with storage, rather than bad_sequence.
	_ = s.batches.Add(&s.rows, rows, winners)
	s.nextSeq++
	st.reply, st.count, st.written = protocol.BatchAck{Seq: seq}, s.rows.Len(), true
	return st, true
}

// checkBatch returns a batch's rows, or refuses it, with a code, when it
// cannot be stored now: malformed, empty, out of order, or after FINISH or
// the draw.
func (s *session) checkBatch(payload []byte, seq uint32) ([]byte, protocol.Code, string) {
	rows, _, err := protocol.BatchRows(payload)
	if err != nil {
		if errors.Is(err, protocol.ErrEmptyBatch) {
			return nil, protocol.CodeEmptyBatch, err.Error()
		}
		return nil, protocol.CodeMalformed, err.Error()
	}
	if seq != s.nextSeq {
		return nil, protocol.CodeBadSequence, fmt.Sprintf("batch %d out of order: the next batch must be %d", seq, s.nextSeq)
	}
	switch facts := s.ledger.Agency(s.agency); {
	case s.srv.barrier.Drawn():
		return nil, protocol.CodeDrawDone, "the draw already ran: no more bets"
	case facts.Finished:
		return nil, protocol.CodeAfterFinish, "this agency already sent FINISH"
	case facts.Excluded != nil:
		return nil, protocol.CodeExcluded, excludedText(s.agency)
	}
	return rows, 0, ""
}

// answerStaged commits the staged batches once and answers them all, in
// order: the durable ones acknowledged, the ones a storage failure lost
// refused with storage, and then ERROR storage ends the connection; the
// agency resumes from HELLO_ACK's count. The lines of the batches one commit
// stored leave with one write, before any other line.
func (s *session) answerStaged() result {
	durable, err := s.batches.Commit()
	s.answers = s.answers[:0]
	for _, st := range s.staged {
		reply := st.reply
		switch {
		case !st.written:
		case durable > 0:
			durable--
			s.stored.Info(vocab.ApuestaRecibida, logfmt.Success, vocab.Cantidad.Int(st.count), vocab.Agencia.Int(s.agency))
		default:
			s.stored.Flush()
			reply = s.reject(st.seq, st.count, protocol.CodeStorage, protocol.NoIndex,
				"the central could not store the batch; reconnect and resume")
		}
		s.answers = append(s.answers, reply)
	}
	s.stored.Flush()
	if err != nil {
		s.srv.log.Error(vocab.GuardarApuestas, logfmt.Fail, vocab.Agencia.Int(s.agency), vocab.Error.Any(err))
		return result{answers: s.answers,
			err: &protoErr{code: protocol.CodeStorage, text: "the central could not store bets; reconnect and resume"}}
	}
	return result{answers: s.answers}
}

// reject logs a refused batch and returns its answer; nothing of it was
// stored and the connection stays open.
func (s *session) reject(seq uint32, count int, code protocol.Code, index uint32, text string) protocol.Message {
	s.logBatchFail(count, code)
	s.srv.log.Warn(vocab.RechazoLote, logfmt.Fail, vocab.Agencia.Int(s.agency), vocab.Lote.Uint(uint64(seq)),
		vocab.Motivo.Any(code), vocab.Apuesta.Any(indexField(index)), vocab.Detalle.Str(text))
	return protocol.BatchReject{Seq: seq, Code: code, Index: index, Text: protocol.Text(text)}
}

// logBatchFail logs a batch refused with code, and counts it.
func (s *session) logBatchFail(count int, code protocol.Code) {
	s.srv.metrics.BatchRefused(code)
	s.srv.log.Error(vocab.ApuestaRecibida, logfmt.Fail, vocab.Cantidad.Int(count), vocab.Agencia.Int(s.agency))
}

func indexField(index uint32) any {
	if index == protocol.NoIndex {
		return "-"
	}
	return index
}

func (s *session) finish(payload []byte) result {
	var m protocol.Finish
	if err := protocol.DecodeInto(payload, &m); err != nil {
		return refuse(protocol.CodeMalformed, err.Error())
	}
	pending, err := s.ledger.Finish(s.agency, m.Total)
	switch {
	case errors.Is(err, ledger.ErrFinished):
		return refuse(protocol.CodeAfterFinish, "this agency already sent FINISH")
	case errors.Is(err, ledger.ErrExcluded):
		return refuse(protocol.CodeExcluded, excludedText(s.agency))
	case errors.Is(err, ledger.ErrCount):
		return refuse(protocol.CodeCountMismatch,
			fmt.Sprintf("FINISH says %d bets, the central stored %d", m.Total, s.ledger.Agency(s.agency).Stored))
	case err != nil:
		s.srv.log.Error(vocab.GuardarFin, logfmt.Fail, vocab.Agencia.Int(s.agency), vocab.Error.Any(err))
		return refuse(protocol.CodeStorage, "the central could not record the FINISH")
	}
	if pending == 0 {
		s.srv.runDraw(s.ledger)
	}
	digest := s.ledger.Agency(s.agency).Digest
	s.srv.log.Info(vocab.FinApuestas, logfmt.Success, vocab.Agencia.Int(s.agency), vocab.Apuestas.Uint(m.Total),
		vocab.AgenciasPendientes.Int(pending), vocab.Digesto.Str(digest.String()))
	return answer(protocol.FinishAck{Stored: m.Total, Digest: digest})
}

// consult parks the agency at the draw barrier until the draw ran, then
// answers with its winners.
func (s *session) consult(payload []byte) result {
	var m protocol.Consult
	if err := protocol.DecodeInto(payload, &m); err != nil {
		return refuse(protocol.CodeMalformed, err.Error())
	}
	if uint64(m.Agency) != uint64(s.agency) {
		return refuse(protocol.CodeWrongAgency, fmt.Sprintf("agency %d may only ask for its own winners, not agency %d's", s.agency, m.Agency))
	}
	if !s.ledger.Agency(s.agency).Finished {
		return refuse(protocol.CodeNotFinished, "send FINISH before asking for winners")
	}
	err := s.park()
	switch {
	case errors.Is(err, draw.ErrClosing):
		return refuse(protocol.CodeShuttingDown, "the central is shutting down before the draw")
	case errors.Is(err, errDataWhileParked):
		return refuse(protocol.CodeUnexpected, err.Error())
	case err != nil:
		// The agency went away before the draw: worth an operator's look.
		s.srv.log.Warn(vocab.EsperaSorteo, logfmt.Fail, vocab.Agencia.Int(s.agency), vocab.Motivo.Str("conexion_cerrada"),
			vocab.Error.Any(err))
		return result{end: true}
	}
	docs := s.ledger.Winners(s.agency)
	winners := protocol.SplitWinners(docs)
	r := result{answers: make([]protocol.Message, len(winners)), answered: true, winners: len(docs)}
	for i, w := range winners {
		r.answers[i] = w
	}
	return r
}

// park waits at the draw barrier. Meanwhile a watcher goroutine blocks on the
// socket: whatever it sees (EOF, an error, or bytes the agency should not be
// sending) cancels the wait, so a parked goroutine never outlives its
// connection. The idle timeout does not apply while parked.
func (s *session) park() error {
	if err := s.conn.SetReadDeadline(time.Time{}); err != nil {
		return fmt.Errorf("park: %w", err)
	}
	s.parked.Store(true)
	defer s.parked.Store(false)
	ctx, cancel := context.WithCancelCause(context.Background())
	defer cancel(nil)
	watched := make(chan struct{})
	go func() {
		defer close(watched)
		_, err := s.br.Peek(1)
		if err == nil {
			err = errDataWhileParked
		}
		cancel(err)
	}()
	err := s.srv.barrier.Wait(ctx, s.agency)
	// Wake the watcher (Peek fails on the deadline) and wait for it; the
	// bufio.Reader stays usable afterwards.
	_ = s.conn.SetReadDeadline(time.Unix(1, 0))
	<-watched
	// The wait ended on the watcher's word (not on the draw or shutdown): say
	// what the watcher saw.
	if errors.Is(err, context.Canceled) {
		cause := context.Cause(ctx)
		if errors.Is(cause, errDataWhileParked) {
			return cause
		}
		return fmt.Errorf("connection ended while waiting for the draw: %w", cause)
	}
	return err
}

// The write helpers: act's, and no one else's.

// queue encodes m after the messages already waiting in wbuf.
func (s *session) queue(m protocol.Message) bool {
	out, err := protocol.AppendMessage(s.wbuf, m)
	if err != nil {
		s.srv.log.Error(vocab.Enviar, logfmt.Fail, vocab.Agencia.Int(s.agency), vocab.Mensaje.Any(m.Type()), vocab.Error.Any(err))
		return false
	}
	s.wbuf = out
	return true
}

// flush writes every queued message at once.
func (s *session) flush() bool {
	if len(s.wbuf) == 0 {
		return true
	}
	defer func() { s.wbuf = s.wbuf[:0] }()
	// A peer that does not read must not block this goroutine forever, nor
	// hold up a shutdown for long.
	timeout := s.srv.cfg.IdleTimeout
	if s.srv.stopping() {
		timeout = min(timeout, shutdownWriteTimeout)
	}
	if err := s.conn.SetWriteDeadline(time.Now().Add(timeout)); err != nil {
		return false
	}
	if err := protocol.WriteFrame(s.conn, s.wbuf); err != nil {
		s.srv.log.Debug(vocab.Enviar, logfmt.Fail, vocab.Agencia.Int(s.agency), vocab.Error.Any(err))
		return false
	}
	return true
}

// endWith reports the error that ends the session (see result.err): a
// protocol error is logged, then written after the answers already queued.
func (s *session) endWith(err error) {
	var pe *protoErr
	if !errors.As(err, &pe) {
		identity.RefusePlaintext(err, shutdownWriteTimeout)
		return
	}
	if !pe.logged {
		s.srv.metrics.ProtocolError(pe.code)
		s.srv.log.Warn(vocab.Protocolo, logfmt.Fail, vocab.Agencia.Int(s.agency), vocab.Remoto.Any(s.conn.RemoteAddr()),
			vocab.Motivo.Any(pe.code), vocab.Detalle.Str(pe.text))
	}
	if !pe.unheard && s.queue(protocol.ErrorMessage{Code: pe.code, Text: protocol.Text(pe.text)}) {
		s.flush()
	}
}

// close closes the connection; safe from any goroutine, any number of times.
// It closes the TCP connection under any TLS: closing the TLS connection
// would first try to send an alert to a peer that may not be reading.
func (s *session) close() {
	s.closeOnce.Do(func() { _ = s.raw.Close() })
}

func (s *session) end() {
	defer close(s.done)
	s.close()
	s.srv.release(s)
	// Health probes never identify; at INFO they would flood the log.
	log := s.srv.log.Info
	if s.agency == 0 {
		log = s.srv.log.Debug
	}
	log(vocab.CerrarConexion, logfmt.Success, vocab.Agencia.Int(s.agency), vocab.Remoto.Any(s.conn.RemoteAddr()))
}
