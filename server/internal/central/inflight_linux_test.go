package central

import (
	"bufio"
	"context"
	"crypto/tls"
	"fmt"
	"net"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/sirupsen/logrus"
	"github.com/stretchr/testify/require"
	"golang.org/x/sys/unix"

	"lotterycentral.example/lottery"
	"lotterycentral.example/lottery/logfmt"
	"lotterycentral.example/protocol"
	"lotterycentral.example/server/internal/config"
	"lotterycentral.example/server/internal/vocab"
)

// connModes are the two ways an agency reaches the central.
var connModes = []struct {
	name string
	tls  bool
}{
	{"plaintext", false},
	{"mutual TLS", true},
}

// mutualTLS turns mutual TLS on in cfg, with certificates made for the test,
// and returns agency 1's client configuration.
func mutualTLS(t *testing.T, cfg *config.Config) *tls.Config {
	t.Helper()
	p := newTrustPKI(t, 1)
	p.serveTLS(cfg)
	return p.clientTLS(p.agencies[1].Cert)
}

// The batches an agency keeps in flight share one sync even when the
// session's read after HELLO took only the first of them: the rest had
// reached the socket, so the session takes them without waiting and commits
// them with it (one write of their lines). Without that, the first batch
// would be synced alone, and an agency woken for each small group of
// answers. Real sockets on 127.0.0.1: the central's end holds its reads
// until the whole burst has arrived, then hands over the first batch alone.
func TestInFlightBatchesShareOneCommit(t *testing.T) {
	const batches = 12
	for _, tc := range connModes {
		t.Run(tc.name, func(t *testing.T) {
			cfg := testConfig(t)
			var clientTLS *tls.Config
			if tc.tls {
				clientTLS = mutualTLS(t, &cfg)
			}
			out := &writeLog{}
			base := logrus.New()
			base.SetOutput(out)
			base.SetFormatter(logfmt.Formatter{})
			srv, err := openServer(cfg, logfmt.Wrap(base))
			require.NoError(t, err)
			ln, err := net.Listen("tcp", "127.0.0.1:0")
			require.NoError(t, err)
			gl := &gatedListener{Listener: ln, conns: make(chan *gatedConn, 1), stop: make(chan struct{})}
			served := make(chan error, 1)
			go func() { served <- srv.Serve(gl) }()
			defer func() {
				close(gl.stop) // a gate still closed lets its session go
				require.NoError(t, srv.Shutdown(context.Background()))
				<-served
			}()

			raw, err := net.Dial("tcp", ln.Addr().String())
			require.NoError(t, err)
			defer raw.Close()
			client := &countingConn{Conn: raw}
			var conn net.Conn = client
			if clientTLS != nil {
				tc := tls.Client(client, clientTLS)
				require.NoError(t, tc.Handshake())
				conn = tc
			}
			gate := <-gl.conns
			br := bufio.NewReader(conn)
			write := func(m protocol.Message) int {
				frame, err := protocol.AppendMessage(nil, m)
				require.NoError(t, err)
				before := client.written()
				_, err = conn.Write(frame) // one TLS record per frame
				require.NoError(t, err)
				return client.written() - before
			}
			read := func(want protocol.MsgType) protocol.Message {
				m, err := protocol.ReadMessage(br, protocol.MaxServerFrame)
				require.NoError(t, err)
				require.Equal(t, want, m.Type(), "got %+v", m)
				return m
			}

			// HELLO's bytes on the wire: the gate holds the read after them.
			hello := protocol.Hello{Version: protocol.Version, Agency: 1}
			frame, err := protocol.AppendMessage(nil, hello)
			require.NoError(t, err)
			wire := len(frame)
			if clientTLS != nil {
				wire += 5 + 1 + 16 // TLS 1.3 record: header, content type, AEAD tag
			}
			gate.holdAfter(client.written() + wire)
			require.Equal(t, wire, write(hello))
			read(protocol.MsgHelloAck)

			var sent, first int
			for seq := uint32(1); seq <= batches; seq++ {
				bets := make([]lottery.Bet, seq) // batch n holds n bets: its line says which it is
				for i := range bets {
					bets[i] = lottery.Bet{FirstName: "Ana", LastName: "Paz", Document: fmt.Sprint(30000000 + i),
						Birthdate: "1990-01-02", Number: 1}
				}
				n := write(batchOf(seq, bets...))
				sent += n
				if seq == 1 {
					first = n
				}
			}
			gate.release <- burst{bytes: sent, first: first}
			for seq := uint32(1); seq <= batches; seq++ {
				require.Equal(t, seq, read(protocol.MsgBatchAck).(*protocol.BatchAck).Seq)
			}

			writes := out.with(vocab.ApuestaRecibida.Line(logfmt.Success))
			require.Len(t, writes, 1, "the %d batches stored with one commit, their lines in one write", batches)
			require.Len(t, writes[0], batches)
			require.Equal(t, sent, gate.readSince(), "every byte of the burst was read, and no more")
		})
	}
}

