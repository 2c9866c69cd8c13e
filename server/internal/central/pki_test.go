package central

import (
	"crypto/tls"
	"fmt"
	"net"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"lotterycentral.example/client/agency"
	"lotterycentral.example/lottery"
	"lotterycentral.example/lottery/logfmt"
	"lotterycentral.example/protocol"
	"lotterycentral.example/protocol/pki"
	"lotterycentral.example/server/internal/config"
	"lotterycentral.example/server/internal/vocab"
)

// The trust and attack suites share this world: a central (mutual TLS or
// plaintext) with six agencies. Agencies 1–5 run the real client
// (agency.Run) when a case starts them; agency 3 is the one attacks aim at,
// so cases start it themselves, after the attack; agency 6 is the latch, a
// hand-driven connection with agency 6's real certificate that the harness
// finishes last, so the draw never runs while an attack is going on unless
// the attack itself makes it run.
const (
	trustAgencies = 6
	trustLatch    = 6
	trustBets     = 150
	victim        = 3 // the agency attacks claim
	// resultWait only turns a hung agency into a failure; nothing waits on it.
	resultWait = 30 * time.Second
)

// attackerAddr is where attackers connect from: another loopback address
// than the agencies' 127.0.0.1, so the per-source cap can tell them apart.
var attackerAddr = &net.TCPAddr{IP: net.IPv4(127, 0, 0, 2)}

// certFiles is a certificate, its key, and the files they were written to.
type certFiles struct {
	*pki.Cert
	certFile, keyFile string
}

// trustPKI is one test's certificates: the project's CA, the central's
// certificate and one per agency, plus what an attacker or a mistake brings:
// an agency-3 certificate from the attacker's own CA and an expired one.
type trustPKI struct {
	ca       *pki.CA
	caFile   string
	otherCA  string // the attacker's CA certificate
	central  certFiles
	agencies map[int]certFiles
	foreign3 certFiles // "agency-3", signed by the attacker's CA
	expired3 certFiles // agency 3's, signed by the project's CA, expired yesterday
}

func newTrustPKI(t testing.TB, agencies int) *trustPKI {
	t.Helper()
	dir := t.TempDir()
	must := func(c *pki.Cert, err error) *pki.Cert {
		t.Helper()
		require.NoError(t, err)
		return c
	}
	write := func(name string, c *pki.Cert) certFiles {
		t.Helper()
		f := certFiles{c, filepath.Join(dir, name+".pem"), filepath.Join(dir, name+"-key.pem")}
		require.NoError(t, c.WriteFiles(f.certFile, f.keyFile))
		return f
	}
	ca, err := pki.NewCA("lottery test CA", time.Time{}, time.Time{})
	require.NoError(t, err)
	other, err := pki.NewCA("attacker CA", time.Time{}, time.Time{})
	require.NoError(t, err)
	p := &trustPKI{ca: ca, agencies: make(map[int]certFiles)}
	p.caFile = write("ca", &ca.Cert).certFile
	p.otherCA = write("other-ca", &other.Cert).certFile
	p.central = write("central", must(ca.IssueCentral(nil, time.Time{}, time.Time{})))
	for id := 1; id <= agencies; id++ {
		p.agencies[id] = write(fmt.Sprintf("agency-%d", id), must(ca.IssueAgency(id, time.Time{}, time.Time{})))
	}
	p.foreign3 = write("agency-3-foreign", must(other.IssueAgency(3, time.Time{}, time.Time{})))
	yesterday := time.Now().Add(-24 * time.Hour)
	p.expired3 = write("agency-3-expired", must(ca.IssueAgency(3, yesterday.Add(-24*time.Hour), yesterday)))
	return p
}

// serveTLS turns mutual TLS on in a central's cfg: its certificate and key,
// and the project's CA for the agencies'.
func (p *trustPKI) serveTLS(cfg *config.Config) {
	cfg.TLSCert, cfg.TLSKey, cfg.TLSClientCA = p.central.certFile, p.central.keyFile, p.caFile
}

