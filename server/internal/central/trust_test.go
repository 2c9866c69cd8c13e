package central

import (
	"crypto/tls"
	"errors"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"lotterycentral.example/client/agency"
	"lotterycentral.example/lottery/logfmt"
	"lotterycentral.example/lottery/logfmt/logfmttest"
	"lotterycentral.example/protocol"
	"lotterycentral.example/protocol/identity"
	"lotterycentral.example/server/internal/config"
	"lotterycentral.example/server/internal/vocab"
)

// impostor runs the real client as agency 3 with cfg changed by change, and
// requires that it fails without reporting any winner.
func impostor(t *testing.T, e *trustEnv, change func(*agency.Config)) error {
	t.Helper()
	cfg := e.agencyConfig(victim)
	change(&cfg)
	r := await(t, runAgency(t.Context(), cfg))
	require.Error(t, r.err, "the central served a peer it must refuse")
	assert.Nil(t, r.docs)
	return r.err
}

// requireAuthError: the client failed with *agency.AuthError for reason.
func requireAuthError(t *testing.T, err error, reason string) {
	t.Helper()
	var ae *agency.AuthError
	require.ErrorAs(t, err, &ae)
	assert.Equal(t, reason, ae.Reason, "%v", err)
}

// requireRemote: the central refused with ERROR code.
func requireRemote(t *testing.T, err error, code protocol.Code) {
	t.Helper()
	var re *protocol.RemoteError
	require.ErrorAs(t, err, &re)
	assert.Equal(t, code, re.Code, "%v", err)
	var ae *agency.AuthError
	assert.False(t, errors.As(err, &ae), "a refusal in the protocol is not a TLS failure: %v", err)
}

