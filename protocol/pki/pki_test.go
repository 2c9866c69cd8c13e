package pki_test

import (
	"crypto/x509"
	"net"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"lotterycentral.example/protocol/identity"
	"lotterycentral.example/protocol/pki"
)

func newCA(t *testing.T, name string) *pki.CA {
	t.Helper()
	ca, err := pki.NewCA(name, time.Time{}, time.Time{})
	require.NoError(t, err)
	return ca
}

// verify checks c against ca for one usage (and a host name, for server auth).
func verify(c *x509.Certificate, ca *pki.CA, usage x509.ExtKeyUsage, host string) error {
	_, err := c.Verify(x509.VerifyOptions{Roots: ca.Pool(), DNSName: host, KeyUsages: []x509.ExtKeyUsage{usage}})
	return err
}

func TestNewCA(t *testing.T) {
	ca := newCA(t, "test CA")
	c := ca.Cert.Cert
	assert.True(t, c.IsCA)
	assert.True(t, c.BasicConstraintsValid)
	assert.NotZero(t, c.KeyUsage&x509.KeyUsageCertSign)
	assert.Equal(t, "test CA", c.Subject.CommonName)
	assert.Equal(t, x509.ECDSA, c.PublicKeyAlgorithm)
	assert.NoError(t, c.CheckSignatureFrom(c), "self-signed")
	assert.WithinDuration(t, time.Now().Add(-pki.Backdate), c.NotBefore, time.Minute)
	assert.WithinDuration(t, c.NotBefore.Add(pki.DefaultCAValidity), c.NotAfter, time.Second)

	other := newCA(t, "test CA")
	assert.NotEqual(t, ca.Cert.Cert.Raw, other.Cert.Cert.Raw, "a second CA is unrelated")
	assert.Error(t, other.Cert.Cert.CheckSignatureFrom(c))
}

func TestIssueCentral(t *testing.T) {
	ca := newCA(t, "test CA")
	central, err := ca.IssueCentral([]string{"lottery.example", "10.0.0.5", "LOTTERY.example", " 10.0.0.5 "}, time.Time{}, time.Time{})
	require.NoError(t, err)
	c := central.Cert
	assert.Equal(t, identity.CentralName, c.Subject.CommonName)
	assert.Equal(t, []string{"server", "localhost", "lottery.example"}, c.DNSNames, "defaults, then extra names, deduplicated")
	require.Len(t, c.IPAddresses, 3)
	assert.True(t, c.IPAddresses[0].Equal(net.ParseIP("127.0.0.1")))
	assert.True(t, c.IPAddresses[1].Equal(net.ParseIP("::1")))
	assert.True(t, c.IPAddresses[2].Equal(net.ParseIP("10.0.0.5")))
	assert.WithinDuration(t, c.NotBefore.Add(pki.DefaultLeafValidity), c.NotAfter, time.Second)
	_, err = identity.AgencyOf(c)
	assert.ErrorIs(t, err, identity.ErrNoAgency, "the central names no agency")

	tests := []struct {
		name  string
		usage x509.ExtKeyUsage
		host  string
	}{
		{"server auth as server", x509.ExtKeyUsageServerAuth, "server"},
		{"server auth as localhost", x509.ExtKeyUsageServerAuth, "localhost"},
		{"server auth as 127.0.0.1", x509.ExtKeyUsageServerAuth, "127.0.0.1"},
		{"server auth as ::1", x509.ExtKeyUsageServerAuth, "::1"},
		{"server auth as an extra name", x509.ExtKeyUsageServerAuth, "lottery.example"},
		{"server auth as an extra address", x509.ExtKeyUsageServerAuth, "10.0.0.5"},
		{"client auth (health probe)", x509.ExtKeyUsageClientAuth, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			assert.NoError(t, verify(c, ca, tt.usage, tt.host))
		})
	}
	t.Run("not for another name", func(t *testing.T) {
		var he x509.HostnameError
		assert.ErrorAs(t, verify(c, ca, x509.ExtKeyUsageServerAuth, "elsewhere.example"), &he)
	})
	t.Run("not for another CA", func(t *testing.T) {
		var ua x509.UnknownAuthorityError
		assert.ErrorAs(t, verify(c, newCA(t, "other CA"), x509.ExtKeyUsageServerAuth, "server"), &ua)
	})
}

