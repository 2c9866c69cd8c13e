package identity_test

import (
	"context"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"errors"
	"io"
	"math/big"
	"net"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"lotterycentral.example/protocol"
	"lotterycentral.example/protocol/identity"
	"lotterycentral.example/protocol/pki"
)

// ioTimeout bounds every read, write and handshake of these tests, so a bug
// fails a test instead of hanging it.
const ioTimeout = 10 * time.Second

// files is a set of certificates written to disk, as the central and the
// agencies would load them.
type files struct {
	dir                         string
	ca, otherCA                 string // CA certificates
	central, centralKey         string
	expiredCentral, expiredKey  string
	otherCentral, otherCentKey  string // the central, signed by the other CA
	agency3, agency3Key         string
	expired3, expired3Key       string
	foreign3, foreign3Key       string // agency 3, signed by the other CA
	serverOnly3, serverOnly3Key string // "agency-3" without the client-auth usage
	operator, operatorKey       string // "operator"
	expiredOp, expiredOpKey     string // "operator", expired
	foreignOp, foreignOpKey     string // "operator", signed by the other CA
}

func writeCert(t *testing.T, dir, name string, c *pki.Cert) (string, string) {
	t.Helper()
	certPath, keyPath := filepath.Join(dir, name+".pem"), filepath.Join(dir, name+"-key.pem")
	require.NoError(t, c.WriteFiles(certPath, keyPath))
	return certPath, keyPath
}

func newFiles(t *testing.T) files {
	t.Helper()
	dir := t.TempDir()
	past, longAgo := time.Now().Add(-24*time.Hour), time.Now().Add(-48*time.Hour)
	ca, err := pki.NewCA("test CA", time.Time{}, time.Time{})
	require.NoError(t, err)
	other, err := pki.NewCA("other CA", time.Time{}, time.Time{})
	require.NoError(t, err)
	f := files{dir: dir}
	f.ca, _ = writeCert(t, dir, "ca", &ca.Cert)
	f.otherCA, _ = writeCert(t, dir, "other-ca", &other.Cert)

	issue := func(c *pki.Cert, err error) *pki.Cert {
		t.Helper()
		require.NoError(t, err)
		return c
	}
	f.central, f.centralKey = writeCert(t, dir, "central", issue(ca.IssueCentral(nil, time.Time{}, time.Time{})))
	f.expiredCentral, f.expiredKey = writeCert(t, dir, "central-expired", issue(ca.IssueCentral(nil, longAgo, past)))
	f.otherCentral, f.otherCentKey = writeCert(t, dir, "central-other", issue(other.IssueCentral(nil, time.Time{}, time.Time{})))
	f.agency3, f.agency3Key = writeCert(t, dir, "agency-3", issue(ca.IssueAgency(3, time.Time{}, time.Time{})))
	f.expired3, f.expired3Key = writeCert(t, dir, "agency-3-expired", issue(ca.IssueAgency(3, longAgo, past)))
	f.foreign3, f.foreign3Key = writeCert(t, dir, "agency-3-foreign", issue(other.IssueAgency(3, time.Time{}, time.Time{})))
	f.serverOnly3, f.serverOnly3Key = writeCert(t, dir, "agency-3-server-only", serverOnlyCert(t, ca, "agency-3"))
	f.operator, f.operatorKey = writeCert(t, dir, "operator", issue(ca.IssueOperator("", time.Time{}, time.Time{})))
	f.expiredOp, f.expiredOpKey = writeCert(t, dir, "operator-expired", issue(ca.IssueOperator("", longAgo, past)))
	f.foreignOp, f.foreignOpKey = writeCert(t, dir, "operator-foreign", issue(other.IssueOperator("", time.Time{}, time.Time{})))
	return f
}

// serverOnlyCert is signed by ca but carries only the server-auth usage: pki
// never makes one, an attacker's mistake or a misconfigured CA could.
func serverOnlyCert(t *testing.T, ca *pki.CA, cn string) *pki.Cert {
	t.Helper()
	other, err := pki.NewCA("key source", time.Time{}, time.Time{}) // only for a fresh key
	require.NoError(t, err)
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(42),
		Subject:      pkix.Name{CommonName: cn},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(time.Hour),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.Cert.Cert, &other.Key.PublicKey, ca.Key)
	require.NoError(t, err)
	cert, err := x509.ParseCertificate(der)
	require.NoError(t, err)
	return &pki.Cert{Cert: cert, Key: other.Key}
}

