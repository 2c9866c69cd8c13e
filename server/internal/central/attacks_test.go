package central

import (
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"lotterycentral.example/client/agency"
	"lotterycentral.example/lottery"
	"lotterycentral.example/lottery/logfmt"
	"lotterycentral.example/lottery/logfmt/logfmttest"
	"lotterycentral.example/lottery/wire"
	"lotterycentral.example/protocol"
	"lotterycentral.example/protocol/identity"
	"lotterycentral.example/protocol/pki"
	"lotterycentral.example/server/internal/config"
	"lotterycentral.example/server/internal/vocab"
)

// credential is what an attacker holds against a TLS central.
type credential struct {
	name   string
	agency int                         // the agency its certificate names; 0 for none
	cert   func(p *trustPKI) *pki.Cert // nil or returning nil: no client certificate
	// refused asserts, on both sides, how the central turned down c's HELLO
	// for agency claimed; err is what the attacker got.
	refused func(t *testing.T, e *trustEnv, c *rawConn, err error, claimed int)
}

// handshakeRefused: the central refused the certificate in the TLS
// handshake, with an alert the attacker reads where HELLO_ACK would be,
// and logged it with the attacker's address and reason.
func handshakeRefused(reason string) func(*testing.T, *trustEnv, *rawConn, error, int) {
	return func(t *testing.T, e *trustEnv, c *rawConn, err error, claimed int) {
		t.Helper()
		seen, ok := identity.DescribeHandshakeError(err)
		require.True(t, ok, "HELLO %d: want a TLS refusal, got %v", claimed, err)
		assert.Equal(t, identity.ReasonRefusedByCentral, seen, "%v", err)
		e.tc.logs.AwaitT(t, 1, vocab.TLSHandshake.Line(logfmt.Fail), remote(c), vocab.Motivo.Str(reason).String()+" |")
	}
}

// unauthorized: the certificate is the project's but names another agency
// (named) or none; HELLO gets ERROR unauthorized, the central logs both
// agencies, and closes.
func unauthorized(named string) func(*testing.T, *trustEnv, *rawConn, error, int) {
	return func(t *testing.T, e *trustEnv, c *rawConn, err error, claimed int) {
		t.Helper()
		var re *protocol.RemoteError
		require.ErrorAs(t, err, &re, "HELLO %d", claimed)
		assert.Equal(t, protocol.CodeUnauthorized, re.Code, "%v", err)
		e.tc.logs.AwaitT(t, 1, vocab.Autorizacion.Line(logfmt.Fail), remote(c),
			vocab.AgenciaCertificado.Str(named).String()+" |", vocab.AgenciaDeclarada.Int(claimed).String())
		c.expectClosed()
	}
}

var (
	noCertificate = credential{name: "no certificate", refused: handshakeRefused(identity.ReasonNoCertificate)}
	attackerCA    = credential{name: "agency 3's name signed by the attacker's CA",
		cert: func(p *trustPKI) *pki.Cert { return p.foreign3.Cert }, refused: handshakeRefused(identity.ReasonUnknownAuthority)}
	otherAgency = credential{name: "agency 2's certificate", agency: 2,
		cert: func(p *trustPKI) *pki.Cert { return p.agencies[2].Cert }, refused: unauthorized("agency-2")}
	centralsOwn = credential{name: "the central's certificate",
		cert: func(p *trustPKI) *pki.Cert { return p.central.Cert }, refused: unauthorized("none")}
	// strangers are everything a peer that is not agency 3 can present.
	strangers = []credential{noCertificate, attackerCA, otherAgency, centralsOwn}
	// victimsOwn is agency 3's real certificate in the wrong hands (or on a
	// half-dead socket of agency 3's): TLS cannot refuse it, only replace it.
	victimsOwn = credential{name: "agency 3's own certificate", agency: victim,
		cert: func(p *trustPKI) *pki.Cert { return p.agencies[victim].Cert }}
)

