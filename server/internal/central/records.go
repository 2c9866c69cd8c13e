package central

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"errors"
	"io"
	"net"
)

// tlsRecordHeader is a TLS record's header: type, version, and a 2-byte length.
const tlsRecordHeader = 5

// handshakeBuffer is what a TLS connection gets before HELLO: enough for the
// handshake's records, far less than readBuffer.
const handshakeBuffer = 4 << 10

// recordConn is the TCP connection under TLS, read through its own buffer.
// A tls.Conn hands over one record per Read, so without it the session would
// see one batch at a time and sync each one alone; with it, the session can
// tell that a whole record has already arrived, read it without blocking,
// and store the batches an agency keeps in flight with one sync, as in
// plaintext.
//
// Read never crosses a record boundary: crypto/tls reads as much as its
// buffer holds, and would otherwise take the start of the next record, leave
// the buffer starting mid-record and recordBuffered reading a length from
// the middle of a ciphertext (wrong both ways: a missed record costs a sync,
// a false one blocks the session on a read).
type recordConn struct {
	net.Conn
	br   *bufio.Reader
	left int // bytes of the record being read not handed over yet; 0 at a boundary
	// bufferedOnly: Read fails with errNotBuffered rather than read the socket.
	bufferedOnly bool
}

// errNotBuffered is Read's error in readBuffered when the bytes it needs have
// not arrived. A timeout, so that crypto/tls takes it as temporary and keeps
// the connection usable.
var errNotBuffered net.Error = notBufferedError{}

type notBufferedError struct{}

func (notBufferedError) Error() string   { return "central: the next TLS record has not arrived" }
func (notBufferedError) Timeout() bool   { return true }
func (notBufferedError) Temporary() bool { return true }

func newRecordConn(conn net.Conn) *recordConn {
	return &recordConn{Conn: conn, br: bufio.NewReaderSize(conn, handshakeBuffer)}
}

func (c *recordConn) Read(p []byte) (int, error) {
	if c.bufferedOnly && (c.br.Buffered() == 0 || c.left == 0 && c.br.Buffered() < tlsRecordHeader) {
		return 0, errNotBuffered
	}
	if c.left == 0 {
		h, err := c.br.Peek(tlsRecordHeader)
		if err != nil {
			// A deadline (park wakes its watcher with one) hands over nothing:
			// the header's first bytes would not be counted, and every later
			// length would be read from mid-record. TLS reads again later.
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				return 0, err
			}
			// Less than a header before EOF or an error: the connection ends
			// here, and TLS reports why.
			return c.br.Read(p)
		}
		c.left = tlsRecordHeader + int(binary.BigEndian.Uint16(h[3:]))
	}
	n, err := c.br.Read(p[:min(len(p), c.left)])
	c.left -= n
	return n, err
}

// recordBuffered reports whether a whole TLS record is waiting in the buffer,
// so that the TLS layer can read it without touching the socket.
func (c *recordConn) recordBuffered() bool {
	n := c.br.Buffered()
	if c.left != 0 || n < tlsRecordHeader {
		return false
	}
	h, err := c.br.Peek(tlsRecordHeader)
	if err != nil {
		return false
	}
	return n >= tlsRecordHeader+int(binary.BigEndian.Uint16(h[3:]))
}

// readBuffered runs read with Read handing over only what the buffer holds:
// where it would wait on the socket it fails with errNotBuffered. A whole
// record may carry no data (an empty record, a KeyUpdate), and crypto/tls
// then reads on into the next record, which may not have arrived.
func (c *recordConn) readBuffered(read func() error) error {
	c.bufferedOnly = true
	defer func() { c.bufferedOnly = false }()
	return read()
}

// grow gives the buffer size bytes, keeping what it holds: called once the
// peer has proven who it is.
func (c *recordConn) grow(size int) {
	if c.br.Size() >= size {
		return
	}
	held, _ := c.br.Peek(c.br.Buffered())
	c.br = bufio.NewReaderSize(io.MultiReader(bytes.NewReader(bytes.Clone(held)), c.Conn), size)
}
