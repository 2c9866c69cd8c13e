package protocol

import (
	"bytes"
	"errors"
	"io"
	"reflect"
	"strings"
	"testing"
)

// sentinels is every error a decoder may return; anything else is a bug.
var sentinels = []error{
	ErrFrameTooLarge, ErrUnknownType, ErrTruncated, ErrTrailingBytes,
	ErrMalformed, ErrInvalidUTF8, ErrStringTooLong, ErrEmptyBatch,
}

func checkSentinel(t *testing.T, err error) {
	t.Helper()
	for _, s := range sentinels {
		if errors.Is(err, s) {
			return
		}
	}
	t.Fatalf("error wraps no sentinel: %v", err)
}

// seedMessages are valid messages of every type for the fuzz corpora.
func seedMessages() []Message {
	return append(conversation(),
		Hello{Version: 255, Agency: 0xFFFFFFFF},
		HelloAck{Version: 1, Stored: 1 << 40, Finished: true, Drawn: true},
		batchOf(7, smallestRow, csvRow("é", `"Pibe", Jr.`, strings.Repeat("9", 255), "", "0"), []byte("\n")),
		Winners{Total: 0, Documents: nil},
		ErrorMessage{Code: CodeCountMismatch, Text: "total 10 ≠ 9"},
	)
}

// reencode checks that a decoded message encodes again, to the same bytes, and
// decodes to an equal message.
func reencode(t *testing.T, m Message, payload []byte) {
	t.Helper()
	again, err := m.AppendPayload(nil)
	if err != nil {
		t.Fatalf("decoded %s does not encode again: %v", m.Type(), err)
	}
	if m.Type() == MsgHelloAck {
		// Receivers ignore the reserved flag bits (byte 9), so only they may differ.
		if len(again) != len(payload) || !bytes.Equal(again[:9], payload[:9]) || !bytes.Equal(again[10:], payload[10:]) {
			t.Fatalf("HELLO_ACK re-encoded to %x, read from %x", again, payload)
		}
	} else if !bytes.Equal(again, payload) {
		t.Fatalf("%s re-encoded to %x, read from %x", m.Type(), again, payload)
	}
	m2, err := Decode(Frame{Type: m.Type(), Payload: again})
	if err != nil {
		t.Fatalf("re-encoded %s does not decode: %v", m.Type(), err)
	}
	if !equalMessages(m, m2) {
		t.Fatalf("%s changed in a round trip: %#v then %#v", m.Type(), m, m2)
	}
}

func equalMessages(a, b any) bool { return reflect.DeepEqual(a, b) }

func FuzzReadFrame(f *testing.F) {
	var all []byte
	for _, m := range seedMessages() {
		frame, err := AppendMessage(nil, m)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(frame)
		all = append(all, frame...)
	}
	f.Add(all)
	f.Add([]byte{})
	f.Add([]byte{0x02, 0xFF, 0xFF, 0xFF, 0xFF})
	f.Add([]byte{0x02, 0x00, 0x00, 0x00, 0x06, 0, 0, 0, 1, 0, 0})
	f.Add([]byte{0x42, 0x00, 0x00, 0x00, 0x00})
	f.Add([]byte{0x85, 0x00, 0x00, 0x00, 0x07, 0, 0, 0, 1, 0, 2, 0})

	f.Fuzz(func(t *testing.T, data []byte) {
		r := bytes.NewReader(data)
		buf := make([]byte, 0, 16)
		for {
			before := r.Len()
			fr, err := ReadFrame(r, MaxClientFrame, buf)
			if err != nil {
				if !errors.Is(err, io.EOF) {
					checkSentinel(t, err)
				} else if before != 0 {
					t.Fatalf("io.EOF with %d bytes left", before)
				}
				return
			}
			if len(fr.Payload) > MaxClientPayload {
				t.Fatalf("payload of %d bytes passed the limit", len(fr.Payload))
			}
			if consumed := before - r.Len(); consumed != HeaderSize+len(fr.Payload) {
				t.Fatalf("frame of %d bytes consumed %d", HeaderSize+len(fr.Payload), consumed)
			}
			buf = fr.Payload[:0]
			m, err := Decode(fr)
			if err != nil {
				checkSentinel(t, err)
				continue
			}
			if m.Type() != fr.Type {
				t.Fatalf("frame %s decoded as %s", fr.Type, m.Type())
			}
			reencode(t, m, fr.Payload)
		}
	})
}

