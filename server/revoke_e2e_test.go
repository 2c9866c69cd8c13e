package main

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"io"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"lotterycentral.example/lottery"
	"lotterycentral.example/lottery/logfmt"
	"lotterycentral.example/protocol"
	"lotterycentral.example/protocol/pki"
	"lotterycentral.example/server/internal/logtest"
	"lotterycentral.example/server/internal/vocab"
)

// thiefConn is a TLS connection made with a stolen agency pair.
func thiefConn(t *testing.T, port int, certFile, keyFile, caFile string) net.Conn {
	t.Helper()
	pair, err := tls.LoadX509KeyPair(certFile, keyFile)
	require.NoError(t, err)
	ca, err := os.ReadFile(caFile)
	require.NoError(t, err)
	cfg := &tls.Config{MinVersion: tls.VersionTLS13, Certificates: []tls.Certificate{pair}, ServerName: "127.0.0.1"}
	cfg.RootCAs = x509.NewCertPool()
	require.True(t, cfg.RootCAs.AppendCertsFromPEM(ca))
	conn, err := tls.DialWithDialer(&net.Dialer{Timeout: logtest.DefaultBound}, "tcp",
		"127.0.0.1:"+strconv.Itoa(port), cfg)
	require.NoError(t, err)
	t.Cleanup(func() { conn.Close() })
	require.NoError(t, conn.SetDeadline(time.Now().Add(logtest.DefaultBound)))
	return conn
}

// The theft, with real processes: a thief holding agency 2's key
// connects first and holds its slot; the operator revokes and reissues the
// certificate and has the central reload its list; the thief is cut off and
// refused, and the real agency 2, with its new pair, finishes the round with
// the others: exact winners, and the bets file exactly the agencies' files.
func TestRevokeAStolenKeyEndToEnd(t *testing.T) {
	r := newTLSRound(t)
	// What the thief took, before the operator replaces agency 2's files.
	stolen := t.TempDir()
	for _, f := range []string{pki.AgencyFile(2), pki.AgencyKeyFile(2)} {
		data, err := os.ReadFile(r.cert(f))
		require.NoError(t, err)
		require.NoError(t, os.WriteFile(filepath.Join(stolen, f), data, 0o600))
	}
	r.extra = []string{"SERVER_TLS_REVOKED=" + r.cert(pki.RevokedFile)}
	srv := r.startCentral(t)

	thief := thiefConn(t, r.port, filepath.Join(stolen, pki.AgencyFile(2)), filepath.Join(stolen, pki.AgencyKeyFile(2)),
		r.cert(pki.CAFile))
	require.NoError(t, protocol.WriteMessage(thief, protocol.Hello{Version: protocol.Version, Agency: 2}))
	m, err := protocol.ReadMessage(thief, protocol.MaxServerFrame)
	require.NoError(t, err)
	require.IsType(t, &protocol.HelloAck{}, m, "the stolen pair is agency 2 until revoked")

	honest := map[int]*proc{}
	for _, id := range []int{1, 3, 4, 5} {
		honest[id] = r.startAgency(t, id)
		srv.awaitUntil(t, "agency parked", func(l string) bool {
			return logtest.Contains(l, vocab.EsperaSorteo.Line(logfmt.InProgress, vocab.Agencia.Int(id)))
		})
	}

	_, err = pki.RevokeDir(r.certs, []pki.Holder{{Agency: 2, Reissue: true}})
	require.NoError(t, err)
	code, line := runOrder(t, r, "reload")
	require.Equal(t, 0, code, line)

	// Cut off: its connection ends, and a new one is refused with `revoked`.
	_, err = protocol.ReadMessage(thief, protocol.MaxServerFrame)
	require.True(t, errors.Is(err, io.EOF) || errors.Is(err, syscall.ECONNRESET) || errors.Is(err, net.ErrClosed), "%v", err)
	again := thiefConn(t, r.port, filepath.Join(stolen, pki.AgencyFile(2)), filepath.Join(stolen, pki.AgencyKeyFile(2)),
		r.cert(pki.CAFile))
	m, err = protocol.ReadMessage(again, protocol.MaxServerFrame)
	require.NoError(t, err)
	refusal, ok := m.(*protocol.ErrorMessage)
	require.True(t, ok, "got %+v", m)
	assert.Equal(t, protocol.CodeRevoked, refusal.Code)
	srv.awaitUntil(t, "the refusal logged", func(l string) bool {
		return logtest.Contains(l, vocab.TLSHandshake.Line(logfmt.Fail), vocab.Motivo.Str("revoked").String())
	})

	// The thief's own agency program fails, saying why, and does not retry.
	thiefAgency := startProc(t, "client", "CLI_ID=2", "CLI_SERVER_ADDRESS=127.0.0.1:"+strconv.Itoa(r.port),
		"CLI_DATA_PATH="+filepath.Join(r.dir, lottery.AgencyFileName(2)),
		"CLI_TLS_CERT="+filepath.Join(stolen, pki.AgencyFile(2)), "CLI_TLS_KEY="+filepath.Join(stolen, pki.AgencyKeyFile(2)),
		"CLI_TLS_CA="+r.cert(pki.CAFile))
	assert.Equal(t, 1, thiefAgency.wait(t), thiefAgency.output())
	assert.Contains(t, thiefAgency.output(), vocab.Motivo.Str("revoked").String())

	// The real agency 2, with its reissued pair.
	honest[2] = r.startAgency(t, 2)
	_, winners := agencyFiles(t, r.dir, 5)
	for id, p := range honest {
		require.Equal(t, 0, p.wait(t), "agency %d:\n%s", id, p.output())
		assert.Equal(t, strconv.Itoa(winners[id-1]), p.await(t, winnersLine)[1], "agency %d's winners", id)
	}
	assert.Equal(t, []int{2, 3, 3, 2, 0}, winners)

	require.NoError(t, srv.cmd.Process.Signal(syscall.SIGTERM))
	require.Equal(t, 0, srv.wait(t), srv.output())
	want, _ := agencyFiles(t, r.dir, 5)
	assert.Equal(t, want, rows(t, lottery.LoadBets(r.store)), "the bets file is exactly the agencies' files")
}
