package identity

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"slices"
	"strings"
)

// An operator acts on the central's admin address (excludes an agency,
// reloads the revocation list, reads the profiler), never on the agencies'
// port. SPEC.md, section "Identity", defines the rule; in short, a
// certificate names an operator when its Subject has exactly one Common Name,
// exactly "operator" or "operator-<name>" (name: a-z, 0-9, '.', '_', '-',
// starting with a letter or digit; 64 characters in all at most), and its
// extended key usage lists client authentication. No agency can hold such a name: an agency's is
// "agency-N".

// OperatorName is the Common Name of the operator certificate `make certs`
// issues (operator.pem); a named operator's is "operator-<name>".
const OperatorName = "operator"

const operatorPrefix = OperatorName + "-"

// maxOperatorSuffix bounds <name> in "operator-<name>": the whole name within
// RFC 5280's 64 characters of a Common Name.
const maxOperatorSuffix = 64 - len(operatorPrefix)

// The reasons a certificate is refused where an operator's is needed, beside
// ReasonNoCertificate, ReasonUnknownAuthority, ReasonExpired and
// ReasonInvalidCertificate (DescribeOperatorError), and the reason the
// agencies' port refuses an operator's (DescribeServerHandshakeError).
const (
	// ReasonAgencyCertificate: an agency's certificate where an operator's is needed.
	ReasonAgencyCertificate = "agency_certificate"
	// ReasonNotOperator: a verified certificate that names no operator (the central's own, say).
	ReasonNotOperator = "not_operator"
	// ReasonOperatorCertificate: an operator's certificate on the agencies' port.
	ReasonOperatorCertificate = "operator_certificate"
)

var (
	// ErrNoOperator is wrapped by every error of OperatorOf and VerifyOperator
	// that means "this certificate names no operator".
	ErrNoOperator = errors.New("certificate names no operator")
	// ErrAgencyNotOperator is an agency's certificate where an operator's is
	// needed; errors.Is matches ErrNoOperator with it too.
	ErrAgencyNotOperator error = agencyNotOperator{}
	// ErrOperatorNotAgency is the agencies' port refusing an operator's
	// certificate at the handshake.
	ErrOperatorNotAgency = errors.New("an operator's certificate is refused on the agencies' port: operators act on the admin address")
)

type agencyNotOperator struct{}

func (agencyNotOperator) Error() string        { return "an agency may not act as an operator" }
func (agencyNotOperator) Is(target error) bool { return target == ErrNoOperator }

// OperatorCommonName is the Common Name of operator name's certificate:
// "operator" for "", "operator-<name>" otherwise. A name the rule does not
// accept is an error.
func OperatorCommonName(name string) (string, error) {
	cn := OperatorName
	if name != "" {
		cn = operatorPrefix + name
	}
	if !validOperator(cn) {
		return "", fmt.Errorf("operator name %q: want 1..%d of a-z, 0-9, '.', '_', '-', starting with a letter or digit",
			name, maxOperatorSuffix)
	}
	return cn, nil
}

// OperatorOf returns the operator cert names: its Common Name ("operator",
// "operator-ana"), which is how logs and the central's records name the
// operator. Any other certificate gives an error that wraps ErrNoOperator
// (ErrAgencyNotOperator for an agency's) and says why. It does not verify
// the certificate: VerifyOperator does.
func OperatorOf(cert *x509.Certificate) (string, error) {
	if cert == nil {
		return "", fmt.Errorf("read operator of certificate: no certificate: %w", ErrNoOperator)
	}
	cn, n := commonName(cert)
	if n != 1 {
		return "", fmt.Errorf("read operator of certificate: %d common names, want exactly one: %w", n, ErrNoOperator)
	}
	if !validOperator(cn) {
		if agency, err := AgencyOf(cert); err == nil {
			return "", fmt.Errorf("read operator of certificate: %q names agency %d: %w", cn, agency, ErrAgencyNotOperator)
		}
		return "", fmt.Errorf("read operator of certificate: common name %q is not %s or %s<name>: %w",
			cn, OperatorName, operatorPrefix, ErrNoOperator)
	}
	if !slices.Contains(cert.ExtKeyUsage, x509.ExtKeyUsageClientAuth) {
		return "", fmt.Errorf("read operator of certificate %q: no client-auth extended key usage: %w", cn, ErrNoOperator)
	}
	return cn, nil
}

