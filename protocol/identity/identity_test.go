package identity_test

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/asn1"
	"errors"
	"io/fs"
	"math/big"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"lotterycentral.example/protocol/identity"
)

var oidCN = asn1.ObjectIdentifier{2, 5, 4, 3}

// parsed signs a certificate with subject and usages and parses it back, as a
// peer's certificate reaches AgencyOf.
func parsed(t *testing.T, subject pkix.Name, usages ...x509.ExtKeyUsage) *x509.Certificate {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	require.NoError(t, err)
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1),
		Subject:      subject,
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(time.Hour),
		ExtKeyUsage:  usages,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	require.NoError(t, err)
	cert, err := x509.ParseCertificate(der)
	require.NoError(t, err)
	return cert
}

func TestAgencyName(t *testing.T) {
	tests := []struct {
		name string
		n    int
		want string
	}{
		{"one", 1, "agency-1"},
		{"three", 3, "agency-3"},
		{"largest", identity.MaxAgency, "agency-4294967295"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			assert.Equal(t, tt.want, identity.AgencyName(tt.n))
			n, err := identity.AgencyOf(parsed(t, pkix.Name{CommonName: tt.want}, x509.ExtKeyUsageClientAuth))
			require.NoError(t, err)
			assert.Equal(t, tt.n, n, "AgencyOf inverts AgencyName")
		})
	}
}

func TestAgencyOf(t *testing.T) {
	client := []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}
	tests := []struct {
		name    string
		subject pkix.Name
		usages  []x509.ExtKeyUsage
		want    int    // 0: names no agency
		errText string // part of the error when want is 0
	}{
		{"agency 3", pkix.Name{CommonName: "agency-3"}, client, 3, ""},
		{"agency 1", pkix.Name{CommonName: "agency-1"}, client, 1, ""},
		{"agency 10", pkix.Name{CommonName: "agency-10"}, client, 10, ""},
		{"largest u32", pkix.Name{CommonName: "agency-4294967295"}, client, 4294967295, ""},
		{"client and server auth", pkix.Name{CommonName: "agency-3"},
			[]x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth}, 3, ""},
		{"other subject attributes", pkix.Name{CommonName: "agency-3", Organization: []string{"agency-4"}}, client, 3, ""},

		{"overflow", pkix.Name{CommonName: "agency-4294967296"}, client, 0, "not agency-N"},
		{"far overflow", pkix.Name{CommonName: "agency-99999999999999999999"}, client, 0, "not agency-N"},
		{"zero", pkix.Name{CommonName: "agency-0"}, client, 0, "not agency-N"},
		{"leading zero", pkix.Name{CommonName: "agency-03"}, client, 0, "not agency-N"},
		{"plus sign", pkix.Name{CommonName: "agency-+3"}, client, 0, "not agency-N"},
		{"minus sign", pkix.Name{CommonName: "agency--3"}, client, 0, "not agency-N"},
		{"no number", pkix.Name{CommonName: "agency-"}, client, 0, "not agency-N"},
		{"trailing letter", pkix.Name{CommonName: "agency-3x"}, client, 0, "not agency-N"},
		{"trailing space", pkix.Name{CommonName: "agency-3 "}, client, 0, "not agency-N"},
		{"leading space", pkix.Name{CommonName: " agency-3"}, client, 0, "not agency-N"},
		{"inner space", pkix.Name{CommonName: "agency- 3"}, client, 0, "not agency-N"},
		{"upper case", pkix.Name{CommonName: "Agency-3"}, client, 0, "not agency-N"},
		{"underscore", pkix.Name{CommonName: "agency_3"}, client, 0, "not agency-N"},
		{"hexadecimal", pkix.Name{CommonName: "agency-0x3"}, client, 0, "not agency-N"},
		{"non-ASCII digit", pkix.Name{CommonName: "agency-٣"}, client, 0, "not agency-N"},
		{"bare number", pkix.Name{CommonName: "3"}, client, 0, "not agency-N"},
		{"central", pkix.Name{CommonName: identity.CentralName},
			[]x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth}, 0, "not agency-N"},
		{"no common name", pkix.Name{Organization: []string{"agency-3"}}, client, 0, "0 common names"},
		{"two common names", pkix.Name{ExtraNames: []pkix.AttributeTypeAndValue{
			{Type: oidCN, Value: "agency-3"}, {Type: oidCN, Value: "agency-4"}}}, client, 0, "2 common names"},
		{"server auth only", pkix.Name{CommonName: "agency-3"},
			[]x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}, 0, "no client-auth"},
		{"any usage only", pkix.Name{CommonName: "agency-3"},
			[]x509.ExtKeyUsage{x509.ExtKeyUsageAny}, 0, "no client-auth"},
		{"no extended key usage", pkix.Name{CommonName: "agency-3"}, nil, 0, "no client-auth"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			n, err := identity.AgencyOf(parsed(t, tt.subject, tt.usages...))
			if tt.want != 0 {
				require.NoError(t, err)
				assert.Equal(t, tt.want, n)
				return
			}
			require.ErrorIs(t, err, identity.ErrNoAgency)
			assert.ErrorContains(t, err, tt.errText)
			assert.Zero(t, n)
		})
	}
	t.Run("nil certificate", func(t *testing.T) {
		_, err := identity.AgencyOf(nil)
		assert.ErrorIs(t, err, identity.ErrNoAgency)
	})
}