// serverSide is what the central saw of one connection.
type serverSide struct {
	handshakeErr error
	agency       int
	agencyErr    error
	answered     bool // it read a PING and answered PONG
	refused      bool // RefusePlaintext answered a plaintext peer
	state        tls.ConnectionState
}

// serveTLS accepts one connection on 127.0.0.1, does the TLS handshake as the
// central does, and answers one PING with PONG.
func serveTLS(t *testing.T, cfg *tls.Config) (string, <-chan serverSide) {
	t.Helper()
	return serve(t, func(conn net.Conn) serverSide {
		var s serverSide
		tc := tls.Server(conn, cfg)
		ctx, cancel := context.WithTimeout(context.Background(), ioTimeout)
		defer cancel()
		if s.handshakeErr = tc.HandshakeContext(ctx); s.handshakeErr != nil {
			s.refused = identity.RefusePlaintext(s.handshakeErr, ioTimeout)
			return s
		}
		s.agency, s.agencyErr = identity.ConnAgency(tc.ConnectionState())
		if m, err := protocol.ReadMessage(tc, protocol.MaxClientFrame); err == nil {
			if _, ok := m.(*protocol.Ping); ok {
				s.answered = protocol.WriteMessage(tc, protocol.Pong{}) == nil
			}
		}
		return s
	})
}

// servePlaintext accepts one connection and acts as a plaintext central does
// with a ClientHello: its first 5 bytes announce a frame over the limit, so it
// answers ERROR frame_too_large and closes. With silent, it closes without a word.
func servePlaintext(t *testing.T, silent bool) string {
	t.Helper()
	addr, _ := serve(t, func(conn net.Conn) serverSide {
		if silent {
			return serverSide{}
		}
		_, err := protocol.ReadFrame(conn, protocol.MaxClientFrame, nil)
		if errors.Is(err, protocol.ErrFrameTooLarge) {
			_ = protocol.WriteMessage(conn, protocol.ErrorMessage{Code: protocol.CodeFrameTooLarge, Text: "frame too large"})
		}
		return serverSide{handshakeErr: err}
	})
	return addr
}

func serve(t *testing.T, handle func(net.Conn) serverSide) (string, <-chan serverSide) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	t.Cleanup(func() { _ = ln.Close() })
	done := make(chan serverSide, 1)
	go func() {
		conn, err := ln.Accept()
		if err != nil {
			done <- serverSide{handshakeErr: err}
			return
		}
		defer conn.Close()
		_ = conn.SetDeadline(time.Now().Add(ioTimeout))
		done <- handle(conn)
	}()
	return ln.Addr().String(), done
}

// clientSide is what the agency saw: the handshake's error, then the error of
// its first exchange (PING, then PONG expected).
type clientSide struct {
	handshakeErr error
	exchangeErr  error
}

// err is the first error the agency met.
func (c clientSide) err() error {
	if c.handshakeErr != nil {
		return c.handshakeErr
	}
	return c.exchangeErr
}

func dialTLS(t *testing.T, addr string, cfg *tls.Config) clientSide {
	t.Helper()
	raw, err := net.DialTimeout("tcp", addr, ioTimeout)
	require.NoError(t, err)
	defer raw.Close()
	require.NoError(t, raw.SetDeadline(time.Now().Add(ioTimeout)))
	conn := tls.Client(raw, cfg)
	var c clientSide
	if c.handshakeErr = conn.Handshake(); c.handshakeErr != nil {
		return c
	}
	if err := protocol.WriteMessage(conn, protocol.Ping{}); err != nil {
		c.exchangeErr = err
		return c
	}
	m, err := protocol.ReadMessage(conn, protocol.MaxServerFrame)
	if err == nil {
		if _, ok := m.(*protocol.Pong); !ok {
			err = errors.New("answer is not PONG")
		}
	}
	c.exchangeErr = err
	return c
}

