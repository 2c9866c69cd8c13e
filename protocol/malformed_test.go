package protocol

import (
	"bytes"
	"encoding/binary"
	"io"
	"math"
	"runtime"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// hdr is a frame header announcing a payload of n bytes.
func hdr(t MsgType, n uint32) []byte {
	b := []byte{byte(t), 0, 0, 0, 0}
	binary.BigEndian.PutUint32(b[1:], n)
	return b
}

// frameOf is a frame whose header announces exactly len(payload) bytes.
func frameOf(t MsgType, payload ...[]byte) []byte {
	p := bytes.Join(payload, nil)
	return append(hdr(t, uint32(len(p))), p...)
}

func u16(v uint16) []byte { return binary.BigEndian.AppendUint16(nil, v) }
func u32(v uint32) []byte { return binary.BigEndian.AppendUint32(nil, v) }

// str8 is a str8 field as the wire carries it.
func str8(s string) []byte { return append([]byte{byte(len(s))}, s...) }

// text16 is a text16 field as the wire carries it.
func text16(s string) []byte { return append(u16(uint16(len(s))), s...) }

// rowBytes is one row, as BATCH carries it.
var rowBytes = []byte("Ana,Paz,123,1990-01-02,77\n")

func TestMalformedFrames(t *testing.T) {
	tests := []struct {
		name     string
		raw      []byte
		maxFrame int
		want     error
	}{
		// Framing: ReadFrame refuses these.
		{"no bytes at all", nil, MaxClientFrame, io.EOF},
		{"header of 1 byte", []byte{byte(MsgHello)}, MaxClientFrame, ErrTruncated},
		{"header of 4 bytes", hdr(MsgHello, 5)[:4], MaxClientFrame, ErrTruncated},
		{"payload missing", hdr(MsgHello, 5), MaxClientFrame, ErrTruncated},
		{"payload truncated", append(hdr(MsgHello, 5), 1, 0, 0), MaxClientFrame, ErrTruncated},
		{"unknown type 0x00", hdr(0x00, 0), MaxClientFrame, ErrUnknownType},
		{"unknown type 0x06", hdr(0x06, 0), MaxClientFrame, ErrUnknownType},
		{"unknown type 0x80", hdr(0x80, 0), MaxServerFrame, ErrUnknownType},
		{"unknown type 0xFE", append(hdr(0xFE, 2), 0, 0), MaxServerFrame, ErrUnknownType},
		{"client frame one byte over", hdr(MsgBatch, MaxClientPayload+1), MaxClientFrame, ErrFrameTooLarge},
		{"server frame one byte over", hdr(MsgWinners, MaxServerPayload+1), MaxServerFrame, ErrFrameTooLarge},
		{"header announcing 4 GiB", hdr(MsgBatch, math.MaxUint32), MaxClientFrame, ErrFrameTooLarge},
		{"4 GiB under the server limit", hdr(MsgWinners, math.MaxUint32), MaxServerFrame, ErrFrameTooLarge},
		{"oversize unknown type is too large first", hdr(0x42, math.MaxUint32), MaxClientFrame, ErrFrameTooLarge},
		{"limit below the header size", hdr(MsgPing, 0), HeaderSize - 1, ErrFrameTooLarge},
		{"limit of zero", hdr(MsgPing, 1<<31), 0, ErrFrameTooLarge},

		// Payloads: the frame reads, Decode refuses it.
		{"hello payload short", frameOf(MsgHello, []byte{1}, u32(7)[:3]), MaxClientFrame, ErrTruncated},
		{"hello trailing byte", frameOf(MsgHello, []byte{1}, u32(7), []byte{0}), MaxClientFrame, ErrTrailingBytes},
		{"hello_ack payload short", frameOf(MsgHelloAck, []byte{1}, make([]byte, 8)), MaxServerFrame, ErrTruncated},
		{"hello_ack without its digest", frameOf(MsgHelloAck, []byte{2}, make([]byte, 8), []byte{1}), MaxServerFrame, ErrTruncated},
		{"ping with a payload", frameOf(MsgPing, []byte{0}), MaxClientFrame, ErrTrailingBytes},
		{"pong with a payload", frameOf(MsgPong, []byte("x")), MaxServerFrame, ErrTrailingBytes},
		{"finish of 7 bytes", frameOf(MsgFinish, make([]byte, 7)), MaxClientFrame, ErrTruncated},
		{"finish of 9 bytes", frameOf(MsgFinish, make([]byte, 9)), MaxClientFrame, ErrTrailingBytes},
		{"consult empty", frameOf(MsgConsult), MaxClientFrame, ErrTruncated},
		{"batch_ack trailing", frameOf(MsgBatchAck, u32(1), []byte{0}), MaxServerFrame, ErrTrailingBytes},
		{"batch of 3 bytes", frameOf(MsgBatch, u32(1)[:3]), MaxClientFrame, ErrTruncated},
		{"batch without count", frameOf(MsgBatch, u32(1)), MaxClientFrame, ErrTruncated},
		{"batch with half a count", frameOf(MsgBatch, u32(1), []byte{0}), MaxClientFrame, ErrTruncated},
		{"empty batch", frameOf(MsgBatch, u32(1), u16(0)), MaxClientFrame, ErrEmptyBatch},
		{"empty batch with rows", frameOf(MsgBatch, u32(1), u16(0), rowBytes), MaxClientFrame, ErrEmptyBatch},
		{"empty batch with bytes that are no row", frameOf(MsgBatch, u32(1), u16(0), []byte("x")), MaxClientFrame, ErrEmptyBatch},
		{"batch count 1 and no rows", frameOf(MsgBatch, u32(1), u16(1)), MaxClientFrame, ErrMalformed},
		{"batch count over what the payload holds", frameOf(MsgBatch, u32(1), u16(0xFFFF), rowBytes), MaxClientFrame, ErrMalformed},
		{"batch count one over", frameOf(MsgBatch, u32(1), u16(2), rowBytes), MaxClientFrame, ErrMalformed},
		{"batch count one under", frameOf(MsgBatch, u32(1), u16(1), rowBytes, rowBytes), MaxClientFrame, ErrMalformed},
		{"batch last row without its LF", frameOf(MsgBatch, u32(1), u16(1), rowBytes[:len(rowBytes)-1]), MaxClientFrame, ErrMalformed},
		{"batch last row ends in CR", frameOf(MsgBatch, u32(1), u16(1), rowBytes[:len(rowBytes)-1], []byte("\r")), MaxClientFrame, ErrMalformed},
		{"batch second row without its LF", frameOf(MsgBatch, u32(1), u16(2), rowBytes, rowBytes[:12]), MaxClientFrame, ErrMalformed},
		// Rows run to the end of the payload: a byte after the last row is a row without its LF.
		{"batch byte after the last row", frameOf(MsgBatch, u32(1), u16(1), rowBytes, []byte{0}), MaxClientFrame, ErrMalformed},
		{"batch a quoted LF counts as a line", frameOf(MsgBatch, u32(1), u16(1), []byte("\"An\na\",Paz,1,1990-01-02,7\n")), MaxClientFrame, ErrMalformed},
		// The encoder writes count and rows as given: a count its rows do not hold is the decoder's to refuse.
		{"batch encoded with a count its rows do not hold", encode(t, Batch{Seq: 1, Count: 3, Rows: rowBytes}), MaxClientFrame, ErrMalformed},
		{"batch encoded with no count", encode(t, Batch{Seq: 1, Rows: rowBytes}), MaxClientFrame, ErrEmptyBatch},
		{"error text length past the end", frameOf(MsgError, u16(1), u16(10), []byte("short")), MaxServerFrame, ErrTruncated},
		{"error text invalid UTF-8", frameOf(MsgError, u16(1), text16("bad \xc3\x28")), MaxServerFrame, ErrInvalidUTF8},
		{"error text surrogate half", frameOf(MsgError, u16(1), text16("\xed\xa0\x80")), MaxServerFrame, ErrInvalidUTF8},
		{"error text over MaxText", frameOf(MsgError, u16(1), text16(string(bytes.Repeat([]byte("a"), MaxText+1)))), MaxServerFrame, ErrStringTooLong},
		{"error trailing", frameOf(MsgError, u16(1), text16("ok"), []byte{0}), MaxServerFrame, ErrTrailingBytes},
		{"reject text invalid UTF-8", frameOf(MsgBatchReject, u32(1), u16(8), u32(0), text16("\xff")), MaxServerFrame, ErrInvalidUTF8},
		{"reject text past the end", frameOf(MsgBatchReject, u32(1), u16(8), u32(0), u16(3), []byte("ab")), MaxServerFrame, ErrTruncated},
		{"reject without text", frameOf(MsgBatchReject, u32(1), u16(8), u32(0)), MaxServerFrame, ErrTruncated},
		{"winners count over total", frameOf(MsgWinners, u32(1), u16(2), str8("1"), str8("2")), MaxServerFrame, ErrMalformed},
		{"winners count over the payload", frameOf(MsgWinners, u32(0xFFFF), u16(0xFFFF), str8("1")), MaxServerFrame, ErrTruncated},
		{"winners document past the end", frameOf(MsgWinners, u32(2), u16(2), str8("1"), []byte{9, '1'}), MaxServerFrame, ErrTruncated},
		{"winners trailing", frameOf(MsgWinners, u32(1), u16(1), str8("1"), []byte{0}), MaxServerFrame, ErrTrailingBytes},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f, err := ReadFrame(bytes.NewReader(tt.raw), tt.maxFrame, nil)
			if err == nil {
				_, err = Decode(f)
			}
			require.ErrorIs(t, err, tt.want)
			assert.NotEmpty(t, err.Error())
			// ReadMessage reports the same.
			_, err = ReadMessage(bytes.NewReader(tt.raw), tt.maxFrame)
			require.ErrorIs(t, err, tt.want)
		})
	}
}