// attacker plays an attack from its own address (127.0.0.2), with cred
// against a TLS central, with nothing but a socket against a plaintext one.
type attacker struct {
	e    *trustEnv
	cred credential
}

// claim connects and says HELLO agency. It returns the connection when the
// central accepted it — always in plaintext, where nothing proves who the
// peer is; under TLS only for the agency the attacker's certificate names —
// and otherwise asserts the refusal on both sides and returns nil.
func (a attacker) claim(t *testing.T, agency int) *rawConn {
	t.Helper()
	var c *rawConn
	var err error
	if a.e.tls {
		var cert *pki.Cert
		if a.cred.cert != nil {
			cert = a.cred.cert(a.e.pki)
		}
		c, err = dialPeer(t, a.e.tc.addr, attackerAddr, a.e.pki.clientTLS(cert))
	} else {
		c, err = dialPeer(t, a.e.tc.addr, attackerAddr, nil)
	}
	if err == nil {
		_, err = c.tryHello(agency)
	}
	if !a.e.tls || a.cred.agency == agency {
		require.NoError(t, err, "HELLO %d", agency)
		return c
	}
	require.Error(t, err, "the central accepted HELLO %d from an attacker with %s", agency, a.cred.name)
	a.cred.refused(t, a.e, c, err, agency)
	return nil
}

// leave closes the attacker's connection c (if any) and waits until the
// central has let go of the agency it claimed.
func (a attacker) leave(t *testing.T, c *rawConn) {
	t.Helper()
	if c == nil {
		return
	}
	require.NoError(t, c.raw.Close())
	a.e.awaitReleased(t, c.agency)
}

// intruders is n copies of hostile_test's intruder: a valid winning bet no
// agency file holds, so a stored one shows in the winners and the bets file.
func intruders(n int) []lottery.Bet {
	out := make([]lottery.Bet, n)
	for i := range out {
		out[i] = intruder()
	}
	return out
}

// requireCountMismatch: the agency's own check caught the central holding
// another count of its bets than its file, and it reported no result.
// digestOfFile is the digest of an agency's bets file, as the agency computes it.
func digestOfFile(t *testing.T, path string) protocol.Digest {
	t.Helper()
	_, d, err := wire.FileDigest(path)
	require.NoError(t, err)
	return d
}

func requireCountMismatch(t *testing.T, r agencyResult, central uint64) {
	t.Helper()
	var cme *agency.CountMismatchError
	require.ErrorAs(t, r.err, &cme, "agency %d must fail loudly instead of reporting a result", r.id)
	assert.Equal(t, agency.CountMismatchError{Central: central, File: trustBets}, *cme)
	assert.Nil(t, r.docs)
}

// squatter holds an agency's slot by pinging, every interval, on its own goroutine.
type squatter struct {
	c     *rawConn
	pongs chan struct{}
	quit  chan struct{}
	done  chan struct{}
	once  sync.Once
	err   error // why the pinging ended; read after done
}

func squat(t *testing.T, c *rawConn, every time.Duration) *squatter {
	s := &squatter{c: c, pongs: make(chan struct{}, 1024), quit: make(chan struct{}), done: make(chan struct{})}
	go func() {
		defer close(s.done)
		tick := time.NewTicker(every) // the attacker's pace, not a wait for anything
		defer tick.Stop()
		for {
			select {
			case <-s.quit:
				return
			case <-tick.C:
			}
			if _, err := c.call(protocol.Ping{}); err != nil {
				s.err = err
				return
			}
			select {
			case s.pongs <- struct{}{}:
			default:
			}
		}
	}()
	t.Cleanup(func() { s.stop() })
	return s
}

// awaitPongs waits until n more pings were answered.
func (s *squatter) awaitPongs(t *testing.T, n int) {
	t.Helper()
	for range n {
		select {
		case <-s.pongs:
		case <-s.done:
			t.Fatalf("the squatter was cut: %v", s.err)
		case <-time.After(resultWait):
			t.Fatal("the central stopped answering the squatter's pings")
		}
	}
}

