package lottery

import (
	"crypto/sha256"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// An agency reading its file gets the central's digest: for every bet the
// central accepts, DigestWriter.Bet hashes exactly the bytes Rows stores.
func TestDigestOfBetsIsDigestOfRows(t *testing.T) {
	tests := []struct {
		name string
		bets []Bet
	}{
		{"none", nil},
		{"plain", benchBets(300)},
		{"past several of Bet's buffers", benchBets(2000)},
		{"needing quotes and accents", trickyBets()},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var r Rows
			byBets := NewDigestWriter()
			for _, b := range tt.bets {
				if r.Add(b, rowsNow) == nil {
					byBets.Bet(b)
				}
			}
			byRows := NewDigestWriter()
			byRows.Rows(&r)
			assert.Equal(t, Digest(sha256.Sum256(r.buf)), byRows.Sum())
			assert.Equal(t, byRows.Sum(), byBets.Sum())
		})
	}
}

func FuzzDigestBetMatchesRows(f *testing.F) {
	for _, b := range trickyBets() {
		f.Add(b.Agency, b.FirstName, b.LastName, b.Document, b.Birthdate, b.Number)
	}
	f.Fuzz(func(t *testing.T, agency int, first, last, document, birthdate string, number int) {
		b := Bet{Agency: agency, FirstName: first, LastName: last, Document: document, Birthdate: birthdate, Number: number}
		var r Rows
		if r.Add(b, rowsNow) != nil {
			return
		}
		w := NewDigestWriter()
		w.Bet(b)
		require.Equal(t, Digest(sha256.Sum256(r.buf)), w.Sum())
	})
}

// A clone goes on alone; Sum does not end a writer.
func TestDigestWriterCloneAndSum(t *testing.T) {
	bets := benchBets(3)
	w := NewDigestWriter()
	w.Bet(bets[0])
	c := w.Clone()
	first := w.Sum()
	w.Bet(bets[1])
	assert.Equal(t, first, c.Sum(), "the clone did not see the later row")
	c.Bet(bets[1])
	assert.Equal(t, w.Sum(), c.Sum())
	assert.NotEqual(t, first, w.Sum())
}

func TestParseDigest(t *testing.T) {
	d := Digest(sha256.Sum256([]byte("x")))
	got, err := ParseDigest(d.String())
	require.NoError(t, err)
	assert.Equal(t, d, got)
	for _, bad := range []string{"", "zz", d.String()[:63], d.String() + "0", "AB" + d.String()[2:]} {
		_, err := ParseDigest(bad)
		assert.Error(t, err, bad)
	}
}

// The round's digest is the hash of the agencies' digests in order: order matters.
func TestRoundDigest(t *testing.T) {
	a, b := Digest(sha256.Sum256([]byte("a"))), Digest(sha256.Sum256([]byte("b")))
	assert.Equal(t, Digest(sha256.Sum256(append(a[:], b[:]...))), RoundDigest([]Digest{a, b}))
	assert.NotEqual(t, RoundDigest([]Digest{a, b}), RoundDigest([]Digest{b, a}))
	assert.Equal(t, Digest(sha256.Sum256(nil)), RoundDigest(nil))
}

// BenchmarkDigest: what an agency pays per bet of its file (Bet), and the
// central per batch it stores (Rows).
func BenchmarkDigest(b *testing.B) {
	bets := benchBets(1000)
	var r Rows
	for _, bet := range bets {
		require.NoError(b, r.Add(bet, rowsNow))
	}
	b.Run("bet", func(b *testing.B) {
		w := NewDigestWriter()
		for b.Loop() {
			for _, bet := range bets {
				w.Bet(bet)
			}
		}
		b.ReportMetric(float64(len(bets))*float64(b.N)/b.Elapsed().Seconds(), "bets/s")
	})
	b.Run("rows", func(b *testing.B) {
		w := NewDigestWriter()
		for b.Loop() {
			w.Rows(&r)
		}
		b.ReportMetric(float64(len(bets))*float64(b.N)/b.Elapsed().Seconds(), "bets/s")
	})
}
