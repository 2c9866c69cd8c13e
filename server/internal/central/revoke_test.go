package central

import (
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"io"
	"math/big"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/sirupsen/logrus"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"lotterycentral.example/client/agency"
	"lotterycentral.example/lottery"
	"lotterycentral.example/lottery/logfmt"
	"lotterycentral.example/protocol"
	"lotterycentral.example/protocol/identity"
	"lotterycentral.example/protocol/pki"
	"lotterycentral.example/server/internal/config"
	"lotterycentral.example/server/internal/ledger"
	"lotterycentral.example/server/internal/logtest"
	"lotterycentral.example/server/internal/vocab"
)

// revokePKI is what `make certs` writes (pki.WriteDir: the CA, revoked.pem,
// the central's, the operator's, agencies 1..5), and the thief's copy of
// agency 2's pair, taken before the operator reissues it.
type revokePKI struct {
	dir    string
	stolen [2]string // agency-2.pem and agency-2-key.pem, as they were
}

func newRevokePKI(t *testing.T) *revokePKI {
	t.Helper()
	p := &revokePKI{dir: t.TempDir()}
	_, err := pki.WriteDir(p.dir, 5, nil, false)
	require.NoError(t, err)
	thief := t.TempDir()
	for i, name := range []string{pki.AgencyFile(2), pki.AgencyKeyFile(2)} {
		data, err := os.ReadFile(p.file(name))
		require.NoError(t, err)
		p.stolen[i] = filepath.Join(thief, name)
		require.NoError(t, os.WriteFile(p.stolen[i], data, 0o600))
	}
	return p
}

func (p *revokePKI) file(name string) string { return filepath.Join(p.dir, name) }

// config is testConfig with mutual TLS on these certificates and the
// revocation list, SERVER_TLS_REVOKED, set.
func (p *revokePKI) config(t *testing.T) config.Config {
	cfg := testConfig(t)
	cfg.TLSCert, cfg.TLSKey, cfg.TLSClientCA = p.file(pki.CentralFile), p.file(pki.CentralKeyFile), p.file(pki.CAFile)
	cfg.TLSRevoked = p.file(pki.RevokedFile)
	return cfg
}

// reissue2 is the operator's `make reissue AGENCY=2`; it returns the revoked serial.
func (p *revokePKI) reissue2(t *testing.T) string {
	t.Helper()
	rep, err := pki.RevokeDir(p.dir, []pki.Holder{{Agency: 2, Reissue: true}})
	require.NoError(t, err)
	return identity.SerialText(rep.Revoked[0].Serial)
}

// tlsConfig is a client's: TLS 1.3, the central verified against the CA,
// and the pair in cert and key.
func (p *revokePKI) tlsConfig(t *testing.T, cert, key string) *tls.Config {
	t.Helper()
	pair, err := tls.LoadX509KeyPair(cert, key)
	require.NoError(t, err)
	cas, err := identity.LoadCAs(p.file(pki.CAFile))
	require.NoError(t, err)
	roots := x509.NewCertPool()
	roots.AddCert(cas[0])
	return &tls.Config{MinVersion: tls.VersionTLS13, RootCAs: roots, ServerName: "127.0.0.1", Certificates: []tls.Certificate{pair}}
}

// peer connects to tc's agencies' port by hand with the pair in cert and key.
func (p *revokePKI) peer(t *testing.T, tc *testCentral, cert, key string) *rawConn {
	t.Helper()
	c, err := dialPeer(t, tc.addr, nil, p.tlsConfig(t, cert, key))
	require.NoError(t, err, "TLS 1.3: the client's handshake ends before the central checks its certificate")
	return c
}

// agency is the real client's configuration for agency id with the pair in
// cert and key, on the agency files of dir.
func (p *revokePKI) agency(tc *testCentral, dir string, id int, cert, key string) agency.Config {
	cfg := agencyConfig(tc, dir, id)
	cfg.TLSCert, cfg.TLSKey, cfg.TLSCA = cert, key, p.file(pki.CAFile)
	return cfg
}

// own is agency id's pair as the certificate directory holds it now.
func (p *revokePKI) own(id int) (string, string) {
	return p.file(pki.AgencyFile(id)), p.file(pki.AgencyKeyFile(id))
}