func clientConfig(t *testing.T, cert, key, ca, serverName string) *tls.Config {
	t.Helper()
	cfg, err := identity.ClientConfig(cert, key, ca, serverName)
	require.NoError(t, err)
	return cfg
}

func serverConfig(t *testing.T, cert, key, ca string) *tls.Config {
	t.Helper()
	cfg, err := identity.ServerConfig(cert, key, ca)
	require.NoError(t, err)
	return cfg
}

// TestHandshakeMatrix runs real mutual-TLS handshakes over loopback and checks
// what each side sees and how DescribeHandshakeError (the agency's view) and
// DescribeServerHandshakeError (the central's) classify it.
func TestHandshakeMatrix(t *testing.T) {
	f := newFiles(t)
	good := func(t *testing.T) *tls.Config { return serverConfig(t, f.central, f.centralKey, f.ca) }

	tests := []struct {
		name   string
		server func(t *testing.T) *tls.Config
		client func(t *testing.T) *tls.Config
		// What the agency sees: in TLS 1.3 a refusal of its own certificate
		// arrives after its Handshake returned, on its first read.
		clientHandshakeFails bool
		clientErr            string // substring of the agency's first error; "" for none
		clientReason         string // DescribeHandshakeError; "" for ok false
		serverErr            string // substring of the central's handshake error; "" for none
		serverReason         string // DescribeServerHandshakeError
		agency               int    // ConnAgency after a successful handshake
		noAgency             bool   // ConnAgency says ErrNoAgency
	}{
		{
			name:   "good certificate",
			server: good,
			client: func(t *testing.T) *tls.Config { return clientConfig(t, f.agency3, f.agency3Key, f.ca, "localhost") },
			agency: 3,
		},
		{
			name:   "central certificate as a client (health probe)",
			server: good,
			client: func(t *testing.T) *tls.Config {
				return clientConfig(t, f.central, f.centralKey, f.ca, "server")
			},
			noAgency: true,
		},
		{
			name:   "no client certificate",
			server: good,
			client: func(t *testing.T) *tls.Config {
				cfg := clientConfig(t, f.agency3, f.agency3Key, f.ca, "localhost")
				cfg.Certificates = nil
				return cfg
			},
			clientErr:    "remote error: tls: certificate required",
			clientReason: identity.ReasonRefusedByCentral,
			serverErr:    "tls: client didn't provide a certificate",
			serverReason: identity.ReasonNoCertificate,
		},
		{
			// The central's CertificateRequest lists the CA names it accepts; a
			// Go client whose certificate's issuer is not among them sends none.
			name:         "client certificate from another CA, differently named",
			server:       good,
			client:       func(t *testing.T) *tls.Config { return clientConfig(t, f.foreign3, f.foreign3Key, f.ca, "localhost") },
			clientErr:    "remote error: tls: certificate required",
			clientReason: identity.ReasonRefusedByCentral,
			serverErr:    "tls: client didn't provide a certificate",
			serverReason: identity.ReasonNoCertificate,
		},
		{
			// What a client that sends its certificate anyway (or one whose CA
			// has the same name as ours) meets.
			name:   "client certificate from another CA, sent anyway",
			server: good,
			client: func(t *testing.T) *tls.Config {
				cfg := clientConfig(t, f.foreign3, f.foreign3Key, f.ca, "localhost")
				cert := cfg.Certificates[0]
				cfg.Certificates = nil
				cfg.GetClientCertificate = func(*tls.CertificateRequestInfo) (*tls.Certificate, error) { return &cert, nil }
				return cfg
			},
			clientErr:    "remote error: tls: unknown certificate authority",
			clientReason: identity.ReasonRefusedByCentral,
			serverErr:    "certificate signed by unknown authority",
			serverReason: identity.ReasonUnknownAuthority,
		},
		{
			name:         "expired client certificate",
			server:       good,
			client:       func(t *testing.T) *tls.Config { return clientConfig(t, f.expired3, f.expired3Key, f.ca, "localhost") },
			clientErr:    "remote error: tls: expired certificate",
			clientReason: identity.ReasonExpired,
			serverErr:    "certificate has expired or is not yet valid",
			serverReason: identity.ReasonExpired,
		},
		{
			name:   "client certificate without client auth",
			server: good,
			client: func(t *testing.T) *tls.Config {
				return clientConfig(t, f.serverOnly3, f.serverOnly3Key, f.ca, "localhost")
			},
			clientErr:    "remote error: tls: bad certificate",
			clientReason: identity.ReasonRefusedByCentral,
			serverErr:    "certificate specifies an incompatible key usage",
			serverReason: identity.ReasonInvalidCertificate,
		},
		{
			name:                 "expired server certificate",
			server:               func(t *testing.T) *tls.Config { return serverConfig(t, f.expiredCentral, f.expiredKey, f.ca) },
			client:               func(t *testing.T) *tls.Config { return clientConfig(t, f.agency3, f.agency3Key, f.ca, "localhost") },
			clientHandshakeFails: true,
			clientErr:            "certificate has expired or is not yet valid",
			clientReason:         identity.ReasonExpired,
			serverErr:            "remote error: tls: bad certificate",
			serverReason:         identity.ReasonRefusedByAgency,
		},
		{
			name:                 "server certificate from another CA",
			server:               func(t *testing.T) *tls.Config { return serverConfig(t, f.otherCentral, f.otherCentKey, f.ca) },
			client:               func(t *testing.T) *tls.Config { return clientConfig(t, f.agency3, f.agency3Key, f.ca, "localhost") },
			clientHandshakeFails: true,
			clientErr:            "certificate signed by unknown authority",
			clientReason:         identity.ReasonUnknownAuthority,
			serverErr:            "remote error: tls: bad certificate",
			serverReason:         identity.ReasonRefusedByAgency,
		},
		{
			name:                 "server presents an agency's certificate",
			server:               func(t *testing.T) *tls.Config { return serverConfig(t, f.agency3, f.agency3Key, f.ca) },
			client:               func(t *testing.T) *tls.Config { return clientConfig(t, f.agency3, f.agency3Key, f.ca, "localhost") },
			clientHandshakeFails: true,
			clientErr:            "certificate is not valid for any names", // checked before the usage
			clientReason:         identity.ReasonNameMismatch,
			serverErr:            "remote error: tls: bad certificate",
			serverReason:         identity.ReasonRefusedByAgency,
		},
		{
			// The agencies' port refuses an operator at the handshake, before
			// any frame: not even PING.
			name:         "operator's certificate on the agencies' port",
			server:       good,
			client:       func(t *testing.T) *tls.Config { return clientConfig(t, f.operator, f.operatorKey, f.ca, "localhost") },
			clientErr:    "remote error: tls: bad certificate",
			clientReason: identity.ReasonRefusedByCentral,
			serverErr:    `certificate "operator": an operator's certificate is refused on the agencies' port`,
			serverReason: identity.ReasonOperatorCertificate,
		},
		{
			name:   "wrong server name",
			server: good,
			client: func(t *testing.T) *tls.Config {
				return clientConfig(t, f.agency3, f.agency3Key, f.ca, "central.example")
			},
			clientHandshakeFails: true,
			clientErr:            "certificate is valid for server, localhost, not central.example",
			clientReason:         identity.ReasonNameMismatch,
			serverErr:            "remote error: tls: bad certificate",
			serverReason:         identity.ReasonRefusedByAgency,
		},
		{
			name:   "agency limited to TLS 1.2",
			server: good,
			client: func(t *testing.T) *tls.Config {
				cfg := clientConfig(t, f.agency3, f.agency3Key, f.ca, "localhost")
				cfg.MinVersion, cfg.MaxVersion = tls.VersionTLS12, tls.VersionTLS12
				return cfg
			},
			clientHandshakeFails: true,
			clientErr:            "remote error: tls: protocol version not supported",
			clientReason:         identity.ReasonHandshakeFailed,
			serverErr:            "client offered only unsupported versions",
			serverReason:         "", // a plain error in crypto/tls: not classified
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			addr, served := serveTLS(t, tt.server(t))
			c := dialTLS(t, addr, tt.client(t))
			s := <-served
			t.Logf("agency: handshake: %v; exchange: %v", c.handshakeErr, c.exchangeErr)
			t.Logf("central: handshake: %v", s.handshakeErr)

			if tt.clientErr == "" {
				require.NoError(t, c.err())
				require.NoError(t, s.handshakeErr)
				assert.True(t, s.answered, "the central answered PING")
				if tt.noAgency {
					assert.ErrorIs(t, s.agencyErr, identity.ErrNoAgency)
				} else {
					require.NoError(t, s.agencyErr)
					assert.Equal(t, tt.agency, s.agency)
				}
				return
			}
			if tt.clientHandshakeFails {
				require.Error(t, c.handshakeErr)
			} else {
				require.NoError(t, c.handshakeErr, "TLS 1.3: the agency's handshake ends before the central checks its certificate")
			}
			require.ErrorContains(t, c.err(), tt.clientErr)
			reason, ok := identity.DescribeHandshakeError(c.err())
			assert.True(t, ok, "a handshake failure")
			assert.Equal(t, tt.clientReason, reason)

			require.ErrorContains(t, s.handshakeErr, tt.serverErr)
			reason, ok = identity.DescribeServerHandshakeError(s.handshakeErr)
			assert.Equal(t, tt.serverReason != "", ok)
			assert.Equal(t, tt.serverReason, reason)
			assert.False(t, s.answered)
		})
	}
}

