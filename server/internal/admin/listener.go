package admin

import (
	"crypto/tls"
	"errors"
	"io"
	"net"
	"sync"
	"time"
)

// tlsRecordHandshake is the first byte of every TLS connection: a handshake
// record's content type (RFC 8446, section 5.1). No HTTP request starts with it.
const tlsRecordHandshake = 0x16

// sniffTimeout bounds the wait for a connection's first byte.
const sniffTimeout = 5 * time.Second

// Listen serves plain HTTP and TLS on one listener: it reads each
// connection's first byte, and hands a connection that begins a TLS
// handshake over as a *tls.Conn with cfg (net/http then runs the handshake
// and sets Request.TLS), any other as it is; either way with that byte still
// to be read. One address keeps Prometheus scrapes and curl working as they
// did, and gives operators the same address over TLS.
//
// The first byte is read off Accept, by a goroutine per connection, within
// sniffTimeout: a client that sends nothing holds up no other. Close closes
// the connections still being read and waits for those goroutines.
func Listen(ln net.Listener, cfg *tls.Config) net.Listener {
	l := &mixedListener{Listener: ln, cfg: cfg, ready: make(chan accepted), done: make(chan struct{}),
		sniffing: make(map[net.Conn]struct{})}
	l.wg.Add(1)
	go l.acceptLoop()
	return l
}

type mixedListener struct {
	net.Listener
	cfg   *tls.Config
	ready chan accepted // a sniffed connection, or an error of the inner Accept
	done  chan struct{} // closed by Close
	wg    sync.WaitGroup

	mu       sync.Mutex
	closed   bool
	sniffing map[net.Conn]struct{} // connections whose first byte is awaited
}

type accepted struct {
	conn net.Conn
	err  error
}

// Accept returns the next connection whose first byte has come.
func (l *mixedListener) Accept() (net.Conn, error) {
	select {
	case a := <-l.ready:
		return a.conn, a.err
	case <-l.done:
		return nil, net.ErrClosed
	}
}

// Close stops accepting, closes the connections not yet handed over, and
// waits for the goroutines that read them.
func (l *mixedListener) Close() error {
	l.mu.Lock()
	if l.closed {
		l.mu.Unlock()
		return nil
	}
	l.closed = true
	close(l.done)
	for c := range l.sniffing {
		_ = c.Close()
	}
	l.mu.Unlock()
	err := l.Listener.Close()
	l.wg.Wait()
	return err
}

func (l *mixedListener) acceptLoop() {
	defer l.wg.Done()
	for {
		conn, err := l.Listener.Accept()
		if err != nil {
			// net/http waits and retries on a temporary error; anything else ends it.
			select {
			case l.ready <- accepted{err: err}:
			case <-l.done:
				return
			}
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() || isTemporary(err) {
				continue
			}
			return
		}
		l.mu.Lock()
		if l.closed {
			l.mu.Unlock()
			_ = conn.Close()
			return
		}
		l.sniffing[conn] = struct{}{}
		l.wg.Add(1)
		l.mu.Unlock()
		go l.sniff(conn)
	}
}

// isTemporary is net/http's own test of an Accept error worth retrying.
func isTemporary(err error) bool {
	te, ok := err.(interface{ Temporary() bool })
	return ok && te.Temporary()
}

// sniff reads conn's first byte and hands conn over, as TLS or not.
func (l *mixedListener) sniff(conn net.Conn) {
	defer l.wg.Done()
	var first [1]byte
	err := conn.SetReadDeadline(time.Now().Add(sniffTimeout))
	if err == nil {
		_, err = io.ReadFull(conn, first[:])
	}
	if err == nil {
		err = conn.SetReadDeadline(time.Time{})
	}
	l.mu.Lock()
	delete(l.sniffing, conn)
	l.mu.Unlock()
	if err != nil {
		_ = conn.Close() // silent, gone, or closed by Close
		return
	}
	var out net.Conn = &peekedConn{Conn: conn, first: first[:]}
	if first[0] == tlsRecordHandshake {
		out = tls.Server(out, l.cfg)
	}
	select {
	case l.ready <- accepted{conn: out}:
	case <-l.done:
		_ = out.Close()
	}
}

// peekedConn is a connection whose first bytes were read already: Read
// returns them first.
type peekedConn struct {
	net.Conn
	first []byte
}

func (c *peekedConn) Read(p []byte) (int, error) {
	if len(c.first) > 0 {
		n := copy(p, c.first)
		c.first = c.first[n:]
		return n, nil
	}
	return c.Conn.Read(p)
}
