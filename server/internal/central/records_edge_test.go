package central

import (
	"bytes"
	"crypto/aes"
	"crypto/cipher"
	"crypto/hkdf"
	"crypto/sha256"
	"crypto/sha512"
	"crypto/tls"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"hash"
	"io"
	"net"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"lotterycentral.example/lottery/logfmt"
	"lotterycentral.example/protocol"
	"lotterycentral.example/server/internal/vocab"
)

// heldConn is a client's socket that, once hold is set, keeps what the TLS
// layer writes until the test releases it: the test decides where the
// bytes the central has received end.
type heldConn struct {
	net.Conn
	mu   sync.Mutex
	hold bool
	held []byte // everything written since hold was set
	sent int    // how much of held is on the wire
}

func (c *heldConn) Write(b []byte) (int, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.hold {
		c.held = append(c.held, b...)
		return len(b), nil
	}
	return c.Conn.Write(b)
}

func (c *heldConn) startHolding() {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.hold = true
}

func (c *heldConn) heldBytes() []byte {
	c.mu.Lock()
	defer c.mu.Unlock()
	return bytes.Clone(c.held)
}

// release puts the next n held bytes on the wire, in one write.
func (c *heldConn) release(n int) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	_, err := c.Conn.Write(c.held[c.sent : c.sent+n])
	c.sent += n
	return err
}

// readSpy records which bytes of the stream below TLS each Read handed over.
type readSpy struct {
	net.Conn
	off   int
	reads [][2]int // [start, end) of each Read
}

func (s *readSpy) Read(p []byte) (int, error) {
	n, err := s.Conn.Read(p)
	if n > 0 {
		s.reads = append(s.reads, [2]int{s.off, s.off + n})
	}
	s.off += n
	return n, err
}

// recordBounds is where each TLS record of stream starts, and where the last ends.
func recordBounds(t *testing.T, stream []byte) []int {
	t.Helper()
	bounds := []int{0}
	for off := 0; off < len(stream); {
		require.GreaterOrEqual(t, len(stream)-off, tlsRecordHeader)
		off += tlsRecordHeader + int(binary.BigEndian.Uint16(stream[off+3:]))
		require.LessOrEqual(t, off, len(stream))
		bounds = append(bounds, off)
	}
	return bounds
}

