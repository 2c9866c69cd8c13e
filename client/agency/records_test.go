package agency

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"io"
	"math/big"
	"net"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// countingConn counts the writes that reach the socket.
type countingConn struct {
	net.Conn
	writes atomic.Int64
}

func (c *countingConn) Write(b []byte) (int, error) {
	c.writes.Add(1)
	return c.Conn.Write(b)
}

// sealedPair is a sealedConn over a real TCP connection on 127.0.0.1, after
// a real TLS 1.3 handshake, and the peer's end of it.
func sealedPair(t *testing.T) (sealedConn, *countingConn, *tls.Conn) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	require.NoError(t, err)
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "central"},
		DNSNames: []string{"central"}, NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour)}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	require.NoError(t, err)
	cert, err := x509.ParseCertificate(der)
	require.NoError(t, err)
	pool := x509.NewCertPool()
	pool.AddCert(cert)

	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	defer ln.Close()
	accepted := make(chan *tls.Conn, 1)
	go func() {
		c, err := ln.Accept()
		if err != nil {
			accepted <- nil
			return
		}
		sc := tls.Server(c, &tls.Config{MinVersion: tls.VersionTLS13,
			Certificates: []tls.Certificate{{Certificate: [][]byte{der}, PrivateKey: key}}})
		if sc.Handshake() != nil {
			sc.Close()
			sc = nil
		}
		accepted <- sc
	}()
	raw, err := net.Dial("tcp", ln.Addr().String())
	require.NoError(t, err)
	counted := &countingConn{Conn: raw}
	rc := newRecordsConn(counted)
	tc := tls.Client(rc, &tls.Config{MinVersion: tls.VersionTLS13, RootCAs: pool, ServerName: "central"})
	require.NoError(t, tc.Handshake())
	peer := <-accepted
	require.NotNil(t, peer)
	t.Cleanup(func() { peer.Close() })
	rc.gather.Store(true)
	return sealedConn{Conn: tc, records: rc}, counted, peer
}

// The records of a window's batches leave in one write, and only at Flush.
func TestRecordsLeaveTogether(t *testing.T) {
	tests := []struct {
		name       string
		size       int
		wantWrites int64 // writes to the socket by Flush's end
	}{
		{"one frame", 8 << 10, 1},
		{"a window's 64 KiB: four records, one write", sendBuffer, 1},
		{"past what one flush gathers: written on the way", 3 * sendBuffer, 3},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			conn, counted, peer := sealedPair(t)
			defer conn.Close()
			bufCap := cap(conn.records.buf)
			data := bytes.Repeat([]byte("Ana,Pérez,1,1990-01-02,7574\n"), tt.size/28+1)[:tt.size]
			before := counted.writes.Load()
			_, err := conn.Write(data)
			require.NoError(t, err)
			if tt.size < gatherMax {
				assert.Equal(t, before, counted.writes.Load(), "nothing leaves before Flush")
			}
			got := make(chan []byte, 1)
			go func() {
				b := make([]byte, len(data))
				_, err := io.ReadFull(peer, b)
				if err != nil {
					b = nil
				}
				got <- b
			}()
			require.NoError(t, conn.Flush())
			assert.Equal(t, tt.wantWrites, counted.writes.Load()-before)
			assert.Equal(t, data, <-got, "the peer reads what was written, in order")
			assert.Equal(t, bufCap, cap(conn.records.buf), "the gathering buffer never grows")
		})
	}
}

// A Close from another goroutine (a SIGTERM) while a flush is stuck behind a
// peer that reads nothing returns at once and breaks the flush, rather than
// wait for crypto/tls's close_notify alert, which could only queue behind it.
func TestCloseBreaksAStalledFlush(t *testing.T) {
	conn, _, _ := sealedPair(t)
	// Far more than the socket buffers hold: the peer never reads.
	big := bytes.Repeat([]byte{'x'}, 64<<20)
	conn.records.buf = append(conn.records.buf, big...)
	flushed := make(chan error, 1)
	go func() { flushed <- conn.Flush() }()
	for !conn.records.flushing.Load() {
		// The flush is under way once it says so; it then blocks in the kernel.
		select {
		case err := <-flushed:
			t.Fatalf("the flush of 64 MiB to a peer that reads nothing returned: %v", err)
		default:
		}
	}
	closed := make(chan struct{})
	go func() {
		conn.Close()
		close(closed)
	}()
	select {
	case <-closed:
	case <-time.After(3 * time.Second): // crypto/tls gives its alert 5 s
		t.Fatal("Close waited behind the stalled flush")
	}
	assert.Error(t, <-flushed, "the flush ends with the closed socket")
}