func TestConnAgency(t *testing.T) {
	agency3 := parsed(t, pkix.Name{CommonName: "agency-3"}, x509.ExtKeyUsageClientAuth)
	central := parsed(t, pkix.Name{CommonName: identity.CentralName}, x509.ExtKeyUsageClientAuth)
	tests := []struct {
		name    string
		state   tls.ConnectionState
		want    int
		wantErr error
	}{
		{"verified agency", tls.ConnectionState{PeerCertificates: []*x509.Certificate{agency3},
			VerifiedChains: [][]*x509.Certificate{{agency3}}}, 3, nil},
		{"verified central", tls.ConnectionState{PeerCertificates: []*x509.Certificate{central},
			VerifiedChains: [][]*x509.Certificate{{central}}}, 0, identity.ErrNoAgency},
		{"no peer certificate", tls.ConnectionState{}, 0, identity.ErrNoPeerCertificate},
		{"unverified peer certificate", tls.ConnectionState{PeerCertificates: []*x509.Certificate{agency3}},
			0, identity.ErrNoPeerCertificate},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			n, err := identity.ConnAgency(tt.state)
			if tt.wantErr != nil {
				require.ErrorIs(t, err, tt.wantErr)
				return
			}
			require.NoError(t, err)
			assert.Equal(t, tt.want, n)
		})
	}
}

func TestConfigs(t *testing.T) {
	f := newFiles(t)
	server, err := identity.ServerConfig(f.central, f.centralKey, f.ca)
	require.NoError(t, err)
	assert.Equal(t, uint16(tls.VersionTLS13), server.MinVersion)
	assert.Equal(t, tls.RequireAndVerifyClientCert, server.ClientAuth)
	assert.NotNil(t, server.ClientCAs)
	require.Len(t, server.Certificates, 1)

	client, err := identity.ClientConfig(f.agency3, f.agency3Key, f.ca, "server")
	require.NoError(t, err)
	assert.Equal(t, uint16(tls.VersionTLS13), client.MinVersion)
	assert.Equal(t, "server", client.ServerName)
	assert.NotNil(t, client.RootCAs)
	require.Len(t, client.Certificates, 1)
	assert.False(t, client.InsecureSkipVerify)
}

func TestConfigErrors(t *testing.T) {
	f := newFiles(t)
	missing := filepath.Join(f.dir, "missing.pem")
	garbage := filepath.Join(f.dir, "garbage.pem")
	require.NoError(t, os.WriteFile(garbage, []byte("not PEM\n"), 0o600))

	type load func(cert, key, ca string) error
	server := func(cert, key, ca string) error { _, err := identity.ServerConfig(cert, key, ca); return err }
	client := func(cert, key, ca string) error { _, err := identity.ClientConfig(cert, key, ca, "server"); return err }

	tests := []struct {
		name          string
		load          load
		cert, key, ca string
		want          []string // parts of the error
		notExist      bool
	}{
		{"central certificate missing", server, missing, f.centralKey, f.ca,
			[]string{`load central certificate "` + missing + `"`}, true},
		{"central key missing", server, f.central, missing, f.ca,
			[]string{`load central key "` + missing + `"`}, true},
		{"central key of another certificate", server, f.central, f.agency3Key, f.ca,
			[]string{`load central certificate "` + f.central + `" with key "` + f.agency3Key + `"`}, false},
		{"client CA missing", server, f.central, f.centralKey, missing,
			[]string{`load client CA "` + missing + `"`}, true},
		{"client CA without a certificate", server, f.central, f.centralKey, f.centralKey,
			[]string{`load client CA "` + f.centralKey + `": no PEM certificate`}, false},
		{"client certificate missing", client, missing, f.agency3Key, f.ca,
			[]string{`load client certificate "` + missing + `"`}, true},
		{"client key garbage", client, f.agency3, garbage, f.ca,
			[]string{`load client certificate "` + f.agency3 + `" with key "` + garbage + `"`}, false},
		{"CA missing", client, f.agency3, f.agency3Key, missing, []string{`load CA "` + missing + `"`}, true},
		{"CA garbage", client, f.agency3, f.agency3Key, garbage, []string{`load CA "` + garbage + `": no PEM certificate`}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.load(tt.cert, tt.key, tt.ca)
			require.Error(t, err)
			for _, w := range tt.want {
				assert.ErrorContains(t, err, w)
			}
			assert.Equal(t, tt.notExist, errors.Is(err, fs.ErrNotExist))
		})
	}
}