func TestReadFrameTooLargeKeepsType(t *testing.T) {
	f, err := ReadFrame(bytes.NewReader(hdr(MsgBatch, 9000)), MaxClientFrame, nil)
	require.ErrorIs(t, err, ErrFrameTooLarge)
	assert.Equal(t, MsgBatch, f.Type, "the type is reported so the refusal can be logged")
	assert.Nil(t, f.Payload)
}

func TestReadFrameLimitIsInclusive(t *testing.T) {
	for _, tc := range []struct {
		name     string
		typ      MsgType
		maxFrame int
	}{
		{"client", MsgBatch, MaxClientFrame},
		{"server", MsgWinners, MaxServerFrame},
	} {
		t.Run(tc.name, func(t *testing.T) {
			raw := append(hdr(tc.typ, uint32(tc.maxFrame-HeaderSize)), make([]byte, tc.maxFrame-HeaderSize)...)
			require.Len(t, raw, tc.maxFrame)
			f, err := ReadFrame(bytes.NewReader(raw), tc.maxFrame, nil)
			require.NoError(t, err)
			assert.Len(t, f.Payload, tc.maxFrame-HeaderSize)
		})
	}
}

// TestHugeHeaderDoesNotAllocate proves a hostile header is refused from the five header
// bytes alone: the reader holds nothing else, and no payload buffer is allocated.
func TestHugeHeaderDoesNotAllocate(t *testing.T) {
	raw := hdr(MsgBatch, 4<<30-1) // 4 GiB
	r := bytes.NewReader(raw)
	_, err := ReadFrame(r, MaxClientFrame, nil)
	require.ErrorIs(t, err, ErrFrameTooLarge)
	assert.Zero(t, r.Len())

	allocs := testing.AllocsPerRun(100, func() {
		r.Reset(raw)
		_, _ = ReadFrame(r, MaxClientFrame, nil)
	})
	// The only allocations are the header array and the error value (fmt.Errorf);
	// a payload buffer would not show up in the count but would in the bytes below.
	assert.LessOrEqual(t, allocs, 8.0)

	const runs = 1000
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	for range runs {
		r.Reset(raw)
		_, _ = ReadFrame(r, MaxClientFrame, nil)
	}
	runtime.ReadMemStats(&after)
	perRun := (after.TotalAlloc - before.TotalAlloc) / runs
	t.Logf("a refused 4 GiB header: %.0f allocations, %d bytes", allocs, perRun)
	assert.Less(t, perRun, uint64(512), "ReadFrame allocated %d bytes per refused header", perRun)
}

