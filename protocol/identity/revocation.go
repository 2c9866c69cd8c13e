package identity

import (
	"bytes"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"math/big"
	"os"
)

// A revocation list names the certificates of our CA that no longer name
// anyone, though they chain to the CA and have not expired: an agency's (or
// an operator's) whose key was stolen. It is an X.509 CRL (RFC 5280), PEM
// "X509 CRL", signed by the CA; the certs tool writes it (pki), the central
// reads it at start and again when an operator reloads it.

// CRLBlock is the PEM type of a revocation list.
const CRLBlock = "X509 CRL"

// ReasonRevoked: the certificate is on the central's revocation list. Both
// sides name a refusal with it: the central at its handshake (and on the
// admin address), the agency when the central refuses it (ERROR revoked, or a
// certificate_revoked alert).
const ReasonRevoked = "revoked"

var (
	// ErrRevoked is a certificate the revocation list in force names.
	ErrRevoked = errors.New("certificate revoked")
	// ErrOtherIssuer is a revocation list whose issuer is none of our CAs
	// (by name): it cannot name a certificate of ours.
	ErrOtherIssuer = errors.New("not signed by our CA")
)

// Revocations is a verified revocation list: what the central checks every
// peer certificate against. A nil *Revocations revokes nothing.
type Revocations struct {
	issuer  []byte          // the signing CA's subject, DER: a serial is unique per issuer only
	serials map[string]bool // decimal serial numbers
	number  *big.Int        // the CRL number, nil if the list has none
}

// LoadCAs reads the PEM certificates of a CA file: the CAs a revocation list
// may be signed by (the same file the TLS configurations trust).
func LoadCAs(file string) ([]*x509.Certificate, error) {
	data, err := os.ReadFile(file)
	if err != nil {
		return nil, fmt.Errorf("load CA %q: %w", file, err)
	}
	var cas []*x509.Certificate
	for block, rest := pem.Decode(data); block != nil; block, rest = pem.Decode(rest) {
		if block.Type != "CERTIFICATE" {
			continue
		}
		c, err := x509.ParseCertificate(block.Bytes)
		if err != nil {
			return nil, fmt.Errorf("load CA %q: %w", file, err)
		}
		cas = append(cas, c)
	}
	if len(cas) == 0 {
		return nil, fmt.Errorf("load CA %q: no PEM certificate in the file", file)
	}
	return cas, nil
}

// LoadRevocations reads the revocation list in file and verifies it: one
// PEM X509 CRL and nothing else, signed by one of cas. An error says which
// of these failed; the caller keeps whatever list it had.
func LoadRevocations(file string, cas []*x509.Certificate) (*Revocations, error) {
	data, err := os.ReadFile(file)
	if err != nil {
		return nil, fmt.Errorf("revocation list: %w", err)
	}
	crl, err := ParseRevocationList(data, cas)
	if err != nil {
		return nil, fmt.Errorf("revocation list %q: %w", file, err)
	}
	r := &Revocations{issuer: crl.RawIssuer, serials: make(map[string]bool, len(crl.RevokedCertificateEntries)),
		number: crl.Number}
	for _, e := range crl.RevokedCertificateEntries {
		r.serials[e.SerialNumber.String()] = true
	}
	return r, nil
}

// ParseRevocationList decodes a PEM revocation list, as the certs tool
// writes it, and checks that one of cas signed it.
func ParseRevocationList(data []byte, cas []*x509.Certificate) (*x509.RevocationList, error) {
	block, rest := pem.Decode(data)
	switch {
	case block == nil:
		return nil, fmt.Errorf("no PEM block: want one %s", CRLBlock)
	case block.Type != CRLBlock:
		return nil, fmt.Errorf("a PEM %q block: want %s", block.Type, CRLBlock)
	case len(bytes.TrimSpace(rest)) > 0:
		return nil, fmt.Errorf("more than one %s: want it alone in the file", CRLBlock)
	}
	crl, err := x509.ParseRevocationList(block.Bytes)
	if err != nil {
		return nil, fmt.Errorf("malformed: %w", err)
	}
	var last error
	for _, ca := range cas {
		if !bytes.Equal(ca.RawSubject, crl.RawIssuer) {
			continue
		}
		if last = crl.CheckSignatureFrom(ca); last == nil {
			return crl, nil
		}
	}
	if last != nil {
		return nil, fmt.Errorf("not signed by our CA: %w", last)
	}
	return nil, fmt.Errorf("%w: its issuer is %q", ErrOtherIssuer, crl.Issuer.String())
}

// Revoked reports whether the list names cert: the same issuer and serial number.
func (r *Revocations) Revoked(cert *x509.Certificate) bool {
	return r != nil && cert != nil && bytes.Equal(r.issuer, cert.RawIssuer) && r.serials[cert.SerialNumber.String()]
}

// Len is how many certificates the list names.
func (r *Revocations) Len() int {
	if r == nil {
		return 0
	}
	return len(r.serials)
}

// Number is the list's CRL number ("1" before any revocation, one more at each
// change), or "-" when it has none.
func (r *Revocations) Number() string {
	if r == nil || r.number == nil {
		return "-"
	}
	return r.number.String()
}

// SerialText is a certificate's serial number as logs and the certs tool
// show it: lowercase hexadecimal.
func SerialText(serial *big.Int) string {
	if serial == nil {
		return "-"
	}
	return serial.Text(16)
}

// CheckRevoked returns an error wrapping ErrRevoked, naming the certificate,
// when r names cert; nil otherwise.
func (r *Revocations) CheckRevoked(cert *x509.Certificate) error {
	if !r.Revoked(cert) {
		return nil
	}
	return fmt.Errorf("certificate %q, serial %s: %w", cert.Subject.CommonName, SerialText(cert.SerialNumber), ErrRevoked)
}