// TestPlaintextPeers: an agency speaking TLS to a plaintext central, and a
// plaintext agency (or probe) speaking to a TLS central.
func TestPlaintextPeers(t *testing.T) {
	f := newFiles(t)
	agencyConfig := clientConfig(t, f.agency3, f.agency3Key, f.ca, "localhost")

	t.Run("TLS agency, plaintext central", func(t *testing.T) {
		c := dialTLS(t, servePlaintext(t, false), agencyConfig)
		t.Logf("agency: handshake: %v", c.handshakeErr)
		var rhe tls.RecordHeaderError
		require.ErrorAs(t, c.handshakeErr, &rhe)
		assert.Equal(t, byte(protocol.MsgError), rhe.RecordHeader[0], "the central's answer is an ERROR frame")
		reason, ok := identity.DescribeHandshakeError(c.handshakeErr)
		assert.True(t, ok)
		assert.Equal(t, identity.ReasonNotTLS, reason)
	})
	t.Run("TLS agency, peer that closes without a word", func(t *testing.T) {
		c := dialTLS(t, servePlaintext(t, true), agencyConfig)
		t.Logf("agency: handshake: %v", c.handshakeErr)
		// EOF, or a reset when the ClientHello was still unread as it closed.
		require.True(t, errors.Is(c.handshakeErr, io.EOF) || errors.Is(c.handshakeErr, syscall.ECONNRESET),
			"EOF or reset, got %v", c.handshakeErr)
		_, ok := identity.DescribeHandshakeError(c.handshakeErr)
		assert.False(t, ok, "it may be a restarting central: retried")
	})

	for _, tt := range []struct {
		name  string
		first protocol.Message
	}{
		{"plaintext agency, TLS central", protocol.Hello{Version: protocol.Version, Agency: 3}},
		{"plaintext probe, TLS central", protocol.Ping{}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			addr, served := serveTLS(t, serverConfig(t, f.central, f.centralKey, f.ca))
			conn, err := net.DialTimeout("tcp", addr, ioTimeout)
			require.NoError(t, err)
			defer conn.Close()
			require.NoError(t, conn.SetDeadline(time.Now().Add(ioTimeout)))
			require.NoError(t, protocol.WriteMessage(conn, tt.first))
			m, err := protocol.ReadMessage(conn, protocol.MaxServerFrame)
			require.NoError(t, err, "the plaintext peer reads a frame it understands")
			require.IsType(t, &protocol.ErrorMessage{}, m)
			assert.Equal(t, protocol.CodeUnauthorized, m.(*protocol.ErrorMessage).Code)
			assert.Contains(t, m.(*protocol.ErrorMessage).Text, "requires TLS")

			s := <-served
			t.Logf("central: handshake: %v", s.handshakeErr)
			assert.True(t, s.refused)
			reason, ok := identity.DescribeServerHandshakeError(s.handshakeErr)
			assert.True(t, ok)
			assert.Equal(t, identity.ReasonNotTLS, reason)
		})
	}
}