func FuzzDecodeMessage(f *testing.F) {
	for _, m := range seedMessages() {
		p, err := m.AppendPayload(nil)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(byte(m.Type()), p)
		f.Add(byte(m.Type()), p[:len(p)/2])
	}
	f.Add(byte(0x00), []byte{})
	f.Add(byte(MsgError), []byte{0, 1, 0x04, 0x01, 0xFF})
	f.Add(byte(MsgBatchReject), []byte{0, 0, 0, 1, 0, 8, 0, 0, 0, 0, 0x04, 0x00, 'a'})

	f.Fuzz(func(t *testing.T, typ byte, payload []byte) {
		m, err := Decode(Frame{Type: MsgType(typ), Payload: payload})
		if !MsgType(typ).Known() {
			if !errors.Is(err, ErrUnknownType) {
				t.Fatalf("type 0x%02x: got %v, want ErrUnknownType", typ, err)
			}
			return
		}
		if err != nil {
			checkSentinel(t, err)
			return
		}
		reencode(t, m, payload)
	})
}

func FuzzDecodeBatch(f *testing.F) {
	for _, m := range seedMessages() {
		if b, ok := m.(Batch); ok {
			p, _ := b.AppendPayload(nil)
			f.Add(p)
		}
	}
	f.Add([]byte{0, 0, 0, 1, 0, 0})
	f.Add([]byte{0, 0, 0, 1, 0, 0, '\n'})
	f.Add([]byte{0, 0, 0, 1, 0xFF, 0xFF, ',', ',', ',', ',', '\n'})
	f.Add([]byte{0, 0, 0, 1, 0, 1, ',', ',', ',', ','})
	f.Add([]byte{0, 0, 0, 1, 0, 2, '"', 'a', '\n', 'b', '"', ',', ',', ',', ',', '\n'})

	// One reused Batch across inputs, as a receiver decodes batch after batch.
	reused := &Batch{Rows: make([]byte, 3, 64)}
	f.Fuzz(func(t *testing.T, payload []byte) {
		var fresh Batch
		errFresh := DecodeInto(payload, &fresh)
		errReused := DecodeInto(payload, reused)
		if (errFresh == nil) != (errReused == nil) {
			t.Fatalf("fresh: %v, reused: %v", errFresh, errReused)
		}
		// The central's read accepts exactly what DecodeInto accepts, and reads the same.
		rows, count, errRows := BatchRows(payload)
		if (errFresh == nil) != (errRows == nil) {
			t.Fatalf("DecodeInto: %v, BatchRows: %v", errFresh, errRows)
		}
		if errFresh != nil {
			checkSentinel(t, errFresh)
			checkSentinel(t, errRows)
			for _, s := range sentinels {
				if errors.Is(errFresh, s) != errors.Is(errRows, s) {
					t.Fatalf("DecodeInto: %v, BatchRows: %v", errFresh, errRows)
				}
			}
			return
		}
		if fresh.Count < 1 || fresh.Count > 0xFFFF {
			t.Fatalf("decoded %d bets", fresh.Count)
		}
		if len(fresh.Rows) == 0 || fresh.Rows[len(fresh.Rows)-1] != '\n' || bytes.Count(fresh.Rows, []byte{'\n'}) != fresh.Count {
			t.Fatalf("decoded %d bets as %q", fresh.Count, fresh.Rows)
		}
		if !equalMessages(fresh, *reused) {
			t.Fatalf("reused Batch decoded differently: %#v vs %#v", fresh, *reused)
		}
		if count != fresh.Count || !bytes.Equal(rows, fresh.Rows) {
			t.Fatalf("BatchRows = %q, %d; DecodeInto %q, %d", rows, count, fresh.Rows, fresh.Count)
		}
		if &rows[0] != &payload[batchPrefix] {
			t.Fatalf("BatchRows copied the rows")
		}
		seq, count, ok := PeekBatch(payload)
		if !ok || seq != fresh.Seq || count != fresh.Count {
			t.Fatalf("PeekBatch = %d, %d, %v; decoded seq %d with %d bets", seq, count, ok, fresh.Seq, fresh.Count)
		}
		reencode(t, &fresh, payload)
	})
}

