package agency

import (
	"crypto/tls"
	"net"
	"sync"
)

// gatherMax bounds the TLS records a recordsConn gathers before it writes
// them anyway: about what the stream's buffer seals at once.
const gatherMax = sendBuffer + 1024

// recordsConn is the TCP connection under TLS. crypto/tls writes every record
// (16 KiB at most) with its own Write, so the 64 KiB of batches the stream
// sends at once would take four system calls and four TCP segments where
// plaintext takes one. Once gathering (after the handshake), recordsConn
// keeps the records until flush, which the agency calls before it waits for
// any answer (receive), so nothing it sent is held while it waits.
type recordsConn struct {
	net.Conn
	mu     sync.Mutex // Close may come from another goroutine (a SIGTERM)
	gather bool
	buf    []byte
}

func (c *recordsConn) Write(b []byte) (int, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if !c.gather {
		return c.Conn.Write(b)
	}
	c.buf = append(c.buf, b...)
	if len(c.buf) >= gatherMax {
		if err := c.flushLocked(); err != nil {
			return 0, err
		}
	}
	return len(b), nil
}

// flush writes the records gathered so far.
func (c *recordsConn) flush() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.flushLocked()
}

func (c *recordsConn) flushLocked() error {
	if len(c.buf) == 0 {
		return nil
	}
	_, err := c.Conn.Write(c.buf)
	c.buf = c.buf[:0]
	return err
}

// stopGathering writes what was gathered and lets every later record through
// at once: for the close_notify alert crypto/tls writes on Close.
func (c *recordsConn) stopGathering() {
	c.mu.Lock()
	defer c.mu.Unlock()
	_ = c.flushLocked() // best effort: the connection is closing
	c.gather = false
}

// sealedConn is an agency's TLS connection over a recordsConn.
type sealedConn struct {
	*tls.Conn
	records *recordsConn
}

// Flush writes the records gathered so far: see recordsConn.
func (c sealedConn) Flush() error { return c.records.flush() }

// Close sends what was gathered and the close_notify alert, then closes.
func (c sealedConn) Close() error {
	c.records.stopGathering()
	return c.Conn.Close()
}

// flusher is a connection that may hold what was written until Flush.
type flusher interface{ Flush() error }
