package pki

import (
	"crypto/rand"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"io/fs"
	"math/big"
	"os"
	"path/filepath"
	"time"

	"lotterycentral.example/protocol/identity"
)

// RevokedFile is the revocation list WriteDir keeps and RevokeDir extends:
// an X.509 CRL signed by the CA (identity reads it).
const RevokedFile = "revoked.pem"

// RevocationList is the CA's signed revocation list of entries, PEM encoded,
// with CRL number number. It is valid from now until the CA expires: the
// list grows, it is never stale, so nothing needs to re-sign it on a schedule.
func (ca *CA) RevocationList(entries []x509.RevocationListEntry, number *big.Int, now time.Time) ([]byte, error) {
	tmpl := &x509.RevocationList{
		Number:                    number,
		ThisUpdate:                now.UTC().Truncate(time.Second),
		NextUpdate:                ca.Cert.Cert.NotAfter,
		RevokedCertificateEntries: entries,
	}
	der, err := x509.CreateRevocationList(rand.Reader, tmpl, ca.Cert.Cert, ca.Key)
	if err != nil {
		return nil, fmt.Errorf("sign revocation list: %w", err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: identity.CRLBlock, Bytes: der}), nil
}

// Holder is whose certificate RevokeDir revokes: agency Agency, or the
// operator (operator.pem) when Agency is 0. With Reissue it also gets a new
// certificate and key, replacing its files.
type Holder struct {
	Agency  int
	Reissue bool
}

func (h Holder) files() (cert, key string) {
	if h.Agency == 0 {
		return OperatorFile, OperatorKeyFile
	}
	return AgencyFile(h.Agency), AgencyKeyFile(h.Agency)
}

func (h Holder) issue(ca *CA) (*Cert, error) {
	if h.Agency == 0 {
		return ca.IssueOperator("", time.Time{}, time.Time{})
	}
	return ca.IssueAgency(h.Agency, time.Time{}, time.Time{})
}

// Revocation is what RevokeDir did with one holder's certificate.
type Revocation struct {
	Path     string   // the certificate's file
	Serial   *big.Int // the certificate revoked
	Already  bool     // the list named it already
	Reissued *Cert    // the new certificate, when reissued
}

// RevokeReport is what RevokeDir did: each certificate, then the list. It
// is empty when RevokeDir failed before the list held them.
type RevokeReport struct {
	Revoked []Revocation
	List    FileResult // revoked.pem: created or replaced, or kept when no certificate was new to it
	Listed  int        // certificates the list names now
	Number  *big.Int   // its CRL number
}

