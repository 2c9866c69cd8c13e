package protocol

import (
	"bytes"
	"crypto/sha256"
	"errors"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"github.com/zeebo/blake3"
)

// digestRows is n rows of an agency's file, one of them with a quoted name.
func digestRows(n int) [][]byte {
	rows := make([][]byte, n)
	for i := range rows {
		first := "Santiago Lionel"
		if i == n/2 {
			first = `Juan, "el Pibe"` // csv quotes it, doubling its quotes
		}
		rows[i] = csvRow(first, "Núñez", "30904465", "1999-03-17", strconv.Itoa(i%10000))
	}
	return rows
}

// The agency's two ways to its digest agree with each other, with the
// central's and with the definition (SPEC.md): row by row, for the rows it
// skips on a resume, and batch by batch, for those it sends (Rows) and the
// central stores (BatchRows), however the batches are cut.
func TestDigestOfRowsIsDigestOfBatches(t *testing.T) {
	tests := []struct {
		name     string
		rows     int
		maxCount int // bets per batch
	}{
		{"no bets", 0, 10},
		{"one bet", 1, 10},
		{"one full batch", 10, 10},
		{"several batches and a partial one", 1001, 143},
		{"frames as large as they get", 5000, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rows := digestRows(tt.rows)
			byRow := NewDigestWriter()
			for _, row := range rows {
				n, err := byRow.Write(row)
				require.NoError(t, err)
				require.Equal(t, len(row), n)
			}
			byBatch, central := NewDigestWriter(), NewDigestWriter()
			bb := NewBatchBuilder(tt.maxCount)
			send := func() {
				if bb.Len() > 0 {
					frame := bb.Frame(1)
					byBatch.Write(bb.Rows())
					// What the central reads is what the agency hashed.
					stored, count, err := BatchRows(frame[HeaderSize:])
					require.NoError(t, err)
					require.Equal(t, bb.Len(), count)
					central.Write(stored)
					bb.Reset()
				}
			}
			for _, row := range rows {
				if err := bb.AddRow(row); errors.Is(err, ErrBatchFull) {
					send()
					require.NoError(t, bb.AddRow(row))
				}
			}
			send()
			want := Digest(blake3.Sum256(bytes.Join(rows, nil)))
			assert.Equal(t, want, byRow.Sum())
			assert.Equal(t, want, byBatch.Sum())
			assert.Equal(t, want, central.Sum())
		})
	}
}

// The digest of an agency is the digest of its lines in the central's bets
// file with their agency column cut, as `grep '^3,' bets.csv | cut -d, -f2-
// | b3sum` computes it: the rows of every agency's batches, in storage order.
func TestDigestOfTheBetsFile(t *testing.T) {
	// The rows of three agencies, stored as their batches arrived, interleaved.
	agencies := []int{3, 30, 13, 3, 3, 30}
	var file []byte
	sent := map[int]*DigestWriter{}
	for i, agency := range agencies {
		rows := digestRows(i + 2)
		bb := NewBatchBuilder(0)
		for _, row := range rows {
			require.NoError(t, bb.AddRow(row))
		}
		stored, _, err := BatchRows(bb.Frame(1)[HeaderSize:])
		require.NoError(t, err)
		// The central stores each row after its agency column.
		for line := range bytes.Lines(stored) {
			file = append(append(file, strconv.Itoa(agency)+","...), line...)
		}
		if sent[agency] == nil {
			sent[agency] = NewDigestWriter()
		}
		sent[agency].Write(bb.Rows())
	}
	for agency, w := range sent {
		t.Run(strconv.Itoa(agency), func(t *testing.T) {
			// grep '^A,' | cut -d, -f2-: the line after its first comma.
			var cut []byte
			for line := range bytes.Lines(file) {
				if a, rest, _ := bytes.Cut(line, []byte(",")); string(a) == strconv.Itoa(agency) {
					cut = append(cut, rest...)
				}
			}
			assert.Equal(t, Digest(blake3.Sum256(cut)), w.Sum())
		})
	}
}

func TestDigestOfNoBets(t *testing.T) {
	assert.Equal(t, "af1349b9f5f9a1a6a0404dea36dcc9499bcb25c9adc112b7cc9a93cae41f3262", NewDigestWriter().Sum().String())
}

