// Package pki issues the project's certificates: a CA, the central's
// certificate, an operator's and one certificate per agency, following the
// identity rule of SPEC.md (package identity). Keys are ECDSA P-256; files are PEM
// ("CERTIFICATE", and PKCS#8 "PRIVATE KEY"). It is used by the certs command
// (WriteDir) and by tests of any module (NewCA, IssueCentral, IssueAgency,
// IssueOperator).
package pki

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"fmt"
	"math/big"
	"net"
	"os"
	"slices"
	"strings"
	"time"

	"lotterycentral.example/protocol/identity"
)

// Default validity windows, used when NotAfter is zero.
const (
	DefaultCAValidity   = 10 * 365 * 24 * time.Hour
	DefaultLeafValidity = 2 * 365 * 24 * time.Hour
	// Backdate is how far before now a zero NotBefore starts, for clocks that
	// lag behind the one that issued the certificate.
	Backdate = time.Hour
)

// DefaultCentralHosts are the names and addresses every central certificate
// is valid for: the compose service name, and the loopback.
var DefaultCentralHosts = []string{"server", "localhost", "127.0.0.1", "::1"}

// Cert is a certificate and its private key.
type Cert struct {
	Cert *x509.Certificate
	Key  *ecdsa.PrivateKey
}

// CA is a certificate authority that signs the central's and agencies' certificates.
type CA struct {
	Cert
}

// NewCA makes a self-signed CA named commonName. Zero times mean now-Backdate
// and NotBefore+DefaultCAValidity. A second NewCA is an unrelated CA.
func NewCA(commonName string, notBefore, notAfter time.Time) (*CA, error) {
	if commonName == "" {
		return nil, errors.New("create CA: empty common name")
	}
	notBefore, notAfter = window(notBefore, notAfter, DefaultCAValidity)
	tmpl := &x509.Certificate{
		Subject:               pkix.Name{CommonName: commonName},
		NotBefore:             notBefore,
		NotAfter:              notAfter,
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign | x509.KeyUsageDigitalSignature,
		BasicConstraintsValid: true,
		IsCA:                  true,
		MaxPathLenZero:        true, // it signs leaves only
	}
	c, err := create(tmpl, nil)
	if err != nil {
		return nil, fmt.Errorf("create CA %q: %w", commonName, err)
	}
	return &CA{Cert: *c}, nil
}

// LoadCA reads a CA's certificate and key (as WriteFiles wrote them) and checks
// that they belong together and that the certificate may sign certificates.
func LoadCA(certFile, keyFile string) (*CA, error) {
	c, err := LoadCert(certFile, keyFile)
	if err != nil {
		return nil, fmt.Errorf("load CA: %w", err)
	}
	if !c.Cert.IsCA || c.Cert.KeyUsage&x509.KeyUsageCertSign == 0 {
		return nil, fmt.Errorf("load CA %q: the certificate is not a CA", certFile)
	}
	return &CA{Cert: *c}, nil
}

// IssueCentral issues the central's certificate: Common Name "central",
// extended key usages server and client authentication (the central's health
// probe presents it too), valid for DefaultCentralHosts plus extraHosts (DNS
// names or IP addresses). Zero times mean now-Backdate and NotBefore+DefaultLeafValidity.
func (ca *CA) IssueCentral(extraHosts []string, notBefore, notAfter time.Time) (*Cert, error) {
	dns, ips, err := SplitHosts(append(slices.Clone(DefaultCentralHosts), extraHosts...))
	if err != nil {
		return nil, fmt.Errorf("issue central certificate: %w", err)
	}
	notBefore, notAfter = window(notBefore, notAfter, DefaultLeafValidity)
	tmpl := &x509.Certificate{
		Subject:     pkix.Name{CommonName: identity.CentralName},
		NotBefore:   notBefore,
		NotAfter:    notAfter,
		KeyUsage:    x509.KeyUsageDigitalSignature,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth},
		DNSNames:    dns,
		IPAddresses: ips,
	}
	c, err := create(tmpl, ca)
	if err != nil {
		return nil, fmt.Errorf("issue central certificate: %w", err)
	}
	return c, nil
}

// IssueAgency issues agency n's certificate: Common Name "agency-n", extended
// key usage client authentication only. Zero times mean now-Backdate and
// NotBefore+DefaultLeafValidity; a window in the past makes an expired certificate.
func (ca *CA) IssueAgency(n int, notBefore, notAfter time.Time) (*Cert, error) {
	if n < 1 || uint64(n) > identity.MaxAgency {
		return nil, fmt.Errorf("issue agency certificate: agency %d outside 1..%d", n, uint64(identity.MaxAgency))
	}
	notBefore, notAfter = window(notBefore, notAfter, DefaultLeafValidity)
	tmpl := &x509.Certificate{
		Subject:     pkix.Name{CommonName: identity.AgencyName(n)},
		NotBefore:   notBefore,
		NotAfter:    notAfter,
		KeyUsage:    x509.KeyUsageDigitalSignature,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth},
	}
	c, err := create(tmpl, ca)
	if err != nil {
		return nil, fmt.Errorf("issue certificate of agency %d: %w", n, err)
	}
	return c, nil
}

// IssueOperator issues an operator's certificate: Common Name "operator"
// for an empty name, else "operator-<name>" (identity.OperatorCommonName),
// extended key usage client authentication only. Zero times mean
// now-Backdate and NotBefore+DefaultLeafValidity.
func (ca *CA) IssueOperator(name string, notBefore, notAfter time.Time) (*Cert, error) {
	cn, err := identity.OperatorCommonName(name)
	if err != nil {
		return nil, fmt.Errorf("issue operator certificate: %w", err)
	}
	notBefore, notAfter = window(notBefore, notAfter, DefaultLeafValidity)
	tmpl := &x509.Certificate{
		Subject:     pkix.Name{CommonName: cn},
		NotBefore:   notBefore,
		NotAfter:    notAfter,
		KeyUsage:    x509.KeyUsageDigitalSignature,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth},
	}
	c, err := create(tmpl, ca)
	if err != nil {
		return nil, fmt.Errorf("issue certificate of %s: %w", cn, err)
	}
	return c, nil
}