// RevokeDir revokes the current certificate of each holder in dir, which
// WriteDir made: it adds their serial numbers to revoked.pem (creating it if
// missing), signed by the directory's CA, then issues a new certificate and
// key to each holder that asks for it. The list is written first: a stolen
// certificate is never replaced before it is revoked (were it, its serial
// would be lost with its file). A certificate the list names already stays
// on it; a revocation list that does not verify against the CA is an error,
// never replaced, since that would forget every revocation it holds.
//
// The central enforces the new list once it reads it again (an operator's
// reload, or SIGHUP).
func RevokeDir(dir string, holders []Holder) (RevokeReport, error) {
	var rep RevokeReport
	if len(holders) == 0 {
		return rep, errors.New("revoke: no certificate to revoke")
	}
	ca, err := LoadCA(filepath.Join(dir, CAFile), filepath.Join(dir, CAKeyFile))
	if err != nil {
		return rep, fmt.Errorf("revoke: %w", err)
	}
	listPath := filepath.Join(dir, RevokedFile)
	crl, existed, stale, err := readList(listPath, ca)
	if err != nil {
		return rep, fmt.Errorf("revoke: %w", err)
	}
	entries := crl.RevokedCertificateEntries
	listed := make(map[string]bool, len(entries))
	for _, e := range entries {
		listed[e.SerialNumber.String()] = true
	}
	now := time.Now()
	added := 0
	var revs []Revocation // reported once the list holds them
	for _, h := range holders {
		certName, _ := h.files()
		cert, err := readCert(filepath.Join(dir, certName))
		if err != nil {
			return rep, fmt.Errorf("revoke: %w", err)
		}
		if err := cert.CheckSignatureFrom(ca.Cert.Cert); err != nil {
			return rep, fmt.Errorf("revoke %q: not signed by %s: %w", filepath.Join(dir, certName), CAFile, err)
		}
		r := Revocation{Path: filepath.Join(dir, certName), Serial: cert.SerialNumber, Already: listed[cert.SerialNumber.String()]}
		if !r.Already {
			listed[cert.SerialNumber.String()] = true
			entries = append(entries, x509.RevocationListEntry{SerialNumber: cert.SerialNumber, RevocationTime: now.UTC()})
			added++
		}
		revs = append(revs, r)
	}
	list := FileResult{Path: listPath, State: Kept, List: true}
	number := listNumber(crl)
	if added > 0 || !existed || stale != "" {
		number = new(big.Int).Add(number, big.NewInt(1))
		data, err := ca.RevocationList(entries, number, now)
		if err != nil {
			return rep, fmt.Errorf("revoke: %w", err)
		}
		if err := writeFileAtomic(listPath, data, 0o644); err != nil {
			return rep, fmt.Errorf("revoke: %w", err)
		}
		list.State, list.Reason = stateOf(existed), stale
	}
	rep.Revoked, rep.List, rep.Listed, rep.Number = revs, list, len(entries), number
	for i, h := range holders {
		if !h.Reissue {
			continue
		}
		c, err := h.issue(ca)
		if err != nil {
			return rep, fmt.Errorf("reissue: %w", err)
		}
		certName, keyName := h.files()
		if err := c.WriteFiles(filepath.Join(dir, certName), filepath.Join(dir, keyName)); err != nil {
			return rep, fmt.Errorf("reissue %s: %w", certName, err)
		}
		rep.Revoked[i].Reissued = c
	}
	return rep, nil
}

// readList reads the revocation list at listPath and verifies it against
// ca. The list is empty when there is no file (existed false), and when the
// file is another CA's list (stale says so): a CA replaced by hand makes
// every certificate anew, and that list names none of them. Anything else
// that does not verify is an error: replacing it would forget every
// certificate it revokes.
func readList(listPath string, ca *CA) (crl *x509.RevocationList, existed bool, stale string, err error) {
	data, err := os.ReadFile(listPath)
	if errors.Is(err, fs.ErrNotExist) {
		return &x509.RevocationList{}, false, "", nil
	}
	if err != nil {
		return nil, false, "", fmt.Errorf("read revocation list: %w", err)
	}
	crl, err = identity.ParseRevocationList(data, []*x509.Certificate{ca.Cert.Cert})
	switch {
	case errors.Is(err, identity.ErrOtherIssuer):
		return &x509.RevocationList{}, true, "another CA's list: does not verify against " + CAFile, nil
	case err != nil:
		return nil, true, "", fmt.Errorf("revocation list %q: %w (restore it: replacing it would forget every certificate it revokes)",
			listPath, err)
	}
	return crl, true, "", nil
}

// listNumber is crl's CRL number, 0 for none.
func listNumber(crl *x509.RevocationList) *big.Int {
	if crl.Number == nil {
		return new(big.Int)
	}
	return crl.Number
}

// readCert reads the first certificate of a PEM file.
func readCert(file string) (*x509.Certificate, error) {
	data, err := os.ReadFile(file)
	if err != nil {
		return nil, fmt.Errorf("read certificate: %w", err)
	}
	block, _ := pem.Decode(data)
	if block == nil || block.Type != "CERTIFICATE" {
		return nil, fmt.Errorf("read certificate %q: no PEM certificate", file)
	}
	c, err := x509.ParseCertificate(block.Bytes)
	if err != nil {
		return nil, fmt.Errorf("read certificate %q: %w", file, err)
	}
	return c, nil
}
