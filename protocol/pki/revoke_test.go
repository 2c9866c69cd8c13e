package pki_test

import (
	"crypto/x509"
	"math/big"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"lotterycentral.example/protocol/identity"
	"lotterycentral.example/protocol/pki"
)

// listOf reads dir's revocation list as the central does: verified against the CA.
func listOf(t *testing.T, dir string) *identity.Revocations {
	t.Helper()
	r, err := identity.LoadRevocations(filepath.Join(dir, pki.RevokedFile), []*x509.Certificate{loadCA(t, dir).Cert.Cert})
	require.NoError(t, err)
	return r
}

// certOf reads one certificate of dir with its key.
func certOf(t *testing.T, dir, cert, key string) *pki.Cert {
	t.Helper()
	c, err := pki.LoadCert(filepath.Join(dir, cert), filepath.Join(dir, key))
	require.NoError(t, err)
	return c
}

// RevokeDir puts a holder's current certificate on revoked.pem, signed by the
// directory's CA, one CRL number up; with Reissue the holder gets a new pair
// (a new serial, still naming it), and the old one stays revoked. A
// certificate revoked already changes nothing.
func TestRevokeDir(t *testing.T) {
	tests := []struct {
		name    string
		first   []pki.Holder // revoked before, if any
		holders []pki.Holder
		list    pki.State // what happens to revoked.pem
		number  string
		already []bool // per holder: the list named it already
	}{
		{"revoke agency 2", nil, []pki.Holder{{Agency: 2}}, pki.Replaced, "2", []bool{false}},
		{"revoke and reissue agency 2", nil, []pki.Holder{{Agency: 2, Reissue: true}}, pki.Replaced, "2", []bool{false}},
		{"reissue the operator", nil, []pki.Holder{{Agency: 0, Reissue: true}}, pki.Replaced, "2", []bool{false}},
		{"two agencies at once", nil, []pki.Holder{{Agency: 1}, {Agency: 3, Reissue: true}}, pki.Replaced, "2", []bool{false, false}},
		{"agency 2 again", []pki.Holder{{Agency: 2}}, []pki.Holder{{Agency: 2}}, pki.Kept, "2", []bool{true}},
		{"agency 2 revoked, then reissued", []pki.Holder{{Agency: 2}}, []pki.Holder{{Agency: 2, Reissue: true}}, pki.Kept, "2", []bool{true}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			writeDir(t, dir, 3, nil, false)
			if tt.first != nil {
				_, err := pki.RevokeDir(dir, tt.first)
				require.NoError(t, err)
			}
			before := snapshot(t, dir)
			old := map[int]*pki.Cert{}
			for _, h := range tt.holders {
				old[h.Agency] = holderCert(t, dir, h.Agency)
			}

			rep, err := pki.RevokeDir(dir, tt.holders)
			require.NoError(t, err)
			assert.Equal(t, tt.list, rep.List.State)
			assert.Equal(t, filepath.Join(dir, pki.RevokedFile), rep.List.Path)
			require.Len(t, rep.Revoked, len(tt.holders))
			list := listOf(t, dir)
			assert.Equal(t, tt.number, list.Number())
			assert.Equal(t, len(old), list.Len())
			assert.Equal(t, list.Len(), rep.Listed)
			after := snapshot(t, dir)
			if tt.list == pki.Kept {
				assert.Equal(t, before[pki.RevokedFile], after[pki.RevokedFile], "a list that gains nothing is not rewritten")
			}
			for i, h := range tt.holders {
				r := rep.Revoked[i]
				assert.Equal(t, old[h.Agency].Cert.SerialNumber, r.Serial)
				assert.Equal(t, tt.already[i], r.Already)
				assert.True(t, list.Revoked(old[h.Agency].Cert), "the old certificate is revoked")
				now := holderCert(t, dir, h.Agency)
				if !h.Reissue {
					assert.Nil(t, r.Reissued)
					assert.Equal(t, old[h.Agency].Cert.Raw, now.Cert.Raw, "a revocation alone leaves the files")
					continue
				}
				require.NotNil(t, r.Reissued)
				assert.Equal(t, r.Reissued.Cert.Raw, now.Cert.Raw)
				assert.NotEqual(t, old[h.Agency].Cert.SerialNumber, now.Cert.SerialNumber, "a new serial")
				assert.False(t, list.Revoked(now.Cert), "the new certificate is good")
				assert.False(t, old[h.Agency].Key.Equal(now.Key), "a new key")
			}
			// What the central would check: every certificate but the revoked ones still verifies.
			checkDir(t, dir, 3)
		})
	}
}

