package central

import (
	"bufio"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"lotterycentral.example/client/agency"
	"lotterycentral.example/lottery"
	"lotterycentral.example/protocol"
	"lotterycentral.example/protocol/pki"
	"lotterycentral.example/server/internal/config"
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

// clientTLS is what a hand-driven peer of the central uses: TLS 1.3, the
// central verified against the project's CA (it is public), and cert, if
// any, as the client certificate. The certificate is presented whatever CAs
// the central says it accepts: crypto/tls's default would withhold one from
// another CA, and an attacker does not.
func (p *trustPKI) clientTLS(cert *pki.Cert) *tls.Config {
	cfg := &tls.Config{MinVersion: tls.VersionTLS13, RootCAs: p.ca.Pool(), ServerName: "127.0.0.1"}
	if cert != nil {
		tc := cert.TLSCertificate()
		cfg.GetClientCertificate = func(*tls.CertificateRequestInfo) (*tls.Certificate, error) { return &tc, nil }
	}
	return cfg
}

// peerConn is a hand-driven connection to the central, plaintext or TLS:
// rawConn's counterpart for both modes. Its try* methods return errors
// instead of failing the test, for attack scripts and for goroutines.
type peerConn struct {
	t        *testing.T
	raw      net.Conn // the TCP connection
	conn     net.Conn // raw, or the TLS connection over it
	br       *bufio.Reader
	agency   int
	seq      uint32
	stored   uint64
	finished bool
}

// dialPeer connects to addr, from local when it is not nil, and runs the TLS
// handshake when cfg is not nil. A handshake error is returned with the
// connection (its address is in the central's log), not failed on: in TLS 1.3
// a client certificate is refused after the client's handshake returns, so
// most refusals show on the first read instead.
func dialPeer(t *testing.T, addr string, local net.Addr, cfg *tls.Config) (*peerConn, error) {
	t.Helper()
	d := net.Dialer{Timeout: replyWait, LocalAddr: local}
	raw, err := d.Dial("tcp", addr)
	require.NoError(t, err)
	t.Cleanup(func() { raw.Close() })
	c := &peerConn{t: t, raw: raw, conn: raw, seq: 1}
	if cfg != nil {
		tc := tls.Client(raw, cfg)
		ctx, cancel := context.WithTimeout(context.Background(), replyWait)
		defer cancel()
		if err := tc.HandshakeContext(ctx); err != nil {
			return c, err
		}
		c.conn = tc
	}
	c.br = bufio.NewReader(c.conn)
	return c, nil
}

// addr is this end's address, as the central logs it ("remoto: …").
func (c *peerConn) addr() string { return c.raw.LocalAddr().String() }

func (c *peerConn) trySend(m protocol.Message) error {
	if err := c.conn.SetWriteDeadline(time.Now().Add(replyWait)); err != nil {
		return err
	}
	return protocol.WriteMessage(c.conn, m)
}

// tryRead returns the central's next message; an ERROR comes back as its
// *protocol.RemoteError, beside the message.
func (c *peerConn) tryRead() (protocol.Message, error) {
	if err := c.conn.SetReadDeadline(time.Now().Add(replyWait)); err != nil {
		return nil, err
	}
	m, err := protocol.ReadMessage(c.br, protocol.MaxServerFrame)
	if err != nil {
		return nil, err
	}
	if e, ok := m.(*protocol.ErrorMessage); ok {
		return m, e.Err()
	}
	return m, nil
}

// call sends m and reads the answer.
func (c *peerConn) call(m protocol.Message) (protocol.Message, error) {
	if err := c.trySend(m); err != nil {
		return nil, err
	}
	return c.tryRead()
}

// tryHello says HELLO agency; the error is how the central refused it.
func (c *peerConn) tryHello(agency int) (*protocol.HelloAck, error) {
	if c.br == nil {
		return nil, errors.New("no connection: the handshake failed")
	}
	m, err := c.call(protocol.Hello{Version: protocol.Version, Agency: uint32(agency)})
	if err != nil {
		return nil, err
	}
	ack, ok := m.(*protocol.HelloAck)
	if !ok {
		return nil, fmt.Errorf("HELLO answered with %s", m.Type())
	}
	c.agency, c.stored, c.finished = agency, ack.Stored, ack.Finished
	return ack, nil
}

func (c *peerConn) hello(agency int) *protocol.HelloAck {
	c.t.Helper()
	ack, err := c.tryHello(agency)
	require.NoError(c.t, err, "HELLO %d", agency)
	return ack
}

func (c *peerConn) expect(want protocol.MsgType) protocol.Message {
	c.t.Helper()
	m, err := c.tryRead()
	require.NoError(c.t, err, "waiting for %s", want)
	require.Equal(c.t, want, m.Type(), "got %+v", m)
	return m
}

// sendWire sends bets in acknowledged batches of at most size.
func (c *peerConn) sendWire(bets []protocol.Bet, size int) {
	c.t.Helper()
	for len(bets) > 0 {
		n := min(size, len(bets))
		require.NoError(c.t, c.trySend(protocol.Batch{Seq: c.seq, Bets: bets[:n]}))
		ack := c.expect(protocol.MsgBatchAck).(*protocol.BatchAck)
		require.Equal(c.t, c.seq, ack.Seq)
		c.seq++
		c.stored += uint64(n)
		bets = bets[n:]
	}
}

func (c *peerConn) sendBets(bets []lottery.Bet, size int) {
	c.t.Helper()
	c.sendWire(wireBets(bets), size)
}

// finish says FINISH total and requires FINISH_ACK with that count.
func (c *peerConn) finish(total int) {
	c.t.Helper()
	require.NoError(c.t, c.trySend(protocol.Finish{Total: uint64(total)}))
	ack := c.expect(protocol.MsgFinishAck).(*protocol.FinishAck)
	require.Equal(c.t, uint64(total), ack.Stored)
	c.finished = true
}

// readWinners reads every INFORM_AGENCY_WINNERS frame of one answer.
func (c *peerConn) readWinners() []string {
	c.t.Helper()
	var docs []string
	for {
		w := c.expect(protocol.MsgWinners).(*protocol.Winners)
		docs = append(docs, w.Documents...)
		require.LessOrEqual(c.t, len(docs), int(w.Total))
		if len(docs) == int(w.Total) {
			return docs
		}
	}
}

func (c *peerConn) consult() []string {
	c.t.Helper()
	require.NoError(c.t, c.trySend(protocol.Consult{Agency: uint32(c.agency)}))
	return c.readWinners()
}

// expectClosed: the central closed the connection without another frame.
func (c *peerConn) expectClosed() {
	c.t.Helper()
	m, err := c.tryRead()
	require.Error(c.t, err, "expected the connection closed, got %+v", m)
	require.Nil(c.t, m, "expected the connection closed, got %+v", m)
	var ne net.Error
	require.False(c.t, errors.As(err, &ne) && ne.Timeout(), "the central did not close the connection: %v", err)
	require.True(c.t, errors.Is(err, io.EOF) || errors.Is(err, syscall.ECONNRESET), "%v", err)
}

// expectError: the central explains itself with ERROR code, then closes.
func (c *peerConn) expectError(code protocol.Code) {
	c.t.Helper()
	_, err := c.tryRead()
	var re *protocol.RemoteError
	require.ErrorAs(c.t, err, &re)
	assert.Equal(c.t, code, re.Code, "text: %s", re.Text)
	assert.NotEmpty(c.t, re.Text, "an ERROR must say why in words")
	c.expectClosed()
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
		bets: make(map[int][]lottery.Bet), runs: make(map[int]<-chan agencyResult), done: make(map[int]agencyResult)}
	_, err := lottery.GenerateAgencyFiles(e.dir, trustAgencies, trustBets, 2025)
	require.NoError(t, err)
	for id := 1; id <= trustAgencies; id++ {
		for bet, err := range lottery.ReadAgencyFile(e.file(id), id) {
			require.NoError(t, err)
			e.bets[id] = append(e.bets[id], bet)
		}
	}
	// The attacks are only visible in the winners if the victim has some.
	require.NotEmpty(t, expectedWinners(t, e.file(victim), victim), "agency %d's file has no winner", victim)
	cfg := testConfig(t)
	cfg.Agencies = trustAgencies
	if withTLS {
		cfg.TLSCert, cfg.TLSKey, cfg.TLSClientCA = e.pki.central.certFile, e.pki.central.keyFile, e.pki.caFile
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
func (e *trustEnv) dial(t *testing.T, cert *pki.Cert) (*peerConn, error) {
	t.Helper()
	if !e.tls {
		return dialPeer(t, e.tc.addr, nil, nil)
	}
	return dialPeer(t, e.tc.addr, nil, e.pki.clientTLS(cert))
}

// identify connects as agency id with its own certificate and says HELLO.
func (e *trustEnv) identify(t *testing.T, id int) *peerConn {
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
	tag := fmt.Sprintf("agencia: %d |", id)
	n := e.tc.logs.Count("action: identificacion | result: success", tag)
	e.tc.logs.AwaitT(t, n, "action: cerrar_conexion | result: success", tag)
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
	assert.Equal(t, 1, e.tc.logs.Count("action: sorteo | result: success"), "the draw must run exactly once")
	e.assertStored(t, allAgencies...)
}

// remote is the part of a central's log line naming c's address (ephemeral
// ports all have five digits: one cannot be a prefix of another).
func remote(c *peerConn) string { return "remoto: " + c.addr() }