// TestNetworkErrorsAreNotHandshakeFailures: the agency retries these.
func TestNetworkErrorsAreNotHandshakeFailures(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	addr := ln.Addr().String()
	require.NoError(t, ln.Close())
	_, refused := net.DialTimeout("tcp", addr, ioTimeout)
	require.Error(t, refused)

	tests := []struct {
		name string
		err  error
	}{
		{"nil", nil},
		{"connection refused", refused},
		{"EOF", io.EOF},
		{"unexpected EOF", io.ErrUnexpectedEOF},
		{"reset", &net.OpError{Op: "read", Net: "tcp", Err: syscall.ECONNRESET}},
		{"timeout", &net.OpError{Op: "read", Net: "tcp", Err: errTimeout{}}},
		{"other remote error text", &net.OpError{Op: "remote error", Err: errors.New("not an alert")}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			reason, ok := identity.DescribeHandshakeError(tt.err)
			assert.False(t, ok)
			assert.Empty(t, reason)
			_, ok = identity.DescribeServerHandshakeError(tt.err)
			assert.False(t, ok)
		})
	}
}

type errTimeout struct{}

func (errTimeout) Error() string   { return "i/o timeout" }
func (errTimeout) Timeout() bool   { return true }
func (errTimeout) Temporary() bool { return true }

