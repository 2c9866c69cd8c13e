package protocol

import (
	"bytes"
	"encoding/csv"
	"errors"
	"fmt"
	"math"
	"strconv"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// maxFrameFor is the frame limit the receiver of a message of type t applies.
func maxFrameFor(t MsgType) int {
	if t < 0x80 {
		return MaxClientFrame
	}
	return MaxServerFrame
}

// encode returns m as a whole frame, failing the test if it does not encode.
func encode(t testing.TB, m Message) []byte {
	t.Helper()
	frame, err := AppendMessage(nil, m)
	require.NoError(t, err)
	return frame
}

// roundTrip encodes m, reads the frame back under the receiver's limit and decodes it.
func roundTrip(t testing.TB, m Message) Message {
	t.Helper()
	frame := encode(t, m)
	require.LessOrEqual(t, len(frame), maxFrameFor(m.Type()), "frame over the receiver's limit")
	r := bytes.NewReader(frame)
	f, err := ReadFrame(r, maxFrameFor(m.Type()), nil)
	require.NoError(t, err)
	require.Equal(t, m.Type(), f.Type)
	require.Zero(t, r.Len(), "ReadFrame left bytes of the frame unread")
	got, err := Decode(f)
	require.NoError(t, err)
	return got
}

// ptr returns a pointer to a copy of m, the shape Decode returns.
func ptr(m Message) Message {
	switch v := m.(type) {
	case Hello:
		return &v
	case HelloAck:
		return &v
	case Batch:
		return &v
	case BatchAck:
		return &v
	case BatchReject:
		return &v
	case Finish:
		return &v
	case FinishAck:
		return &v
	case Consult:
		return &v
	case Winners:
		return &v
	case Ping:
		return &v
	case Pong:
		return &v
	case ErrorMessage:
		return &v
	}
	panic(fmt.Sprintf("ptr: unexpected %T", m))
}

// csvRow is record as Go's encoding/csv Writer writes it (comma, LF, no
// UseCRLF): for a bet's five fields, its row as BATCH carries it. Written by
// the standard library, not by any code of this project.
func csvRow(record ...string) []byte {
	var b bytes.Buffer
	w := csv.NewWriter(&b)
	if err := w.Write(record); err != nil {
		panic(err)
	}
	w.Flush()
	if err := w.Error(); err != nil {
		panic(err)
	}
	return b.Bytes()
}

// batchOf is batch seq carrying rows, its count theirs.
func batchOf(seq uint32, rows ...[]byte) Batch {
	return Batch{Seq: seq, Count: len(rows), Rows: bytes.Join(rows, nil)}
}

// realisticRow is a row like the agencies' CSV files hold.
func realisticRow(i int) []byte {
	return csvRow("María José", "Fernández Ocampo", fmt.Sprintf("%08d", 30000000+i), "1987-11-23", strconv.Itoa(i%10000))
}

// smallestRow is the shortest row of five fields: all of them empty.
var smallestRow = []byte(",,,,\n")

// largestValidRow is as long as a row the central accepts gets: two
// 100-byte names of quotes, each quoted and its quotes doubled (202 bytes),
// a 10-digit document, a date, a 4-digit number: 433 bytes.
func largestValidRow(i int) []byte {
	q := strings.Repeat(`"`, 100)
	return csvRow(q, q, fmt.Sprintf("%010d", i), "1987-11-23", strconv.Itoa(1000+i%9000))
}

// multiByte255 is 255 bytes of text whose last rune is two bytes long.
var multiByte255 = "a" + strings.Repeat("é", 127)

func TestRoundTrip(t *testing.T) {
	require.Len(t, multiByte255, MaxString)
	long := strings.Repeat("x", MaxString)
	utf8Text := "apuesta inválida: «número» fuera de rango — ñandú 🎲"
	maxText := strings.Repeat("ü", MaxText/2) // exactly MaxText bytes

	tests := []struct {
		name string
		in   Message
		want Message // nil: the decoded message equals in
	}{
		{"hello/zero", Hello{}, nil},
		{"hello/max agency", Hello{Version: Version, Agency: math.MaxUint32}, nil},
		{"hello/max version", Hello{Version: math.MaxUint8, Agency: 1}, nil},

		{"hello_ack/no flags", HelloAck{Version: Version, Stored: 0}, nil},
		{"hello_ack/finished", HelloAck{Version: Version, Stored: 120, Finished: true}, nil},
		{"hello_ack/drawn", HelloAck{Version: Version, Stored: 7, Drawn: true}, nil},
		{"hello_ack/finished and drawn", HelloAck{Version: Version, Stored: math.MaxUint64, Finished: true, Drawn: true}, nil},
		{"hello_ack/finished with its digest", HelloAck{Version: Version, Stored: 3, Finished: true, Digest: Digest{1, 31: 0xff}}, nil},

		{"batch/one row", batchOf(1, realisticRow(1)), nil},
		{"batch/max seq", batchOf(math.MaxUint32, realisticRow(2)), nil},
		{"batch/seq zero", batchOf(0, realisticRow(3)), nil},
		{"batch/fields csv quotes", batchOf(2,
			csvRow(`Zoë, "la" Ñata`, "O'Brien; d'Artagnan", "1", "2000-02-29", "0"),
			csvRow(" leading space", `\.`, "9999999999", "1900-01-01", "9999"),
			csvRow("\u00a0no-break space", "Pérez", "12", "1999-03-17", "7574"),
			smallestRow,
			largestValidRow(1),
		), nil},
		// The codec counts lines; what a line says is the central's to check.
		{"batch/rows the codec does not interpret", batchOf(3,
			[]byte("\n"),  // an empty line
			[]byte("x\n"), // one field
			[]byte("\xff\xfe not UTF-8,\x00,\r,\t,-1\n"), // opaque bytes
			[]byte("Ana,Paz,1,1990-01-02,7\r\n"),         // CR LF: the CR is part of the row
			[]byte(`"its quote not closed,,,,`+"\n"),
			[]byte(`"Ana",Paz,1,1990-01-02,007`+"\n"), // quoted and written as csv would not
			append([]byte(long+long+multiByte255), '\n'),
		), nil},
		{"batch/one row as large as a frame holds", Batch{Seq: 4, Count: 1,
			Rows: append(bytes.Repeat([]byte("a"), MaxClientPayload-batchPrefix-1), '\n')}, nil},
		{"batch/MaxBatchBets smallest rows", Batch{Seq: 5, Count: MaxBatchBets,
			Rows: bytes.Repeat(smallestRow, MaxBatchBets)}, nil},

		{"batch_ack/seq 1", BatchAck{Seq: 1}, nil},
		{"batch_ack/max seq", BatchAck{Seq: math.MaxUint32}, nil},

		{"batch_reject/utf8 text", BatchReject{Seq: 3, Code: CodeInvalidBet, Index: 17, Text: utf8Text}, nil},
		{"batch_reject/no index, empty text", BatchReject{Seq: 4, Code: CodeStorage, Index: NoIndex}, nil},
		{"batch_reject/max text", BatchReject{Seq: math.MaxUint32, Code: math.MaxUint16, Index: 0, Text: maxText}, nil},

		{"finish/zero", Finish{}, nil},
		{"finish/max total", Finish{Total: math.MaxUint64}, nil},
		{"finish_ack/max stored", FinishAck{Stored: math.MaxUint64}, nil},
		{"finish_ack/digest", FinishAck{Stored: 7, Digest: [DigestSize]byte{1, 2, 3, 31: 0xff}}, nil},
		{"consult/max agency", Consult{Agency: math.MaxUint32}, nil},

		// A decoded Winners always has a non-nil Documents slice.
		{"winners/none", Winners{Total: 0}, Winners{Total: 0, Documents: []string{}}},
		{"winners/one", Winners{Total: 1, Documents: []string{"30904465"}}, nil},
		{"winners/part of a larger answer", Winners{Total: 5000, Documents: []string{"1", "", long}}, nil},

		{"ping", Ping{}, nil},
		{"pong", Pong{}, nil},

		{"error/utf8 text", ErrorMessage{Code: CodeCountMismatch, Text: utf8Text}, nil},
		{"error/empty text", ErrorMessage{Code: CodeShuttingDown}, nil},
		{"error/max text", ErrorMessage{Code: CodeUnexpected, Text: maxText}, nil},
		{"error/unknown code", ErrorMessage{Code: 999, Text: "future code"}, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			want := tt.want
			if want == nil {
				want = tt.in
			}
			got := roundTrip(t, tt.in)
			assert.Equal(t, ptr(want), got)

			// Decoding the re-encoded message gives the same bytes: the encoding is canonical.
			again, err := AppendMessage(nil, got)
			require.NoError(t, err)
			assert.Equal(t, encode(t, tt.in), again)
		})
	}
}