func TestReadFrameReusesBuffer(t *testing.T) {
	frame := encode(t, batchOf(1, realisticRow(1), realisticRow(2)))
	buf := make([]byte, 0, MaxClientPayload)
	r := bytes.NewReader(frame)
	f, err := ReadFrame(r, MaxClientFrame, buf)
	require.NoError(t, err)
	assert.Equal(t, frame[HeaderSize:], f.Payload)
	assert.Same(t, &buf[:1][0], &f.Payload[0], "payload must alias the caller's buffer")

	allocs := testing.AllocsPerRun(100, func() {
		r.Reset(frame)
		if _, err := ReadFrame(r, MaxClientFrame, buf); err != nil {
			panic(err)
		}
	})
	assert.LessOrEqual(t, allocs, 1.0, "only the header may escape")

	// A buffer too small is replaced, not overrun.
	small := make([]byte, 3)
	f, err = ReadFrame(bytes.NewReader(frame), MaxClientFrame, small)
	require.NoError(t, err)
	assert.Equal(t, frame[HeaderSize:], f.Payload)
	assert.Equal(t, []byte{0, 0, 0}, small)
}

// A count the rows do not hold costs what the payload costs, never what the
// count would: nothing is allocated per bet.
func TestBatchLyingCountCostsNothing(t *testing.T) {
	payload := bytes.Join([][]byte{u32(1), u16(0xFFFF), rowBytes, rowBytes}, nil)
	var b Batch
	require.ErrorIs(t, DecodeInto(payload, &b), ErrMalformed)
	_, _, err := BatchRows(payload)
	require.ErrorIs(t, err, ErrMalformed)

	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	for range 100 {
		_ = DecodeInto(payload, &b)
		_, _, _ = BatchRows(payload)
	}
	runtime.ReadMemStats(&after)
	perRun := (after.TotalAlloc - before.TotalAlloc) / 100
	assert.Less(t, perRun, uint64(1024), "%d bytes per decode of a lying count", perRun)
}

