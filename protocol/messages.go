package protocol

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"io"
	"strings"
	"unicode/utf8"
)

// Message is one decoded message of the protocol.
type Message interface {
	Type() MsgType
	// AppendPayload appends the encoded payload (no header) to dst.
	AppendPayload(dst []byte) ([]byte, error)
}

// Decodable is a pointer to a message that decodes in place (*Hello, *Batch…).
type Decodable interface {
	Message
	decode(d *decoder)
}

// Hello opens every agency connection: who it is and which protocol it speaks.
type Hello struct {
	Version uint8
	Agency  uint32
}

// HelloAck accepts a Hello and says where the agency stands at the central,
// so a reconnecting agency can resume: Stored bets of it are already durable.
type HelloAck struct {
	Version  uint8
	Stored   uint64
	Finished bool // this agency's FINISH was already counted
	Drawn    bool // the draw already ran
	// Digest is, once Finished, the digest its FINISH_ACK carried: an
	// agency that reconnects after its FINISH checks it too. Zero before.
	Digest Digest
}

// Batch carries Count bets under a sequence number (1, 2, 3… per connection),
// as Rows: each bet's row as the central stores it, without the agency
// column, ending in LF (SPEC.md "Rows"). The codec checks that Rows holds
// Count lines; what they say is the central's to check.
type Batch struct {
	Seq   uint32
	Count int
	Rows  []byte
}

// BatchAck says batch Seq is durably stored.
type BatchAck struct{ Seq uint32 }

// BatchReject says batch Seq was refused and nothing of it was stored.
type BatchReject struct {
	Seq   uint32
	Code  Code
	Index uint32 // the first bad bet, or NoIndex
	Text  string
}

// Finish says the agency sent all its bets: Total of them over all connections.
type Finish struct{ Total uint64 }

// FinishAck confirms the FINISH was counted: Stored is the agency's stored
// bets, Digest the BLAKE3 of their rows as BATCH carried them (SPEC.md, "The
// digest").
type FinishAck struct {
	Stored uint64
	Digest Digest
}

// Consult asks for the agency's winners (CONSULT_AGENCY_WINNERS); answered after the draw.
type Consult struct{ Agency uint32 }

// Winners (INFORM_AGENCY_WINNERS) carries part of an agency's winning documents.
// Total is the count over all frames of the answer; frames follow until the
// documents received add up to Total (one frame when Total is 0).
type Winners struct {
	Total     uint32
	Documents []string
}

// Ping asks whether the central is up; it needs no Hello (health probes).
type Ping struct{}

// Pong answers Ping.
type Pong struct{}

// ErrorMessage reports a refusal that is not about one batch; the sender closes the connection after it.
type ErrorMessage struct {
	Code Code
	Text string
}

func (Hello) Type() MsgType        { return MsgHello }
func (HelloAck) Type() MsgType     { return MsgHelloAck }
func (Batch) Type() MsgType        { return MsgBatch }
func (BatchAck) Type() MsgType     { return MsgBatchAck }
func (BatchReject) Type() MsgType  { return MsgBatchReject }
func (Finish) Type() MsgType       { return MsgFinish }
func (FinishAck) Type() MsgType    { return MsgFinishAck }
func (Consult) Type() MsgType      { return MsgConsult }
func (Winners) Type() MsgType      { return MsgWinners }
func (Ping) Type() MsgType         { return MsgPing }
func (Pong) Type() MsgType         { return MsgPong }
func (ErrorMessage) Type() MsgType { return MsgError }

func (m Hello) AppendPayload(b []byte) ([]byte, error) {
	return appendU32(append(b, m.Version), m.Agency), nil
}

func (m *Hello) decode(d *decoder) {
	m.Version = d.u8("version")
	m.Agency = d.u32("agency")
}

const (
	flagFinished = 1 << 0
	flagDrawn    = 1 << 1
)

func (m HelloAck) AppendPayload(b []byte) ([]byte, error) {
	var flags byte
	if m.Finished {
		flags |= flagFinished
	}
	if m.Drawn {
		flags |= flagDrawn
	}
	return append(append(appendU64(append(b, m.Version), m.Stored), flags), m.Digest[:]...), nil
}

func (m *HelloAck) decode(d *decoder) {
	m.Version = d.u8("version")
	m.Stored = d.u64("stored")
	flags := d.u8("flags")
	m.Finished = flags&flagFinished != 0
	m.Drawn = flags&flagDrawn != 0
	copy(m.Digest[:], d.bytes(DigestSize, "digest"))
}

