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
		Batch{Seq: 7, Bets: []Bet{{}, {Agency: 1, FirstName: "é", Document: strings.Repeat("9", 255)}}},
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
	f.Add([]byte{0, 0, 0, 1, 0xFF, 0xFF, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0})
	f.Add([]byte{0, 0, 0, 1, 0, 1, 0, 0, 0, 1, 200, 'a'})

	// One reused Batch across inputs, as the central decodes batch after batch.
	reused := &Batch{Bets: make([]Bet, 3, 64)}
	f.Fuzz(func(t *testing.T, payload []byte) {
		checkDecodeBet(t, string(payload[min(len(payload), batchPrefix):]))
		var fresh Batch
		errFresh := DecodeInto(payload, &fresh)
		errReused := DecodeInto(payload, reused)
		if (errFresh == nil) != (errReused == nil) {
			t.Fatalf("fresh: %v, reused: %v", errFresh, errReused)
		}
		if errFresh != nil {
			checkSentinel(t, errFresh)
			return
		}
		if len(fresh.Bets) == 0 || len(fresh.Bets) > 0xFFFF {
			t.Fatalf("decoded %d bets", len(fresh.Bets))
		}
		if !equalMessages(fresh, *reused) {
			t.Fatalf("reused Batch decoded differently: %#v vs %#v", fresh, *reused)
		}
		seq, count, ok := PeekBatch(payload)
		if !ok || seq != fresh.Seq || count != len(fresh.Bets) {
			t.Fatalf("PeekBatch = %d, %d, %v; decoded seq %d with %d bets", seq, count, ok, fresh.Seq, len(fresh.Bets))
		}
		reencode(t, &fresh, payload)
	})
}

// checkDecodeBet: where decodeBet decodes the bet at the start of s, the
// decoder's field-by-field reads give the same bet and length.
func checkDecodeBet(t *testing.T, s string) {
	var fast Bet
	n, ok := decodeBet(s, &fast)
	if !ok {
		return
	}
	d := decoder{s: s}
	slow := Bet{Agency: d.u32("agency"), FirstName: d.str8("first_name"), LastName: d.str8("last_name"),
		Document: d.str8("document"), Birthdate: d.str8("birthdate"), Number: d.u16("number")}
	if d.err != nil || d.off != n || slow != fast {
		t.Fatalf("decodeBet(%q) = %#v, %d; field by field %#v, %d, %v", s, fast, n, slow, d.off, d.err)
	}
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
		if err := DecodeInto(payload, &b); err == nil && (b.Seq != seq || len(b.Bets) != count) {
			t.Fatalf("decode says seq %d count %d, PeekBatch %d %d", b.Seq, len(b.Bets), seq, count)
		}
	})
}