// A read deadline that expires with the first bytes of a record's header
// buffered (a parked session's watcher woken while the agency sends) leaves
// the records buffer on record boundaries: every later record is still seen
// whole, and the TLS layer still gets every byte.
func TestRecordConnAlignedAfterDeadline(t *testing.T) {
	p := newTrustPKI(t, 0)
	serverTLS := &tls.Config{MinVersion: tls.VersionTLS13, Certificates: []tls.Certificate{tlsCertificate(p.central.Cert)}}
	clientTLS := p.clientTLS(nil)
	clientTLS.DynamicRecordSizingDisabled = true
	sizes := []int{300, 16 << 10, 1, 700, 40} // the plaintext of each record, one write each

	for header := 1; header < tlsRecordHeader; header++ {
		t.Run(fmt.Sprintf("%d header bytes", header), func(t *testing.T) {
			ln, err := net.Listen("tcp", "127.0.0.1:0")
			require.NoError(t, err)
			defer ln.Close()
			raw, err := net.Dial("tcp", ln.Addr().String())
			require.NoError(t, err)
			defer raw.Close()
			accepted, err := ln.Accept()
			require.NoError(t, err)
			defer accepted.Close()
			require.NoError(t, raw.SetDeadline(time.Now().Add(replyWait)))
			require.NoError(t, accepted.SetDeadline(time.Now().Add(replyWait)))

			held := &heldConn{Conn: raw}
			client := tls.Client(held, clientTLS)
			shook := make(chan error, 1)
			go func() { shook <- client.Handshake() }()
			rc := newRecordConn(accepted)
			spy := &readSpy{Conn: rc}
			server := tls.Server(spy, serverTLS)
			serverErr := server.Handshake()
			if serverErr != nil {
				accepted.Close() // the client stops waiting
			}
			require.NoError(t, <-shook)
			require.NoError(t, serverErr)
			rc.grow(tlsRecordsBuffer)
			require.Zero(t, rc.left, "the handshake ended on a record boundary")
			require.Zero(t, rc.br.Buffered())

			held.startHolding()
			var plain [][]byte
			for i, n := range sizes {
				plain = append(plain, bytes.Repeat([]byte{byte('a' + i)}, n))
				_, err := client.Write(plain[i])
				require.NoError(t, err)
			}
			stream := held.heldBytes()
			bounds := recordBounds(t, stream)
			require.Len(t, bounds, len(sizes)+1, "one record per write")
			base := spy.off // the stream's first byte

			// wholeWaits is the truth recordBuffered must tell.
			wholeWaits := func() bool {
				off := spy.off - base
				i := slices.Index(bounds, off)
				return i >= 0 && i+1 < len(bounds) && off+rc.br.Buffered() >= bounds[i+1]
			}
			readRecord := func(i int) {
				t.Helper()
				got := make([]byte, len(plain[i]))
				_, err := io.ReadFull(server, got)
				require.NoError(t, err, "record %d", i)
				require.Equal(t, plain[i], got, "record %d", i)
				assert.Equal(t, bounds[i+1], spy.off-base, "record %d read: the TLS layer took exactly it", i)
				assert.Equal(t, wholeWaits(), rc.recordBuffered(), "record %d read: recordBuffered", i)
			}

			// The first record and the start of the second's header, in one segment.
			require.NoError(t, held.release(bounds[1]+header))
			readRecord(0)
			require.Equal(t, header, rc.br.Buffered(), "the header's first bytes arrived with the first record")
			assert.False(t, rc.recordBuffered())

			// The deadline park sets to wake its watcher.
			require.NoError(t, server.SetReadDeadline(time.Unix(1, 0)))
			n, err := server.Read(make([]byte, 100))
			assert.Zero(t, n)
			var ne net.Error
			require.True(t, errors.As(err, &ne) && ne.Timeout(), "want a timeout, got %v", err)

			require.NoError(t, server.SetReadDeadline(time.Now().Add(replyWait)))
			require.NoError(t, held.release(len(stream)-bounds[1]-header))
			for i := 1; i < len(sizes); i++ {
				readRecord(i)
				if i+1 < len(sizes) {
					// The first read pulled in everything released in one write.
					assert.True(t, rc.recordBuffered(), "record %d read: the next one waits whole", i)
				}
			}
			assert.False(t, rc.recordBuffered(), "every record read")
			for _, r := range spy.reads {
				if r[1] <= base {
					continue // the handshake
				}
				start, end := r[0]-base, r[1]-base
				i, _ := slices.BinarySearch(bounds, start+1)
				assert.LessOrEqual(t, end, bounds[i], "a read of [%d, %d) ran past its record's end at %d", start, end, bounds[i])
			}
		})
	}
}

// keyLog is a tls.Config.KeyLogWriter: the secrets of one connection.
type keyLog struct{ bytes.Buffer }

// secret is the secret logged under label.
func (k *keyLog) secret(t *testing.T, label string) []byte {
	t.Helper()
	for line := range strings.Lines(k.String()) {
		f := strings.Fields(line)
		if len(f) == 3 && f[0] == label {
			s, err := hex.DecodeString(f[2])
			require.NoError(t, err)
			return s
		}
	}
	t.Fatalf("no %s in the key log", label)
	return nil
}

// TLS 1.3 record content types.
const (
	recordHandshake       = 0x16
	recordApplicationData = 0x17
)

// recordSealer seals TLS 1.3 records as the client's write side does, so a
// test can send records crypto/tls never sends on its own. AES-GCM only.
type recordSealer struct {
	hash   func() hash.Hash
	keyLen int
	secret []byte
	aead   cipher.AEAD
	iv     []byte
	seq    uint64
}

// newRecordSealer is the sealer of a connection that negotiated suite, from
// its traffic secret; it skips the test on a suite it cannot seal.
func newRecordSealer(t *testing.T, suite uint16, secret []byte) *recordSealer {
	t.Helper()
	s := &recordSealer{}
	switch suite {
	case tls.TLS_AES_128_GCM_SHA256:
		s.hash, s.keyLen = sha256.New, 16
	case tls.TLS_AES_256_GCM_SHA384:
		s.hash, s.keyLen = sha512.New384, 32
	default:
		t.Skipf("negotiated %s: this test seals AES-GCM records only", tls.CipherSuiteName(suite))
	}
	s.setSecret(t, secret)
	return s
}

// expandLabel is HKDF-Expand-Label with an empty context (RFC 8446, 7.1).
func (s *recordSealer) expandLabel(t *testing.T, secret []byte, label string, n int) []byte {
	t.Helper()
	label = "tls13 " + label
	info := append([]byte{byte(n >> 8), byte(n), byte(len(label))}, label...)
	out, err := hkdf.Expand(s.hash, secret, string(append(info, 0)), n)
	require.NoError(t, err)
	return out
}