func TestRoundTripEveryType(t *testing.T) {
	// Every known type must be covered by a round trip above and decodable by Decode.
	seen := map[MsgType]bool{}
	for typ := range msgNames {
		m := newMessage(typ)
		require.NotNil(t, m, "no message for %s", typ)
		assert.Equal(t, typ, m.Type())
		seen[typ] = true
	}
	assert.Len(t, seen, 12)
	for i := range 256 {
		typ := MsgType(i)
		assert.Equal(t, seen[typ], typ.Known(), "Known() for %s", typ)
		assert.Equal(t, seen[typ], newMessage(typ) != nil, "newMessage(%s)", typ)
	}
}

func TestMaxSizeBatchRoundTrip(t *testing.T) {
	tests := []struct {
		name string
		row  func(i int) []byte
	}{
		{"realistic rows", realisticRow},
		{"smallest rows", func(int) []byte { return smallestRow }},
		{"largest valid rows", largestValidRow},
		{"rows of 1000 bytes", func(i int) []byte {
			return append(bytes.Repeat([]byte{byte('a' + i%26)}, 999), '\n')
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			bb := NewBatchBuilder(0)
			var rows [][]byte
			for i := 0; ; i++ {
				row := tt.row(i)
				err := bb.AddRow(row)
				if errors.Is(err, ErrBatchFull) {
					break
				}
				require.NoError(t, err)
				rows = append(rows, row)
			}
			frame := bb.Frame(42)
			require.LessOrEqual(t, len(frame), MaxClientFrame)
			require.Equal(t, len(rows), bb.Len())

			f, err := ReadFrame(bytes.NewReader(frame), MaxClientFrame, nil)
			require.NoError(t, err)
			got, err := Decode(f)
			require.NoError(t, err)
			assert.Equal(t, ptr(batchOf(42, rows...)), got)

			// The builder's frame is byte for byte what AppendMessage makes.
			assert.Equal(t, encode(t, batchOf(42, rows...)), frame)
		})
	}
}