// FuzzBatchBuilder packs the lines of data into frames as an agency does,
// under a maximum count: every frame fits, decodes to the rows packed, and
// together they carry every line, in order.
func FuzzBatchBuilder(f *testing.F) {
	f.Add(uint16(0), []byte("Ana,Pérez,1,1990-01-02,7574\n\"Juan \"\"el Pibe\"\"\",Lorca,30904465,1999-03-17,42\n"))
	f.Add(uint16(1), []byte(",,,,\n,,,,\n,,,,"))
	f.Add(uint16(3), bytes.Repeat([]byte("\n"), 5000))
	f.Add(uint16(0), append(bytes.Repeat([]byte("x"), MaxClientPayload-batchPrefix-1), '\n', 'y', '\n'))
	f.Add(uint16(2), append(bytes.Repeat([]byte("x"), MaxClientPayload-batchPrefix), '\n', 'y', '\n'))

	f.Fuzz(func(t *testing.T, maxCount uint16, data []byte) {
		var lines [][]byte
		for line := range bytes.Lines(data) {
			if line[len(line)-1] != '\n' {
				line = append(bytes.Clone(line), '\n') // the last line, without its LF
			}
			lines = append(lines, line)
		}
		limit := int(maxCount)
		if limit <= 0 || limit > MaxBatchBets {
			limit = MaxBatchBets
		}
		bb := NewBatchBuilder(int(maxCount))
		var sent [][]byte // the rows of the frames sent so far, in order
		seq := uint32(0)
		flush := func() {
			seq++
			frame := bb.Frame(seq)
			if len(frame) > MaxClientFrame {
				t.Fatalf("a frame of %d bytes", len(frame))
			}
			if bb.Len() < 1 || bb.Len() > limit {
				t.Fatalf("a frame of %d rows under a limit of %d", bb.Len(), limit)
			}
			rows, count, err := BatchRows(frame[HeaderSize:])
			if err != nil || count != bb.Len() || !bytes.Equal(rows, bb.Rows()) {
				t.Fatalf("BatchRows of a built frame: %d rows, %v; built %d", count, err, bb.Len())
			}
			sent = append(sent, bytes.Clone(rows))
			bb.Reset()
		}
		var want [][]byte // the lines that fit a frame
		for _, line := range lines {
			err := bb.AddRow(line)
			if errors.Is(err, ErrBatchFull) {
				flush()
				err = bb.AddRow(line)
			}
			if len(line) > MaxClientPayload-batchPrefix {
				if !errors.Is(err, ErrFrameTooLarge) {
					t.Fatalf("a row of %d bytes: %v", len(line), err)
				}
				continue
			}
			if err != nil {
				t.Fatalf("a row of %d bytes in a fresh frame: %v", len(line), err)
			}
			want = append(want, line)
		}
		if bb.Len() > 0 {
			flush()
		}
		if got, all := bytes.Join(sent, nil), bytes.Join(want, nil); !bytes.Equal(got, all) {
			t.Fatalf("frames carried %d bytes of rows, packed %d", len(got), len(all))
		}
	})
}

func FuzzDecodeWinners(f *testing.F) {
	for _, w := range append(SplitWinners([]string{"30904465", "1", ""}), Winners{Total: 9}, Winners{Total: 1000, Documents: []string{"12345678"}}) {
		p, _ := w.AppendPayload(nil)
		f.Add(p)
	}
	f.Add([]byte{0, 0, 0, 1, 0, 2, 0, 0})
	f.Add([]byte{0, 0, 0, 9, 0xFF, 0xFF, 0})
	f.Add([]byte{0, 0, 0, 2, 0, 1, 5, '1'})

	f.Fuzz(func(t *testing.T, payload []byte) {
		var w Winners
		if err := DecodeInto(payload, &w); err != nil {
			checkSentinel(t, err)
			return
		}
		if uint64(len(w.Documents)) > uint64(w.Total) {
			t.Fatalf("%d documents over a total of %d", len(w.Documents), w.Total)
		}
		reencode(t, &w, payload)
		// Splitting the documents again gives frames that fit and add up.
		n := 0
		for _, part := range SplitWinners(w.Documents) {
			frame, err := AppendMessage(nil, part)
			if err != nil || len(frame) > MaxServerFrame {
				t.Fatalf("split frame: %d bytes, %v", len(frame), err)
			}
			n += len(part.Documents)
		}
		if n != len(w.Documents) {
			t.Fatalf("split %d documents into %d", len(w.Documents), n)
		}
	})
}

func FuzzPeekBatch(f *testing.F) {
	f.Add([]byte{})
	f.Add([]byte{0, 0, 0, 1, 0})
	f.Add([]byte{0, 0, 0, 1, 0, 3})
	f.Add([]byte{0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 1, 2, 3})

	f.Fuzz(func(t *testing.T, payload []byte) {
		seq, count, ok := PeekBatch(payload)
		if ok != (len(payload) >= batchPrefix) {
			t.Fatalf("PeekBatch of %d bytes: ok=%v", len(payload), ok)
		}
		if !ok {
			return
		}
		wantSeq := uint32(payload[0])<<24 | uint32(payload[1])<<16 | uint32(payload[2])<<8 | uint32(payload[3])
		wantCount := int(payload[4])<<8 | int(payload[5])
		if seq != wantSeq || count != wantCount {
			t.Fatalf("PeekBatch(%x) = %d, %d", payload[:batchPrefix], seq, count)
		}
		var b Batch
		if err := DecodeInto(payload, &b); err == nil && (b.Seq != seq || b.Count != count) {
			t.Fatalf("decode says seq %d count %d, PeekBatch %d %d", b.Seq, b.Count, seq, count)
		}
	})
}