// validOperator reports whether cn is "operator" or "operator-<name>".
func validOperator(cn string) bool {
	if cn == OperatorName {
		return true
	}
	name, ok := strings.CutPrefix(cn, operatorPrefix)
	if !ok || name == "" || len(name) > maxOperatorSuffix {
		return false
	}
	for i := 0; i < len(name); i++ {
		c := name[i]
		alnum := c >= 'a' && c <= 'z' || c >= '0' && c <= '9'
		if !alnum && (i == 0 || c != '.' && c != '_' && c != '-') {
			return false
		}
	}
	return true
}

// VerifyOperator checks the peer certificate of a TLS connection whose
// handshake asked for one but did not verify it (the admin listener, see
// AdminConfig): it must chain to roots, be valid now, allow client
// authentication and name an operator. It returns the operator's name
// (OperatorOf). DescribeOperatorError says why it failed.
func VerifyOperator(state tls.ConnectionState, roots *x509.CertPool) (string, error) {
	if len(state.PeerCertificates) == 0 {
		return "", fmt.Errorf("verify operator: %w", ErrNoPeerCertificate)
	}
	if roots == nil {
		// x509 would fall back on the system's roots: never an operator's CA.
		return "", fmt.Errorf("verify operator: no CA to verify against: %w", ErrNoOperator)
	}
	leaf := state.PeerCertificates[0]
	inter := x509.NewCertPool()
	for _, c := range state.PeerCertificates[1:] {
		inter.AddCert(c)
	}
	opts := x509.VerifyOptions{Roots: roots, Intermediates: inter, KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}}
	if _, err := leaf.Verify(opts); err != nil {
		return "", fmt.Errorf("verify operator certificate %q: %w", leaf.Subject.CommonName, err)
	}
	return OperatorOf(leaf)
}

// DescribeOperatorError classifies an error of VerifyOperator into a short
// stable reason: ReasonNoCertificate, ReasonUnknownAuthority, ReasonExpired,
// ReasonInvalidCertificate, ReasonAgencyCertificate, ReasonNotOperator or
// ReasonRevoked (the revocation list names it: ErrRevoked).
func DescribeOperatorError(err error) string {
	switch {
	case errors.Is(err, ErrRevoked):
		return ReasonRevoked
	case errors.Is(err, ErrNoPeerCertificate):
		return ReasonNoCertificate
	case errors.Is(err, ErrAgencyNotOperator):
		return ReasonAgencyCertificate
	case errors.Is(err, ErrNoOperator):
		return ReasonNotOperator
	}
	if reason, ok := describe(err, ReasonInvalidCertificate); ok {
		return reason
	}
	return ReasonInvalidCertificate
}

// refuseOperators is the agencies' port's last check of a handshake: an
// operator's certificate is refused there (a bad_certificate alert), whatever
// the connection would say next.
func refuseOperators(state tls.ConnectionState) error {
	if len(state.PeerCertificates) == 0 {
		return nil
	}
	if cn, err := OperatorOf(state.PeerCertificates[0]); err == nil {
		return fmt.Errorf("certificate %q: %w", cn, ErrOperatorNotAgency)
	}
	return nil
}

// AdminConfig is the TLS side of the central's admin address, made from the
// agencies' port's configuration (ServerConfig): the same certificate and
// CA, but a client certificate is asked for, not required, and not verified
// by TLS. A peer without one may read what plain HTTP serves; one with a
// certificate proves it holds the key (TLS checks its signature), and
// VerifyOperator checks the rest per request, so that a refusal is an HTTP
// answer that says why, not a bare alert.
func AdminConfig(agencies *tls.Config) *tls.Config {
	cfg := agencies.Clone()
	cfg.ClientAuth = tls.RequestClientCert
	cfg.VerifyConnection = nil // operators are who this address is for
	return cfg
}

// commonName is cert's Common Name and how many Common Name attributes its
// Subject has.
func commonName(cert *x509.Certificate) (string, int) {
	n := 0
	for _, atv := range cert.Subject.Names {
		if atv.Type.Equal(oidCommonName) {
			n++
		}
	}
	if n == 0 && cert.Subject.CommonName != "" {
		n = 1 // a certificate built in memory, never parsed: Names is empty
	}
	return cert.Subject.CommonName, n
}
