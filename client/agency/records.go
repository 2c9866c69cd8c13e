package agency

import (
	"crypto/tls"
	"net"
	"sync/atomic"
)

// gatherMax bounds the TLS records a recordsConn gathers before it writes
// them anyway: about what the stream's buffer seals at once.
const gatherMax = sendBuffer + 1024

// maxRecord is the largest TLS record crypto/tls writes: a 5-byte header and
// 16 KiB of plaintext with at most 256 bytes of expansion.
const maxRecord = 5 + 16<<10 + 256

// newRecordsConn gathers over conn into a buffer allocated once, large enough
// for gatherMax and the record that passes it: grown by append, it would
// touch about twice the memory (the copies it outgrew), and every new page
// is a page fault in each agency process.
func newRecordsConn(conn net.Conn) *recordsConn {
	return &recordsConn{Conn: conn, buf: make([]byte, 0, gatherMax+maxRecord)}
}

// recordsConn is the TCP connection under TLS. crypto/tls writes every record
// (16 KiB at most) with its own Write, so the 64 KiB of batches the stream
// sends at once would take four system calls and four TCP segments where
// plaintext takes one. Once gathering (after the handshake), recordsConn
// keeps the records until flush, which the agency calls before it waits for
// any answer (receive), so nothing it sent is held while it waits.
//
// Only the agency's goroutine writes and flushes; a Close from another one (a
// SIGTERM) stops the gathering first, so the close_notify alert goes straight
// to the socket, and closes the socket at once if a flush is under way, as
// crypto/tls does for a Write under way: a stalled central cannot hold it up.
type recordsConn struct {
	net.Conn
	gather   atomic.Bool
	flushing atomic.Bool
	buf      []byte
}

func (c *recordsConn) Write(b []byte) (int, error) {
	if !c.gather.Load() {
		return c.Conn.Write(b)
	}
	c.buf = append(c.buf, b...)
	if len(c.buf) >= gatherMax {
		if err := c.flush(); err != nil {
			return 0, err
		}
	}
	return len(b), nil
}

// flush writes the records gathered so far.
func (c *recordsConn) flush() error {
	if len(c.buf) == 0 {
		return nil
	}
	c.flushing.Store(true)
	_, err := c.Conn.Write(c.buf)
	c.flushing.Store(false)
	c.buf = c.buf[:0]
	return err
}

// sealedConn is an agency's TLS connection over a recordsConn.
type sealedConn struct {
	*tls.Conn
	records *recordsConn
}

// Flush writes the records gathered so far: see recordsConn.
func (c sealedConn) Flush() error { return c.records.flush() }

// Close sends the close_notify alert and closes. Records still gathered are
// dropped: the agency flushes before every wait, so only a connection torn
// down in the middle of sending has any.
func (c sealedConn) Close() error {
	c.records.gather.Store(false)
	if c.records.flushing.Load() {
		c.records.Conn.Close() // breaks the flush; the alert could only wait behind it
	}
	return c.Conn.Close()
}

// flusher is a connection that may hold what was written until Flush.
type flusher interface{ Flush() error }
