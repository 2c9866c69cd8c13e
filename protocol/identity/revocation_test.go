package identity_test

import (
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"lotterycentral.example/protocol"
	"lotterycentral.example/protocol/identity"
	"lotterycentral.example/protocol/pki"
)

// crlOf is ca's revocation list of certs, as the certs tool writes it.
func crlOf(t *testing.T, ca *pki.CA, certs ...*pki.Cert) []byte {
	t.Helper()
	var entries []x509.RevocationListEntry
	for _, c := range certs {
		entries = append(entries, x509.RevocationListEntry{SerialNumber: c.Cert.SerialNumber, RevocationTime: time.Now()})
	}
	data, err := ca.RevocationList(entries, big.NewInt(7), time.Now())
	require.NoError(t, err)
	return data
}

// The central's revocation list: an X.509 CRL signed by our CA, and nothing
// else, names exactly the certificates it lists; anything else is refused,
// saying why.
func TestLoadRevocations(t *testing.T) {
	must := func(c *pki.Cert, err error) *pki.Cert {
		t.Helper()
		require.NoError(t, err)
		return c
	}
	ca, err := pki.NewCA("test CA", time.Time{}, time.Time{})
	require.NoError(t, err)
	other, err := pki.NewCA("other CA", time.Time{}, time.Time{})
	require.NoError(t, err)
	// A CA file may hold several CAs: the list's issuer is the one that counts.
	unrelated, err := pki.NewCA("unrelated CA", time.Time{}, time.Time{})
	require.NoError(t, err)
	// Same name as ours, another key: only its signature tells it apart.
	twin, err := pki.NewCA("test CA", time.Time{}, time.Time{})
	require.NoError(t, err)
	stolen := must(ca.IssueAgency(2, time.Time{}, time.Time{}))
	reissued := must(ca.IssueAgency(2, time.Time{}, time.Time{}))
	op := must(ca.IssueOperator("", time.Time{}, time.Time{}))
	// The same serial from another CA is another certificate.
	foreign := must(other.IssueAgency(2, time.Time{}, time.Time{}))
	foreign.Cert.SerialNumber = stolen.Cert.SerialNumber
	good := crlOf(t, ca, stolen, op)

	tests := []struct {
		name    string
		data    []byte
		err     string // part of the error; "" for none
		other   bool   // the error is ErrOtherIssuer
		revoked []*pki.Cert
		kept    []*pki.Cert
		len     int
	}{
		{name: "two certificates revoked", data: good, revoked: []*pki.Cert{stolen, op}, kept: []*pki.Cert{reissued, foreign}, len: 2},
		{name: "an empty list", data: crlOf(t, ca), kept: []*pki.Cert{stolen, reissued, op}},
		{name: "surrounded by blank lines", data: append(append([]byte("\n\n"), good...), "\n\n"...), revoked: []*pki.Cert{stolen}, len: 2},
		{name: "an empty file", data: nil, err: "no PEM block: want one X509 CRL"},
		{name: "not PEM", data: []byte("revoke agency 2 please\n"), err: "no PEM block"},
		{name: "a certificate instead", data: stolen.CertPEM(), err: `a PEM "CERTIFICATE" block: want X509 CRL`},
		{name: "two lists", data: append(append([]byte(nil), good...), good...), err: "more than one X509 CRL"},
		{name: "something after the list", data: append(append([]byte(nil), good...), "junk"...), err: "more than one X509 CRL"},
		{name: "malformed DER", data: pem.EncodeToMemory(&pem.Block{Type: identity.CRLBlock, Bytes: []byte{0x30, 0x03, 1, 2, 3}}),
			err: "malformed: x509:"},
		{name: "another CA's list", data: crlOf(t, other, stolen), other: true, err: `not signed by our CA: its issuer is "CN=other CA"`},
		{name: "a CA of our name but not our key", data: crlOf(t, twin, stolen),
			err: "not signed by our CA: x509: ECDSA verification failure"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			file := filepath.Join(t.TempDir(), "revoked.pem")
			require.NoError(t, os.WriteFile(file, tt.data, 0o644))
			r, err := identity.LoadRevocations(file, []*x509.Certificate{unrelated.Cert.Cert, ca.Cert.Cert})
			if tt.err != "" {
				require.ErrorContains(t, err, tt.err)
				assert.ErrorContains(t, err, `revocation list "`+file+`": `, "names the file")
				assert.Equal(t, tt.other, errors.Is(err, identity.ErrOtherIssuer))
				assert.Nil(t, r)
				return
			}
			require.NoError(t, err)
			assert.Equal(t, tt.len, r.Len())
			assert.Equal(t, "7", r.Number())
			for _, c := range tt.revoked {
				assert.True(t, r.Revoked(c.Cert), c.Cert.Subject.CommonName)
				err := r.CheckRevoked(c.Cert)
				require.ErrorIs(t, err, identity.ErrRevoked)
				assert.EqualError(t, err, fmt.Sprintf("certificate %q, serial %s: certificate revoked",
					c.Cert.Subject.CommonName, c.Cert.SerialNumber.Text(16)))
			}
			for _, c := range tt.kept {
				assert.False(t, r.Revoked(c.Cert), c.Cert.Subject.CommonName)
				assert.NoError(t, r.CheckRevoked(c.Cert))
			}
		})
	}

	t.Run("a missing file", func(t *testing.T) {
		_, err := identity.LoadRevocations(filepath.Join(t.TempDir(), "revoked.pem"), []*x509.Certificate{ca.Cert.Cert})
		assert.ErrorIs(t, err, os.ErrNotExist)
	})
	t.Run("no list", func(t *testing.T) {
		var r *identity.Revocations
		assert.False(t, r.Revoked(stolen.Cert))
		assert.NoError(t, r.CheckRevoked(stolen.Cert))
		assert.Zero(t, r.Len())
		assert.Equal(t, "-", r.Number())
	})
}