// stop ends the pinging and returns why it had ended, nil if it was still going.
func (s *squatter) stop() error {
	s.once.Do(func() { close(s.quit) })
	<-s.done
	return s.err
}

// ended waits for the pinging to end by itself (its connection closed).
func (s *squatter) ended(t *testing.T) error {
	t.Helper()
	select {
	case <-s.done:
		return s.err
	case <-time.After(resultWait):
		t.Fatal("the squatter's connection is still served")
		return nil
	}
}

type attackCase struct {
	name  string
	creds []credential // what the attacker holds under TLS
	cfg   func(*config.Config)
	// play runs the attack through to the draw's result and asserts it, in
	// the mode of e: under TLS every attack fails and the result is exact;
	// in plaintext the agency's own count check catches what it can, and
	// what nothing but TLS can stop is pinned as plaintext's exposure.
	play func(t *testing.T, e *trustEnv, a attacker)
}

// The six attacks of issue 12, each played by a peer on the same network
// with the public SPEC, against a central with mutual TLS (once per
// credential the attacker may hold) and against a plaintext one.
func TestAttacks(t *testing.T) {
	const idle = time.Second // the squatting case's idle timeout
	attacks := []attackCase{
		{name: "early finish", creds: strangers, play: func(t *testing.T, e *trustEnv, a attacker) {
			e.startHonest(t, 1, 2, 4, 5)
			if c := a.claim(t, victim); c != nil {
				c.finish(0) // agency 3 counts as finished, with nothing
				a.leave(t, c)
			}
			e.run(t, victim)
			results := e.draw(t)
			if e.tls {
				e.assertExact(t, results)
				return
			}
			// Plaintext: HELLO_ACK tells the real agency 3 it finished with 0
			// bets; it fails loudly instead of reporting 0 winners. Its bets
			// are lost to this draw, but not silently.
			requireCountMismatch(t, results[victim], 0)
			e.tc.logs.AwaitT(t, 1, vocab.FinApuestas.Line(logfmt.Success, vocab.Agencia.Int(3), vocab.Apuestas.Int(0))+" |")
			e.assertWinners(t, results, 1, 2, 4, 5, 6)
			e.assertStored(t, 1, 2, 4, 5, 6)
		}},

		{name: "winners leak", creds: strangers, play: func(t *testing.T, e *trustEnv, a attacker) {
			e.startHonest(t, 1, 2, 3, 4, 5)
			results := e.draw(t)
			e.awaitReleased(t, victim) // agency 3 got its winners and left
			if c := a.claim(t, victim); c != nil {
				// Plaintext's exposure: anyone who says HELLO 3 after the draw
				// gets agency 3's winners' documents.
				require.True(t, c.finished)
				want := expectedWinners(t, e.file(victim), victim)
				assert.ElementsMatch(t, want, c.consult(), "the same script must reach the winners without TLS")
			}
			sent := e.tc.logs.Count(vocab.EnvioGanadores.Line(logfmt.Success, vocab.Agencia.Int(3)) + " |")
			e.assertExact(t, results)
			if e.tls {
				assert.Equal(t, 1, sent, "agency 3's winners went to agency 3 only")
			}
		}},

		{name: "bet injection beyond the file", creds: strangers, play: func(t *testing.T, e *trustEnv, a attacker) {
			e.startHonest(t, 1, 2, 4, 5)
			const injected = trustBets + 10
			if c := a.claim(t, victim); c != nil {
				c.sendBets(intruders(injected), 40)
				a.leave(t, c)
			}
			e.run(t, victim)
			if e.tls {
				e.assertExact(t, e.draw(t))
				return
			}
			// Plaintext: HELLO_ACK says 160 stored, the file has 150: agency 3
			// fails loudly, never finishes, and no draw runs on the intruders.
			requireCountMismatch(t, e.result(t, victim), injected)
			assert.Zero(t, e.tc.logs.Count(logfmttest.AnyLine(vocab.Sorteo)))
		}},

		{name: "bet injection after the agency's last batch", creds: strangers, play: func(t *testing.T, e *trustEnv, a attacker) {
			e.startHonest(t, 1, 2, 4, 5)
			// Agency 3 sends all of its bets and loses its connection before FINISH.
			first := e.identify(t, victim)
			first.sendBets(e.bets[victim], 25)
			require.NoError(t, first.raw.Close())
			e.awaitReleased(t, victim)
			if c := a.claim(t, victim); c != nil {
				c.sendBets(intruders(1), 1)
				a.leave(t, c)
			}
			e.run(t, victim) // it resumes
			if e.tls {
				e.assertExact(t, e.draw(t))
				return
			}
			requireCountMismatch(t, e.result(t, victim), trustBets+1)
			assert.Zero(t, e.tc.logs.Count(logfmttest.AnyLine(vocab.Sorteo)))
		}},

		{name: "bet injection below the file's count", creds: strangers, play: func(t *testing.T, e *trustEnv, a attacker) {
			e.startHonest(t, 1, 2, 4, 5)
			const injected = 10
			if c := a.claim(t, victim); c != nil {
				c.sendBets(intruders(injected), injected)
				a.leave(t, c)
			}
			e.run(t, victim)
			results := e.draw(t)
			if e.tls {
				e.assertExact(t, results)
				return
			}
			// Plaintext's exposure: fewer bets than the file, before agency 3
			// first connects, look like a resume. Agency 3 skips its first 10
			// bets and its FINISH count matches, but the central's digest is
			// of the intruder's rows, not its file's: it fails loudly instead
			// of reporting the intruder as its winner.
			r := results[victim]
			var dme *agency.DigestMismatchError
			require.ErrorAs(t, r.err, &dme, "agency %d must fail loudly instead of reporting a result", victim)
			assert.Equal(t, digestOfFile(t, e.file(victim)), dme.File)
			assert.NotEqual(t, dme.File, dme.Central)
			assert.Equal(t, digestOf(t, append(intruders(injected), e.bets[victim][injected:]...)), dme.Central,
				"the central's digest: the intruder's rows, then the file's after them")
			assert.Nil(t, r.docs)
			e.assertWinners(t, results, 1, 2, 4, 5, 6)
		}},

		{name: "slot squatting", creds: append(strangers[:len(strangers):len(strangers)], victimsOwn),
			cfg: func(cfg *config.Config) { cfg.IdleTimeout = idle },
			play: func(t *testing.T, e *trustEnv, a attacker) {
				e.startHonest(t, 1, 2, 4, 5)
				var sq *squatter
				if c := a.claim(t, victim); c != nil {
					sq = squat(t, c, idle/5)
					sq.awaitPongs(t, 11) // it holds the slot across two idle timeouts
				}
				e.run(t, victim)
				switch {
				case !e.tls:
					// Plaintext's exposure: agency 3 is told agency_busy for as long
					// as the squatter pings; only the squatter leaving lets it in.
					requireRemote(t, e.result(t, victim).err, protocol.CodeAgencyBusy)
					require.NoError(t, sq.stop(), "the squatter held the slot all along")
					a.leave(t, sq.c)
					e.run(t, victim)
				case sq != nil:
					// Agency 3's own certificate: the real agency replaces the squatter.
					e.tc.logs.AwaitT(t, 1, vocab.ReemplazarConexion.Line(logfmt.Success, vocab.Agencia.Int(3))+" |",
						vocab.RemotoAnterior.Str(sq.c.addr()).String())
					assert.Error(t, sq.ended(t), "the squatter's connection must be closed")
				}
				e.assertExact(t, e.draw(t))
			}},

		{name: "premature draw", creds: strangers, play: func(t *testing.T, e *trustEnv, a attacker) {
			// Before any real agency connects: FINISH 0 for every agency.
			for id := 1; id <= trustAgencies; id++ {
				if id == a.cred.agency {
					continue // finishing the agency its own certificate names is not this attack
				}
				if c := a.claim(t, id); c != nil {
					c.finish(0)
					a.leave(t, c)
				}
			}
			if e.tls {
				assert.Zero(t, e.tc.logs.Count(logfmttest.AnyLine(vocab.Sorteo)), "no draw before the real agencies finish")
				e.startHonest(t, 1, 2, 3, 4, 5)
				e.assertExact(t, e.draw(t))
				return
			}
			// Plaintext: the draw ran on nothing, but no agency reports its
			// result: each sees it finished with 0 bets, not its file's 150.
			e.tc.logs.AwaitT(t, 1, vocab.Sorteo.Line(logfmt.Success, vocab.Apuestas.Int(0))+" |")
			e.startHonest(t, 1, 2, 3, 4, 5)
			for id := 1; id <= 5; id++ {
				requireCountMismatch(t, e.result(t, id), 0)
			}
			latch, err := e.dial(t, nil)
			require.NoError(t, err)
			ack := latch.hello(trustLatch)
			// The digest of no bets: what the impostors' FINISHes journaled.
			assert.Equal(t, protocol.HelloAck{Version: protocol.Version, Stored: 0, Finished: true, Drawn: true,
				Digest: protocol.NewDigestWriter().Sum()}, *ack)
			e.assertStored(t) // nothing
		}},

		{name: "connection exhaustion", creds: []credential{{name: "silent sockets from one address"}},
			cfg: func(cfg *config.Config) {
				cfg.MaxUnidentified, cfg.MaxUnidentifiedPerSource = 32, 16
				cfg.HelloTimeout = 20 * time.Second // the sockets outlive the test: only the caps defend
			},
			play: func(t *testing.T, e *trustEnv, _ attacker) {
				const sockets, perSource = 64, 16
				silent := make([]*rawConn, sockets)
				for i := range silent {
					c, err := dialPeer(t, e.tc.addr, attackerAddr, nil) // never a byte, not even a ClientHello
					require.NoError(t, err)
					silent[i] = c
					e.tc.logs.AwaitT(t, i+1, logfmttest.AnyLine(vocab.AceptarConexion)) // one at a time: i-th dialled, i-th accepted
				}
				assert.Equal(t, perSource, e.tc.logs.Count(vocab.AceptarConexion.Line(logfmt.Success), vocab.Remoto.Str("127.0.0.2:").String()))
				assert.Equal(t, sockets-perSource, e.tc.logs.Count(vocab.AceptarConexion.Line(logfmt.Fail), vocab.Remoto.Str("127.0.0.2:").String()))
				for _, c := range silent[perSource:] {
					if e.tls {
						c.expectClosed() // no handshake is spent on a peer turned away
					} else {
						c.expectError(protocol.CodeTooManyConns)
					}
				}
				e.startHonest(t, 1, 2, 3, 4, 5)
				results := e.draw(t)
				// The sixteen were still held while the agencies got through.
				assert.Zero(t, e.tc.logs.Count(vocab.TLSHandshake.Line(logfmt.Fail)))
				assert.Zero(t, e.tc.logs.Count(vocab.Motivo.Str("idle_timeout").String()))
				e.assertExact(t, results)
			}},
	}

	for _, mode := range []struct {
		name string
		tls  bool
	}{{"tls", true}, {"plaintext", false}} {
		t.Run(mode.name, func(t *testing.T) {
			t.Parallel()
			for _, ac := range attacks {
				t.Run(ac.name, func(t *testing.T) {
					t.Parallel()
					if !mode.tls {
						e := newTrustEnv(t, false, ac.cfg)
						ac.play(t, e, attacker{e: e})
						return
					}
					for _, cred := range ac.creds {
						t.Run(cred.name, func(t *testing.T) {
							t.Parallel()
							e := newTrustEnv(t, true, ac.cfg)
							ac.play(t, e, attacker{e: e, cred: cred})
						})
					}
				})
			}
		})
	}
}