// BatchRows, the central's read, copies nothing: the rows are the payload's
// bytes, and a valid batch allocates nothing.
func TestBatchRowsAliasesPayload(t *testing.T) {
	payload := encode(t, batchOf(7, fullBatch(t)...))[HeaderSize:]
	rows, count, err := BatchRows(payload)
	require.NoError(t, err)
	assert.Equal(t, len(fullBatch(t)), count)
	require.Len(t, rows, len(payload)-batchPrefix)
	assert.Same(t, &payload[batchPrefix], &rows[0], "rows must alias the payload")

	allocs := testing.AllocsPerRun(100, func() {
		if _, _, err := BatchRows(payload); err != nil {
			panic(err)
		}
	})
	assert.Zero(t, allocs)
}

// BatchRows accepts exactly the payloads DecodeInto accepts, refuses the
// others for the same reason, and reads the same count and rows.
func TestBatchRowsAgreesWithDecodeInto(t *testing.T) {
	tests := []struct {
		name    string
		payload []byte
		want    error // nil: valid
	}{
		{"nil", nil, ErrTruncated},
		{"seq only", u32(1), ErrTruncated},
		{"five bytes", append(u32(1), 0), ErrTruncated},
		{"count 0", append(u32(1), u16(0)...), ErrEmptyBatch},
		{"count 0 with a row", bytes.Join([][]byte{u32(1), u16(0), rowBytes}, nil), ErrEmptyBatch},
		{"count 1, no rows", append(u32(1), u16(1)...), ErrMalformed},
		{"count 1, a row without LF", bytes.Join([][]byte{u32(1), u16(1), []byte(",,,,")}, nil), ErrMalformed},
		{"count 2, one row", bytes.Join([][]byte{u32(1), u16(2), rowBytes}, nil), ErrMalformed},
		{"count 1, two rows", bytes.Join([][]byte{u32(1), u16(1), rowBytes, rowBytes}, nil), ErrMalformed},
		{"count 1, a lone LF", bytes.Join([][]byte{u32(1), u16(1), []byte("\n")}, nil), nil},
		{"count 1, the smallest row", bytes.Join([][]byte{u32(1), u16(1), smallestRow}, nil), nil},
		{"count 2, two rows", bytes.Join([][]byte{u32(9), u16(2), rowBytes, realisticRow(1)}, nil), nil},
		{"count 65535, as many LFs", bytes.Join([][]byte{u32(1), u16(0xFFFF), bytes.Repeat([]byte("\n"), 0xFFFF)}, nil), nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var b Batch
			errDecode := DecodeInto(tt.payload, &b)
			rows, count, errRows := BatchRows(tt.payload)
			if tt.want != nil {
				require.ErrorIs(t, errDecode, tt.want)
				require.ErrorIs(t, errRows, tt.want)
				assert.Nil(t, rows)
				return
			}
			require.NoError(t, errDecode)
			require.NoError(t, errRows)
			assert.Equal(t, b.Count, count)
			assert.Equal(t, b.Rows, rows)
			assert.Equal(t, tt.payload[batchPrefix:], rows)
			assert.Equal(t, bytes.Count(rows, []byte("\n")), count)
		})
	}
}