// LoadCAs reads every certificate of a CA file, and refuses a file without one.
func TestLoadCAs(t *testing.T) {
	f := newFiles(t)
	one, err := identity.LoadCAs(f.ca)
	require.NoError(t, err)
	require.Len(t, one, 1)
	assert.Equal(t, "test CA", one[0].Subject.CommonName)

	both := filepath.Join(t.TempDir(), "both.pem")
	a, err := os.ReadFile(f.ca)
	require.NoError(t, err)
	b, err := os.ReadFile(f.otherCA)
	require.NoError(t, err)
	require.NoError(t, os.WriteFile(both, append(a, b...), 0o644))
	two, err := identity.LoadCAs(both)
	require.NoError(t, err)
	assert.Len(t, two, 2)

	_, err = identity.LoadCAs(f.agency3Key)
	assert.ErrorContains(t, err, "no PEM certificate in the file")
	_, err = identity.LoadCAs(filepath.Join(t.TempDir(), "none.pem"))
	assert.ErrorIs(t, err, os.ErrNotExist)
}

// Both sides name a revoked certificate "revoked": the central's own check
// (ErrRevoked), and what an agency reads — ERROR revoked, or the
// certificate_revoked alert another central could send. Final, never a
// network error.
func TestRevokedIsDescribed(t *testing.T) {
	revoked := fmt.Errorf("certificate %q, serial 1f: %w", "agency-2", identity.ErrRevoked)
	tests := []struct {
		name     string
		describe func(error) (string, bool)
		err      error
	}{
		{"the central's check", identity.DescribeServerHandshakeError, revoked},
		{"ERROR revoked, to an agency", identity.DescribeHandshakeError,
			fmt.Errorf("identify: %w", &protocol.RemoteError{Code: protocol.CodeRevoked, Index: protocol.NoIndex, Text: "revoked"})},
		{"a certificate_revoked alert, to an agency", identity.DescribeHandshakeError,
			&net.OpError{Op: "remote error", Err: tls.AlertError(44)}},
		{"a certificate_revoked alert, to the central", identity.DescribeServerHandshakeError,
			&net.OpError{Op: "remote error", Err: tls.AlertError(44)}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			reason, ok := tt.describe(tt.err)
			assert.True(t, ok)
			assert.Equal(t, identity.ReasonRevoked, reason)
		})
	}
	assert.Equal(t, identity.ReasonRevoked, identity.DescribeOperatorError(revoked))

	// Other ERRORs stay the protocol's: not a certificate failure.
	_, ok := identity.DescribeHandshakeError(&protocol.RemoteError{Code: protocol.CodeUnauthorized})
	assert.False(t, ok)
}

// SerialText is the hexadecimal both the certs tool and the central print.
func TestSerialText(t *testing.T) {
	n, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 127))
	require.NoError(t, err)
	assert.Equal(t, n.Text(16), identity.SerialText(n))
	assert.Equal(t, "ff", identity.SerialText(big.NewInt(255)))
	assert.Equal(t, "-", identity.SerialText(nil))
}