// Sum does not end a writer, and the digest does not depend on how the
// bytes are cut into Writes.
func TestDigestWriterWrite(t *testing.T) {
	rows := bytes.Join(digestRows(40), nil)
	want := Digest(blake3.Sum256(rows))
	tests := []struct {
		name string
		cut  int // bytes per Write
	}{
		{"one byte", 1},
		{"seven bytes", 7},
		{"a row", len(digestRows(1)[0])},
		{"all at once", len(rows)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			w := NewDigestWriter()
			var sums []Digest
			for b := range slices.Chunk(rows, tt.cut) {
				n, err := w.Write(b)
				require.NoError(t, err)
				require.Equal(t, len(b), n)
				sums = append(sums, w.Sum())
			}
			assert.Equal(t, want, w.Sum())
			assert.Equal(t, want, sums[len(sums)-1], "Sum after the last Write")
			if len(sums) > 1 {
				assert.Equal(t, Digest(blake3.Sum256(rows[:tt.cut])), sums[0], "Sum after the first Write")
			}
			w.Write(nil)
			assert.Equal(t, want, w.Sum(), "writing nothing changes nothing")
		})
	}
}

func TestParseDigest(t *testing.T) {
	d := Digest(blake3.Sum256([]byte("x")))
	tests := []struct {
		name, in, wantErr string
	}{
		{"as String writes it", d.String(), ""},
		{"upper case", strings.ToUpper(d.String()), "want lower-case hex"},
		{"short", d.String()[2:], "want 64 hex digits"},
		{"long", d.String() + "00", "want 64 hex digits"},
		{"not hex", "zz" + d.String()[2:], "invalid byte"},
		{"empty", "", "want 64 hex digits"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := ParseDigest(tt.in)
			if tt.wantErr != "" {
				assert.ErrorContains(t, err, tt.wantErr)
				return
			}
			require.NoError(t, err)
			assert.Equal(t, d, got)
		})
	}
}

// The round's digest is BLAKE3 over the agencies' digests, in order.
func TestRoundDigest(t *testing.T) {
	a, b := Digest(blake3.Sum256([]byte("a"))), Digest(blake3.Sum256([]byte("b")))
	assert.Equal(t, Digest(blake3.Sum256(append(a[:], b[:]...))), RoundDigest([]Digest{a, b}))
	assert.NotEqual(t, RoundDigest([]Digest{a, b}), RoundDigest([]Digest{b, a}), "the order counts")
	assert.Equal(t, Digest(blake3.Sum256(nil)), RoundDigest(nil))
}

// BenchmarkDigest: what an agency pays per bet it skips (row: one Write per
// row), and per bet it sends or the central stores (batch: one Write per
// BATCH).
func BenchmarkDigest(b *testing.B) {
	rows := digestRows(143)
	bb := NewBatchBuilder(len(rows))
	for _, row := range rows {
		require.NoError(b, bb.AddRow(row))
	}
	batch := bb.Rows()
	b.Run("row", func(b *testing.B) {
		w := NewDigestWriter()
		b.SetBytes(int64(len(batch)))
		for b.Loop() {
			for _, row := range rows {
				w.Write(row)
			}
		}
		b.ReportMetric(float64(len(rows))*float64(b.N)/b.Elapsed().Seconds(), "bets/s")
	})
	b.Run("batch", func(b *testing.B) {
		w := NewDigestWriter()
		b.SetBytes(int64(len(batch)))
		for b.Loop() {
			w.Write(batch)
		}
		b.ReportMetric(float64(len(rows))*float64(b.N)/b.Elapsed().Seconds(), "bets/s")
	})
	// The same bytes through SHA-256, the other function the digest could
	// have been: the ratio of the two is why it is BLAKE3 (digest.go).
	b.Run("batch/sha256", func(b *testing.B) {
		h := sha256.New()
		b.SetBytes(int64(len(batch)))
		for b.Loop() {
			h.Write(batch)
		}
		b.ReportMetric(float64(len(rows))*float64(b.N)/b.Elapsed().Seconds(), "bets/s")
	})
}
