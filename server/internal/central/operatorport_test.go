package central

import (
	"testing"
	"time"

	"github.com/sirupsen/logrus"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"lotterycentral.example/lottery/logfmt"
	"lotterycentral.example/protocol"
	"lotterycentral.example/protocol/identity"
	"lotterycentral.example/protocol/pki"
	"lotterycentral.example/server/internal/vocab"
)

// The agencies' port and an operator's certificate: an operator acts on the
// admin address only, so the agencies' port refuses its certificate at the
// handshake, logged, before any frame (not even PING); an agency's
// certificate still identifies its agency, and the central's own still
// lets its health probe PING.
func TestAgencyPortRefusesOperators(t *testing.T) {
	p := newTrustPKI(t, 5)
	operator, err := p.ca.IssueOperator("", time.Time{}, time.Time{})
	require.NoError(t, err)
	named, err := p.ca.IssueOperator("ana", time.Time{}, time.Time{})
	require.NoError(t, err)
	cfg := testConfig(t)
	p.serveTLS(&cfg)
	tc := startCentral(t, cfg)

	tests := []struct {
		name    string
		cert    *pki.Cert
		send    protocol.Message
		want    protocol.MsgType // the answer; 0: the handshake is refused
		refused string           // the operator the refusal names
	}{
		{"the operator's PING", operator, protocol.Ping{}, 0, "operator"},
		{"the operator's HELLO", operator, protocol.Hello{Version: protocol.Version, Agency: 3}, 0, "operator"},
		{"a named operator's PING", named, protocol.Ping{}, 0, "operator-ana"},
		{"an agency's HELLO", p.agencies[3].Cert, protocol.Hello{Version: protocol.Version, Agency: 3}, protocol.MsgHelloAck, ""},
		{"the central's own PING (its health probe)", p.central.Cert, protocol.Ping{}, protocol.MsgPong, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := dialPeer(t, tc.addr, nil, p.clientTLS(tt.cert))
			require.NoError(t, err, "TLS 1.3: the client's handshake ends before the central checks its certificate")
			m, err := c.call(tt.send)
			if tt.want != 0 {
				require.NoError(t, err)
				assert.Equal(t, tt.want, m.Type())
				return
			}
			require.Error(t, err)
			reason, ok := identity.DescribeHandshakeError(err)
			require.True(t, ok, "a TLS refusal, not %v", err)
			assert.Equal(t, identity.ReasonRefusedByCentral, reason)
			assert.ErrorContains(t, err, "bad certificate")
			tc.logs.AwaitT(t, 1, vocab.TLSHandshake.Line(logfmt.Fail, vocab.Remoto.Str(c.addr()),
				vocab.Motivo.Str(identity.ReasonOperatorCertificate),
				vocab.Error.Str(`certificate "`+tt.refused+`": `+identity.ErrOperatorNotAgency.Error())))
			level, _ := tc.logs.LevelOf(vocab.TLSHandshake.Line(logfmt.Fail, vocab.Remoto.Str(c.addr())))
			assert.Equal(t, logrus.WarnLevel, level)
		})
	}
	assert.Equal(t, 1, tc.logs.Count(vocab.Identificacion.Line(logfmt.Success), vocab.Agencia.Int(3).String()+" |"),
		"only the agency's HELLO identified agency 3")
}