func TestIssueAgency(t *testing.T) {
	ca := newCA(t, "test CA")
	for _, n := range []int{1, 3, 1000, identity.MaxAgency} {
		agency, err := ca.IssueAgency(n, time.Time{}, time.Time{})
		require.NoError(t, err)
		got, err := identity.AgencyOf(agency.Cert)
		require.NoError(t, err)
		assert.Equal(t, n, got)
		assert.Equal(t, []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}, agency.Cert.ExtKeyUsage)
		assert.Empty(t, agency.Cert.DNSNames)
		assert.Empty(t, agency.Cert.IPAddresses)
	}

	agency, err := ca.IssueAgency(2, time.Time{}, time.Time{})
	require.NoError(t, err)
	tests := []struct {
		name    string
		usage   x509.ExtKeyUsage
		wantErr bool
	}{
		{"client auth", x509.ExtKeyUsageClientAuth, false},
		{"server auth", x509.ExtKeyUsageServerAuth, true},
		{"code signing", x509.ExtKeyUsageCodeSigning, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := verify(agency.Cert, ca, tt.usage, "")
			if !tt.wantErr {
				assert.NoError(t, err)
				return
			}
			var inv x509.CertificateInvalidError
			require.ErrorAs(t, err, &inv)
			assert.Equal(t, x509.IncompatibleUsage, inv.Reason)
		})
	}
}

func TestIssueOperator(t *testing.T) {
	ca := newCA(t, "test CA")
	tests := []struct {
		name, in, want string
	}{
		{"default", "", identity.OperatorName},
		{"named", "ana", "operator-ana"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			op, err := ca.IssueOperator(tt.in, time.Time{}, time.Time{})
			require.NoError(t, err)
			got, err := identity.OperatorOf(op.Cert)
			require.NoError(t, err)
			assert.Equal(t, tt.want, got)
			assert.Equal(t, []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}, op.Cert.ExtKeyUsage)
			assert.NoError(t, verify(op.Cert, ca, x509.ExtKeyUsageClientAuth, ""))
			assert.Error(t, verify(op.Cert, ca, x509.ExtKeyUsageServerAuth, ""), "an operator cannot pose as the central")
			_, err = identity.AgencyOf(op.Cert)
			assert.ErrorIs(t, err, identity.ErrNoAgency, "an operator names no agency")
		})
	}
}

func TestValidityWindow(t *testing.T) {
	ca := newCA(t, "test CA")
	now := time.Now()
	tests := []struct {
		name                string
		notBefore, notAfter time.Time
		wantErr             string             // issuing fails
		reason              x509.InvalidReason // verification fails; -1: it passes
	}{
		{"default", time.Time{}, time.Time{}, "", -1},
		{"explicit, current", now.Add(-time.Minute), now.Add(time.Hour), "", -1},
		{"expired", now.Add(-48 * time.Hour), now.Add(-24 * time.Hour), "", x509.Expired},
		{"not yet valid", now.Add(24 * time.Hour), now.Add(48 * time.Hour), "", x509.Expired},
		{"empty window", now, now.Add(-time.Hour), "validity window", -1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			agency, err := ca.IssueAgency(1, tt.notBefore, tt.notAfter)
			if tt.wantErr != "" {
				assert.ErrorContains(t, err, tt.wantErr)
				return
			}
			require.NoError(t, err)
			err = verify(agency.Cert, ca, x509.ExtKeyUsageClientAuth, "")
			if tt.reason < 0 {
				assert.NoError(t, err)
				return
			}
			var inv x509.CertificateInvalidError
			require.ErrorAs(t, err, &inv)
			assert.Equal(t, tt.reason, inv.Reason)
		})
	}
}

