package protocol

import (
	"crypto/sha256"
	"errors"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"github.com/zeebo/blake3"
)

func digestBets(n int) []Bet {
	bets := make([]Bet, n)
	for i := range bets {
		bets[i] = Bet{Agency: 3, FirstName: "Santiago Lionel", LastName: "Núñez", Document: "30904465",
			Birthdate: "1999-03-17", Number: uint16(i % 10000)}
	}
	bets[n/2].FirstName = `Juan, "el Pibe"` // what a csv row would quote is plain here
	return bets
}

// The agency's two ways to its digest agree with each other and with the
// definition (SPEC.md): bet by bet, for the bets it skips on a resume, and
// frame by frame, for those it sends, however the batches are cut.
func TestDigestOfBetsIsDigestOfBatches(t *testing.T) {
	tests := []struct {
		name     string
		bets     int
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
			var bets []Bet
			if tt.bets > 0 {
				bets = digestBets(tt.bets)
			}
			var encoded []byte
			byBet := NewDigestWriter()
			for _, b := range bets {
				var err error
				encoded, err = AppendBet(encoded, b)
				require.NoError(t, err)
				require.NoError(t, byBet.Bet(b))
			}
			byBatch := NewDigestWriter()
			bb := NewBatchBuilder(tt.maxCount)
			send := func() {
				if bb.Len() > 0 {
					frame := bb.Frame(1)
					byBatch.Write(BatchBets(frame[HeaderSize:]))
					// What the central decodes is what the agency hashed.
					var m Batch
					require.NoError(t, DecodeInto(frame[HeaderSize:], &m))
					bb.Reset()
				}
			}
			for _, b := range bets {
				if err := bb.Add(b); errors.Is(err, ErrBatchFull) {
					send()
					require.NoError(t, bb.Add(b))
				}
			}
			send()
			want := Digest(blake3.Sum256(encoded))
			assert.Equal(t, want, byBet.Sum())
			assert.Equal(t, want, byBatch.Sum())
		})
	}
}

func TestDigestOfNoBets(t *testing.T) {
	assert.Equal(t, "af1349b9f5f9a1a6a0404dea36dcc9499bcb25c9adc112b7cc9a93cae41f3262", NewDigestWriter().Sum().String())
}

// A bet BATCH cannot carry adds nothing; Sum does not end a writer.
func TestDigestWriterBet(t *testing.T) {
	w := NewDigestWriter()
	bets := digestBets(2)
	require.NoError(t, w.Bet(bets[0]))
	first := w.Sum()
	long := bets[1]
	long.LastName = strings.Repeat("x", MaxString+1)
	require.ErrorIs(t, w.Bet(long), ErrStringTooLong)
	assert.Equal(t, first, w.Sum(), "the refused bet added nothing")
	require.NoError(t, w.Bet(bets[1]))
	assert.NotEqual(t, first, w.Sum())
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

// BenchmarkDigest: what an agency pays per bet it skips (bet), and per bet
// it sends or the central stores (batch: one Write per BATCH).
func BenchmarkDigest(b *testing.B) {
	bets := digestBets(143)
	bb := NewBatchBuilder(len(bets))
	for _, bet := range bets {
		require.NoError(b, bb.Add(bet))
	}
	payload := bb.Frame(1)[HeaderSize:]
	b.Run("bet", func(b *testing.B) {
		w := NewDigestWriter()
		for b.Loop() {
			for _, bet := range bets {
				_ = w.Bet(bet)
			}
		}
		b.ReportMetric(float64(len(bets))*float64(b.N)/b.Elapsed().Seconds(), "bets/s")
	})
	b.Run("batch", func(b *testing.B) {
		w := NewDigestWriter()
		b.SetBytes(int64(len(BatchBets(payload))))
		for b.Loop() {
			w.Write(BatchBets(payload))
		}
		b.ReportMetric(float64(len(bets))*float64(b.N)/b.Elapsed().Seconds(), "bets/s")
	})
	// The same bytes through SHA-256, the other function the digest could
	// have been: the ratio of the two is why it is BLAKE3 (digest.go).
	b.Run("batch/sha256", func(b *testing.B) {
		h := sha256.New()
		b.SetBytes(int64(len(BatchBets(payload))))
		for b.Loop() {
			h.Write(BatchBets(payload))
		}
		b.ReportMetric(float64(len(bets))*float64(b.N)/b.Elapsed().Seconds(), "bets/s")
	})
}
