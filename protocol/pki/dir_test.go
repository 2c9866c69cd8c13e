package pki_test

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"io/fs"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"lotterycentral.example/protocol/identity"
	"lotterycentral.example/protocol/pki"
)

// names are the files WriteDir makes for n agencies, keys before certificates.
func names(n int) []string {
	out := []string{pki.CAKeyFile, pki.CAFile, pki.RevokedFile, pki.CentralKeyFile, pki.CentralFile, pki.OperatorKeyFile, pki.OperatorFile}
	for i := 1; i <= n; i++ {
		out = append(out, pki.AgencyKeyFile(i), pki.AgencyFile(i))
	}
	return out
}

// snapshot reads every file of dir.
func snapshot(t *testing.T, dir string) map[string][]byte {
	t.Helper()
	entries, err := os.ReadDir(dir)
	require.NoError(t, err)
	files := map[string][]byte{}
	for _, e := range entries {
		b, err := os.ReadFile(filepath.Join(dir, e.Name()))
		require.NoError(t, err)
		files[e.Name()] = b
	}
	return files
}

// states maps each file's name to its state in rep.
func states(rep pki.Report) map[string]pki.State {
	m := map[string]pki.State{}
	for _, f := range rep.Files {
		m[filepath.Base(f.Path)] = f.State
	}
	return m
}

func all(names []string, s pki.State) map[string]pki.State {
	m := map[string]pki.State{}
	for _, n := range names {
		m[n] = s
	}
	return m
}

func writeDir(t *testing.T, dir string, agencies int, hosts []string, replace bool) pki.Report {
	t.Helper()
	rep, err := pki.WriteDir(dir, agencies, hosts, replace)
	require.NoError(t, err)
	return rep
}

// checkDir verifies every certificate of dir against its CA, for its usage.
func checkDir(t *testing.T, dir string, agencies int) {
	t.Helper()
	ca, err := pki.LoadCA(filepath.Join(dir, pki.CAFile), filepath.Join(dir, pki.CAKeyFile))
	require.NoError(t, err)
	central, err := pki.LoadCert(filepath.Join(dir, pki.CentralFile), filepath.Join(dir, pki.CentralKeyFile))
	require.NoError(t, err)
	assert.NoError(t, verify(central.Cert, ca, x509.ExtKeyUsageServerAuth, "server"))
	assert.NoError(t, verify(central.Cert, ca, x509.ExtKeyUsageClientAuth, ""))
	op, err := pki.LoadCert(filepath.Join(dir, pki.OperatorFile), filepath.Join(dir, pki.OperatorKeyFile))
	require.NoError(t, err)
	assert.NoError(t, verify(op.Cert, ca, x509.ExtKeyUsageClientAuth, ""))
	assert.Error(t, verify(op.Cert, ca, x509.ExtKeyUsageServerAuth, ""), "the operator must not serve")
	name, err := identity.OperatorOf(op.Cert)
	require.NoError(t, err)
	assert.Equal(t, identity.OperatorName, name)
	for n := 1; n <= agencies; n++ {
		agency, err := pki.LoadCert(filepath.Join(dir, pki.AgencyFile(n)), filepath.Join(dir, pki.AgencyKeyFile(n)))
		require.NoError(t, err)
		assert.NoError(t, verify(agency.Cert, ca, x509.ExtKeyUsageClientAuth, ""), "agency %d", n)
		assert.Error(t, verify(agency.Cert, ca, x509.ExtKeyUsageServerAuth, ""), "agency %d must not serve", n)
		got, err := identity.AgencyOf(agency.Cert)
		require.NoError(t, err)
		assert.Equal(t, n, got)
	}
}

