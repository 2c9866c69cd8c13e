package lottery

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"hash"
)

// Digest proves which bets an agency sent: the SHA-256 of its rows in the
// order they were stored, each exactly as the store writes it (agency column
// first, fields quoted as csv.Writer quotes them, LF at the end). The central
// keeps one per agency; the agency computes the same from its file
// (DigestWriter.Bet), so neither can change a row unseen. SHA-256, not a
// faster hash of the same strength: the standard library's uses the CPU's
// SHA instructions where there are some, and anyone can recompute it.
type Digest [sha256.Size]byte

// String is the digest in lower-case hex.
func (d Digest) String() string { return hex.EncodeToString(d[:]) }

// ParseDigest reads a digest written by String.
func ParseDigest(s string) (Digest, error) {
	var d Digest
	if len(s) != 2*len(d) {
		return d, fmt.Errorf("digest %q: want %d hex digits", s, 2*len(d))
	}
	if _, err := hex.Decode(d[:], []byte(s)); err != nil {
		return d, fmt.Errorf("digest %q: %w", s, err)
	}
	if d.String() != s {
		return d, fmt.Errorf("digest %q: want lower-case hex", s)
	}
	return d, nil
}

// DigestWriter accumulates an agency's rows into its Digest. The zero value
// is not usable: call NewDigestWriter.
type DigestWriter struct {
	h    hash.Hash
	rows []byte // rows Bet formatted and not yet hashed
}

// digestBuffer is how many bytes of rows Bet gathers before it hashes them:
// SHA-256 is a third faster over a few KiB than over one row at a time.
const digestBuffer = 16 << 10

// NewDigestWriter starts a digest of no rows.
func NewDigestWriter() *DigestWriter { return &DigestWriter{h: sha256.New()} }

// Rows adds the rows r holds, in order: the central's batch, as stored.
func (w *DigestWriter) Rows(r *Rows) { w.write(r.buf) }

// Bet adds b's row as the store writes it. For a bet Rows.Add accepts, the
// bytes are the same as Rows', so an agency reading its file computes the
// central's digest without validating anything itself.
func (w *DigestWriter) Bet(b Bet) {
	w.rows = appendRow(w.rows, b, rowQuotes(b))
	if len(w.rows) >= digestBuffer {
		w.flush()
	}
}

// flush hashes the rows Bet gathered.
func (w *DigestWriter) flush() {
	w.h.Write(w.rows)
	w.rows = w.rows[:0]
}

// rowQuotes says which of b's text fields the store quotes.
func rowQuotes(b Bet) uint8 {
	var quotes uint8
	for i, field := range b.textFields() {
		quotes |= quoteBit(field, classesOf(field), i)
	}
	return quotes
}

// write adds rows already in the store's bytes: a recovered file's.
func (w *DigestWriter) write(rows []byte) {
	if len(w.rows) > 0 {
		w.flush()
	}
	w.h.Write(rows)
}

// Sum is the digest of the rows added so far; more may be added after.
func (w *DigestWriter) Sum() Digest {
	if len(w.rows) > 0 {
		w.flush()
	}
	var d Digest
	w.h.Sum(d[:0])
	return d
}

// Clone is a writer that goes on from w's rows independently of w.
func (w *DigestWriter) Clone() *DigestWriter {
	if len(w.rows) > 0 {
		w.flush()
	}
	state, err := w.h.(interface{ MarshalBinary() ([]byte, error) }).MarshalBinary()
	if err != nil {
		panic(fmt.Sprintf("lottery: clone digest: %v", err)) // sha256's state always marshals
	}
	h := sha256.New()
	if err := h.(interface{ UnmarshalBinary([]byte) error }).UnmarshalBinary(state); err != nil {
		panic(fmt.Sprintf("lottery: clone digest: %v", err))
	}
	return &DigestWriter{h: h}
}

// RoundDigest commits a whole round: the SHA-256 of the agencies' digests,
// 32 bytes each, in ascending agency order.
func RoundDigest(agencies []Digest) Digest {
	h := sha256.New()
	for _, d := range agencies {
		h.Write(d[:])
	}
	var d Digest
	h.Sum(d[:0])
	return d
}
