package agency

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"

	"lotterycentral.example/client/internal/vocab"
	"lotterycentral.example/lottery/logfmt"
	"lotterycentral.example/lottery/wire"
	"lotterycentral.example/protocol"
	"lotterycentral.example/protocol/identity"
)

// AuthError is a TLS handshake or certificate failure: the central's
// certificate is not trusted, names another host, has expired, or the central
// refused ours (revoked: it is on the central's revocation list, told as
// ERROR revoked right after the handshake). No retry fixes it, so it is
// never retried.
type AuthError struct {
	Reason string // identity's reason: unknown_authority, name_mismatch, expired, revoked, refused_by_central, not_tls, …
	Err    error
}

func (e *AuthError) Error() string { return fmt.Sprintf("tls: %s: %v", e.Reason, e.Err) }

func (e *AuthError) Unwrap() error { return e.Err }

// authError classifies err as an *AuthError when it is a handshake or
// certificate failure, and returns it unchanged otherwise (a network error,
// which is retried).
func authError(err error) error {
	if reason, ok := identity.DescribeHandshakeError(err); ok {
		return &AuthError{Reason: reason, Err: err}
	}
	return err
}

// CountMismatchError: the central's count of this agency's bets is not the
// number of bets in the agency's file, so any result it gave would be wrong.
type CountMismatchError struct {
	Central uint64 // bets the central says it holds
	File    uint64 // bets in the agency's file
}

func (e *CountMismatchError) Error() string {
	return fmt.Sprintf("the central holds %d bets of this agency but its file has %d", e.Central, e.File)
}

// DigestMismatchError: the central's digest of this agency's stored bets is
// not the digest of the agency's file, so the central holds other rows than
// the agency sent (one changed, reordered or swapped, even with the count
// right), and any result it gave would be built on them.
type DigestMismatchError struct {
	Central protocol.Digest // the digest FINISH_ACK carried
	File    protocol.Digest // the digest of the agency's file
}

func (e *DigestMismatchError) Error() string {
	return fmt.Sprintf("the central's digest of this agency's bets is %s but its file's is %s", e.Central, e.File)
}

// tlsConfig loads the agency's certificate, key and CA once; nil means plaintext.
func (a *Agency) tlsConfig() (*tls.Config, error) {
	if a.tls != nil || !a.cfg.TLSEnabled() {
		return a.tls, nil
	}
	name := a.cfg.TLSServerName
	if name == "" {
		name, _, _ = net.SplitHostPort(a.cfg.ServerAddress)
	}
	cfg, err := identity.ClientConfig(a.cfg.TLSCert, a.cfg.TLSKey, a.cfg.TLSCA, name)
	if err != nil {
		return nil, fmt.Errorf("load tls configuration: %w", err)
	}
	a.tls = cfg
	return cfg, nil
}

// handshake runs the TLS handshake on conn. A certificate failure comes back
// as an *AuthError; anything else is a network error, worth another connection.
func (a *Agency) handshake(ctx context.Context, conn net.Conn) (net.Conn, error) {
	rc := newRecordsConn(conn)
	tc := tls.Client(rc, a.tls)
	hctx, cancel := context.WithTimeout(ctx, a.cfg.ReplyTimeout)
	defer cancel()
	if err := tc.HandshakeContext(hctx); err != nil {
		conn.Close()
		err = authError(err)
		var ae *AuthError
		if errors.As(err, &ae) {
			a.logRefused(ae)
		}
		return nil, fmt.Errorf("tls handshake with %s: %w", a.cfg.ServerAddress, err)
	}
	rc.gather.Store(true)
	return sealedConn{Conn: tc, records: rc}, nil
}

// logRefused reports a handshake that the central or the agency refused.
func (a *Agency) logRefused(ae *AuthError) {
	a.log.Error(vocab.TLSHandshake, logfmt.Fail, vocab.Servidor.Str(a.cfg.ServerAddress),
		vocab.Motivo.Str(ae.Reason), vocab.Error.Any(ae.Err))
}

// checkCount compares the central's count of this agency's bets with the
// agency's own file: the agency never reports a result built on bets it did
// not send (an impostor's FINISH or injected bets, without TLS).
func (a *Agency) checkCount(central, file uint64) error {
	if central == file {
		return nil
	}
	err := &CountMismatchError{Central: central, File: file}
	a.log.Error(vocab.VerificarConteo, logfmt.Fail, vocab.AlmacenadasCentral.Uint(central),
		vocab.ApuestasArchivo.Uint(file), vocab.Archivo.Str(a.cfg.DataPath))
	return err
}

// checkDigest compares the central's digest of this agency's stored bets
// with the digest of the agency's own file: equal counts of other rows (a bet
// altered, at the central or on the way) are caught here.
func (a *Agency) checkDigest(central, file protocol.Digest) error {
	if central == file {
		return nil
	}
	err := &DigestMismatchError{Central: central, File: file}
	a.log.Error(vocab.VerificarDigesto, logfmt.Fail, vocab.DigestoCentral.Str(central.String()),
		vocab.DigestoArchivo.Str(file.String()), vocab.Archivo.Str(a.cfg.DataPath))
	return err
}

// readFile counts the bets in the agency's file and computes its digest.
func (a *Agency) readFile() (uint64, protocol.Digest, error) {
	n, d, err := wire.FileDigest(a.cfg.DataPath)
	if err != nil {
		return 0, protocol.Digest{}, &DataFileError{Path: a.cfg.DataPath, Err: err}
	}
	return n, d, nil
}