// reloadOnAdmin is `server reload`: POST /actions/reload on oc's admin
// address over TLS, presenting the pair in cert and key.
func (p *revokePKI) reloadOnAdmin(t *testing.T, oc *observedCentral, cert, key string) (int, string) {
	t.Helper()
	tr := &http.Transport{TLSClientConfig: p.tlsConfig(t, cert, key), DisableKeepAlives: true}
	defer tr.CloseIdleConnections()
	resp, err := (&http.Client{Transport: tr, Timeout: replyWait}).Post(
		strings.Replace(oc.url, "http://", "https://", 1)+"/actions/reload", "application/x-www-form-urlencoded", nil)
	require.NoError(t, err)
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	return resp.StatusCode, strings.TrimSpace(string(body))
}

// reloadedLine is the central's line of a reload that took effect.
func reloadedLine(cfg config.Config, operator string, revoked, number int, cut string) string {
	return vocab.Revocaciones.Line(logfmt.Success, vocab.Operador.Str(operator), vocab.Archivo.Str(cfg.TLSRevoked),
		vocab.Revocados.Int(revoked), vocab.NumeroLista.Int(number), vocab.Cortadas.Str(cut))
}

// journalLines are the operator journal's lines, decoded.
func journalLines(t *testing.T, cfg config.Config) []map[string]any {
	t.Helper()
	data, err := os.ReadFile(ledger.OperatorPath(cfg.StoragePath))
	require.NoError(t, err)
	var lines []map[string]any
	for line := range strings.Lines(string(data)) {
		var m map[string]any
		require.NoError(t, json.Unmarshal([]byte(line), &m), line)
		delete(m, "at")
		lines = append(lines, m)
	}
	return lines
}

// reloadEntry is a reload's journal line, but its time.
func reloadEntry(operator string, revoked, number int) map[string]any {
	return map[string]any{"operator": operator, "action": ledger.ActionReload,
		"detail": "revocation list: " + strconv.Itoa(revoked) + " revoked, list number " + strconv.Itoa(number)}
}

// requireRevokedRefusal: the central refused a connection with ERROR revoked,
// which an agency names "revoked".
func requireRevokedRefusal(t *testing.T, err error) {
	t.Helper()
	var re *protocol.RemoteError
	require.ErrorAs(t, err, &re)
	assert.Equal(t, protocol.CodeRevoked, re.Code, "%v", err)
	assert.Contains(t, re.Text, "certificate revoked: ask the lottery for a new one")
	reason, ok := identity.DescribeHandshakeError(err)
	assert.True(t, ok)
	assert.Equal(t, identity.ReasonRevoked, reason)
}