func TestIssueErrors(t *testing.T) {
	ca := newCA(t, "test CA")
	tests := []struct {
		name    string
		issue   func() error
		wantErr string
	}{
		{"agency 0", func() error { _, err := ca.IssueAgency(0, time.Time{}, time.Time{}); return err }, "agency 0 outside"},
		{"negative agency", func() error { _, err := ca.IssueAgency(-1, time.Time{}, time.Time{}); return err }, "agency -1 outside"},
		{"agency over u32", func() error { _, err := ca.IssueAgency(1<<32, time.Time{}, time.Time{}); return err }, "outside 1..4294967295"},
		{"bad host", func() error { _, err := ca.IssueCentral([]string{"bad host!"}, time.Time{}, time.Time{}); return err },
			`host "bad host!" is neither`},
		{"empty host", func() error { _, err := ca.IssueCentral([]string{""}, time.Time{}, time.Time{}); return err },
			`host "" is neither`},
		{"bad operator name", func() error { _, err := ca.IssueOperator("Ana", time.Time{}, time.Time{}); return err },
			`operator name "Ana"`},
		{"CA without a name", func() error { _, err := pki.NewCA("", time.Time{}, time.Time{}); return err }, "empty common name"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			assert.ErrorContains(t, tt.issue(), tt.wantErr)
		})
	}
}

func TestSplitHosts(t *testing.T) {
	tests := []struct {
		name    string
		hosts   []string
		dns     []string
		ips     []string
		wantErr bool
	}{
		{"names and addresses", []string{"a.example", "192.0.2.1", "2001:db8::1", "b"}, []string{"a.example", "b"}, []string{"192.0.2.1", "2001:db8::1"}, false},
		{"duplicates and case", []string{"A.example", "a.example", "192.0.2.1", "192.0.2.1"}, []string{"a.example"}, []string{"192.0.2.1"}, false},
		{"wildcard", []string{"*.example"}, []string{"*.example"}, nil, false},
		{"underscore", []string{"a_b"}, nil, nil, true},
		{"leading hyphen", []string{"-a"}, nil, nil, true},
		{"empty label", []string{"a..b"}, nil, nil, true},
		{"trailing dot", []string{"a."}, nil, nil, true},
		{"with a port", []string{"a.example:12345"}, nil, nil, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dns, ips, err := pki.SplitHosts(tt.hosts)
			if tt.wantErr {
				assert.Error(t, err)
				return
			}
			require.NoError(t, err)
			assert.Equal(t, tt.dns, dns)
			var got []string
			for _, ip := range ips {
				got = append(got, ip.String())
			}
			assert.Equal(t, tt.ips, got)
		})
	}
}

func TestWriteFilesAndLoad(t *testing.T) {
	dir := t.TempDir()
	ca := newCA(t, "test CA")
	agency, err := ca.IssueAgency(4, time.Time{}, time.Time{})
	require.NoError(t, err)
	caCert, caKey := filepath.Join(dir, "ca.pem"), filepath.Join(dir, "ca-key.pem")
	cert, key := filepath.Join(dir, "a.pem"), filepath.Join(dir, "a-key.pem")
	require.NoError(t, ca.WriteFiles(caCert, caKey))
	require.NoError(t, agency.WriteFiles(cert, key))

	loadedCA, err := pki.LoadCA(caCert, caKey)
	require.NoError(t, err)
	assert.Equal(t, ca.Cert.Cert.Raw, loadedCA.Cert.Cert.Raw)
	assert.True(t, ca.Key.Equal(loadedCA.Key))

	loaded, err := pki.LoadCert(cert, key)
	require.NoError(t, err)
	assert.Equal(t, agency.Cert.Raw, loaded.Cert.Raw)
	assert.True(t, agency.Key.Equal(loaded.Key))

	keyPEM, err := agency.KeyPEM()
	require.NoError(t, err)
	assert.Contains(t, string(keyPEM), "-----BEGIN PRIVATE KEY-----")
	assert.Contains(t, string(agency.CertPEM()), "-----BEGIN CERTIFICATE-----")

	tests := []struct {
		name    string
		load    func() error
		wantErr string
	}{
		{"a leaf is no CA", func() error { _, err := pki.LoadCA(cert, key); return err }, "is not a CA"},
		{"mismatched key", func() error { _, err := pki.LoadCert(cert, caKey); return err }, "with key"},
		{"missing certificate", func() error { _, err := pki.LoadCert(filepath.Join(dir, "none.pem"), key); return err }, "read certificate"},
		{"missing key", func() error { _, err := pki.LoadCert(cert, filepath.Join(dir, "none.pem")); return err }, "read key"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			assert.ErrorContains(t, tt.load(), tt.wantErr)
		})
	}
}