// The Proof of issue 12, one named case each: a peer that cannot prove it is
// the agency it claims — or a central that cannot prove it is the central —
// ends with a clear error on both sides, while five honest agencies stream
// alongside; the central goes on serving them and the draw's result is
// unchanged: every agency gets exactly its winners, one draw, and the bets
// file holds exactly the agencies' files.
func TestTrustRefusals(t *testing.T) {
	tests := []struct {
		name       string
		centralTLS bool
		peer       func(t *testing.T, e *trustEnv)
	}{
		{"no client certificate", true, func(t *testing.T, e *trustEnv) {
			// The client's side of a TLS 1.3 handshake ends before the central
			// checks the client's certificate: the refusal comes on the first read.
			c, err := e.dial(t, nil)
			require.NoError(t, err)
			_, err = c.tryHello(victim)
			reason, ok := identity.DescribeHandshakeError(err)
			require.True(t, ok, "want a TLS refusal, got %v", err)
			assert.Equal(t, identity.ReasonRefusedByCentral, reason)
			assert.ErrorContains(t, err, "certificate required")
			e.tc.logs.AwaitT(t, 1, vocab.TLSHandshake.Line(logfmt.Fail), remote(c), vocab.Motivo.Str("no_certificate").String()+" |")
		}},
		{"a certificate from another CA", true, func(t *testing.T, e *trustEnv) {
			err := impostor(t, e, func(cfg *agency.Config) { e.withTLS(cfg, e.pki.foreign3) })
			requireAuthError(t, err, identity.ReasonRefusedByCentral)
			// The central's CertificateRequest names the CA it accepts, and
			// crypto/tls's client withholds a certificate from another CA: the
			// central sees none. (An attacker that sends it anyway is refused
			// as unknown_authority: TestAttacks.)
			e.tc.logs.AwaitT(t, 1, vocab.TLSHandshake.Line(logfmt.Fail), vocab.Motivo.Str("no_certificate").String()+" |")
		}},
		{"agency 2's certificate saying HELLO 3", true, func(t *testing.T, e *trustEnv) {
			err := impostor(t, e, func(cfg *agency.Config) { e.withTLS(cfg, e.pki.agencies[2]) })
			requireRemote(t, err, protocol.CodeUnauthorized)
			e.tc.logs.AwaitT(t, 1, vocab.Autorizacion.Line(logfmt.Fail), logfmttest.Fields(vocab.AgenciaCertificado.Str("agency-2"), vocab.AgenciaDeclarada.Int(3)))
			e.tc.logs.AwaitT(t, 1, vocab.Protocolo.Line(logfmt.Fail), vocab.Motivo.Str("unauthorized").String()+" |")
		}},
		{"an expired certificate", true, func(t *testing.T, e *trustEnv) {
			err := impostor(t, e, func(cfg *agency.Config) { e.withTLS(cfg, e.pki.expired3) })
			requireAuthError(t, err, identity.ReasonExpired)
			e.tc.logs.AwaitT(t, 1, vocab.TLSHandshake.Line(logfmt.Fail), vocab.Motivo.Str("expired").String()+" |", "has expired")
		}},
		{"a plaintext agency against a TLS central", true, func(t *testing.T, e *trustEnv) {
			err := impostor(t, e, func(cfg *agency.Config) { cfg.TLSCert, cfg.TLSKey, cfg.TLSCA = "", "", "" })
			requireRemote(t, err, protocol.CodeUnauthorized) // told in its own framing
			e.tc.logs.AwaitT(t, 1, vocab.TLSHandshake.Line(logfmt.Fail), vocab.Motivo.Str("not_tls").String()+" |")
		}},
		{"a TLS agency against a plaintext central", false, func(t *testing.T, e *trustEnv) {
			err := impostor(t, e, func(cfg *agency.Config) { e.withTLS(cfg, e.pki.agencies[victim]) })
			requireAuthError(t, err, identity.ReasonNotTLS)
			e.tc.logs.AwaitT(t, 1, vocab.Protocolo.Line(logfmt.Fail), vocab.Motivo.Str("frame_too_large").String()+" |")
		}},
		// The agency's side of trust: it sends nothing to a central it cannot verify.
		{"an agency that does not trust the central's CA", true, func(t *testing.T, e *trustEnv) {
			err := impostor(t, e, func(cfg *agency.Config) { cfg.TLSCA = e.pki.otherCA })
			requireAuthError(t, err, identity.ReasonUnknownAuthority)
			e.tc.logs.AwaitT(t, 1, vocab.TLSHandshake.Line(logfmt.Fail), vocab.Motivo.Str("refused_by_agency").String()+" |")
		}},
		{"a central certificate for another name", true, func(t *testing.T, e *trustEnv) {
			err := impostor(t, e, func(cfg *agency.Config) { cfg.TLSServerName = "central.example" })
			requireAuthError(t, err, identity.ReasonNameMismatch)
			e.tc.logs.AwaitT(t, 1, vocab.TLSHandshake.Line(logfmt.Fail), vocab.Motivo.Str("refused_by_agency").String()+" |")
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			e := newTrustEnv(t, tt.centralTLS, nil)
			e.startHonest(t, 1, 2, 3, 4, 5)
			tt.peer(t, e)
			assert.Zero(t, e.tc.logs.Count(logfmttest.AnyLine(vocab.Sorteo)), "the draw ran before the latch finished")
			e.assertExact(t, e.draw(t))
		})
	}
}