func (s *recordSealer) setSecret(t *testing.T, secret []byte) {
	t.Helper()
	block, err := aes.NewCipher(s.expandLabel(t, secret, "key", s.keyLen))
	require.NoError(t, err)
	s.aead, err = cipher.NewGCM(block)
	require.NoError(t, err)
	s.secret, s.iv, s.seq = secret, s.expandLabel(t, secret, "iv", s.aead.NonceSize()), 0
}

// update moves to the next traffic secret, as after sending a KeyUpdate.
func (s *recordSealer) update(t *testing.T) {
	t.Helper()
	s.setSecret(t, s.expandLabel(t, s.secret, "traffic upd", s.hash().Size()))
}

// seal is the next record, carrying content of type typ.
func (s *recordSealer) seal(typ byte, content []byte) []byte {
	inner := append(bytes.Clone(content), typ)
	hdr := []byte{recordApplicationData, 3, 3, 0, 0}
	binary.BigEndian.PutUint16(hdr[3:], uint16(len(inner)+s.aead.Overhead()))
	nonce := bytes.Clone(s.iv)
	for i := range 8 {
		nonce[len(nonce)-1-i] ^= byte(s.seq >> (8 * i))
	}
	s.seq++
	return append(hdr, s.aead.Seal(nil, nonce, inner, hdr)...)
}

// sealFrame is the next record, carrying m's frame.
func (s *recordSealer) sealFrame(t *testing.T, m protocol.Message) []byte {
	t.Helper()
	frame, err := protocol.AppendMessage(nil, m)
	require.NoError(t, err)
	return s.seal(recordApplicationData, frame)
}

// A whole record that carries no application data, right behind a BATCH's
// record, does not hold the batch's ack back: the session reads on only
// what has arrived, answers the batch, and goes on serving the connection.
func TestBatchAnsweredPastRecordWithoutData(t *testing.T) {
	for _, tc := range []struct {
		name string
		// record seals the record without data, and updates s's keys if it says so.
		record func(t *testing.T, s *recordSealer) []byte
	}{
		{"empty application data", func(_ *testing.T, s *recordSealer) []byte {
			return s.seal(recordApplicationData, nil)
		}},
		{"KeyUpdate", func(t *testing.T, s *recordSealer) []byte {
			r := s.seal(recordHandshake, []byte{24, 0, 0, 1, 0}) // update_not_requested
			s.update(t)
			return r
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := newTrustPKI(t, 1)
			cfg := testConfig(t)
			// Before the fix the ack waits for the idle timeout: well after replyWait.
			cfg.IdleTimeout = 3 * replyWait
			p.serveTLS(&cfg)
			central := startCentral(t, cfg)

			var keys keyLog
			clientTLS := p.clientTLS(p.agencies[1].Cert)
			clientTLS.KeyLogWriter = &keys
			c, err := dialPeer(t, central.addr, nil, clientTLS)
			require.NoError(t, err)
			suite := c.conn.(*tls.Conn).ConnectionState().CipherSuite
			s := newRecordSealer(t, suite, keys.secret(t, "CLIENT_TRAFFIC_SECRET_0"))
			// Every record the client sends is sealed here: the central reads
			// them through TLS, and its answers are read through the client's.
			writeRaw := func(b []byte) {
				t.Helper()
				require.NoError(t, c.raw.SetWriteDeadline(time.Now().Add(replyWait)))
				_, err := c.raw.Write(b)
				require.NoError(t, err)
			}

			// The client sent no record since the handshake: HELLO is number 0.
			writeRaw(s.sealFrame(t, protocol.Hello{Version: protocol.Version, Agency: 1}))
			c.expect(protocol.MsgHelloAck)

			burst := s.sealFrame(t, batchOf(1, intruders(3)...))
			writeRaw(append(burst, tc.record(t, s)...)) // one TCP write
			ack := c.expect(protocol.MsgBatchAck).(*protocol.BatchAck)
			require.Equal(t, uint32(1), ack.Seq)

			// The connection goes on: a blocking read, then the next batch.
			writeRaw(s.sealFrame(t, batchOf(2, intruders(2)...)))
			ack = c.expect(protocol.MsgBatchAck).(*protocol.BatchAck)
			require.Equal(t, uint32(2), ack.Seq)
			central.logs.AwaitT(t, 2, vocab.ApuestaRecibida.Line(logfmt.Success))
		})
	}
}