// The test: a thief holding agency 2's key connects first; the
// operator revokes and reissues; the thief is cut off and refused, and the
// real agency 2 finishes the round with exact winners and an exact bets
// file. The official dataset, real TLS and the certificates `make certs`
// writes; the operator reloads through the admin action with its
// certificate (`server reload`), or the central is told directly as SIGHUP
// tells it (the binary's SIGHUP: server/main_test.go).
func TestRevokeAStolenAgencyKey(t *testing.T) {
	tests := []struct {
		name   string
		reload func(t *testing.T, p *revokePKI, oc *observedCentral) string // the operator journaled
	}{
		{"the operator's reload on the admin address", func(t *testing.T, p *revokePKI, oc *observedCentral) string {
			code, body := p.reloadOnAdmin(t, oc, p.file(pki.OperatorFile), p.file(pki.OperatorKeyFile))
			require.Equal(t, http.StatusOK, code, body)
			assert.Equal(t, "revocation list reloaded by operator: 1 revoked, list number 2; live connections closed: agencies 2", body)
			return identity.OperatorName
		}},
		{"ReloadRevocations, as on SIGHUP", func(t *testing.T, p *revokePKI, oc *observedCentral) string {
			text, err := oc.srv.ReloadRevocations(SignalOperator)
			require.NoError(t, err)
			assert.Equal(t, "revocation list reloaded by SIGHUP: 1 revoked, list number 2; live connections closed: agencies 2", text)
			return SignalOperator
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := newRevokePKI(t)
			cfg := p.config(t)
			dir, bets := officialFiles(t)
			oc := startObserved(t, cfg, nil)
			oc.logs.AwaitT(t, 1, vocab.Revocaciones.Line(logfmt.Success, vocab.Archivo.Str(cfg.TLSRevoked),
				vocab.Revocados.Int(0), vocab.NumeroLista.Int(1)))

			// The honest agencies stream and park; the thief, first as agency
			// 2, holds its slot with the stolen pair.
			runs := map[int]<-chan agencyResult{}
			for _, id := range []int{1, 3, 4, 5} {
				cert, key := p.own(id)
				runs[id] = runAgency(t.Context(), p.agency(oc.testCentral, dir, id, cert, key))
			}
			thief := p.peer(t, oc.testCentral, p.stolen[0], p.stolen[1])
			assert.Zero(t, thief.hello(2).Stored)
			oc.logs.AwaitT(t, 4, vocab.EsperaSorteo.Line(logfmt.InProgress))

			// The operator revokes agency 2's certificate and reissues it
			// (make reissue AGENCY=2), then has the central read the list.
			serial := p.reissue2(t)
			operator := tt.reload(t, p, oc)
			assert.Equal(t, 1, oc.logs.Count(reloadedLine(cfg, operator, 1, 2, "2")), "%s", oc.logs)
			assert.Equal(t, []map[string]any{reloadEntry(operator, 1, 2)}, journalLines(t, cfg), "journaled")

			// The thief is cut off at once, and refused from then on: by hand...
			thief.expectClosed()
			again := p.peer(t, oc.testCentral, p.stolen[0], p.stolen[1])
			_, err := again.tryHello(2)
			requireRevokedRefusal(t, err)
			oc.logs.AwaitT(t, 1, vocab.TLSHandshake.Line(logfmt.Fail, vocab.Remoto.Str(again.addr()),
				vocab.Motivo.Str(identity.ReasonRevoked), vocab.Error.Str(`certificate "agency-2", serial `+serial+": certificate revoked")))
			// ...or with the real agency's program, which says why and stops.
			lines := logtest.New()
			log, err := logfmt.New(lines, "info")
			require.NoError(t, err)
			_, err = agency.New(p.agency(oc.testCentral, dir, 2, p.stolen[0], p.stolen[1]), log).Run(t.Context())
			requireAuthError(t, err, identity.ReasonRevoked)
			lines.AwaitT(t, 1, "action: tls_handshake | result: fail | servidor: "+oc.addr+" | motivo: revoked | error: ")
			assert.Equal(t, 2, oc.logs.Count(vocab.TLSHandshake.Line(logfmt.Fail), vocab.Motivo.Str(identity.ReasonRevoked).String()))
			assert.Equal(t, 2.0, oc.scrape(t).value(t, "lottery_tls_handshake_failures_total", "reason", identity.ReasonRevoked))

			// The real agency 2, with its new pair, finishes the round.
			cert, key := p.own(2)
			runs[2] = runAgency(t.Context(), p.agency(oc.testCentral, dir, 2, cert, key))
			for id, ch := range runs {
				r := await(t, ch)
				require.NoError(t, r.err, "agency %d", id)
				assert.ElementsMatch(t, expectedWinners(t, filepath.Join(dir, lottery.AgencyFileName(id)), id), r.docs, "agency %d", id)
				assert.Len(t, r.docs, officialWinners[id], "agency %d", id)
			}
			assert.Equal(t, 1, oc.logs.Count(vocab.Sorteo.Line(logfmt.Success, vocab.Apuestas.Int(78697), vocab.Ganadores.Int(10))),
				"one draw of every bet:\n%s", oc.logs)
			oc.stop()
			assert.Equal(t, bets, storedBets(t, cfg.StoragePath), "the bets file holds exactly the agencies' files")
		})
	}
}