func TestWriteDirModes(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "certs")
	rep := writeDir(t, dir, 2, nil, false)
	assert.Equal(t, all(names(2), pki.Created), states(rep))
	assert.Equal(t, len(names(2)), rep.Count(pki.Created))
	checkDir(t, dir, 2)

	st, err := os.Stat(dir)
	require.NoError(t, err)
	assert.Equal(t, fs.ModeDir|0o700, st.Mode(), "directory")
	entries, err := os.ReadDir(dir)
	require.NoError(t, err)
	var got []string
	for _, e := range entries {
		got = append(got, e.Name())
		info, err := e.Info()
		require.NoError(t, err)
		want := fs.FileMode(0o644)
		if strings.HasSuffix(e.Name(), "-key.pem") {
			want = 0o600
		}
		assert.Equal(t, want, info.Mode(), e.Name())
	}
	want := names(2)
	slices.Sort(want)
	assert.Equal(t, want, got, "no temporary file is left behind")
}

// Certificates leaves the keys out: each key comes right before its certificate.
func TestReportCertificates(t *testing.T) {
	rep := writeDir(t, filepath.Join(t.TempDir(), "certs"), 2, nil, false)
	var files, certs []string
	for i, f := range rep.Files {
		files = append(files, filepath.Base(f.Path))
		if f.Key {
			require.Less(t, i+1, len(rep.Files))
			assert.Equal(t, strings.TrimSuffix(f.Path, "-key.pem")+".pem", rep.Files[i+1].Path)
		}
	}
	assert.Equal(t, names(2), files)
	for _, f := range rep.Certificates().Files {
		assert.False(t, f.Key)
		certs = append(certs, filepath.Base(f.Path))
	}
	assert.Equal(t, []string{pki.CAFile, pki.CentralFile, pki.OperatorFile, pki.AgencyFile(1), pki.AgencyFile(2)}, certs)
	assert.Equal(t, 5, rep.Certificates().Count(pki.Created))
}

func TestWriteDirIdempotent(t *testing.T) {
	dir := t.TempDir()
	writeDir(t, dir, 3, []string{"lottery.example"}, false)
	before := snapshot(t, dir)

	rep := writeDir(t, dir, 3, []string{"lottery.example"}, false)
	assert.Equal(t, all(names(3), pki.Kept), states(rep))
	assert.Equal(t, before, snapshot(t, dir), "a second run changes no byte")

	rep = writeDir(t, dir, 3, nil, false)
	assert.Equal(t, all(names(3), pki.Kept), states(rep), "a central valid for more hosts than asked is kept")
	assert.Equal(t, before, snapshot(t, dir))
}

func TestWriteDirGrows(t *testing.T) {
	dir := t.TempDir()
	writeDir(t, dir, 3, nil, false)
	before := snapshot(t, dir)

	rep := writeDir(t, dir, 5, nil, false)
	want := all(names(3), pki.Kept)
	for n := 4; n <= 5; n++ {
		want[pki.AgencyFile(n)] = pki.Created
		want[pki.AgencyKeyFile(n)] = pki.Created
	}
	assert.Equal(t, want, states(rep))
	after := snapshot(t, dir)
	for name, b := range before {
		assert.Equal(t, b, after[name], "%s kept", name)
	}
	checkDir(t, dir, 5)

	rep = writeDir(t, dir, 2, nil, false)
	assert.Equal(t, all(names(2), pki.Kept), states(rep), "fewer agencies: the others are left alone")
	assert.Equal(t, after, snapshot(t, dir))
}

func TestWriteDirReplace(t *testing.T) {
	dir := t.TempDir()
	writeDir(t, dir, 2, nil, false)
	before := snapshot(t, dir)

	rep := writeDir(t, dir, 3, nil, true)
	want := all(names(2), pki.Replaced)
	want[pki.AgencyFile(3)] = pki.Created
	want[pki.AgencyKeyFile(3)] = pki.Created
	assert.Equal(t, want, states(rep))
	for _, f := range rep.Files {
		if f.State == pki.Replaced {
			assert.Equal(t, "replace requested", f.Reason, f.Path)
		}
	}
	after := snapshot(t, dir)
	for name, b := range before {
		assert.NotEqual(t, b, after[name], "%s replaced", name)
	}
	checkDir(t, dir, 3)

	old, err := os.ReadFile(filepath.Join(dir, pki.CAFile))
	require.NoError(t, err)
	assert.NotEqual(t, before[pki.CAFile], old)
}

