package central

import (
	"bytes"
	"crypto/tls"
	"io"
	"net"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// Records that arrived together are seen whole below TLS one after another,
// however crypto/tls reads: that is what lets the batches of one burst share
// one sync. Real TLS 1.3 over a socket on 127.0.0.1.
func TestRecordConnSeesEachWholeRecord(t *testing.T) {
	const maxRecord = 16 << 10 // crypto/tls's largest plaintext per record
	p := newTrustPKI(t, 0)
	serverTLS := &tls.Config{MinVersion: tls.VersionTLS13, Certificates: []tls.Certificate{tlsCertificate(p.central.Cert)}}
	clientTLS := p.clientTLS(nil)
	clientTLS.DynamicRecordSizingDisabled = true // full records from the start, as the agency sends

	for _, tc := range []struct {
		name   string
		writes []int // the sizes of the client's writes, all sent before the central reads
	}{
		{"four full records in one write", []int{4 * maxRecord}},
		{"full records and a short one", []int{2*maxRecord + 700}},
		{"small records", []int{1, 300, 5000, 40}},
		{"mixed", []int{maxRecord + 1, 9, 3 * maxRecord}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var records [][]byte // the plaintext of each record, in order
			var sent bytes.Buffer
			for i, n := range tc.writes {
				w := bytes.Repeat([]byte{byte('a' + i)}, n)
				sent.Write(w)
				for ; len(w) > 0; w = w[min(len(w), maxRecord):] {
					records = append(records, w[:min(len(w), maxRecord)])
				}
			}

			ln, err := net.Listen("tcp", "127.0.0.1:0")
			require.NoError(t, err)
			defer ln.Close()
			ready, written := make(chan struct{}), make(chan error, 1)
			stop := make(chan struct{}) // a failed require below: the client gives up
			defer close(stop)
			go func() {
				conn, err := tls.Dial("tcp", ln.Addr().String(), clientTLS)
				if err != nil {
					written <- err
					return
				}
				defer conn.Close()
				// As an agency sends its batches only once HELLO is answered,
				// after the central grew its buffer.
				select {
				case <-ready:
				case <-stop:
					return
				}
				for _, n := range tc.writes {
					if _, err := conn.Write(sent.Next(n)); err != nil {
						written <- err
						return
					}
				}
				written <- nil
				// Stay open until the central has read everything.
				_, _ = io.Copy(io.Discard, conn)
			}()

			raw, err := ln.Accept()
			require.NoError(t, err)
			rc := newRecordConn(raw)
			conn := tls.Server(rc, serverTLS)
			defer conn.Close()
			require.NoError(t, conn.Handshake())
			rc.grow(tlsRecordsBuffer)
			close(ready)
			require.NoError(t, <-written)

			for i, want := range records {
				got := make([]byte, len(want))
				_, err := io.ReadFull(conn, got)
				require.NoError(t, err, "record %d", i)
				require.Equal(t, want, got, "record %d", i)
				if i+1 < len(records) {
					// Loopback delivered every write before the client said so;
					// the first read pulled them all into the buffer.
					assert.True(t, rc.recordBuffered(), "record %d of %d read: the next one is waiting whole", i+1, len(records))
				}
			}
			assert.False(t, rc.recordBuffered(), "every record read")
		})
	}
}
