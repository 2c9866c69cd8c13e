package identity_test

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"errors"
	"net"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"lotterycentral.example/protocol/identity"
)

func TestOperatorCommonName(t *testing.T) {
	tests := []struct {
		name, in, want string // want "": refused
	}{
		{"default", "", "operator"},
		{"named", "ana", "operator-ana"},
		{"dotted", "ana.perez", "operator-ana.perez"},
		{"digits, dash, underscore", "ops-2_b", "operator-ops-2_b"},
		{"longest", strings.Repeat("a", 55), "operator-" + strings.Repeat("a", 55)},
		{"too long", strings.Repeat("a", 56), ""},
		{"upper case", "Ana", ""},
		{"leading dash", "-ana", ""},
		{"space", "ana perez", ""},
		{"non-ASCII", "añа", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cn, err := identity.OperatorCommonName(tt.in)
			if tt.want == "" {
				assert.ErrorContains(t, err, "operator name")
				return
			}
			require.NoError(t, err)
			assert.Equal(t, tt.want, cn)
			got, err := identity.OperatorOf(parsed(t, pkix.Name{CommonName: cn}, x509.ExtKeyUsageClientAuth))
			require.NoError(t, err)
			assert.Equal(t, cn, got, "OperatorOf inverts OperatorCommonName")
		})
	}
}

func TestOperatorOf(t *testing.T) {
	client := []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}
	tests := []struct {
		name    string
		subject pkix.Name
		usages  []x509.ExtKeyUsage
		want    string // "": names no operator
		agency  bool   // the error is ErrAgencyNotOperator
		errText string
	}{
		{"operator", pkix.Name{CommonName: "operator"}, client, "operator", false, ""},
		{"named operator", pkix.Name{CommonName: "operator-ana"}, client, "operator-ana", false, ""},
		{"agency", pkix.Name{CommonName: "agency-3"}, client, "", true, `"agency-3" names agency 3`},
		{"central", pkix.Name{CommonName: identity.CentralName}, client, "", false, "is not operator or operator-<name>"},
		{"empty name", pkix.Name{CommonName: "operator-"}, client, "", false, "is not operator"},
		{"upper case", pkix.Name{CommonName: "Operator"}, client, "", false, "is not operator"},
		{"prefix only", pkix.Name{CommonName: "operators"}, client, "", false, "is not operator"},
		{"trailing space", pkix.Name{CommonName: "operator "}, client, "", false, "is not operator"},
		{"two common names", pkix.Name{ExtraNames: []pkix.AttributeTypeAndValue{
			{Type: oidCN, Value: "operator"}, {Type: oidCN, Value: "operator-ana"}}}, client, "", false, "2 common names"},
		{"server auth only", pkix.Name{CommonName: "operator"}, []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}, "", false, "no client-auth"},
		{"no extended key usage", pkix.Name{CommonName: "operator"}, nil, "", false, "no client-auth"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := identity.OperatorOf(parsed(t, tt.subject, tt.usages...))
			if tt.want != "" {
				require.NoError(t, err)
				assert.Equal(t, tt.want, got)
				return
			}
			require.ErrorIs(t, err, identity.ErrNoOperator)
			assert.Equal(t, tt.agency, errors.Is(err, identity.ErrAgencyNotOperator))
			assert.ErrorContains(t, err, tt.errText)
			_, err = identity.AgencyOf(parsed(t, tt.subject, tt.usages...))
			if !tt.agency {
				assert.ErrorIs(t, err, identity.ErrNoAgency, "an operator's name is no agency's")
			}
		})
	}
	t.Run("nil certificate", func(t *testing.T) {
		_, err := identity.OperatorOf(nil)
		assert.ErrorIs(t, err, identity.ErrNoOperator)
	})
}

// TestVerifyOperator runs real handshakes against the admin address's TLS
// side (AdminConfig): each completes, whatever certificate the client brings,
// and VerifyOperator then tells an operator from everyone else.
func TestVerifyOperator(t *testing.T) {
	f := newFiles(t)
	agencies := serverConfig(t, f.central, f.centralKey, f.ca)
	admin := identity.AdminConfig(agencies)
	assert.Equal(t, tls.RequestClientCert, admin.ClientAuth)
	assert.Nil(t, admin.VerifyConnection)
	assert.Equal(t, tls.RequireAndVerifyClientCert, agencies.ClientAuth, "the agencies' configuration is left alone")
	assert.NotNil(t, agencies.VerifyConnection)

	tests := []struct {
		name      string
		cert, key string // "": no certificate
		want      string // the operator; "" when refused
		reason    string // DescribeOperatorError
		errText   string
	}{
		{"operator", f.operator, f.operatorKey, "operator", "", ""},
		{"no certificate", "", "", "", identity.ReasonNoCertificate, "no verified peer certificate"},
		{"agency", f.agency3, f.agency3Key, "", identity.ReasonAgencyCertificate, "names agency 3"},
		{"central", f.central, f.centralKey, "", identity.ReasonNotOperator, `common name "central" is not operator`},
		{"operator of another CA", f.foreignOp, f.foreignOpKey, "", identity.ReasonUnknownAuthority, "unknown authority"},
		{"expired operator", f.expiredOp, f.expiredOpKey, "", identity.ReasonExpired, "expired"},
		{"no client-auth usage", f.serverOnly3, f.serverOnly3Key, "", identity.ReasonInvalidCertificate, "incompatible key usage"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			state := adminHandshake(t, admin, tt.cert, tt.key, f.ca)
			got, err := identity.VerifyOperator(state, admin.ClientCAs)
			if tt.want != "" {
				require.NoError(t, err)
				assert.Equal(t, tt.want, got)
				return
			}
			require.ErrorContains(t, err, tt.errText)
			assert.Equal(t, tt.reason, identity.DescribeOperatorError(err))
		})
	}
}

// adminHandshake completes a handshake on loopback with server, the client
// presenting cert (none when ""), sent whatever CAs the server names, and
// returns what the server saw.
func adminHandshake(t *testing.T, server *tls.Config, cert, key, ca string) tls.ConnectionState {
	t.Helper()
	addr, done := serve(t, func(conn net.Conn) serverSide {
		tc := tls.Server(conn, server)
		ctx, cancel := context.WithTimeout(context.Background(), ioTimeout)
		defer cancel()
		err := tc.HandshakeContext(ctx)
		if err == nil {
			_, err = tc.Write([]byte{1}) // the client's read ends the handshake on its side
		}
		return serverSide{handshakeErr: err, state: tc.ConnectionState()}
	})
	pem, err := os.ReadFile(ca)
	require.NoError(t, err)
	roots := x509.NewCertPool()
	require.True(t, roots.AppendCertsFromPEM(pem))
	cfg := &tls.Config{MinVersion: tls.VersionTLS13, ServerName: "localhost", RootCAs: roots}
	if cert != "" {
		pair, err := tls.LoadX509KeyPair(cert, key)
		require.NoError(t, err)
		cfg.GetClientCertificate = func(*tls.CertificateRequestInfo) (*tls.Certificate, error) { return &pair, nil }
	}
	conn, err := tls.DialWithDialer(&net.Dialer{Timeout: ioTimeout}, "tcp", addr, cfg)
	require.NoError(t, err)
	defer conn.Close()
	require.NoError(t, conn.SetDeadline(time.Now().Add(ioTimeout)))
	_, err = conn.Read(make([]byte, 1))
	require.NoError(t, err)
	s := <-done
	require.NoError(t, s.handshakeErr)
	return s.state
}