// TestWriteDirRepairs: what an existing directory can hold that WriteDir does
// not keep, and what it does about it.
func TestWriteDirRepairs(t *testing.T) {
	tests := []struct {
		name    string
		spoil   func(t *testing.T, dir string)
		hosts   []string
		reissue []string // certificates reissued (with their keys); the rest is kept
		reason  string   // part of their Reason
	}{
		{
			name: "agency key missing",
			spoil: func(t *testing.T, dir string) {
				require.NoError(t, os.Remove(filepath.Join(dir, pki.AgencyKeyFile(2))))
			},
			reissue: []string{pki.AgencyFile(2)},
			reason:  "key missing",
		},
		{
			name:    "agency certificate missing",
			spoil:   func(t *testing.T, dir string) { require.NoError(t, os.Remove(filepath.Join(dir, pki.AgencyFile(1)))) },
			reissue: []string{pki.AgencyFile(1)},
			reason:  "certificate missing",
		},
		{
			name: "key of another certificate (an interrupted run)",
			spoil: func(t *testing.T, dir string) {
				copyFile(t, filepath.Join(dir, pki.AgencyKeyFile(1)), filepath.Join(dir, pki.AgencyKeyFile(2)))
			},
			reissue: []string{pki.AgencyFile(2)},
			reason:  "private key does not match public key",
		},
		{
			name: "agency certificate for the wrong agency",
			spoil: func(t *testing.T, dir string) {
				copyFile(t, filepath.Join(dir, pki.AgencyKeyFile(1)), filepath.Join(dir, pki.AgencyKeyFile(2)))
				copyFile(t, filepath.Join(dir, pki.AgencyFile(1)), filepath.Join(dir, pki.AgencyFile(2)))
			},
			reissue: []string{pki.AgencyFile(2)},
			reason:  "names agency 1, want 2",
		},
		{
			name: "expired agency certificate",
			spoil: func(t *testing.T, dir string) {
				ca := loadCA(t, dir)
				c, err := ca.IssueAgency(1, time.Now().Add(-48*time.Hour), time.Now().Add(-time.Hour))
				require.NoError(t, err)
				require.NoError(t, c.WriteFiles(filepath.Join(dir, pki.AgencyFile(1)), filepath.Join(dir, pki.AgencyKeyFile(1))))
			},
			reissue: []string{pki.AgencyFile(1)},
			reason:  "expired",
		},
		{
			name: "agency certificate expiring soon",
			spoil: func(t *testing.T, dir string) {
				ca := loadCA(t, dir)
				c, err := ca.IssueAgency(2, time.Time{}, time.Now().Add(pki.RenewBefore/2))
				require.NoError(t, err)
				require.NoError(t, c.WriteFiles(filepath.Join(dir, pki.AgencyFile(2)), filepath.Join(dir, pki.AgencyKeyFile(2))))
			},
			reissue: []string{pki.AgencyFile(2)},
			reason:  "expires on",
		},
		{
			name: "agency certificate of another CA",
			spoil: func(t *testing.T, dir string) {
				c, err := newCA(t, "other CA").IssueAgency(1, time.Time{}, time.Time{})
				require.NoError(t, err)
				require.NoError(t, c.WriteFiles(filepath.Join(dir, pki.AgencyFile(1)), filepath.Join(dir, pki.AgencyKeyFile(1))))
			},
			reissue: []string{pki.AgencyFile(1)},
			reason:  "does not verify against ca.pem",
		},
		{
			name:    "operator certificate missing",
			spoil:   func(t *testing.T, dir string) { require.NoError(t, os.Remove(filepath.Join(dir, pki.OperatorFile))) },
			reissue: []string{pki.OperatorFile},
			reason:  "certificate missing",
		},
		{
			name: "expired operator certificate",
			spoil: func(t *testing.T, dir string) {
				c, err := loadCA(t, dir).IssueOperator("", time.Now().Add(-48*time.Hour), time.Now().Add(-time.Hour))
				require.NoError(t, err)
				require.NoError(t, c.WriteFiles(filepath.Join(dir, pki.OperatorFile), filepath.Join(dir, pki.OperatorKeyFile)))
			},
			reissue: []string{pki.OperatorFile},
			reason:  "expired",
		},
		{
			name: "a named operator where the default one should be",
			spoil: func(t *testing.T, dir string) {
				c, err := loadCA(t, dir).IssueOperator("ana", time.Time{}, time.Time{})
				require.NoError(t, err)
				require.NoError(t, c.WriteFiles(filepath.Join(dir, pki.OperatorFile), filepath.Join(dir, pki.OperatorKeyFile)))
			},
			reissue: []string{pki.OperatorFile},
			reason:  `names operator "operator-ana", want "operator"`,
		},
		{
			name: "an agency's certificate where the operator's should be",
			spoil: func(t *testing.T, dir string) {
				copyFile(t, filepath.Join(dir, pki.AgencyKeyFile(1)), filepath.Join(dir, pki.OperatorKeyFile))
				copyFile(t, filepath.Join(dir, pki.AgencyFile(1)), filepath.Join(dir, pki.OperatorFile))
			},
			reissue: []string{pki.OperatorFile},
			reason:  "an agency may not act as an operator",
		},
		{
			name:    "central asked for a new host",
			spoil:   func(t *testing.T, dir string) {},
			hosts:   []string{"lottery.example"},
			reissue: []string{pki.CentralFile},
			reason:  `not valid for host "lottery.example"`,
		},
		{
			name:    "central asked for a new address",
			spoil:   func(t *testing.T, dir string) {},
			hosts:   []string{"192.0.2.7"},
			reissue: []string{pki.CentralFile},
			reason:  "not valid for address 192.0.2.7",
		},
		{
			name: "a central certificate where an agency's should be",
			spoil: func(t *testing.T, dir string) {
				copyFile(t, filepath.Join(dir, pki.CentralKeyFile), filepath.Join(dir, pki.AgencyKeyFile(1)))
				copyFile(t, filepath.Join(dir, pki.CentralFile), filepath.Join(dir, pki.AgencyFile(1)))
			},
			reissue: []string{pki.AgencyFile(1)},
			reason:  "names no agency",
		},
		{
			name: "garbage certificate",
			spoil: func(t *testing.T, dir string) {
				require.NoError(t, os.WriteFile(filepath.Join(dir, pki.CentralFile), []byte("garbage"), 0o644))
			},
			reissue: []string{pki.CentralFile},
			reason:  "load certificate",
		},
		{
			name: "CA replaced by hand: every certificate is reissued",
			spoil: func(t *testing.T, dir string) {
				require.NoError(t, newCA(t, "hand-made CA").WriteFiles(filepath.Join(dir, pki.CAFile), filepath.Join(dir, pki.CAKeyFile)))
			},
			// The old list names none of the new CA's certificates: it starts anew.
			reissue: []string{pki.RevokedFile, pki.CentralFile, pki.OperatorFile, pki.AgencyFile(1), pki.AgencyFile(2)},
			reason:  "does not verify against ca.pem",
		},
		{
			name: "a revoked agency certificate",
			spoil: func(t *testing.T, dir string) {
				_, err := pki.RevokeDir(dir, []pki.Holder{{Agency: 2}})
				require.NoError(t, err)
			},
			reissue: []string{pki.AgencyFile(2)},
			reason:  "revoked (revoked.pem)",
		},
		{
			name: "a revoked operator certificate",
			spoil: func(t *testing.T, dir string) {
				_, err := pki.RevokeDir(dir, []pki.Holder{{Agency: 0}})
				require.NoError(t, err)
			},
			reissue: []string{pki.OperatorFile},
			reason:  "revoked (revoked.pem)",
		},
		{
			name:    "the revocation list missing",
			spoil:   func(t *testing.T, dir string) { require.NoError(t, os.Remove(filepath.Join(dir, pki.RevokedFile))) },
			reissue: []string{pki.RevokedFile},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			writeDir(t, dir, 2, nil, false)
			tt.spoil(t, dir)
			before := snapshot(t, dir)

			rep := writeDir(t, dir, 2, tt.hosts, false)
			checkDir(t, dir, 2)
			reissued := map[string]bool{}
			for _, c := range tt.reissue {
				reissued[c] = true
				reissued[strings.TrimSuffix(c, ".pem")+"-key.pem"] = true
			}
			after := snapshot(t, dir)
			for _, f := range rep.Files {
				name := filepath.Base(f.Path)
				if !reissued[name] {
					assert.Equal(t, pki.Kept, f.State, name)
					assert.Equal(t, before[name], after[name], "%s unchanged", name)
					continue
				}
				assert.NotEqual(t, pki.Kept, f.State, name)
				assert.NotEqual(t, before[name], after[name], "%s rewritten", name)
				if f.State == pki.Replaced {
					assert.Contains(t, f.Reason, tt.reason, name)
				}
			}
		})
	}
}