// Taking what has arrived never waits for more: a batch followed by the
// first half of the next (of its frame, and under TLS of its record) is
// answered at once, and the second batch once its rest arrives. A session
// that waited for the half-sent batch would answer the first only when the
// rest came: here never, and the test fails at replyWait, long before the
// idle timeout.
func TestBatchAnsweredWhileTheNextIsHalfSent(t *testing.T) {
	for _, tc := range connModes {
		t.Run(tc.name, func(t *testing.T) {
			cfg := testConfig(t)
			cfg.IdleTimeout = 3 * replyWait
			var clientTLS *tls.Config
			var keys keyLog
			if tc.tls {
				clientTLS = mutualTLS(t, &cfg)
				clientTLS.KeyLogWriter = &keys
			}
			central := startCentral(t, cfg)
			c, err := dialPeer(t, central.addr, nil, clientTLS)
			require.NoError(t, err)
			// The bytes of a message as the central receives them: under TLS
			// sealed here, one record each, so that one can be cut in half.
			wire := func(m protocol.Message) []byte {
				frame, err := protocol.AppendMessage(nil, m)
				require.NoError(t, err)
				return frame
			}
			if tc.tls {
				suite := c.conn.(*tls.Conn).ConnectionState().CipherSuite
				s := newRecordSealer(t, suite, keys.secret(t, "CLIENT_TRAFFIC_SECRET_0"))
				wire = func(m protocol.Message) []byte { return s.sealFrame(t, m) }
			}
			writeRaw := func(b []byte) {
				t.Helper()
				require.NoError(t, c.raw.SetWriteDeadline(time.Now().Add(replyWait)))
				_, err := c.raw.Write(b)
				require.NoError(t, err)
			}

			writeRaw(wire(protocol.Hello{Version: protocol.Version, Agency: 1}))
			c.expect(protocol.MsgHelloAck)
			first := wire(batchOf(1, intruders(3)...)) // sealed first: TLS numbers its records
			second := wire(batchOf(2, intruders(2)...))
			half := len(second) / 2
			writeRaw(append(first, second[:half]...)) // one TCP write
			require.Equal(t, uint32(1), c.expect(protocol.MsgBatchAck).(*protocol.BatchAck).Seq)
			writeRaw(second[half:])
			require.Equal(t, uint32(2), c.expect(protocol.MsgBatchAck).(*protocol.BatchAck).Seq)
		})
	}
}

// gatedListener hands each connection it accepts to the test as well.
type gatedListener struct {
	net.Listener
	conns chan *gatedConn
	stop  chan struct{}
}

func (l *gatedListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	socket, err := c.(*net.TCPConn).SyscallConn()
	if err != nil {
		c.Close()
		return nil, err
	}
	g := &gatedConn{Conn: c, socket: socket, release: make(chan burst, 1), stop: l.stop}
	select {
	case l.conns <- g:
	default: // one connection per test; another is served ungated
	}
	return g, nil
}

// burst is what the test wrote after HELLO: its bytes, and its first batch's.
type burst struct{ bytes, first int }

// gatedConn is the central's end of a connection. Once holdAfter(n) was
// called, it never reads past byte n; the read after it waits until the
// test released the burst and all of it has reached the socket, then reads
// only the first batch's bytes.
type gatedConn struct {
	net.Conn
	socket  syscall.RawConn
	release chan burst
	stop    chan struct{}

	mu    sync.Mutex
	at    int // hold at this many bytes read; 0: no hold
	read  int
	since int // bytes read after the hold
}

func (g *gatedConn) SyscallConn() (syscall.RawConn, error) { return g.socket, nil }

func (g *gatedConn) holdAfter(n int) {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.at = n
}

func (g *gatedConn) readSince() int {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.since
}

func (g *gatedConn) Read(p []byte) (int, error) {
	g.mu.Lock()
	at, read := g.at, g.read
	g.mu.Unlock()
	held := at > 0 && read >= at
	switch {
	case at > 0 && read < at:
		p = p[:min(len(p), at-read)]
	case held && read == at:
		var b burst
		select {
		case b = <-g.release:
		case <-g.stop:
			return 0, net.ErrClosed
		}
		// Wait for the burst's last byte: the socket turns readable as each
		// part arrives.
		if err := g.socket.Read(func(fd uintptr) bool {
			n, err := unix.IoctlGetInt(int(fd), unix.SIOCINQ)
			return err != nil || n >= b.bytes
		}); err != nil {
			return 0, err
		}
		p = p[:min(len(p), b.first)]
	}
	n, err := g.Conn.Read(p)
	g.mu.Lock()
	g.read += n
	if held {
		g.since += n
	}
	g.mu.Unlock()
	return n, err
}

// countingConn counts the bytes the test's end wrote, TLS records included.
type countingConn struct {
	net.Conn
	mu sync.Mutex
	n  int
}

func (c *countingConn) Write(p []byte) (int, error) {
	n, err := c.Conn.Write(p)
	c.mu.Lock()
	c.n += n
	c.mu.Unlock()
	return n, err
}

func (c *countingConn) written() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.n
}
