package protocol

import (
	"bytes"
	"encoding/binary"
	"fmt"
)

// BatchBuilder packs rows straight into a BATCH frame, keeping it within both
// a maximum bet count and MaxClientFrame: packing allocates nothing after the
// first frame.
type BatchBuilder struct {
	maxCount int
	count    int
	buf      []byte
}

// NewBatchBuilder returns a builder for batches of at most maxCount bets;
// maxCount <= 0 means "as many as fit in a frame".
func NewBatchBuilder(maxCount int) *BatchBuilder {
	if maxCount <= 0 || maxCount > MaxBatchBets {
		maxCount = MaxBatchBets
	}
	bb := &BatchBuilder{maxCount: maxCount, buf: make([]byte, 0, MaxClientFrame)}
	bb.Reset()
	return bb
}

// Len is the number of bets packed so far.
func (bb *BatchBuilder) Len() int { return bb.count }

// Reset empties the builder for the next batch.
func (bb *BatchBuilder) Reset() {
	bb.count = 0
	bb.buf = bb.buf[:HeaderSize+batchPrefix]
}

// AddRow packs one bet's row, LF included (see Batch). It returns
// ErrBatchFull, leaving the batch unchanged, when the row would break either
// limit: send the frame, Reset, add it again. A row that no frame can hold,
// or one without its LF, is an error that no Reset cures.
func (bb *BatchBuilder) AddRow(row []byte) error {
	// One LF, at the end: a line break inside a row (a quoted one in an
	// agency file's name) would be another row to the central.
	if len(row) == 0 || bytes.IndexByte(row, '\n') != len(row)-1 {
		return fmt.Errorf("pack bet: a row ends in LF and holds no other (a line break inside a field): %w", ErrMalformed)
	}
	if HeaderSize+batchPrefix+len(row) > MaxClientFrame {
		return fmt.Errorf("pack bet: a row of %d bytes: %w", len(row), ErrFrameTooLarge)
	}
	if bb.count >= bb.maxCount || len(bb.buf)+len(row) > MaxClientFrame {
		return ErrBatchFull
	}
	bb.buf = append(bb.buf, row...)
	bb.count++
	return nil
}

// Rows is the rows packed so far, as the frame carries them: what the
// agency's digest covers of it. Valid until the next AddRow or Reset.
func (bb *BatchBuilder) Rows() []byte { return bb.buf[HeaderSize+batchPrefix:] }

// Frame returns the batch as a complete frame under sequence number seq.
// The bytes are valid until the next AddRow or Reset.
func (bb *BatchBuilder) Frame(seq uint32) []byte {
	putHeader(bb.buf, MsgBatch, len(bb.buf)-HeaderSize)
	binary.BigEndian.PutUint32(bb.buf[HeaderSize:], seq)
	binary.BigEndian.PutUint16(bb.buf[HeaderSize+4:], uint16(bb.count))
	return bb.buf
}