func (m Batch) AppendPayload(b []byte) ([]byte, error) {
	if m.Count < 0 || m.Count > 0xFFFF {
		return b, fmt.Errorf("encode BATCH: %d bets: %w", m.Count, ErrFrameTooLarge)
	}
	b = appendU16(appendU32(b, m.Seq), uint16(m.Count))
	return append(b, m.Rows...), nil
}

// decode copies the rows out of the payload: a central reads its batches
// with BatchRows instead, which copies nothing.
func (m *Batch) decode(d *decoder) {
	m.Seq = d.u32("seq")
	m.Count = int(d.u16("count"))
	if d.err != nil {
		return
	}
	m.Rows = append(m.Rows[:0], d.bytes(len(d.s)-d.off, "rows")...)
	d.err = checkRows(m.Rows, m.Count)
}

// BatchRows checks a BATCH payload as DecodeInto does and returns its rows,
// aliasing payload: the central's way to read a batch without a copy.
func BatchRows(payload []byte) (rows []byte, count int, err error) {
	if len(payload) < batchPrefix {
		return nil, 0, fmt.Errorf("decode %s: seq and count need %d bytes, %d left: %w", MsgBatch, batchPrefix, len(payload), ErrTruncated)
	}
	count = int(binary.BigEndian.Uint16(payload[4:]))
	rows = payload[batchPrefix:]
	if err := checkRows(rows, count); err != nil {
		return nil, count, fmt.Errorf("decode %s: %w", MsgBatch, err)
	}
	return rows, count, nil
}

// checkRows says why rows cannot be count rows: none, a last row without
// its LF, or another number of LFs than count. A count of 0 is ErrEmptyBatch.
func checkRows(rows []byte, count int) error {
	switch {
	case count == 0:
		return ErrEmptyBatch
	case len(rows) == 0 || rows[len(rows)-1] != '\n':
		return fmt.Errorf("rows: the last of %d bytes is not LF: %w", len(rows), ErrMalformed)
	}
	if n := bytes.Count(rows, []byte{'\n'}); n != count {
		return fmt.Errorf("count %d but %d rows: %w", count, n, ErrMalformed)
	}
	return nil
}

func (m BatchAck) AppendPayload(b []byte) ([]byte, error) { return appendU32(b, m.Seq), nil }
func (m *BatchAck) decode(d *decoder)                     { m.Seq = d.u32("seq") }

func (m BatchReject) AppendPayload(b []byte) ([]byte, error) {
	b = appendU32(appendU16(appendU32(b, m.Seq), uint16(m.Code)), m.Index)
	return appendText16(b, m.Text, "text")
}

func (m *BatchReject) decode(d *decoder) {
	m.Seq = d.u32("seq")
	m.Code = Code(d.u16("code"))
	m.Index = d.u32("index")
	m.Text = d.text16("text")
}

// Err returns the rejection as a *RemoteError.
func (m BatchReject) Err() error { return &RemoteError{Code: m.Code, Index: m.Index, Text: m.Text} }

func (m Finish) AppendPayload(b []byte) ([]byte, error) { return appendU64(b, m.Total), nil }
func (m *Finish) decode(d *decoder)                     { m.Total = d.u64("total") }

func (m FinishAck) AppendPayload(b []byte) ([]byte, error) {
	return append(appendU64(b, m.Stored), m.Digest[:]...), nil
}

func (m *FinishAck) decode(d *decoder) {
	m.Stored = d.u64("stored")
	copy(m.Digest[:], d.bytes(DigestSize, "digest"))
}

func (m Consult) AppendPayload(b []byte) ([]byte, error) { return appendU32(b, m.Agency), nil }
func (m *Consult) decode(d *decoder)                     { m.Agency = d.u32("agency") }

func (m Winners) AppendPayload(b []byte) ([]byte, error) {
	if len(m.Documents) > 0xFFFF {
		return b, fmt.Errorf("encode %s: %d documents in one frame: %w", MsgWinners, len(m.Documents), ErrFrameTooLarge)
	}
	b = appendU16(appendU32(b, m.Total), uint16(len(m.Documents)))
	var err error
	for _, doc := range m.Documents {
		if b, err = appendStr8(b, doc, "document"); err != nil {
			return b, err
		}
	}
	return b, nil
}

func (m *Winners) decode(d *decoder) {
	m.Total = d.u32("total")
	n := int(d.u16("count"))
	if d.err == nil && n > len(d.s)-d.off { // each document takes at least its length byte
		d.err = fmt.Errorf("count %d: %w", n, ErrTruncated)
		return
	}
	if n > int(m.Total) && d.err == nil {
		d.err = fmt.Errorf("count %d over total %d: %w", n, m.Total, ErrMalformed)
		return
	}
	m.Documents = make([]string, 0, n)
	for range n {
		m.Documents = append(m.Documents, d.str8("document"))
	}
}

