package protocol

import (
	"encoding/binary"
	"fmt"
	"unicode/utf8"
)

// decoder reads fields from a payload. The payload is copied into one string
// up front so every string field is a substring of it: one allocation per
// message instead of one per field. The first error sticks.
type decoder struct {
	s   string
	off int
	err error
}

func newDecoder(p []byte) decoder { return decoder{s: string(p)} }

func (d *decoder) need(n int, field string) bool {
	if d.err != nil {
		return false
	}
	if len(d.s)-d.off < n {
		d.err = fmt.Errorf("%s at byte %d needs %d bytes, %d left: %w", field, d.off, n, len(d.s)-d.off, ErrTruncated)
		return false
	}
	return true
}

func (d *decoder) u8(field string) uint8 {
	if !d.need(1, field) {
		return 0
	}
	v := d.s[d.off]
	d.off++
	return v
}

func (d *decoder) u16(field string) uint16 {
	if !d.need(2, field) {
		return 0
	}
	v := uint16(d.s[d.off])<<8 | uint16(d.s[d.off+1])
	d.off += 2
	return v
}

func (d *decoder) u32(field string) uint32 {
	if !d.need(4, field) {
		return 0
	}
	s := d.s[d.off:]
	v := uint32(s[0])<<24 | uint32(s[1])<<16 | uint32(s[2])<<8 | uint32(s[3])
	d.off += 4
	return v
}

func (d *decoder) u64(field string) uint64 {
	hi := uint64(d.u32(field))
	lo := uint64(d.u32(field))
	return hi<<32 | lo
}

func (d *decoder) bytes(n int, field string) string {
	if !d.need(n, field) {
		return ""
	}
	v := d.s[d.off : d.off+n]
	d.off += n
	return v
}

// str8 is a string with a 1-byte length prefix; its bytes are not interpreted.
func (d *decoder) str8(field string) string { return d.bytes(int(d.u8(field)), field) }

// text16 is human-readable text with a 2-byte length prefix; it must be UTF-8
// of at most MaxText bytes.
func (d *decoder) text16(field string) string {
	n := int(d.u16(field))
	if d.err == nil && n > MaxText {
		d.err = fmt.Errorf("%s: %d bytes, at most %d: %w", field, n, MaxText, ErrStringTooLong)
		return ""
	}
	v := d.bytes(n, field)
	if d.err == nil && !utf8.ValidString(v) {
		d.err = fmt.Errorf("%s: %w", field, ErrInvalidUTF8)
	}
	return v
}

// done reports the first error, or trailing bytes after the last field.
func (d *decoder) done(t MsgType) error {
	if d.err == nil && d.off != len(d.s) {
		d.err = fmt.Errorf("%d bytes after the last field: %w", len(d.s)-d.off, ErrTrailingBytes)
	}
	if d.err != nil {
		return fmt.Errorf("decode %s: %w", t, d.err)
	}
	return nil
}

func appendU16(b []byte, v uint16) []byte { return binary.BigEndian.AppendUint16(b, v) }
func appendU32(b []byte, v uint32) []byte { return binary.BigEndian.AppendUint32(b, v) }
func appendU64(b []byte, v uint64) []byte { return binary.BigEndian.AppendUint64(b, v) }

func appendStr8(b []byte, s, field string) ([]byte, error) {
	if len(s) > MaxString {
		return b, fmt.Errorf("encode %s: %d bytes, at most %d: %w", field, len(s), MaxString, ErrStringTooLong)
	}
	return append(append(b, byte(len(s))), s...), nil
}

func appendText16(b []byte, s, field string) ([]byte, error) {
	if len(s) > MaxText {
		return b, fmt.Errorf("encode %s: %d bytes, at most %d: %w", field, len(s), MaxText, ErrStringTooLong)
	}
	if !utf8.ValidString(s) {
		return b, fmt.Errorf("encode %s: %w", field, ErrInvalidUTF8)
	}
	return append(appendU16(b, uint16(len(s))), s...), nil
}