// MaxBatchBets is the count of the smallest rows that fill a frame: one more
// would not fit.
func TestMaxBatchBetsFillsTheFrame(t *testing.T) {
	assert.Equal(t, 1636, MaxBatchBets, "(8187 - 6) / 5, as SPEC.md says")
	assert.Len(t, smallestRow, minRowSize)
	assert.Len(t, largestValidRow(1), 433, "SPEC.md's longest valid row")
	frame := encode(t, Batch{Seq: 1, Count: MaxBatchBets, Rows: bytes.Repeat(smallestRow, MaxBatchBets)})
	assert.LessOrEqual(t, len(frame), MaxClientFrame)
	assert.Greater(t, len(frame)+minRowSize, MaxClientFrame, "one more smallest row would still fit")
}

func TestSplitWinners(t *testing.T) {
	docs := func(n, size int) []string {
		out := make([]string, n)
		for i := range out {
			out[i] = fmt.Sprintf("%0*d", size, i)[:size]
		}
		return out
	}
	tests := []struct {
		name       string
		docs       []string
		minFrames  int
		maxFrames  int
		wantFrames int // 0: anything in [minFrames, maxFrames]
	}{
		{name: "none", docs: nil, wantFrames: 1},
		{name: "one", docs: []string{"30904465"}, wantFrames: 1},
		{name: "5000 documents", docs: docs(5000, 10), wantFrames: 1},
		{name: "100k documents of 10 bytes", docs: docs(100_000, 10), minFrames: 2, maxFrames: 100},
		{name: "70k empty documents", docs: docs(70_000, 0), minFrames: 2, maxFrames: 2},
		{name: "longest documents", docs: docs(1000, MaxString), minFrames: 2, maxFrames: 10},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			parts := SplitWinners(tt.docs)
			if tt.wantFrames > 0 {
				require.Len(t, parts, tt.wantFrames)
			} else {
				require.GreaterOrEqual(t, len(parts), tt.minFrames)
				require.LessOrEqual(t, len(parts), tt.maxFrames)
			}

			// Send every part over one stream, then read them back the way an agency does:
			// frames until the documents received add up to Total.
			var stream []byte
			for _, p := range parts {
				var err error
				start := len(stream)
				stream, err = AppendMessage(stream, p)
				require.NoError(t, err)
				require.LessOrEqual(t, len(stream)-start, MaxServerFrame)
			}
			r := bytes.NewReader(stream)
			got := []string{}
			frames := 0
			for {
				m, err := ReadMessage(r, MaxServerFrame)
				require.NoError(t, err)
				w, ok := m.(*Winners)
				require.True(t, ok, "got %T", m)
				frames++
				require.Equal(t, uint32(len(tt.docs)), w.Total)
				if len(tt.docs) > 0 {
					require.NotEmpty(t, w.Documents, "a frame of a non-empty answer carries documents")
				}
				got = append(got, w.Documents...)
				if len(got) >= int(w.Total) {
					break
				}
			}
			assert.Equal(t, len(parts), frames)
			assert.Zero(t, r.Len(), "frames left after Total documents")
			assert.Equal(t, len(tt.docs), len(got))
			if len(tt.docs) > 0 {
				assert.Equal(t, tt.docs, got)
			}
		})
	}
}