// Pool is a certificate pool holding only this CA.
func (ca *CA) Pool() *x509.CertPool {
	p := x509.NewCertPool()
	p.AddCert(ca.Cert.Cert)
	return p
}

// CertPEM is the certificate, PEM encoded ("CERTIFICATE").
func (c *Cert) CertPEM() []byte {
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: c.Cert.Raw})
}

// KeyPEM is the private key, PEM encoded as PKCS#8 ("PRIVATE KEY").
func (c *Cert) KeyPEM() ([]byte, error) {
	der, err := x509.MarshalPKCS8PrivateKey(c.Key)
	if err != nil {
		return nil, fmt.Errorf("encode private key of %q: %w", c.Cert.Subject.CommonName, err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}), nil
}

// WriteFiles writes the key (mode 0600) and then the certificate (mode 0644),
// each atomically: a reader sees the old file or the new one, never half of one.
func (c *Cert) WriteFiles(certPath, keyPath string) error {
	keyPEM, err := c.KeyPEM()
	if err != nil {
		return err
	}
	if err := writeFileAtomic(keyPath, keyPEM, 0o600); err != nil {
		return err
	}
	return writeFileAtomic(certPath, c.CertPEM(), 0o644)
}

// LoadCert reads a PEM certificate and its PEM ECDSA private key and checks
// that they belong together.
func LoadCert(certFile, keyFile string) (*Cert, error) {
	certPEM, err := os.ReadFile(certFile)
	if err != nil {
		return nil, fmt.Errorf("read certificate %q: %w", certFile, err)
	}
	keyPEM, err := os.ReadFile(keyFile)
	if err != nil {
		return nil, fmt.Errorf("read key %q: %w", keyFile, err)
	}
	pair, err := tls.X509KeyPair(certPEM, keyPEM)
	if err != nil {
		return nil, fmt.Errorf("load certificate %q with key %q: %w", certFile, keyFile, err)
	}
	key, ok := pair.PrivateKey.(*ecdsa.PrivateKey)
	if !ok {
		return nil, fmt.Errorf("load key %q: %T is not an ECDSA key", keyFile, pair.PrivateKey)
	}
	leaf := pair.Leaf
	if leaf == nil {
		if leaf, err = x509.ParseCertificate(pair.Certificate[0]); err != nil {
			return nil, fmt.Errorf("parse certificate %q: %w", certFile, err)
		}
	}
	return &Cert{Cert: leaf, Key: key}, nil
}

// SplitHosts sorts host names into DNS names and IP addresses, dropping
// duplicates and keeping the first occurrence's order. A name must be a
// plausible DNS name (letters, digits, '-', '.', an optional leading "*.").
func SplitHosts(hosts []string) (dns []string, ips []net.IP, err error) {
	seen := map[string]bool{}
	for _, h := range hosts {
		h = strings.TrimSpace(h)
		if ip := net.ParseIP(h); ip != nil {
			if !seen[ip.String()] {
				seen[ip.String()] = true
				ips = append(ips, ip)
			}
			continue
		}
		name := strings.ToLower(h)
		if !validDNSName(name) {
			return nil, nil, fmt.Errorf("host %q is neither an IP address nor a DNS name", h)
		}
		if !seen[name] {
			seen[name] = true
			dns = append(dns, name)
		}
	}
	return dns, ips, nil
}

func validDNSName(name string) bool {
	name = strings.TrimPrefix(name, "*.")
	if name == "" || len(name) > 253 {
		return false
	}
	for label := range strings.SplitSeq(name, ".") {
		if label == "" || len(label) > 63 || label[0] == '-' || label[len(label)-1] == '-' {
			return false
		}
		for _, r := range label {
			if (r < 'a' || r > 'z') && (r < '0' || r > '9') && r != '-' {
				return false
			}
		}
	}
	return true
}

// window fills zero times with the defaults.
func window(notBefore, notAfter time.Time, validity time.Duration) (time.Time, time.Time) {
	if notBefore.IsZero() {
		notBefore = time.Now().Add(-Backdate)
	}
	if notAfter.IsZero() {
		notAfter = notBefore.Add(validity)
	}
	return notBefore.UTC().Truncate(time.Second), notAfter.UTC().Truncate(time.Second)
}

// create makes a fresh key and a certificate for tmpl, signed by parent, or
// self-signed when parent is nil.
func create(tmpl *x509.Certificate, parent *CA) (*Cert, error) {
	if !tmpl.NotAfter.After(tmpl.NotBefore) {
		return nil, fmt.Errorf("validity window %s..%s is empty", tmpl.NotBefore, tmpl.NotAfter)
	}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, fmt.Errorf("generate key: %w", err)
	}
	serial, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 127))
	if err != nil {
		return nil, fmt.Errorf("generate serial number: %w", err)
	}
	tmpl.SerialNumber = serial.Add(serial, big.NewInt(1)) // positive, at most 16 bytes
	signer, signerKey := tmpl, key
	if parent != nil {
		signer, signerKey = parent.Cert.Cert, parent.Key
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, signer, &key.PublicKey, signerKey)
	if err != nil {
		return nil, fmt.Errorf("sign certificate: %w", err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, fmt.Errorf("parse the new certificate: %w", err)
	}
	return &Cert{Cert: cert, Key: key}, nil
}