// TestRefusePlaintextLeavesOtherErrors: only a plaintext frame header is answered.
func TestRefusePlaintextLeavesOtherErrors(t *testing.T) {
	tests := []struct {
		name string
		err  error
	}{
		{"nil", nil},
		{"EOF", io.EOF},
		{"record header without a connection", tls.RecordHeaderError{RecordHeader: [5]byte{1, 0, 0, 0, 5}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			assert.False(t, identity.RefusePlaintext(tt.err, time.Second))
		})
	}
}

// TestRefusalSurvivesReset: the central refuses the agency's certificate after
// the agency's handshake returned (TLS 1.3), then closes. The agency's next
// writes fail once the central's kernel answers them with a reset, yet the
// alert is still waiting to be read and says why: an agency whose HELLO write
// fails should read once before treating the failure as a network error.
func TestRefusalSurvivesReset(t *testing.T) {
	f := newFiles(t)
	tests := []struct {
		name      string
		cert, key string
		reason    string
	}{
		{"expired client certificate", f.expired3, f.expired3Key, identity.ReasonExpired},
		{"client certificate without client auth", f.serverOnly3, f.serverOnly3Key, identity.ReasonRefusedByCentral},
	}
	central := serverConfig(t, f.central, f.centralKey, f.ca)
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			addr, served := serve(t, func(conn net.Conn) serverSide {
				return serverSide{handshakeErr: tls.Server(conn, central).Handshake()}
			})
			raw, err := net.DialTimeout("tcp", addr, ioTimeout)
			require.NoError(t, err)
			defer raw.Close()
			require.NoError(t, raw.SetDeadline(time.Now().Add(ioTimeout)))
			conn := tls.Client(raw, clientConfig(t, tt.cert, tt.key, f.ca, "localhost"))
			require.NoError(t, conn.Handshake())
			require.Error(t, (<-served).handshakeErr, "the central refused and closed")

			var writeErr error
			for i := 0; i < 10000 && writeErr == nil; i++ {
				writeErr = protocol.WriteMessage(conn, protocol.Ping{})
			}
			require.Error(t, writeErr, "writes fail once the reset arrives")
			t.Logf("agency: write: %v", writeErr)
			_, ok := identity.DescribeHandshakeError(writeErr)
			assert.False(t, ok, "the write error alone looks like a network error")

			_, readErr := protocol.ReadMessage(conn, protocol.MaxServerFrame)
			t.Logf("agency: read: %v", readErr)
			reason, ok := identity.DescribeHandshakeError(readErr)
			assert.True(t, ok)
			assert.Equal(t, tt.reason, reason)
		})
	}
}
