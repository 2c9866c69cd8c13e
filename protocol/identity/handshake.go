package identity

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"net"
	"time"

	"lotterycentral.example/protocol"
)

// Reasons a TLS handshake failed, as DescribeHandshakeError and
// DescribeServerHandshakeError name them. They are stable: logs and tests use them.
const (
	// ReasonUnknownAuthority: the peer's certificate does not chain to our CA.
	ReasonUnknownAuthority = "unknown_authority"
	// ReasonNameMismatch: the central's certificate is not valid for the name dialled.
	ReasonNameMismatch = "name_mismatch"
	// ReasonExpired: a certificate is expired (or not yet valid): the peer's, or
	// ours as the peer told us with a certificate_expired alert.
	ReasonExpired = "expired"
	// ReasonInvalidCertificate: the peer's certificate chains to our CA but is
	// unusable for another reason (wrong key usage, not a CA, constraints…).
	ReasonInvalidCertificate = "invalid_certificate"
	// ReasonNoCertificate: the agency presented no certificate (central's view).
	ReasonNoCertificate = "no_certificate"
	// ReasonRefusedByCentral: the central refused our certificate with a TLS alert.
	ReasonRefusedByCentral = "refused_by_central"
	// ReasonRefusedByAgency: the agency refused the central's certificate with a TLS alert.
	ReasonRefusedByAgency = "refused_by_agency"
	// ReasonNotTLS: the peer does not speak TLS (a plaintext central or agency).
	ReasonNotTLS = "not_tls"
	// ReasonHandshakeFailed: any other TLS alert from the peer (no common
	// version or cipher suite, …).
	ReasonHandshakeFailed = "handshake_failed"
)

// Alerts that refuse a certificate (RFC 8446, section 6.2).
var certificateAlerts = map[tls.AlertError]bool{
	42:  true, // bad_certificate
	43:  true, // unsupported_certificate
	44:  true, // certificate_revoked
	45:  true, // certificate_expired
	46:  true, // certificate_unknown
	48:  true, // unknown_ca
	49:  true, // access_denied
	116: true, // certificate_required
}

const (
	alertCertificateRevoked tls.AlertError = 44
	alertCertificateExpired tls.AlertError = 45
)

// DescribeHandshakeError classifies, from an agency's point of view, an error
// of a TLS connection to the central into a short stable reason, with ok true
// when it is a handshake or certificate failure that retrying cannot fix:
// ReasonUnknownAuthority, ReasonNameMismatch, ReasonExpired,
// ReasonInvalidCertificate, ReasonRevoked, ReasonRefusedByCentral,
// ReasonNotTLS, ReasonHandshakeFailed. Network errors (refused, reset,
// timeout, EOF) give ok false: the agency keeps retrying those.
//
// A revoked certificate is refused by the central right after the handshake,
// with ERROR revoked in place of any frame (crypto/tls can only send
// bad_certificate from the central's checks, which would not say why); a
// certificate_revoked alert, which another central could send, means the same.
//
// In TLS 1.3 the client's Handshake returns before the server has checked the
// client's certificate, so a central that refuses the agency's certificate is
// seen on the agency's first Read (waiting for HELLO_ACK), as an alert. Pass
// the errors of the handshake and of the first exchange here. A write may fail
// first (broken pipe, reset: the central closed after its alert); the alert is
// still waiting to be read, so read once before calling that a network error.
//
// A plaintext central answers the ClientHello with ERROR frame_too_large (the
// ClientHello's first 5 bytes read as a frame header announcing ~50 MB): the
// agency sees a tls.RecordHeaderError, ReasonNotTLS. A peer that closes
// without answering gives io.EOF, which is not classified.
func DescribeHandshakeError(err error) (reason string, ok bool) {
	return describe(err, ReasonRefusedByCentral)
}