// A list the central cannot trust is refused, saying why, and changes
// nothing: the list in force stays (the stolen certificate refused, the new
// one served), nothing is journaled, and the operator reads the reason (409).
func TestReloadRefusesABadList(t *testing.T) {
	otherCRL := func(t *testing.T, name string) []byte {
		ca, err := pki.NewCA(name, time.Time{}, time.Time{})
		require.NoError(t, err)
		data, err := ca.RevocationList(nil, big.NewInt(5), time.Now())
		require.NoError(t, err)
		return data
	}
	tests := []struct {
		name  string
		spoil func(t *testing.T, p *revokePKI) // the list file, after a good reload
		err   string
	}{
		{"gone", func(t *testing.T, p *revokePKI) { require.NoError(t, os.Remove(p.file(pki.RevokedFile))) },
			"no such file or directory"},
		{"a directory", func(t *testing.T, p *revokePKI) {
			require.NoError(t, os.Remove(p.file(pki.RevokedFile)))
			require.NoError(t, os.Mkdir(p.file(pki.RevokedFile), 0o700))
		}, "is a directory"},
		{"empty", func(t *testing.T, p *revokePKI) {
			require.NoError(t, os.WriteFile(p.file(pki.RevokedFile), nil, 0o644))
		},
			"no PEM block: want one X509 CRL"},
		{"not PEM", func(t *testing.T, p *revokePKI) {
			require.NoError(t, os.WriteFile(p.file(pki.RevokedFile), []byte("agency-2\n"), 0o644))
		}, "no PEM block: want one X509 CRL"},
		{"a certificate", func(t *testing.T, p *revokePKI) {
			data, err := os.ReadFile(p.file(pki.CAFile))
			require.NoError(t, err)
			require.NoError(t, os.WriteFile(p.file(pki.RevokedFile), data, 0o644))
		}, `a PEM "CERTIFICATE" block: want X509 CRL`},
		{"malformed", func(t *testing.T, p *revokePKI) {
			data := pem.EncodeToMemory(&pem.Block{Type: identity.CRLBlock, Bytes: []byte("not DER")})
			require.NoError(t, os.WriteFile(p.file(pki.RevokedFile), data, 0o644))
		}, "malformed: x509: "},
		{"another CA's list", func(t *testing.T, p *revokePKI) {
			require.NoError(t, os.WriteFile(p.file(pki.RevokedFile), otherCRL(t, "attacker CA"), 0o644))
		}, `not signed by our CA: its issuer is "CN=attacker CA"`},
		{"our CA's name, another key", func(t *testing.T, p *revokePKI) {
			ca, err := pki.LoadCA(p.file(pki.CAFile), p.file(pki.CAKeyFile))
			require.NoError(t, err)
			require.NoError(t, os.WriteFile(p.file(pki.RevokedFile), otherCRL(t, ca.Cert.Cert.Subject.CommonName), 0o644))
		}, "not signed by our CA: x509: ECDSA verification failure"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := newRevokePKI(t)
			cfg := p.config(t)
			oc := startObserved(t, cfg, nil)
			p.reissue2(t)
			_, err := oc.srv.ReloadRevocations("operator-ana")
			require.NoError(t, err)
			journal := journalLines(t, cfg)

			tt.spoil(t, p)
			code, body := p.reloadOnAdmin(t, oc, p.file(pki.OperatorFile), p.file(pki.OperatorKeyFile))
			assert.Equal(t, http.StatusConflict, code)
			assert.Contains(t, body, tt.err)
			assert.Contains(t, body, "; the list in force stays (1 revoked, list number 2)")
			oc.logs.AwaitT(t, 1, vocab.Revocaciones.Line(logfmt.Fail, vocab.Operador.Str(identity.OperatorName),
				vocab.Archivo.Str(cfg.TLSRevoked), vocab.Error.Str("reload: ")), tt.err)
			level, _ := oc.logs.LevelOf(vocab.Revocaciones.Line(logfmt.Fail))
			assert.Equal(t, logrus.WarnLevel, level, "the operator's mistake, not the central's")
			assert.Equal(t, journal, journalLines(t, cfg), "nothing journaled")

			_, err = p.peer(t, oc.testCentral, p.stolen[0], p.stolen[1]).tryHello(2)
			requireRevokedRefusal(t, err)
			cert, key := p.own(2)
			p.peer(t, oc.testCentral, cert, key).hello(2)
		})
	}
}

// A reload is journaled before it takes effect, and the journal keeps it
// across a restart; the list itself is read from its file at each start.
// A reload the journal cannot record does not take effect.
func TestReloadJournaled(t *testing.T) {
	p := newRevokePKI(t)
	cfg := p.config(t)
	tc, disk := startFaulty(t, cfg)
	thief := p.peer(t, tc, p.stolen[0], p.stolen[1])
	thief.hello(2)
	p.reissue2(t)

	// The disk is full: the reload is refused, at ERROR, and the old list stays.
	disk.set(true, false)
	_, err := tc.srv.ReloadRevocations("operator-ana")
	require.ErrorIs(t, err, syscall.ENOSPC)
	assert.ErrorIs(t, err, errNotJournaled)
	level, ok := tc.logs.LevelOf(vocab.Revocaciones.Line(logfmt.Fail, vocab.Operador.Str("operator-ana")))
	require.True(t, ok, "%s", tc.logs)
	assert.Equal(t, logrus.ErrorLevel, level, "the disk failed it, not the operator")
	thief.ping() // not cut: the new list is not in force
	disk.set(false, false)
	assert.Empty(t, journalLines(t, cfg))

	// Journaled, then in force.
	_, err = tc.srv.ReloadRevocations("operator-ana")
	require.NoError(t, err)
	thief.expectClosed()
	assert.Equal(t, []map[string]any{reloadEntry("operator-ana", 1, 2)}, journalLines(t, cfg))

	// A restart reads the journal back, reload and all, and the list from its file.
	tc = restartCentral(t, tc, cfg)
	tc.logs.AwaitT(t, 1, vocab.Recuperacion.Line(logfmt.Success))
	assert.Equal(t, 1, tc.logs.Count(vocab.Revocaciones.Line(logfmt.Success, vocab.Archivo.Str(cfg.TLSRevoked),
		vocab.Revocados.Int(1), vocab.NumeroLista.Int(2))), "%s", tc.logs)
	_, err = p.peer(t, tc, p.stolen[0], p.stolen[1]).tryHello(2)
	requireRevokedRefusal(t, err)
	cert, key := p.own(2)
	p.peer(t, tc, cert, key).hello(2)
	assert.Equal(t, []map[string]any{reloadEntry("operator-ana", 1, 2)}, journalLines(t, cfg), "kept across the restart")

	// The next reload adds its own line.
	_, err = tc.srv.ReloadRevocations(SignalOperator)
	require.NoError(t, err)
	assert.Equal(t, 1, tc.logs.Count(reloadedLine(cfg, SignalOperator, 1, 2, "none")), "%s", tc.logs)
	assert.Equal(t, []map[string]any{reloadEntry("operator-ana", 1, 2), reloadEntry(SignalOperator, 1, 2)}, journalLines(t, cfg))
}

