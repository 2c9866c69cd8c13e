// Package identity is the rule that maps a TLS certificate to an agency, and the
// mutual-TLS configurations of the central and the agencies. SPEC.md, section
// "Identity", defines the rule; this package is its one implementation.
//
// A certificate names agency N when its Subject has exactly one Common Name,
// exactly "agency-N" (N in decimal, 1..4294967295, no sign, no leading zeros),
// and its extended key usage lists client authentication. The central's
// certificate has the Common Name "central" and names no agency. An
// operator's (operator.go) has "operator" or "operator-<name>": it names no
// agency, and the agencies' port refuses it at the handshake.
package identity

import (
	"crypto/tls"
	"crypto/x509"
	"encoding/asn1"
	"errors"
	"fmt"
	"math"
	"os"
	"slices"
	"strconv"
	"strings"
)

// CentralName is the Common Name of the central's certificate.
const CentralName = "central"

// agencyPrefix starts the Common Name of every agency certificate.
const agencyPrefix = "agency-"

// MaxAgency is the largest agency number a certificate can name: HELLO carries it as a u32.
const MaxAgency = math.MaxUint32

var (
	// ErrNoAgency is wrapped by every error of AgencyOf and ConnAgency that means
	// "this certificate names no agency" (for example the central's own).
	ErrNoAgency = errors.New("certificate names no agency")
	// ErrNoPeerCertificate means the connection has no verified peer certificate.
	ErrNoPeerCertificate = errors.New("no verified peer certificate")
)

// oidCommonName is the X.500 attribute type of the Common Name (2.5.4.3).
var oidCommonName = asn1.ObjectIdentifier{2, 5, 4, 3}

// AgencyName is the Common Name of agency n's certificate: "agency-3".
func AgencyName(n int) string { return agencyPrefix + strconv.Itoa(n) }

// AgencyOf returns the agency that cert names (see the package comment). Any
// other certificate gives an error that wraps ErrNoAgency and says why.
func AgencyOf(cert *x509.Certificate) (int, error) {
	if cert == nil {
		return 0, fmt.Errorf("read agency of certificate: no certificate: %w", ErrNoAgency)
	}
	cn, cns := commonName(cert)
	if cns != 1 {
		return 0, fmt.Errorf("read agency of certificate: %d common names, want exactly one: %w", cns, ErrNoAgency)
	}
	n, ok := parseAgency(cn)
	if !ok {
		return 0, fmt.Errorf("read agency of certificate: common name %q is not agency-N with N in 1..%d: %w",
			cn, MaxAgency, ErrNoAgency)
	}
	if !slices.Contains(cert.ExtKeyUsage, x509.ExtKeyUsageClientAuth) {
		return 0, fmt.Errorf("read agency of certificate %q: no client-auth extended key usage: %w", cn, ErrNoAgency)
	}
	return n, nil
}

// parseAgency parses "agency-N" strictly: decimal digits only, no sign, no
// leading zero, 1..MaxAgency, and N must fit an int.
func parseAgency(cn string) (int, bool) {
	digits, ok := strings.CutPrefix(cn, agencyPrefix)
	if !ok || digits == "" || digits[0] == '0' {
		return 0, false
	}
	for i := 0; i < len(digits); i++ {
		if digits[i] < '0' || digits[i] > '9' {
			return 0, false
		}
	}
	n, err := strconv.ParseUint(digits, 10, 32)
	if err != nil || n == 0 || n > math.MaxInt {
		return 0, false
	}
	return int(n), true
}

// ConnAgency returns the agency named by the verified peer certificate of a
// connection whose handshake completed (tls.Conn.ConnectionState). A peer whose
// certificate names no agency (the central's health probe) gets an error that
// wraps ErrNoAgency; a connection without a verified peer certificate one that
// wraps ErrNoPeerCertificate.
func ConnAgency(state tls.ConnectionState) (int, error) {
	if len(state.PeerCertificates) == 0 {
		return 0, fmt.Errorf("read agency of connection: %w", ErrNoPeerCertificate)
	}
	if len(state.VerifiedChains) == 0 {
		return 0, fmt.Errorf("read agency of connection: peer certificate %q was not verified: %w",
			state.PeerCertificates[0].Subject.CommonName, ErrNoPeerCertificate)
	}
	return AgencyOf(state.PeerCertificates[0])
}

// ServerConfig is the central's TLS configuration for the agencies' port:
// TLS 1.3 only, the central's certificate and key, and a client certificate
// required and verified against the CAs in clientCAFile, and no session
// resumed. An operator's certificate is refused at the handshake
// (ErrOperatorNotAgency).
func ServerConfig(certFile, keyFile, clientCAFile string) (*tls.Config, error) {
	cert, err := loadKeyPair("central", certFile, keyFile)
	if err != nil {
		return nil, err
	}
	pool, err := loadPool("client CA", clientCAFile)
	if err != nil {
		return nil, err
	}
	return &tls.Config{
		MinVersion:       tls.VersionTLS13,
		Certificates:     []tls.Certificate{cert},
		ClientAuth:       tls.RequireAndVerifyClientCert,
		ClientCAs:        pool,
		VerifyConnection: refuseOperators,
		// No resumption: an agency proves its certificate on every connection,
		// and none keeps a session cache (one connection per process), so a
		// ticket would be sealed and sent each time for nothing.
		SessionTicketsDisabled: true,
	}, nil
}

// ClientConfig is an agency's TLS configuration (and the central's health
// probe's): TLS 1.3 only, the client certificate and key, the central verified
// against the CAs in caFile under serverName. An empty serverName is allowed
// only with tls.Dial or tls.Dialer, which take it from the address dialled.
func ClientConfig(certFile, keyFile, caFile, serverName string) (*tls.Config, error) {
	cert, err := loadKeyPair("client", certFile, keyFile)
	if err != nil {
		return nil, err
	}
	pool, err := loadPool("CA", caFile)
	if err != nil {
		return nil, err
	}
	return &tls.Config{
		MinVersion:   tls.VersionTLS13,
		Certificates: []tls.Certificate{cert},
		RootCAs:      pool,
		ServerName:   serverName,
		// An agency streams megabytes: full-size records from the start,
		// not the small ones that help a browser's first bytes.
		DynamicRecordSizingDisabled: true,
	}, nil
}

// loadKeyPair reads a PEM certificate and its PEM private key.
func loadKeyPair(role, certFile, keyFile string) (tls.Certificate, error) {
	certPEM, err := os.ReadFile(certFile)
	if err != nil {
		return tls.Certificate{}, fmt.Errorf("load %s certificate %q: %w", role, certFile, err)
	}
	keyPEM, err := os.ReadFile(keyFile)
	if err != nil {
		return tls.Certificate{}, fmt.Errorf("load %s key %q: %w", role, keyFile, err)
	}
	cert, err := tls.X509KeyPair(certPEM, keyPEM)
	if err != nil {
		return tls.Certificate{}, fmt.Errorf("load %s certificate %q with key %q: %w", role, certFile, keyFile, err)
	}
	return cert, nil
}

// loadPool reads the PEM certificates of a CA file into a pool.
func loadPool(role, file string) (*x509.CertPool, error) {
	data, err := os.ReadFile(file)
	if err != nil {
		return nil, fmt.Errorf("load %s %q: %w", role, file, err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(data) {
		return nil, fmt.Errorf("load %s %q: no PEM certificate in the file", role, file)
	}
	return pool, nil
}