// clientTLS is what a hand-driven peer of the central uses: TLS 1.3, the
// central verified against the project's CA (it is public), and cert, if
// any, as the client certificate. The certificate is presented whatever CAs
// the central says it accepts: crypto/tls's default would withhold one from
// another CA, and an attacker does not.
func (p *trustPKI) clientTLS(cert *pki.Cert) *tls.Config {
	cfg := &tls.Config{MinVersion: tls.VersionTLS13, RootCAs: p.ca.Pool(), ServerName: "127.0.0.1"}
	if cert != nil {
		tc := tlsCertificate(cert)
		cfg.GetClientCertificate = func(*tls.CertificateRequestInfo) (*tls.Certificate, error) { return &tc, nil }
	}
	return cfg
}

// tlsCertificate is cert and its key as a tls.Config wants them.
func tlsCertificate(cert *pki.Cert) tls.Certificate {
	return tls.Certificate{Certificate: [][]byte{cert.Cert.Raw}, PrivateKey: cert.Key, Leaf: cert.Cert}
}

// trustEnv is one case's world: its certificates, its central, the agency
// files, the agencies running the real client, and the latch.
type trustEnv struct {
	tls  bool
	pki  *trustPKI // made in both modes: a TLS agency may meet a plaintext central
	tc   *testCentral
	dir  string
	bets map[int][]lottery.Bet
	runs map[int]<-chan agencyResult // the last real client started for each agency
	done map[int]agencyResult        // what the last client of each agency returned, once it did
}

// newTrustEnv starts a central, with mutual TLS when withTLS, configured by
// testConfig and then tweak (may be nil). No agency is started.
func newTrustEnv(t *testing.T, withTLS bool, tweak func(*config.Config)) *trustEnv {
	t.Helper()
	e := &trustEnv{tls: withTLS, pki: newTrustPKI(t, trustAgencies), dir: t.TempDir(),
		runs: make(map[int]<-chan agencyResult), done: make(map[int]agencyResult)}
	_, err := lottery.GenerateAgencyFiles(e.dir, trustAgencies, trustBets, 2025)
	require.NoError(t, err)
	e.bets = agencyBetsIn(t, e.dir, trustAgencies)
	// The attacks are only visible in the winners if the victim has some.
	require.NotEmpty(t, expectedWinners(t, e.file(victim), victim), "agency %d's file has no winner", victim)
	cfg := testConfig(t)
	cfg.Agencies = trustAgencies
	if withTLS {
		e.pki.serveTLS(&cfg)
	}
	if tweak != nil {
		tweak(&cfg)
	}
	e.tc = startCentral(t, cfg)
	return e
}

func (e *trustEnv) file(id int) string { return filepath.Join(e.dir, lottery.AgencyFileName(id)) }

// agencyConfig is the real client's configuration for agency id, with its
// own certificate when the central speaks TLS; no retries, so a refusal
// shows as the agency's error instead of being retried away.
func (e *trustEnv) agencyConfig(id int) agency.Config {
	cfg := agencyConfig(e.tc, e.dir, id)
	cfg.BatchMaxAmount = 20 // several batches each, interleaved with whatever else goes on
	if e.tls {
		e.withTLS(&cfg, e.pki.agencies[id])
	}
	return cfg
}

// withTLS gives cfg cert as its certificate and the project's CA.
func (e *trustEnv) withTLS(cfg *agency.Config, cert certFiles) {
	cfg.TLSCert, cfg.TLSKey, cfg.TLSCA = cert.certFile, cert.keyFile, e.pki.caFile
}

// run starts the real client of agency id; result or draw collects what it returns.
func (e *trustEnv) run(t *testing.T, id int) {
	e.runs[id] = runAgency(t.Context(), e.agencyConfig(id))
	delete(e.done, id)
}

// result waits for the last client started for agency id to return.
func (e *trustEnv) result(t *testing.T, id int) agencyResult {
	t.Helper()
	if r, ok := e.done[id]; ok {
		return r
	}
	ch, ok := e.runs[id]
	require.True(t, ok, "agency %d was never started", id)
	r := await(t, ch)
	e.done[id] = r
	return r
}

func (e *trustEnv) startHonest(t *testing.T, ids ...int) {
	for _, id := range ids {
		e.run(t, id)
	}
}