func TestDecodeUnknownType(t *testing.T) {
	_, err := Decode(Frame{Type: 0x42, Payload: nil})
	require.ErrorIs(t, err, ErrUnknownType)
}

func TestDecodeDoesNotAliasPayload(t *testing.T) {
	frame := encode(t, batchOf(5, realisticRow(5)))
	payload := bytes.Clone(frame[HeaderSize:])
	m, err := Decode(Frame{Type: MsgBatch, Payload: payload})
	require.NoError(t, err)
	for i := range payload {
		payload[i] = 'X'
	}
	assert.Equal(t, ptr(batchOf(5, realisticRow(5))), m, "decoded rows must not share the read buffer")
}

func TestDecodeIntoReusesRows(t *testing.T) {
	big := encode(t, batchOf(1, realisticRow(1), realisticRow(2), realisticRow(3)))
	small := encode(t, batchOf(2, realisticRow(9)))
	var b Batch
	require.NoError(t, DecodeInto(big[HeaderSize:], &b))
	backing := &b.Rows[:1][0]
	require.NoError(t, DecodeInto(small[HeaderSize:], &b))
	assert.Equal(t, batchOf(2, realisticRow(9)), b)
	assert.Same(t, backing, &b.Rows[0], "the rows' buffer should be reused")
}

func TestPeekBatch(t *testing.T) {
	valid := encode(t, batchOf(77, realisticRow(1), realisticRow(2)))[HeaderSize:]
	tests := []struct {
		name      string
		payload   []byte
		wantSeq   uint32
		wantCount int
		wantOK    bool
	}{
		{"nil", nil, 0, 0, false},
		{"one byte", []byte{0}, 0, 0, false},
		{"seq only", u32(3), 0, 0, false},
		{"seq and half a count", append(u32(3), 0), 0, 0, false},
		{"prefix only", append(u32(3), u16(4)...), 3, 4, true},
		{"empty batch", append(u32(9), u16(0)...), 9, 0, true},
		{"valid batch", valid, 77, 2, true},
		{"malformed rows still peek", append(append(u32(12), u16(120)...), 0xFF, 0xFF), 12, 120, true},
		{"count over its rows still peeks", bytes.Join([][]byte{u32(13), u16(3), rowBytes}, nil), 13, 3, true},
		{"max values", append(u32(math.MaxUint32), u16(math.MaxUint16)...), math.MaxUint32, math.MaxUint16, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			seq, count, ok := PeekBatch(tt.payload)
			assert.Equal(t, tt.wantOK, ok)
			if tt.wantOK {
				assert.Equal(t, tt.wantSeq, seq)
				assert.Equal(t, tt.wantCount, count)
			}
		})
	}
}
