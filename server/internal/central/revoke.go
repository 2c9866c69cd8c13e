package central

import (
	"crypto/x509"
	"errors"
	"fmt"

	"lotterycentral.example/lottery/logfmt"
	"lotterycentral.example/protocol/identity"
	"lotterycentral.example/server/internal/draw"
	"lotterycentral.example/server/internal/ledger"
	"lotterycentral.example/server/internal/vocab"
)

// SignalOperator is who a reload on SIGHUP is journaled and logged as: a
// signal brings no certificate to name an operator by.
const SignalOperator = "SIGHUP"

var (
	// errNoRevocationList: a reload with nothing to read.
	errNoRevocationList = errors.New("this central has no revocation list: set SERVER_TLS_REVOKED (with mutual TLS) and restart it")
	// errNotJournaled: the disk, not the operator, failed a reload.
	errNotJournaled = errors.New("the operator journal could not record the reload")
)

// ReloadRevocations reads the revocation list (SERVER_TLS_REVOKED) again,
// on operator's word (SignalOperator for SIGHUP), and enforces it: from then
// on a handshake with a certificate on it is refused, and the live
// connections of such certificates, which the old list let in, are closed
// at once. It returns what it did, for the operator.
//
// In order: the list is read and verified (a bad one changes nothing: the
// list in force stays); the reload is journaled durably, with what the list
// holds; then it takes effect. It logs one revocaciones line either way; an
// error says why it was refused.
func (s *Server) ReloadRevocations(operator string) (string, error) {
	fields := []logfmt.Field{vocab.Operador.Str(logText(operator)), vocab.Archivo.Str(s.cfg.TLSRevoked)}
	list, cut, err := s.reloadRevocations(operator)
	if err != nil {
		log := s.log.Warn
		if errors.Is(err, errNotJournaled) {
			log = s.log.Error
		}
		log(vocab.Revocaciones, logfmt.Fail, append(fields, vocab.Error.Any(err))...)
		return "", err
	}
	agencies := draw.FormatAgencies(cut, pendingListed)
	s.log.Info(vocab.Revocaciones, logfmt.Success, append(fields, vocab.Revocados.Int(list.Len()),
		vocab.NumeroLista.Str(list.Number()), vocab.Cortadas.Str(agencies))...)
	closed := "none"
	if len(cut) > 0 {
		closed = "agencies " + agencies
	}
	return fmt.Sprintf("revocation list reloaded by %s: %d revoked, list number %s; live connections closed: %s",
		operator, list.Len(), list.Number(), closed), nil
}

// reloadRevocations does ReloadRevocations' work and returns the list now
// in force and the agencies whose connections it closed.
func (s *Server) reloadRevocations(operator string) (*identity.Revocations, []int, error) {
	if s.tls == nil || s.cfg.TLSRevoked == "" {
		return nil, nil, fmt.Errorf("reload revocation list: %w", errNoRevocationList)
	}
	s.reloadMu.Lock()
	defer s.reloadMu.Unlock()
	// The journal is the ledger's: open once the round is read back, closed
	// by a shutdown (which waits for reloadMu).
	l := s.recovery.wait(s.quit)
	if l == nil || s.stopping() {
		return nil, nil, fmt.Errorf("reload revocation list: %w", ErrServerClosed)
	}
	s.mu.Lock()
	old := s.revoked
	s.mu.Unlock()
	list, err := identity.LoadRevocations(s.cfg.TLSRevoked, s.cas)
	if err != nil {
		return nil, nil, fmt.Errorf("reload: %w; the list in force stays (%d revoked, list number %s)", err, old.Len(), old.Number())
	}
	detail := fmt.Sprintf("revocation list: %d revoked, list number %s", list.Len(), list.Number())
	if err := l.Record(ledger.ActionReload, operator, detail); err != nil {
		if errors.Is(err, ledger.ErrInvalid) {
			return nil, nil, err // the operator's name: refused, not failed
		}
		return nil, nil, fmt.Errorf("%w, so the list in force stays: %w", errNotJournaled, err)
	}
	// It takes effect under the lock a handshake checks the list under: a
	// session either recorded its certificate before, and is found here, or
	// checks the new list.
	s.mu.Lock()
	s.revoked = list
	cut, agencies := s.conns.revokedBy(list)
	s.mu.Unlock()
	for _, sess := range cut {
		sess.close()
	}
	// Once they have ended, none of their batches is answered any more.
	for _, sess := range cut {
		<-sess.done
	}
	return list, agencies, nil
}

// verified records the certificate sess's handshake verified and returns
// an error wrapping identity.ErrRevoked if the list in force names it.
func (s *Server) verified(sess *session, leaf *x509.Certificate) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	sess.leaf = leaf
	return s.revoked.CheckRevoked(leaf)
}

// CheckRevoked is an error wrapping identity.ErrRevoked when the revocation
// list in force names cert (admin.Operator: the admin address refuses a
// revoked operator's certificate as this port refuses an agency's).
func (s *Server) CheckRevoked(cert *x509.Certificate) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.revoked.CheckRevoked(cert)
}