// DescribeServerHandshakeError classifies, from the central's point of view,
// the error of a TLS handshake with a would-be agency: ReasonNoCertificate,
// ReasonUnknownAuthority, ReasonExpired, ReasonInvalidCertificate,
// ReasonRefusedByAgency (it refused our certificate), ReasonNotTLS (a plaintext
// agency; see RefusePlaintext), ReasonOperatorCertificate (an operator's
// certificate, refused on the agencies' port), ReasonRevoked (a certificate
// on the revocation list: ErrRevoked), ReasonHandshakeFailed. Network errors,
// timeouts and EOF give ok false.
func DescribeServerHandshakeError(err error) (reason string, ok bool) {
	if err == nil {
		return "", false
	}
	switch {
	case errors.Is(err, ErrOperatorNotAgency):
		return ReasonOperatorCertificate, true
	case errors.Is(err, ErrRevoked):
		return ReasonRevoked, true
	}
	// crypto/tls returns this one as a plain errors.New; the test pins the text.
	if errText(err) == errNoClientCertificate {
		return ReasonNoCertificate, true
	}
	return describe(err, ReasonRefusedByAgency)
}

const errNoClientCertificate = "tls: client didn't provide a certificate"

// errText is the text of the innermost error of err's chain.
func errText(err error) string {
	for {
		next := errors.Unwrap(err)
		if next == nil {
			return err.Error()
		}
		err = next
	}
}

func describe(err error, refused string) (string, bool) {
	if err == nil {
		return "", false
	}
	if _, ok := errors.AsType[x509.UnknownAuthorityError](err); ok {
		return ReasonUnknownAuthority, true
	}
	if _, ok := errors.AsType[x509.HostnameError](err); ok {
		return ReasonNameMismatch, true
	}
	if inv, ok := errors.AsType[x509.CertificateInvalidError](err); ok {
		if inv.Reason == x509.Expired {
			return ReasonExpired, true
		}
		return ReasonInvalidCertificate, true
	}
	if _, ok := errors.AsType[*tls.CertificateVerificationError](err); ok {
		return ReasonInvalidCertificate, true
	}
	if _, ok := errors.AsType[tls.RecordHeaderError](err); ok {
		return ReasonNotTLS, true
	}
	if re, ok := errors.AsType[*protocol.RemoteError](err); ok && re.Code == protocol.CodeRevoked {
		return ReasonRevoked, true
	}
	if a, ok := remoteAlert(err); ok {
		switch {
		case a == alertCertificateRevoked:
			return ReasonRevoked, true
		case a == alertCertificateExpired:
			return ReasonExpired, true
		case certificateAlerts[a]:
			return refused, true
		default:
			return ReasonHandshakeFailed, true
		}
	}
	return "", false
}

// remoteAlert finds the TLS alert the peer sent. crypto/tls reports it as a
// *net.OpError with Op "remote error" around an unexported alert type whose
// text is the same as tls.AlertError's (QUIC uses tls.AlertError itself).
func remoteAlert(err error) (tls.AlertError, bool) {
	if a, ok := errors.AsType[tls.AlertError](err); ok {
		return a, true
	}
	op, ok := errors.AsType[*net.OpError](err)
	if !ok || op.Op != "remote error" || op.Err == nil {
		return 0, false
	}
	text := op.Err.Error()
	for a := range 256 {
		if tls.AlertError(a).Error() == text {
			return tls.AlertError(a), true
		}
	}
	return 0, false
}

// RefusePlaintext lets a TLS central answer a plaintext agency in its own
// language. When err is the handshake error of a peer whose first bytes are a
// protocol frame header (an agency or probe without TLS), it writes ERROR
// unauthorized ("this central requires TLS") in plaintext on the raw
// connection, within timeout, and reports true. The caller still closes the
// connection. Any other error is left alone (false).
func RefusePlaintext(err error, timeout time.Duration) bool {
	rhe, ok := errors.AsType[tls.RecordHeaderError](err)
	if !ok || rhe.Conn == nil {
		return false
	}
	h := protocol.Header(rhe.RecordHeader)
	if t := h.Type(); !t.Known() || t >= 0x80 || h.Length() > protocol.MaxClientPayload {
		return false
	}
	_ = rhe.Conn.SetWriteDeadline(time.Now().Add(timeout))
	return protocol.WriteMessage(rhe.Conn, protocol.ErrorMessage{
		Code: protocol.CodeUnauthorized,
		Text: "this central requires TLS: connect with a client certificate",
	}) == nil
}