// A TLS central cuts a peer that does not complete the handshake and then
// HELLO within HelloTimeout, and serves everybody else meanwhile: the honest
// agencies all identify before the silent peer is cut. Not parallel: the
// order it checks would be at the mercy of other tests' load.
func TestTrustHelloTimeout(t *testing.T) {
	const helloTimeout = 600 * time.Millisecond
	tests := []struct {
		name string
		open func(t *testing.T, e *trustEnv) *rawConn
		cut  func(t *testing.T, e *trustEnv, c *rawConn) // asserts both sides of the cut
	}{
		{"silent TCP socket, no ClientHello", func(t *testing.T, e *trustEnv) *rawConn {
			c, err := dialPeer(t, e.tc.addr, nil, nil)
			require.NoError(t, err)
			return c
		}, func(t *testing.T, e *trustEnv, c *rawConn) {
			c.expectClosed() // under TLS nothing is written to a peer that never said hello
			e.tc.logs.AwaitT(t, 1, vocab.TLSHandshake.Line(logfmt.Fail), remote(c), vocab.Motivo.Str("network").String()+" |", "i/o timeout")
		}},
		{"handshake with agency 3's certificate, then silence", func(t *testing.T, e *trustEnv) *rawConn {
			c, err := e.dial(t, e.pki.agencies[victim].Cert)
			require.NoError(t, err)
			return c
		}, func(t *testing.T, e *trustEnv, c *rawConn) {
			c.expectError(protocol.CodeIdleTimeout)
			e.tc.logs.AwaitT(t, 1, vocab.Protocolo.Line(logfmt.Fail), remote(c), vocab.Motivo.Str("idle_timeout").String()+" |")
		}},
		{"handshake, then half a HELLO", func(t *testing.T, e *trustEnv) *rawConn {
			c, err := e.dial(t, e.pki.agencies[victim].Cert)
			require.NoError(t, err)
			frame, err := protocol.AppendMessage(nil, protocol.Hello{Version: protocol.Version, Agency: victim})
			require.NoError(t, err)
			_, err = c.conn.Write(frame[:3])
			require.NoError(t, err)
			return c
		}, func(t *testing.T, e *trustEnv, c *rawConn) {
			c.expectError(protocol.CodeIdleTimeout)
			e.tc.logs.AwaitT(t, 1, vocab.Protocolo.Line(logfmt.Fail), remote(c), vocab.Motivo.Str("idle_timeout").String()+" |")
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newTrustEnv(t, true, func(cfg *config.Config) { cfg.HelloTimeout = helloTimeout })
			start := time.Now() // before the dial: the central's clock starts at its accept
			c := tt.open(t, e)
			e.tc.logs.AwaitT(t, 1, vocab.AceptarConexion.Line(logfmt.Success), remote(c))

			e.startHonest(t, 1, 2, 3, 4, 5)
			e.tc.logs.AwaitT(t, 5, vocab.Identificacion.Line(logfmt.Success))
			require.Zero(t, e.tc.logs.Count(logfmttest.AnyFail, remote(c)),
				"the silent peer was cut before the honest agencies got in: they waited behind it")

			tt.cut(t, e, c)
			assert.GreaterOrEqual(t, time.Since(start), helloTimeout, "cut before HelloTimeout")
			assert.Zero(t, e.tc.logs.Count(vocab.Identificacion.Line(logfmt.Success), remote(c)))
			e.assertExact(t, e.draw(t))
		})
	}
}

// A real agency whose old connection is half-dead gets back in at once: its
// new authenticated connection replaces the old one (closed, and logged)
// instead of being told agency_busy, and resumes where the old one stopped.
func TestTrustReplacesHalfDeadConnection(t *testing.T) {
	t.Parallel()
	e := newTrustEnv(t, true, nil)
	e.startHonest(t, 1, 2, 4, 5)

	old := e.identify(t, victim) // agency 3's own certificate
	old.sendBets(e.bets[victim][:40], 20)
	// …and then nothing: a peer gone without a FIN, well within the idle timeout.

	e.run(t, victim) // the real agency, no retries: agency_busy would fail it
	e.tc.logs.AwaitT(t, 1, vocab.ReemplazarConexion.Line(logfmt.Success, vocab.Agencia.Int(3))+" |", vocab.RemotoAnterior.Str(old.addr()).String())
	old.expectClosed()
	e.tc.logs.AwaitT(t, 1, vocab.Identificacion.Line(logfmt.Success, vocab.Agencia.Int(3), vocab.Almacenadas.Int(40))+" |")
	assert.Zero(t, e.tc.logs.Count(vocab.Motivo.Str("agency_busy").String()))
	e.assertExact(t, e.draw(t))
}

// A peer holding a session ticket could come back without showing its
// certificate again. The central issues none: a client that keeps a session
// cache runs a full handshake, and proves its certificate, every time.
func TestTrustNoSessionResumption(t *testing.T) {
	e := newTrustEnv(t, true, nil)
	cfg := e.pki.clientTLS(e.pki.agencies[victim].Cert)
	cfg.ClientSessionCache = tls.NewLRUClientSessionCache(1)
	for i := range 2 {
		c, err := dialPeer(t, e.tc.addr, nil, cfg)
		require.NoError(t, err)
		c.hello(victim) // a ticket, sent after the handshake, is taken on this read
		assert.False(t, c.conn.(*tls.Conn).ConnectionState().DidResume, "connection %d resumed a session", i+1)
		require.NoError(t, c.conn.Close())
		e.awaitReleased(t, victim)
	}
	_, ok := cfg.ClientSessionCache.Get(cfg.ServerName)
	assert.False(t, ok, "the central issued a session ticket")
}
