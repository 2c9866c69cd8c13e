package protocol

import (
	"bufio"
	"encoding/binary"
	"fmt"
	"io"
)

// Header is the fixed frame header: type, then the payload length (big endian).
type Header [HeaderSize]byte

// Type is the message type the header announces.
func (h Header) Type() MsgType { return MsgType(h[0]) }

// Length is the payload length the header announces.
func (h Header) Length() uint32 { return binary.BigEndian.Uint32(h[1:]) }

// Buffered looks at the next frame in br without reading br's source, so it
// never blocks: ok is false when not even its header is buffered; whole says
// whether all of the frame is.
func Buffered(br *bufio.Reader) (h Header, whole, ok bool) {
	n := br.Buffered()
	if n < HeaderSize {
		return h, false, false
	}
	peek, err := br.Peek(HeaderSize) // buffered: no read
	if err != nil {
		return h, false, false
	}
	h = Header(peek)
	return h, uint64(n) >= HeaderSize+uint64(h.Length()), true
}

func putHeader(dst []byte, t MsgType, length int) {
	dst[0] = byte(t)
	binary.BigEndian.PutUint32(dst[1:HeaderSize], uint32(length))
}

// Frame is one message on the wire, not yet decoded.
type Frame struct {
	Type    MsgType
	Payload []byte
}

// ReadFrame reads one frame whose total size (header included) may not exceed
// maxFrame. The length is checked before the payload is allocated, so a
// hostile header costs nothing. buf is reused for the payload when it is large
// enough; the returned payload aliases it until the next call.
func ReadFrame(r io.Reader, maxFrame int, buf []byte) (Frame, error) {
	var h Header
	if _, err := io.ReadFull(r, h[:]); err != nil {
		if err == io.ErrUnexpectedEOF {
			return Frame{}, fmt.Errorf("read frame header: %w", ErrTruncated)
		}
		return Frame{}, fmt.Errorf("read frame header: %w", err)
	}
	n := h.Length()
	if int64(n) > int64(maxFrame)-HeaderSize {
		return Frame{Type: h.Type()}, fmt.Errorf("read %s frame: %d-byte payload over the %d-byte frame limit: %w",
			h.Type(), n, maxFrame, ErrFrameTooLarge)
	}
	if !h.Type().Known() {
		return Frame{Type: h.Type()}, fmt.Errorf("read frame: type %s: %w", h.Type(), ErrUnknownType)
	}
	if cap(buf) < int(n) {
		buf = make([]byte, n)
	}
	buf = buf[:n]
	if _, err := io.ReadFull(r, buf); err != nil {
		if err == io.EOF || err == io.ErrUnexpectedEOF {
			err = ErrTruncated
		}
		return Frame{Type: h.Type()}, fmt.Errorf("read %s payload: %w", h.Type(), err)
	}
	return Frame{Type: h.Type(), Payload: buf}, nil
}

// writeFull writes all of p, even to a writer that accepts a few bytes per call.
func writeFull(w io.Writer, p []byte) error {
	for len(p) > 0 {
		n, err := w.Write(p)
		if err != nil {
			return err
		}
		if n <= 0 {
			return ErrShortWrite
		}
		p = p[n:]
	}
	return nil
}

// WriteFrame writes a frame that is already encoded, header included
// (as AppendMessage or BatchBuilder.Frame return it).
func WriteFrame(w io.Writer, frame []byte) error {
	if len(frame) < HeaderSize {
		return fmt.Errorf("write frame: %d bytes: %w", len(frame), ErrTruncated)
	}
	if err := writeFull(w, frame); err != nil {
		return fmt.Errorf("write %s frame: %w", MsgType(frame[0]), err)
	}
	return nil
}