func TestWriteDirErrors(t *testing.T) {
	tests := []struct {
		name     string
		prepare  func(t *testing.T, dir string)
		agencies int
		hosts    []string
		wantErr  string
	}{
		{
			name:     "negative agencies",
			prepare:  func(t *testing.T, dir string) {},
			agencies: -1,
			wantErr:  "-1 agencies outside 0..4294967295",
		},
		{
			name:     "bad host",
			prepare:  func(t *testing.T, dir string) {},
			agencies: 1,
			hosts:    []string{"no spaces allowed"},
			wantErr:  `host "no spaces allowed" is neither`,
		},
		{
			name:     "CA key lost",
			prepare:  func(t *testing.T, dir string) { require.NoError(t, os.Remove(filepath.Join(dir, pki.CAKeyFile))) },
			agencies: 1,
			wantErr:  "ca.pem\" exists without",
		},
		{
			name:     "CA certificate lost",
			prepare:  func(t *testing.T, dir string) { require.NoError(t, os.Remove(filepath.Join(dir, pki.CAFile))) },
			agencies: 1,
			wantErr:  "ca-key.pem\" exists without",
		},
		{
			name: "CA key of another CA",
			prepare: func(t *testing.T, dir string) {
				other := newCA(t, "other CA")
				keyPEM, err := other.KeyPEM()
				require.NoError(t, err)
				require.NoError(t, os.WriteFile(filepath.Join(dir, pki.CAKeyFile), keyPEM, 0o600))
			},
			agencies: 1,
			wantErr:  "private key does not match public key",
		},
		{
			name: "CA expired",
			prepare: func(t *testing.T, dir string) {
				ca, err := pki.NewCA("old CA", time.Now().Add(-48*time.Hour), time.Now().Add(-time.Hour))
				require.NoError(t, err)
				require.NoError(t, ca.WriteFiles(filepath.Join(dir, pki.CAFile), filepath.Join(dir, pki.CAKeyFile)))
			},
			agencies: 1,
			wantErr:  "valid only from",
		},
		{
			name: "a garbled revocation list",
			prepare: func(t *testing.T, dir string) {
				require.NoError(t, os.WriteFile(filepath.Join(dir, pki.RevokedFile), []byte("garbled"), 0o644))
			},
			agencies: 1,
			wantErr:  "no PEM block: want one X509 CRL (restore it: replacing it would forget every certificate it revokes)",
		},
		{
			name: "a revocation list our CA's name but not its key signed",
			prepare: func(t *testing.T, dir string) {
				twin := newCA(t, loadCA(t, dir).Cert.Cert.Subject.CommonName)
				data, err := twin.RevocationList(nil, big.NewInt(2), time.Now())
				require.NoError(t, err)
				require.NoError(t, os.WriteFile(filepath.Join(dir, pki.RevokedFile), data, 0o644))
			},
			agencies: 1,
			wantErr:  "not signed by our CA: x509: ECDSA verification failure",
		},
		{
			name: "a leaf where the CA should be",
			prepare: func(t *testing.T, dir string) {
				copyFile(t, filepath.Join(dir, pki.CentralFile), filepath.Join(dir, pki.CAFile))
				copyFile(t, filepath.Join(dir, pki.CentralKeyFile), filepath.Join(dir, pki.CAKeyFile))
			},
			agencies: 1,
			wantErr:  "is not a CA",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			writeDir(t, dir, 1, nil, false)
			tt.prepare(t, dir)
			before := snapshot(t, dir)
			_, err := pki.WriteDir(dir, tt.agencies, tt.hosts, false)
			require.ErrorContains(t, err, tt.wantErr)
			assert.Equal(t, before, snapshot(t, dir), "nothing written")

			if strings.Contains(tt.name, "CA") {
				rep := writeDir(t, dir, 1, nil, true)
				assert.Zero(t, rep.Count(pki.Kept), "replace recovers")
				checkDir(t, dir, 1)
			}
		})
	}
}

