package pki

import (
	"crypto/rand"
	"crypto/x509"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"slices"
	"time"

	"lotterycentral.example/protocol/identity"
)

// File names WriteDir uses inside its directory.
const (
	CAFile         = "ca.pem"
	CAKeyFile      = "ca-key.pem"
	CentralFile    = "central.pem"
	CentralKeyFile = "central-key.pem"
	// The operator's pair (Common Name "operator"), for the central's admin address.
	OperatorFile    = "operator.pem"
	OperatorKeyFile = "operator-key.pem"
)

// CACommonName starts the Common Name of the CA WriteDir makes; a random
// suffix tells one CA from the next (after a replace), also to TLS clients,
// which pick their certificate by the name of the CA the server asks for.
const CACommonName = "lottery central CA"

// RenewBefore: WriteDir reissues a kept certificate that expires sooner than this.
const RenewBefore = 30 * 24 * time.Hour

// AgencyFile is the name of agency n's certificate file: "agency-3.pem".
func AgencyFile(n int) string { return identity.AgencyName(n) + ".pem" }

// AgencyKeyFile is the name of agency n's key file: "agency-3-key.pem".
func AgencyKeyFile(n int) string { return identity.AgencyName(n) + "-key.pem" }

// State is what WriteDir did to one file.
type State string

// The states of a file.
const (
	Created  State = "created"  // it did not exist
	Kept     State = "kept"     // it existed, was valid, and was left untouched
	Replaced State = "replaced" // it existed and was written anew (see Reason)
)

// FileResult is what WriteDir did to one file.
type FileResult struct {
	Path   string // the directory given to WriteDir joined with the file's name
	State  State
	Reason string // why a certificate and its key were (re)issued over existing files
	Key    bool   // the file is the private key of the certificate listed next
	List   bool   // the file is the revocation list (revoked.pem)
}

// Report lists the files WriteDir created, kept or replaced, in the order it handled them.
type Report struct {
	Files      []FileResult
	Listed     int      // certificates the revocation list names
	ListNumber *big.Int // its CRL number
}

// Certificates is the report without the keys and the revocation list:
// WriteDir keeps or writes a certificate and its key together, so a
// certificate's state is its key's too (but when one of the two was missing:
// it is created where the other is replaced).
func (r Report) Certificates() Report {
	var certs Report
	for _, f := range r.Files {
		if !f.Key && !f.List {
			certs.Files = append(certs.Files, f)
		}
	}
	return certs
}

// Count is the number of files in state s.
func (r Report) Count(s State) int {
	n := 0
	for _, f := range r.Files {
		if f.State == s {
			n++
		}
	}
	return n
}

