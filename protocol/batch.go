package protocol

import (
	"encoding/binary"
	"fmt"
)

// BatchBuilder packs bets straight into a BATCH frame, keeping it within both
// a maximum bet count and MaxClientFrame. It encodes each bet once, in place,
// so packing allocates nothing after the first frame.
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

// Add packs one bet. It returns ErrBatchFull, leaving the batch unchanged,
// when the bet would break either limit: send the frame, Reset, add it again.
// A bet that cannot be encoded at all (a field over MaxString) is an error
// that no Reset cures.
func (bb *BatchBuilder) Add(bet Bet) error {
	if bb.count >= bb.maxCount {
		return ErrBatchFull
	}
	before := len(bb.buf)
	buf, err := AppendBet(bb.buf, bet)
	if err != nil {
		bb.buf = bb.buf[:before]
		return fmt.Errorf("pack bet: %w", err)
	}
	if len(buf) > MaxClientFrame {
		bb.buf = buf[:before]
		if before == HeaderSize+batchPrefix { // cannot happen: a bet is at most 1030 bytes
			return fmt.Errorf("pack bet: %w", ErrFrameTooLarge)
		}
		return ErrBatchFull
	}
	bb.buf = buf
	bb.count++
	return nil
}

// Frame returns the batch as a complete frame under sequence number seq.
// The bytes are valid until the next Add or Reset.
func (bb *BatchBuilder) Frame(seq uint32) []byte {
	putHeader(bb.buf, MsgBatch, len(bb.buf)-HeaderSize)
	binary.BigEndian.PutUint32(bb.buf[HeaderSize:], seq)
	binary.BigEndian.PutUint16(bb.buf[HeaderSize+4:], uint16(bb.count))
	return bb.buf
}