// await waits for one client's result.
func await(t *testing.T, ch <-chan agencyResult) agencyResult {
	t.Helper()
	select {
	case r := <-ch:
		return r
	case <-time.After(resultWait):
		t.Fatal("the agency did not return")
		return agencyResult{}
	}
}

// dial connects the way a peer holding cert would (no certificate when
// nil); plaintext when the central is.
func (e *trustEnv) dial(t *testing.T, cert *pki.Cert) (*rawConn, error) {
	t.Helper()
	if !e.tls {
		return dialPeer(t, e.tc.addr, nil, nil)
	}
	return dialPeer(t, e.tc.addr, nil, e.pki.clientTLS(cert))
}

// identify connects as agency id with its own certificate and says HELLO.
func (e *trustEnv) identify(t *testing.T, id int) *rawConn {
	t.Helper()
	c, err := e.dial(t, e.pki.agencies[id].Cert)
	require.NoError(t, err)
	c.hello(id)
	return c
}

// awaitReleased waits until every connection that identified as agency id
// has ended, so a new one can claim it (plaintext refuses a second one).
func (e *trustEnv) awaitReleased(t *testing.T, id int) {
	t.Helper()
	tag := vocab.Agencia.Int(id).String() + " |"
	n := e.tc.logs.Count(vocab.Identificacion.Line(logfmt.Success), tag)
	e.tc.logs.AwaitT(t, n, vocab.CerrarConexion.Line(logfmt.Success), tag)
}

// draw finishes the latch (unless it already counts as finished), collects
// every real client started, and adds the latch's winners as agency 6's result.
func (e *trustEnv) draw(t *testing.T) map[int]agencyResult {
	t.Helper()
	latch := e.identify(t, trustLatch)
	if !latch.finished {
		latch.sendBets(e.bets[trustLatch][latch.stored:], 25)
		latch.finish(len(e.bets[trustLatch]))
	}
	// Parked at once: an agency waiting for the draw is never cut by the idle timeout.
	require.NoError(t, latch.trySend(protocol.Consult{Agency: trustLatch}))
	results := make(map[int]agencyResult)
	for id := range e.runs {
		results[id] = e.result(t, id)
	}
	results[trustLatch] = agencyResult{id: trustLatch, docs: latch.readWinners()}
	return results
}

// assertWinners: each of ids got exactly its own winners, no error.
func (e *trustEnv) assertWinners(t *testing.T, results map[int]agencyResult, ids ...int) {
	t.Helper()
	for _, id := range ids {
		r, ok := results[id]
		require.True(t, ok, "agency %d never ran", id)
		require.NoError(t, r.err, "agency %d", id)
		assert.ElementsMatch(t, expectedWinners(t, e.file(id), id), r.docs, "agency %d", id)
	}
}

// assertStored stops the central and requires the bets file to hold exactly
// the files of agencies ids, as a multiset.
func (e *trustEnv) assertStored(t *testing.T, ids ...int) {
	t.Helper()
	e.tc.stop()
	want := make(map[lottery.Bet]int)
	for _, id := range ids {
		for _, b := range e.bets[id] {
			want[b]++
		}
	}
	got := make(map[lottery.Bet]int)
	for bet, err := range lottery.LoadBets(e.tc.path) {
		require.NoError(t, err, "the bets file must stay parseable")
		got[bet]++
	}
	assert.Equal(t, want, got, "the bets file must hold exactly the files of agencies %v", ids)
}

var allAgencies = []int{1, 2, 3, 4, 5, 6}

// assertExact is the epilogue of a case the central defended: every agency
// got exactly its winners, the draw ran once, and the bets file holds
// exactly the agencies' files.
func (e *trustEnv) assertExact(t *testing.T, results map[int]agencyResult) {
	t.Helper()
	e.assertWinners(t, results, allAgencies...)
	assert.Equal(t, 1, e.tc.logs.Count(vocab.Sorteo.Line(logfmt.Success)), "the draw must run exactly once")
	e.assertStored(t, allAgencies...)
}

// remote is the part of a central's log line naming c's address (ephemeral
// ports all have five digits: one cannot be a prefix of another).
func remote(c *rawConn) string { return vocab.Remoto.Str(c.addr()).String() }