// WriteDir makes sure dir holds a CA (ca.pem, ca-key.pem), its revocation
// list (revoked.pem, empty at first: RevokeDir adds to it), the central's
// certificate (central.pem, central-key.pem, valid for DefaultCentralHosts and
// extraHosts), the operator's (operator.pem, operator-key.pem: Common Name
// "operator") and agencies 1..agencies' (agency-N.pem, agency-N-key.pem).
// The directory is created mode 0700, keys are 0600, certificates and the
// list 0644.
//
// It is idempotent. An existing CA is kept and signs what is missing; an
// existing certificate is kept when it and its key match, it verifies against
// the CA for its usage, is not on the revocation list, names what it should
// (the central: every host asked for), and is valid for RenewBefore more;
// otherwise it is reissued, with the reason in the report. A half-present or
// unreadable CA is an error, not silently replaced: a new CA invalidates
// every certificate handed out; so is a revocation list that does not verify
// against the CA, which a new one would forget. With replace, a new CA is
// made, the list starts empty and everything is reissued. Each file is
// written atomically. On error the report lists what was done before it.
func WriteDir(dir string, agencies int, extraHosts []string, replace bool) (Report, error) {
	var rep Report
	if agencies < 0 || uint64(agencies) > identity.MaxAgency {
		return rep, fmt.Errorf("write certificates: %d agencies outside 0..%d", agencies, uint64(identity.MaxAgency))
	}
	dns, ips, err := SplitHosts(append(slices.Clone(DefaultCentralHosts), extraHosts...))
	if err != nil {
		return rep, fmt.Errorf("write certificates: %w", err)
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return rep, fmt.Errorf("create certificate directory: %w", err)
	}
	w := &dirWriter{dir: dir, now: time.Now(), rep: &rep}
	ca, fresh, err := w.loadOrMakeCA(replace)
	if err != nil {
		return rep, err
	}
	w.ca = ca
	force := ""
	switch {
	case replace:
		force = "replace requested"
	case fresh:
		force = "new CA"
	}
	if err := w.revocations(force); err != nil {
		return rep, err
	}

	err = w.leaf(CentralFile, CentralKeyFile, force,
		func() (*Cert, error) { return ca.IssueCentral(extraHosts, time.Time{}, time.Time{}) },
		func(c *x509.Certificate) string { return centralMismatch(c, dns, ips) },
		x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth)
	if err != nil {
		return rep, err
	}
	err = w.leaf(OperatorFile, OperatorKeyFile, force,
		func() (*Cert, error) { return ca.IssueOperator("", time.Time{}, time.Time{}) },
		operatorMismatch, x509.ExtKeyUsageClientAuth)
	if err != nil {
		return rep, err
	}
	for n := 1; n <= agencies; n++ {
		err = w.leaf(AgencyFile(n), AgencyKeyFile(n), force,
			func() (*Cert, error) { return ca.IssueAgency(n, time.Time{}, time.Time{}) },
			func(c *x509.Certificate) string { return agencyMismatch(c, n) },
			x509.ExtKeyUsageClientAuth)
		if err != nil {
			return rep, err
		}
	}
	return rep, nil
}

type dirWriter struct {
	dir     string
	now     time.Time
	rep     *Report
	ca      *CA             // signs and verifies the leaves
	revoked map[string]bool // the serial numbers revoked.pem names: a leaf on it is reissued
}

func (w *dirWriter) path(name string) string { return filepath.Join(w.dir, name) }

// loadOrMakeCA loads the directory's CA, or makes one when there is none or
// replace is set; fresh reports that it is new.
func (w *dirWriter) loadOrMakeCA(replace bool) (ca *CA, fresh bool, err error) {
	certPath, keyPath := w.path(CAFile), w.path(CAKeyFile)
	certOK, err := exists(certPath)
	if err != nil {
		return nil, false, err
	}
	keyOK, err := exists(keyPath)
	if err != nil {
		return nil, false, err
	}
	if !replace && certOK && keyOK {
		ca, err := LoadCA(certPath, keyPath)
		if err != nil {
			return nil, false, fmt.Errorf("%w (replace the CA explicitly if it is lost)", err)
		}
		if w.now.Before(ca.Cert.Cert.NotBefore) || w.now.After(ca.Cert.Cert.NotAfter) {
			return nil, false, fmt.Errorf("load CA %q: valid only from %s to %s (replace the CA explicitly)",
				certPath, ca.Cert.Cert.NotBefore.Format(time.RFC3339), ca.Cert.Cert.NotAfter.Format(time.RFC3339))
		}
		w.addPair(keyPath, Kept, certPath, Kept, "")
		return ca, false, nil
	}
	if !replace && (certOK || keyOK) {
		have, lack := certPath, keyPath
		if keyOK {
			have, lack = keyPath, certPath
		}
		return nil, false, fmt.Errorf("load CA: %q exists without %q; a new CA would invalidate every certificate it signed (replace the CA explicitly)", have, lack)
	}
	suffix := make([]byte, 4)
	_, _ = rand.Read(suffix) // never fails
	ca, err = NewCA(CACommonName+" "+hex.EncodeToString(suffix), time.Time{}, time.Time{})
	if err != nil {
		return nil, false, err
	}
	if err := ca.WriteFiles(certPath, keyPath); err != nil {
		return nil, false, fmt.Errorf("write CA: %w", err)
	}
	reason := ""
	if replace {
		reason = "replace requested"
	}
	w.addPair(keyPath, stateOf(keyOK), certPath, stateOf(certOK), reason)
	return ca, true, nil
}

