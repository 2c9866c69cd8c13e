package protocol

import (
	"bytes"
	"errors"
	"io"
	"net"
	"testing"
	"testing/iotest"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// conversation is one message of every type, in an order a real exchange could have.
func conversation() []Message {
	return []Message{
		Ping{}, Pong{},
		Hello{Version: Version, Agency: 3},
		HelloAck{Version: Version, Stored: 240, Finished: false, Drawn: false},
		batchOf(1, realisticRow(1), realisticRow(2), realisticRow(3)),
		BatchAck{Seq: 1},
		batchOf(2, []byte("Ñ,,,,9999\n")),
		BatchReject{Seq: 2, Code: CodeInvalidBet, Index: 0, Text: "invalid bet: last_name: empty"},
		Finish{Total: 243},
		FinishAck{Stored: 243},
		Consult{Agency: 3},
		Winners{Total: 3, Documents: []string{"30904465", "30000002"}},
		Winners{Total: 3, Documents: []string{"12"}},
		ErrorMessage{Code: CodeShuttingDown, Text: "la central se está apagando"},
	}
}

// stream is every message of conversation, back to back.
func stream(t testing.TB) []byte {
	var out []byte
	for _, m := range conversation() {
		var err error
		out, err = AppendMessage(out, m)
		require.NoError(t, err)
	}
	return out
}

// readAll reads and decodes frames until the reader reports an error, reusing one buffer.
func readAll(r io.Reader) ([]Message, error) {
	var msgs []Message
	buf := make([]byte, 0, 64)
	for {
		f, err := ReadFrame(r, MaxServerFrame, buf)
		if err != nil {
			return msgs, err
		}
		buf = f.Payload[:0]
		m, err := Decode(f)
		if err != nil {
			return msgs, err
		}
		msgs = append(msgs, m)
	}
}

func wantConversation() []Message {
	var out []Message
	for _, m := range conversation() {
		out = append(out, ptr(m))
	}
	return out
}

func TestShortReads(t *testing.T) {
	tests := []struct {
		name string
		wrap func(io.Reader) io.Reader
	}{
		{"plain", func(r io.Reader) io.Reader { return r }},
		{"one byte per read", iotest.OneByteReader},
		{"half of each read", iotest.HalfReader},
		{"EOF with the last data", iotest.DataErrReader},
		{"one byte, EOF with the last", func(r io.Reader) io.Reader { return iotest.DataErrReader(iotest.OneByteReader(r)) }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			msgs, err := readAll(tt.wrap(bytes.NewReader(stream(t))))
			require.ErrorIs(t, err, io.EOF, "a clean end between frames is io.EOF")
			require.NotErrorIs(t, err, ErrTruncated)
			assert.Equal(t, wantConversation(), msgs)
		})
	}
}

func TestShortReadsOfEveryFrame(t *testing.T) {
	for _, m := range conversation() {
		t.Run(m.Type().String(), func(t *testing.T) {
			frame := encode(t, m)
			for name, r := range map[string]io.Reader{
				"one byte": iotest.OneByteReader(bytes.NewReader(frame)),
				"half":     iotest.HalfReader(bytes.NewReader(frame)),
				"data+EOF": iotest.DataErrReader(bytes.NewReader(frame)),
			} {
				got, err := ReadMessage(r, MaxServerFrame)
				require.NoError(t, err, name)
				assert.Equal(t, ptr(m), got, name)
			}
		})
	}
}

func TestStreamCutAnywhere(t *testing.T) {
	// A connection that dies at any byte: between frames it is io.EOF, inside one ErrTruncated.
	full := stream(t)
	boundaries := map[int]bool{0: true}
	off := 0
	for _, m := range conversation() {
		off += len(encode(t, m))
		boundaries[off] = true
	}
	for cut := range len(full) {
		msgs, err := readAll(iotest.OneByteReader(bytes.NewReader(full[:cut])))
		if boundaries[cut] {
			require.ErrorIs(t, err, io.EOF, "cut at %d", cut)
		} else {
			require.ErrorIs(t, err, ErrTruncated, "cut at %d", cut)
		}
		require.Equal(t, wantConversation()[:len(msgs)], append([]Message{}, msgs...), "cut at %d", cut)
	}
}