func TestEncodeErrors(t *testing.T) {
	long := strings.Repeat("a", MaxString+1)
	tests := []struct {
		name string
		m    Message
		want error
	}{
		{"batch over 65535 bets", Batch{Seq: 1, Count: 0x10000, Rows: bytes.Repeat(smallestRow, 0x10000)}, ErrFrameTooLarge},
		{"winners document 256 bytes", Winners{Total: 2, Documents: []string{"1", long}}, ErrStringTooLong},
		{"winners over 65535 documents", Winners{Total: 0x10000, Documents: make([]string, 0x10000)}, ErrFrameTooLarge},
		{"error text invalid UTF-8", ErrorMessage{Code: CodeMalformed, Text: "bad \xc3\x28 byte"}, ErrInvalidUTF8},
		{"error text over MaxText", ErrorMessage{Code: CodeMalformed, Text: strings.Repeat("a", MaxText+1)}, ErrStringTooLong},
		{"reject text invalid UTF-8", BatchReject{Seq: 1, Code: CodeInvalidBet, Text: "\xff"}, ErrInvalidUTF8},
		{"reject text over MaxText", BatchReject{Seq: 1, Code: CodeInvalidBet, Text: strings.Repeat("é", MaxText/2+1)}, ErrStringTooLong},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			prefix := []byte("earlier frames")
			dst, err := AppendMessage(bytes.Clone(prefix), tt.m)
			require.ErrorIs(t, err, tt.want)
			assert.Equal(t, prefix, dst, "a failed AppendMessage must leave dst as it was")

			var w bytes.Buffer
			require.ErrorIs(t, WriteMessage(&w, tt.m), tt.want)
			assert.Zero(t, w.Len(), "nothing may be written for a message that does not encode")
		})
	}
}

