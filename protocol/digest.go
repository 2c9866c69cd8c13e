package protocol

import (
	"encoding/hex"
	"fmt"

	"github.com/zeebo/blake3"
)

// Digest proves which bets an agency sent: BLAKE3 (32 bytes) over its bets'
// rows in the order they were stored, each exactly as BATCH carries it
// (SPEC.md "The digest"): the agency's lines of the central's bets file
// without their agency column. The agency hashes the rows it sends (plus
// those it skips on a resume), the central the rows it stored, and a
// restarted central the same rows read back: nobody formats anything to
// hash it.
//
// BLAKE3 and not SHA-256: as strong (a 256-bit output, 128-bit collision
// resistance) and faster over a batch's bytes, even against SHA-256 in the
// CPU's SHA instructions (BenchmarkDigest: batch against batch/sha256), so
// that proving a round costs its ingest a few percent. b3sum and every
// language's BLAKE3 library compute it.
type Digest [DigestSize]byte

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
type DigestWriter struct{ h *blake3.Hasher }

// NewDigestWriter starts the digest of no bets.
func NewDigestWriter() *DigestWriter { return &DigestWriter{h: blake3.New()} }

// Write adds rows as BATCH carries them, one after another: a batch's
// (BatchRows), or a stored file's read back. It never fails.
func (w *DigestWriter) Write(rows []byte) (int, error) { return w.h.Write(rows) }

// Sum is the digest of the bets added so far; more may be added after.
func (w *DigestWriter) Sum() Digest {
	var d Digest
	w.h.Sum(d[:0])
	return d
}

// RoundDigest commits a whole round: BLAKE3 over the digests of the agencies
// the draw includes, 32 bytes each, concatenated in ascending agency order.
func RoundDigest(agencies []Digest) Digest {
	h := blake3.New()
	for _, d := range agencies {
		h.Write(d[:])
	}
	var d Digest
	h.Sum(d[:0])
	return d
}