func TestTimeoutReader(t *testing.T) {
	tests := []struct {
		name  string
		frame []byte
		wrap  func(io.Reader) io.Reader
		want  error // nil: the frame reads
	}{
		// TimeoutReader fails the second Read: the payload read of a frame with a payload.
		{"payload read times out", encode(t, Hello{Version: 1, Agency: 2}), iotest.TimeoutReader, iotest.ErrTimeout},
		{"header-only frame needs one read", encode(t, Ping{}), iotest.TimeoutReader, nil},
		{"header read times out", encode(t, Ping{}),
			func(r io.Reader) io.Reader { return iotest.TimeoutReader(iotest.OneByteReader(r)) }, iotest.ErrTimeout},
		{"any reader error is kept", encode(t, Ping{}),
			func(io.Reader) io.Reader { return iotest.ErrReader(net.ErrClosed) }, net.ErrClosed},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := ReadMessage(tt.wrap(bytes.NewReader(tt.frame)), MaxServerFrame)
			if tt.want == nil {
				require.NoError(t, err)
				return
			}
			require.ErrorIs(t, err, tt.want)
			assert.NotErrorIs(t, err, ErrTruncated, "a timeout is not a truncated frame")
		})
	}
}

// oneByteWriter accepts one byte per Write call.
type oneByteWriter struct {
	buf   bytes.Buffer
	calls int
}

func (w *oneByteWriter) Write(p []byte) (int, error) {
	w.calls++
	if len(p) == 0 {
		return 0, nil
	}
	w.buf.WriteByte(p[0])
	return 1, nil
}

// stuckWriter accepts nothing and reports no error, forever.
type stuckWriter struct{ calls int }

func (w *stuckWriter) Write([]byte) (int, error) { w.calls++; return 0, nil }

// failingWriter accepts n bytes, then fails every call with err.
type failingWriter struct {
	n   int
	err error
	buf bytes.Buffer
}

func (w *failingWriter) Write(p []byte) (int, error) {
	if w.n == 0 {
		return 0, w.err
	}
	k := min(w.n, len(p))
	w.n -= k
	w.buf.Write(p[:k])
	return k, nil
}

func TestOneByteWriter(t *testing.T) {
	for _, m := range conversation() {
		t.Run(m.Type().String(), func(t *testing.T) {
			want := encode(t, m)

			w := &oneByteWriter{}
			require.NoError(t, WriteMessage(w, m))
			assert.Equal(t, want, w.buf.Bytes())
			assert.Equal(t, len(want), w.calls)

			w = &oneByteWriter{}
			require.NoError(t, WriteFrame(w, want))
			assert.Equal(t, want, w.buf.Bytes())
		})
	}
}

func TestWriteErrors(t *testing.T) {
	errBroken := errors.New("broken pipe")
	frame := encode(t, Hello{Version: 1, Agency: 5})
	tests := []struct {
		name string
		w    io.Writer
		want error
	}{
		{"writer that accepts nothing", &stuckWriter{}, ErrShortWrite},
		{"error on the first write", &failingWriter{err: errBroken}, errBroken},
		{"error in the middle", &failingWriter{n: 3, err: errBroken}, errBroken},
		{"closed connection", &failingWriter{n: 7, err: net.ErrClosed}, net.ErrClosed},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			require.ErrorIs(t, WriteFrame(tt.w, frame), tt.want)
			require.ErrorIs(t, WriteMessage(tt.w, Hello{Version: 1, Agency: 5}), tt.want)
			if sw, ok := tt.w.(*stuckWriter); ok {
				assert.Equal(t, 2, sw.calls, "a (0, nil) writer must be given up on, not retried")
			}
		})
	}
}

func TestWriteFrameRefusesAPartialHeader(t *testing.T) {
	var w bytes.Buffer
	require.ErrorIs(t, WriteFrame(&w, []byte{byte(MsgPing), 0, 0}), ErrTruncated)
	assert.Zero(t, w.Len())
}

// TestOverAPipe sends the whole conversation one byte per Write over a synchronous
// in-memory connection and reads it with ReadMessage on the other end.
func TestOverAPipe(t *testing.T) {
	a, b := net.Pipe()
	defer b.Close()
	done := make(chan error, 1)
	go func() {
		defer a.Close()
		w := &pipeOneByte{a}
		for _, m := range conversation() {
			if err := WriteMessage(w, m); err != nil {
				done <- err
				return
			}
		}
		done <- nil
	}()
	msgs, err := readAll(b)
	require.ErrorIs(t, err, io.EOF)
	require.NoError(t, <-done)
	assert.Equal(t, wantConversation(), msgs)
}

// pipeOneByte writes to a connection one byte per call.
type pipeOneByte struct{ c net.Conn }

func (w *pipeOneByte) Write(p []byte) (int, error) {
	if len(p) == 0 {
		return 0, nil
	}
	return w.c.Write(p[:1])
}