func TestText(t *testing.T) {
	tests := []struct {
		name string
		in   string
		want string
	}{
		{"empty", "", ""},
		{"short ASCII unchanged", "disk full", "disk full"},
		{"short UTF-8 unchanged", "ñandú 🎲", "ñandú 🎲"},
		{"exactly MaxText unchanged", strings.Repeat("é", MaxText/2), strings.Repeat("é", MaxText/2)},
		{"ASCII cut at MaxText", strings.Repeat("a", 2000), strings.Repeat("a", MaxText)},
		{"cut on a rune boundary", "a" + strings.Repeat("é", 600), "a" + strings.Repeat("é", (MaxText-2)/2)},
		{"cut before a 4-byte rune", "ab" + strings.Repeat("😀", 300), "ab" + strings.Repeat("😀", (MaxText-2)/4)},
		{"invalid byte replaced", "a\xffb", "a?b"},
		{"truncated rune replaced", "caf\xc3", "caf?"},
		{"run of invalid bytes replaced once", "x\xff\xfe\xfdy", "x?y"},
		{"invalid then long", "\xff" + strings.Repeat("a", 2000), "?" + strings.Repeat("a", MaxText-1)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := Text(tt.in)
			assert.Equal(t, tt.want, got)
			assert.True(t, utf8.ValidString(got))
			assert.LessOrEqual(t, len(got), MaxText)
			// Whatever Text returns can be sent.
			m := roundTrip(t, ErrorMessage{Code: CodeStorage, Text: got})
			assert.Equal(t, got, m.(*ErrorMessage).Text)
		})
	}
}

func TestRemoteError(t *testing.T) {
	rej := BatchReject{Seq: 9, Code: CodeInvalidBet, Index: 3, Text: "document: not only digits"}
	var re *RemoteError
	require.ErrorAs(t, rej.Err(), &re)
	assert.Equal(t, RemoteError{Code: CodeInvalidBet, Index: 3, Text: rej.Text}, *re)
	assert.Equal(t, "refused by peer: invalid_bet (bet 3): document: not only digits", rej.Err().Error())

	em := ErrorMessage{Code: CodeCountMismatch, Text: "finish total 10, stored 9"}
	require.ErrorAs(t, fmt.Errorf("finish: %w", em.Err()), &re)
	assert.Equal(t, NoIndex, int(re.Index))
	assert.Equal(t, "refused by peer: count_mismatch: finish total 10, stored 9", em.Err().Error())

	noIdx := BatchReject{Seq: 1, Code: CodeStorage, Index: NoIndex, Text: "disk full"}
	assert.Equal(t, "refused by peer: storage: disk full", noIdx.Err().Error())
}

func TestNames(t *testing.T) {
	assert.Equal(t, "HELLO", MsgHello.String())
	assert.Equal(t, "INFORM_AGENCY_WINNERS", MsgWinners.String())
	assert.Equal(t, "CONSULT_AGENCY_WINNERS", MsgConsult.String())
	assert.Equal(t, "0x42", MsgType(0x42).String())
	assert.Equal(t, "count_mismatch", CodeCountMismatch.String())
	assert.Equal(t, "code_999", Code(999).String())
	assert.Equal(t, "excluded", CodeExcluded.String())
	assert.Equal(t, "revoked", CodeRevoked.String())
	for c := CodeMalformed; c <= CodeRevoked; c++ {
		assert.NotContains(t, c.String(), "code_", "code %d has no name", uint16(c))
	}
	assert.Len(t, codeNames, int(CodeRevoked))
}