// The operator's certificate is revoked the same way: the admin address
// refuses the old one (403, revoked), the reissued one acts.
func TestRevokeTheOperator(t *testing.T) {
	p := newRevokePKI(t)
	cfg := p.config(t)
	oc := startObserved(t, cfg, nil)
	old := [2]string{filepath.Join(t.TempDir(), "operator.pem"), filepath.Join(t.TempDir(), "operator-key.pem")}
	for i, name := range []string{pki.OperatorFile, pki.OperatorKeyFile} {
		data, err := os.ReadFile(p.file(name))
		require.NoError(t, err)
		require.NoError(t, os.WriteFile(old[i], data, 0o600))
	}
	_, err := pki.RevokeDir(p.dir, []pki.Holder{{Agency: 0, Reissue: true}})
	require.NoError(t, err)
	code, body := p.reloadOnAdmin(t, oc, old[0], old[1])
	require.Equal(t, http.StatusOK, code, "the list is not in force yet: %s", body)

	code, body = p.reloadOnAdmin(t, oc, old[0], old[1])
	assert.Equal(t, http.StatusForbidden, code)
	assert.Contains(t, body, `certificate "operator", serial `)
	assert.Contains(t, body, ": certificate revoked")
	oc.logs.AwaitT(t, 1, vocab.RechazoAdmin.Line(logfmt.Fail), vocab.Operador.Str(identity.OperatorName).String()+" | "+
		vocab.Motivo.Str(identity.ReasonRevoked).String()+" | ")

	code, body = p.reloadOnAdmin(t, oc, p.file(pki.OperatorFile), p.file(pki.OperatorKeyFile))
	assert.Equal(t, http.StatusOK, code, body)
}

// What a central without a list, or with one it cannot trust at start, does.
func TestRevocationListConfigured(t *testing.T) {
	t.Run("no list: a reload is refused", func(t *testing.T) {
		for _, withTLS := range []bool{true, false} {
			p := newRevokePKI(t)
			cfg := p.config(t)
			cfg.TLSRevoked = ""
			if !withTLS {
				cfg.TLSCert, cfg.TLSKey, cfg.TLSClientCA = "", "", ""
			}
			tc := startCentral(t, cfg)
			_, err := tc.srv.ReloadRevocations(SignalOperator)
			require.ErrorIs(t, err, errNoRevocationList)
			tc.logs.AwaitT(t, 1, vocab.Revocaciones.Line(logfmt.Fail, vocab.Operador.Str(SignalOperator), vocab.Archivo.Str(""),
				vocab.Error.Str("reload revocation list: this central has no revocation list: set SERVER_TLS_REVOKED (with mutual TLS) and restart it")))
			assert.Zero(t, tc.logs.Count(vocab.Revocaciones.Line(logfmt.Success)), "no list read at start")
		}
	})
	t.Run("a bad list at start", func(t *testing.T) {
		p := newRevokePKI(t)
		cfg := p.config(t)
		require.NoError(t, os.WriteFile(cfg.TLSRevoked, []byte("junk"), 0o644))
		log, _ := testLogger()
		_, err := New(cfg, log)
		require.EqualError(t, err, `start central: revocation list "`+cfg.TLSRevoked+`": no PEM block: want one X509 CRL`)
	})
}