// holderCert is agency n's certificate in dir, or the operator's for 0.
func holderCert(t *testing.T, dir string, n int) *pki.Cert {
	t.Helper()
	if n == 0 {
		return certOf(t, dir, pki.OperatorFile, pki.OperatorKeyFile)
	}
	return certOf(t, dir, pki.AgencyFile(n), pki.AgencyKeyFile(n))
}

// Without revoked.pem (a directory made before there was one) RevokeDir
// starts it; another CA's list (the CA replaced by hand) is started anew.
func TestRevokeDirStartsTheList(t *testing.T) {
	tests := []struct {
		name   string
		spoil  func(t *testing.T, dir string)
		state  pki.State
		reason string
	}{
		{"no list", func(t *testing.T, dir string) { require.NoError(t, os.Remove(filepath.Join(dir, pki.RevokedFile))) },
			pki.Created, ""},
		{"another CA's list", func(t *testing.T, dir string) {
			data, err := newCA(t, "old CA").RevocationList(nil, big.NewInt(9), time.Now())
			require.NoError(t, err)
			require.NoError(t, os.WriteFile(filepath.Join(dir, pki.RevokedFile), data, 0o644))
		}, pki.Replaced, "another CA's list: does not verify against ca.pem"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			writeDir(t, dir, 1, nil, false)
			tt.spoil(t, dir)
			rep, err := pki.RevokeDir(dir, []pki.Holder{{Agency: 1}})
			require.NoError(t, err)
			assert.Equal(t, tt.state, rep.List.State)
			assert.Equal(t, tt.reason, rep.List.Reason)
			list := listOf(t, dir)
			assert.Equal(t, "1", list.Number())
			assert.True(t, list.Revoked(holderCert(t, dir, 1).Cert))
		})
	}
}

// What RevokeDir refuses, writing nothing: no CA, no certificate to revoke,
// one our CA did not sign, and a list it cannot verify (replacing it would
// forget what it revokes).
func TestRevokeDirErrors(t *testing.T) {
	tests := []struct {
		name    string
		spoil   func(t *testing.T, dir string)
		holders []pki.Holder
		err     string
	}{
		{"no holder", func(*testing.T, string) {}, nil, "revoke: no certificate to revoke"},
		{"no CA", func(t *testing.T, dir string) { require.NoError(t, os.Remove(filepath.Join(dir, pki.CAKeyFile))) },
			[]pki.Holder{{Agency: 1}}, "revoke: load CA: read key"},
		{"no certificate", func(t *testing.T, dir string) { require.NoError(t, os.Remove(filepath.Join(dir, pki.AgencyFile(2)))) },
			[]pki.Holder{{Agency: 1}, {Agency: 2, Reissue: true}}, "revoke: read certificate: open"},
		{"an agency out of the directory", func(*testing.T, string) {}, []pki.Holder{{Agency: 9}}, "agency-9.pem: no such file"},
		{"a certificate of another CA", func(t *testing.T, dir string) {
			c, err := newCA(t, "other CA").IssueAgency(1, time.Time{}, time.Time{})
			require.NoError(t, err)
			require.NoError(t, c.WriteFiles(filepath.Join(dir, pki.AgencyFile(1)), filepath.Join(dir, pki.AgencyKeyFile(1))))
		}, []pki.Holder{{Agency: 1}}, "agency-1.pem\": not signed by ca.pem"},
		{"a garbled list", func(t *testing.T, dir string) {
			require.NoError(t, os.WriteFile(filepath.Join(dir, pki.RevokedFile), []byte("x"), 0o644))
		}, []pki.Holder{{Agency: 1, Reissue: true}}, "no PEM block: want one X509 CRL (restore it"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			writeDir(t, dir, 2, nil, false)
			tt.spoil(t, dir)
			before := snapshot(t, dir)
			_, err := pki.RevokeDir(dir, tt.holders)
			assert.ErrorContains(t, err, tt.err)
			assert.Equal(t, before, snapshot(t, dir), "nothing written")
		})
	}
}
