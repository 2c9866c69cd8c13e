package central

import (
	"bufio"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"lotterycentral.example/lottery"
	"lotterycentral.example/protocol"
)

// rawConn is a hand-driven agency connection to the central, plaintext or
// TLS: the test writes exactly the bytes it wants and reads the central's
// answers with a deadline. Its try* methods (and read) return errors instead
// of failing the test, for attack scripts and for goroutines; the others are
// built on them and fail the test.
type rawConn struct {
	t        *testing.T
	raw      net.Conn // the TCP connection (a *net.TCPConn, for CloseWrite)
	conn     net.Conn // raw, or the TLS connection over it
	br       *bufio.Reader
	agency   int
	seq      uint32 // the sequence number the next batch carries
	stored   uint64 // bets of the agency's file the central holds, as this connection knows it
	finished bool   // this agency's FINISH was counted
}

// dialRaw opens a plaintext connection to addr.
func dialRaw(t *testing.T, addr string) *rawConn {
	t.Helper()
	c, err := dialPeer(t, addr, nil, nil)
	require.NoError(t, err)
	return c
}

// dialPeer connects to addr, from local when it is not nil, and runs the TLS
// handshake when cfg is not nil. A handshake error is returned with the
// connection (its address is in the central's log), not failed on: in TLS 1.3
// a client certificate is refused after the client's handshake returns, so
// most refusals show on the first read instead.
func dialPeer(t *testing.T, addr string, local net.Addr, cfg *tls.Config) (*rawConn, error) {
	t.Helper()
	d := net.Dialer{Timeout: replyWait, LocalAddr: local}
	raw, err := d.Dial("tcp", addr)
	require.NoError(t, err)
	t.Cleanup(func() { raw.Close() })
	c := &rawConn{t: t, raw: raw, conn: raw, seq: 1}
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

// addr is this end's address, as the central logs it (its vocab.Remoto field).
func (c *rawConn) addr() string { return c.raw.LocalAddr().String() }

// tryWrite writes b as it is, within replyWait.
func (c *rawConn) tryWrite(b []byte) error {
	if err := c.conn.SetWriteDeadline(time.Now().Add(replyWait)); err != nil {
		return err
	}
	_, err := c.conn.Write(b)
	return err
}

func (c *rawConn) write(b []byte) {
	c.t.Helper()
	require.NoError(c.t, c.tryWrite(b))
}

// trySend writes m as one frame.
func (c *rawConn) trySend(m protocol.Message) error {
	frame, err := protocol.AppendMessage(nil, m)
	if err != nil {
		return err
	}
	return c.tryWrite(frame)
}

func (c *rawConn) send(m protocol.Message) {
	c.t.Helper()
	require.NoError(c.t, c.trySend(m))
}

// read returns the central's next message (an ERROR too), or the error that
// ended the read.
func (c *rawConn) read() (protocol.Message, error) {
	if err := c.conn.SetReadDeadline(time.Now().Add(replyWait)); err != nil {
		return nil, err
	}
	return protocol.ReadMessage(c.br, protocol.MaxServerFrame)
}

// tryRead is read, except that an ERROR comes back as its
// *protocol.RemoteError, beside the message.
func (c *rawConn) tryRead() (protocol.Message, error) {
	m, err := c.read()
	if err != nil {
		return nil, err
	}
	if e, ok := m.(*protocol.ErrorMessage); ok {
		return m, e.Err()
	}
	return m, nil
}

// call sends m and reads the answer.
func (c *rawConn) call(m protocol.Message) (protocol.Message, error) {
	if err := c.trySend(m); err != nil {
		return nil, err
	}
	return c.tryRead()
}

// expect requires the central's next message to be of type want.
func (c *rawConn) expect(want protocol.MsgType) protocol.Message {
	c.t.Helper()
	m, err := c.read()
	require.NoError(c.t, err, "waiting for %s", want)
	require.Equal(c.t, want, m.Type(), "got %+v", m)
	return m
}

// expectError: the central explains itself with ERROR code, then closes.
func (c *rawConn) expectError(code protocol.Code) {
	c.t.Helper()
	m := c.expect(protocol.MsgError).(*protocol.ErrorMessage)
	assert.Equal(c.t, code, m.Code, "text: %s", m.Text)
	assert.NotEmpty(c.t, m.Text, "an ERROR must say why in words")
	c.expectClosed()
}

// expectClosed: the central closed the connection without another frame.
func (c *rawConn) expectClosed() {
	c.t.Helper()
	m, err := c.read()
	require.Error(c.t, err, "expected the connection closed, got %+v", m)
	require.Nil(c.t, m, "expected the connection closed, got %+v", m)
	var ne net.Error
	require.False(c.t, errors.As(err, &ne) && ne.Timeout(), "the central did not close the connection: %v", err)
	require.True(c.t, errors.Is(err, io.EOF) || errors.Is(err, syscall.ECONNRESET), "%v", err)
}

// expectReject: the central refuses batch seq with code about bet index and
// keeps the connection. It returns the refusal, for its text.
func (c *rawConn) expectReject(seq uint32, code protocol.Code, index uint32) *protocol.BatchReject {
	c.t.Helper()
	m := c.expect(protocol.MsgBatchReject).(*protocol.BatchReject)
	assert.Equal(c.t, seq, m.Seq)
	assert.Equal(c.t, code, m.Code, "text: %s", m.Text)
	assert.Equal(c.t, index, m.Index, "text: %s", m.Text)
	assert.NotEmpty(c.t, m.Text)
	return m
}

// ping proves the connection is still open and served.
func (c *rawConn) ping() {
	c.t.Helper()
	c.send(protocol.Ping{})
	c.expect(protocol.MsgPong)
}

// tryHello says HELLO agency; the error is how the central refused it.
func (c *rawConn) tryHello(agency int) (*protocol.HelloAck, error) {
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

func (c *rawConn) hello(agency int) *protocol.HelloAck {
	c.t.Helper()
	ack, err := c.tryHello(agency)
	require.NoError(c.t, err, "HELLO %d", agency)
	return ack
}

// sendBets sends bets in acknowledged batches of at most size, as rows
// (lottery.AppendRow: their Agency is not sent, the connection's is theirs).
func (c *rawConn) sendBets(bets []lottery.Bet, size int) {
	c.t.Helper()
	for len(bets) > 0 {
		n := min(size, len(bets))
		c.send(batchOf(c.seq, bets[:n]...))
		ack := c.expect(protocol.MsgBatchAck).(*protocol.BatchAck)
		require.Equal(c.t, c.seq, ack.Seq)
		c.seq++
		c.stored += uint64(n)
		bets = bets[n:]
	}
}

// finish says FINISH total, requires FINISH_ACK with that count and returns
// its digest.
func (c *rawConn) finish(total int) protocol.Digest {
	c.t.Helper()
	c.send(protocol.Finish{Total: uint64(total)})
	ack := c.expect(protocol.MsgFinishAck).(*protocol.FinishAck)
	require.Equal(c.t, uint64(total), ack.Stored)
	c.finished = true
	return ack.Digest
}

// consult asks for the agency's winners and reads every frame of the answer.
func (c *rawConn) consult() []string {
	c.t.Helper()
	c.send(protocol.Consult{Agency: uint32(c.agency)})
	return c.readWinners()
}

// readWinners reads every INFORM_AGENCY_WINNERS frame of one answer.
func (c *rawConn) readWinners() []string {
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