// SplitWinners cuts an agency's winning documents into WINNERS messages that
// each fit MaxServerFrame; there is always at least one.
func SplitWinners(docs []string) []Winners {
	total := uint32(len(docs))
	var out []Winners
	start, size := 0, winnersPrefix
	for i, doc := range docs {
		n := 1 + len(doc)
		if size+n > MaxServerPayload || i-start == 0xFFFF {
			out = append(out, Winners{Total: total, Documents: docs[start:i]})
			start, size = i, winnersPrefix
		}
		size += n
	}
	return append(out, Winners{Total: total, Documents: docs[start:]})
}

func (Ping) AppendPayload(b []byte) ([]byte, error) { return b, nil }
func (*Ping) decode(*decoder)                       {}
func (Pong) AppendPayload(b []byte) ([]byte, error) { return b, nil }
func (*Pong) decode(*decoder)                       {}

func (m ErrorMessage) AppendPayload(b []byte) ([]byte, error) {
	return appendText16(appendU16(b, uint16(m.Code)), m.Text, "text")
}

func (m *ErrorMessage) decode(d *decoder) {
	m.Code = Code(d.u16("code"))
	m.Text = d.text16("text")
}

// Err returns the message as a *RemoteError.
func (m ErrorMessage) Err() error { return &RemoteError{Code: m.Code, Index: NoIndex, Text: m.Text} }

// Text makes any string safe to send as text: valid UTF-8, at most MaxText bytes.
func Text(s string) string {
	s = strings.ToValidUTF8(s, "?")
	if len(s) <= MaxText {
		return s
	}
	cut := MaxText
	for cut > 0 && !utf8.RuneStart(s[cut]) {
		cut--
	}
	return s[:cut]
}

// newMessage returns an empty message of type t, or nil for an unknown type.
func newMessage(t MsgType) Decodable {
	switch t {
	case MsgHello:
		return &Hello{}
	case MsgHelloAck:
		return &HelloAck{}
	case MsgBatch:
		return &Batch{}
	case MsgBatchAck:
		return &BatchAck{}
	case MsgBatchReject:
		return &BatchReject{}
	case MsgFinish:
		return &Finish{}
	case MsgFinishAck:
		return &FinishAck{}
	case MsgConsult:
		return &Consult{}
	case MsgWinners:
		return &Winners{}
	case MsgPing:
		return &Ping{}
	case MsgPong:
		return &Pong{}
	case MsgError:
		return &ErrorMessage{}
	}
	return nil
}

// Decode decodes a frame's payload into its message (a pointer: *Hello, *Batch…).
func Decode(f Frame) (Message, error) {
	m := newMessage(f.Type)
	if m == nil {
		return nil, fmt.Errorf("decode frame: type %s: %w", f.Type, ErrUnknownType)
	}
	if err := DecodeInto(f.Payload, m); err != nil {
		return nil, err
	}
	return m, nil
}

// DecodeInto decodes a payload into m, reusing m's storage where it can.
func DecodeInto(payload []byte, m Decodable) error {
	d := newDecoder(payload)
	m.decode(&d)
	return d.done(m.Type())
}

// PeekBatch reads a BATCH payload's sequence number and bet count without
// decoding the bets, so a malformed batch can still be answered and logged.
func PeekBatch(payload []byte) (seq uint32, count int, ok bool) {
	d := newDecoder(payload[:min(len(payload), batchPrefix)])
	seq = d.u32("seq")
	count = int(d.u16("count"))
	return seq, count, d.err == nil
}

// AppendMessage appends m as a whole frame, header included.
func AppendMessage(dst []byte, m Message) ([]byte, error) {
	start := len(dst)
	dst = append(dst, make([]byte, HeaderSize)...)
	dst, err := m.AppendPayload(dst)
	if err != nil {
		return dst[:start], fmt.Errorf("encode %s: %w", m.Type(), err)
	}
	n := len(dst) - start - HeaderSize
	if uint64(n) > 0xFFFFFFFF {
		return dst[:start], fmt.Errorf("encode %s: %w", m.Type(), ErrFrameTooLarge)
	}
	putHeader(dst[start:], m.Type(), n)
	return dst, nil
}

// WriteMessage encodes m and writes it as one frame.
func WriteMessage(w io.Writer, m Message) error {
	frame, err := AppendMessage(nil, m)
	if err != nil {
		return err
	}
	return WriteFrame(w, frame)
}

// ReadMessage reads and decodes one frame of at most maxFrame bytes.
func ReadMessage(r io.Reader, maxFrame int) (Message, error) {
	f, err := ReadFrame(r, maxFrame, nil)
	if err != nil {
		return nil, err
	}
	return Decode(f)
}