// TestWriteDirHandshake: the files WriteDir makes are what identity's configs
// load, and they complete a mutual-TLS handshake over loopback.
func TestWriteDirHandshake(t *testing.T) {
	dir := t.TempDir()
	writeDir(t, dir, 2, nil, false)
	path := func(name string) string { return filepath.Join(dir, name) }
	serverCfg, err := identity.ServerConfig(path(pki.CentralFile), path(pki.CentralKeyFile), path(pki.CAFile))
	require.NoError(t, err)

	tests := []struct {
		name       string
		cert, key  string
		serverName string
		agency     int  // 0: names no agency
		refused    bool // the handshake fails: the operator's, on the agencies' port
	}{
		{"agency 1", pki.AgencyFile(1), pki.AgencyKeyFile(1), "localhost", 1, false},
		{"agency 2 by address", pki.AgencyFile(2), pki.AgencyKeyFile(2), "127.0.0.1", 2, false},
		{"central's probe", pki.CentralFile, pki.CentralKeyFile, "server", 0, false},
		{"operator", pki.OperatorFile, pki.OperatorKeyFile, "localhost", 0, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ln, err := net.Listen("tcp", "127.0.0.1:0")
			require.NoError(t, err)
			defer ln.Close()
			type result struct {
				agency int
				err    error
			}
			done := make(chan result, 1)
			go func() {
				conn, err := ln.Accept()
				if err != nil {
					done <- result{err: err}
					return
				}
				defer conn.Close()
				tc := tls.Server(conn, serverCfg)
				ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
				defer cancel()
				if err := tc.HandshakeContext(ctx); err != nil {
					done <- result{err: err}
					return
				}
				n, err := identity.ConnAgency(tc.ConnectionState())
				_, _ = tc.Write([]byte{1}) // let the client's first read complete
				done <- result{agency: n, err: err}
			}()

			clientCfg, err := identity.ClientConfig(path(tt.cert), path(tt.key), path(pki.CAFile), tt.serverName)
			require.NoError(t, err)
			d := tls.Dialer{Config: clientCfg}
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			conn, err := d.DialContext(ctx, "tcp", ln.Addr().String())
			require.NoError(t, err)
			defer conn.Close()
			_, err = conn.Read(make([]byte, 1))
			r := <-done
			if tt.refused {
				assert.ErrorContains(t, err, "bad certificate")
				assert.ErrorIs(t, r.err, identity.ErrOperatorNotAgency)
				return
			}
			require.NoError(t, err)
			if tt.agency == 0 {
				assert.ErrorIs(t, r.err, identity.ErrNoAgency)
				return
			}
			require.NoError(t, r.err)
			assert.Equal(t, tt.agency, r.agency)
		})
	}
}

func loadCA(t *testing.T, dir string) *pki.CA {
	t.Helper()
	ca, err := pki.LoadCA(filepath.Join(dir, pki.CAFile), filepath.Join(dir, pki.CAKeyFile))
	require.NoError(t, err)
	return ca
}

func copyFile(t *testing.T, from, to string) {
	t.Helper()
	b, err := os.ReadFile(from)
	require.NoError(t, err)
	require.NoError(t, os.WriteFile(to, b, 0o600))
}