// revocations keeps revoked.pem when it verifies against the CA, or writes
// it empty: when it is missing, or with a new CA (force) or another CA's
// list, which cannot name a certificate of this CA.
func (w *dirWriter) revocations(force string) error {
	listPath := w.path(RevokedFile)
	w.revoked = make(map[string]bool)
	ok, err := exists(listPath)
	if err != nil {
		return err
	}
	if ok && force == "" {
		crl, _, stale, err := readList(listPath, w.ca)
		if err != nil {
			return fmt.Errorf("write certificates: %w", err)
		}
		if stale == "" {
			for _, e := range crl.RevokedCertificateEntries {
				w.revoked[e.SerialNumber.String()] = true
			}
			w.rep.Listed, w.rep.ListNumber = len(w.revoked), listNumber(crl)
			w.add(FileResult{Path: listPath, State: Kept, List: true})
			return nil
		}
		force = stale
	}
	w.rep.ListNumber = big.NewInt(1)
	data, err := w.ca.RevocationList(nil, w.rep.ListNumber, w.now)
	if err != nil {
		return fmt.Errorf("write certificates: %w", err)
	}
	if err := writeFileAtomic(listPath, data, 0o644); err != nil {
		return fmt.Errorf("write revocation list: %w", err)
	}
	w.add(FileResult{Path: listPath, State: stateOf(ok), Reason: force, List: true})
	return nil
}

// leaf keeps or (re)issues one certificate and its key. force, when not
// empty, reissues it for that reason.
func (w *dirWriter) leaf(certName, keyName, force string, issue func() (*Cert, error),
	mismatch func(*x509.Certificate) string, usages ...x509.ExtKeyUsage) error {
	certPath, keyPath := w.path(certName), w.path(keyName)
	certOK, err := exists(certPath)
	if err != nil {
		return err
	}
	keyOK, err := exists(keyPath)
	if err != nil {
		return err
	}
	reason := force
	if reason == "" && (certOK || keyOK) {
		reason = w.check(certPath, keyPath, certOK, keyOK, mismatch, usages)
		if reason == "" {
			w.addPair(keyPath, Kept, certPath, Kept, "")
			return nil
		}
	}
	c, err := issue()
	if err != nil {
		return err
	}
	if err := c.WriteFiles(certPath, keyPath); err != nil {
		return fmt.Errorf("write %s: %w", certName, err)
	}
	if !certOK && !keyOK {
		reason = ""
	}
	w.addPair(keyPath, stateOf(keyOK), certPath, stateOf(certOK), reason)
	return nil
}

// check says why an existing certificate and key cannot be kept, or "".
func (w *dirWriter) check(certPath, keyPath string, certOK, keyOK bool,
	mismatch func(*x509.Certificate) string, usages []x509.ExtKeyUsage) string {
	switch {
	case !keyOK:
		return "key missing"
	case !certOK:
		return "certificate missing"
	}
	c, err := LoadCert(certPath, keyPath)
	if err != nil {
		return err.Error()
	}
	for _, u := range usages {
		opts := x509.VerifyOptions{Roots: w.ca.Pool(), CurrentTime: w.now, KeyUsages: []x509.ExtKeyUsage{u}}
		if _, err := c.Cert.Verify(opts); err != nil {
			return fmt.Sprintf("does not verify against %s: %v", CAFile, err)
		}
	}
	if w.revoked[c.Cert.SerialNumber.String()] {
		return "revoked (" + RevokedFile + ")"
	}
	if w.now.Add(RenewBefore).After(c.Cert.NotAfter) {
		return "expires on " + c.Cert.NotAfter.Format(time.RFC3339)
	}
	return mismatch(c.Cert)
}

func centralMismatch(c *x509.Certificate, dns []string, ips []net.IP) string {
	if c.Subject.CommonName != identity.CentralName {
		return fmt.Sprintf("common name %q, want %q", c.Subject.CommonName, identity.CentralName)
	}
	for _, name := range dns {
		if !slices.Contains(c.DNSNames, name) {
			return fmt.Sprintf("not valid for host %q", name)
		}
	}
	for _, ip := range ips {
		if !slices.ContainsFunc(c.IPAddresses, ip.Equal) {
			return fmt.Sprintf("not valid for address %s", ip)
		}
	}
	return ""
}

func agencyMismatch(c *x509.Certificate, n int) string {
	got, err := identity.AgencyOf(c)
	if err != nil {
		return err.Error()
	}
	if got != n {
		return fmt.Sprintf("names agency %d, want %d", got, n)
	}
	return ""
}

func operatorMismatch(c *x509.Certificate) string {
	got, err := identity.OperatorOf(c)
	if err != nil {
		return err.Error()
	}
	if got != identity.OperatorName {
		return fmt.Sprintf("names operator %q, want %q", got, identity.OperatorName)
	}
	return ""
}

// addPair reports a key, then its certificate.
func (w *dirWriter) addPair(keyPath string, keyState State, certPath string, certState State, reason string) {
	w.add(FileResult{Path: keyPath, State: keyState, Reason: reason, Key: true})
	w.add(FileResult{Path: certPath, State: certState, Reason: reason})
}

// add reports one file; only a replaced one keeps its reason.
func (w *dirWriter) add(f FileResult) {
	if f.State != Replaced {
		f.Reason = ""
	}
	w.rep.Files = append(w.rep.Files, f)
}

func stateOf(existed bool) State {
	if existed {
		return Replaced
	}
	return Created
}

// exists reports whether path exists; other errors than its absence are returned.
func exists(path string) (bool, error) {
	_, err := os.Lstat(path)
	switch {
	case err == nil:
		return true, nil
	case errors.Is(err, fs.ErrNotExist):
		return false, nil
	default:
		return false, fmt.Errorf("inspect %q: %w", path, err)
	}
}

// writeFileAtomic writes data to path through a temporary file in the same
// directory, synced and renamed over path, then syncs the directory. The
// temporary file is created mode 0600, so a key is never readable by others,
// and set to mode before the rename.
func writeFileAtomic(path string, data []byte, mode fs.FileMode) (err error) {
	dir, base := filepath.Split(path)
	if dir == "" {
		dir = "."
	}
	f, err := os.CreateTemp(dir, "."+base+".tmp-*")
	if err != nil {
		return fmt.Errorf("write %q: %w", path, err)
	}
	tmp := f.Name()
	renamed := false
	defer func() {
		if err != nil && !renamed {
			_ = f.Close()
			_ = os.Remove(tmp)
		}
	}()
	if err := f.Chmod(mode); err != nil {
		return fmt.Errorf("write %q: set mode: %w", path, err)
	}
	if _, err := f.Write(data); err != nil {
		return fmt.Errorf("write %q: %w", path, err)
	}
	if err := f.Sync(); err != nil {
		return fmt.Errorf("write %q: sync: %w", path, err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("write %q: close: %w", path, err)
	}
	if err := os.Rename(tmp, path); err != nil {
		return fmt.Errorf("write %q: rename: %w", path, err)
	}
	renamed = true
	d, err := os.Open(dir)
	if err != nil {
		return fmt.Errorf("write %q: open directory: %w", path, err)
	}
	defer d.Close()
	if err := d.Sync(); err != nil {
		return fmt.Errorf("write %q: sync directory: %w", path, err)
	}
	return nil
}
