package protocol

import (
	"bytes"
	"errors"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// decodeBatchFrame reads a builder's frame the way the central does.
func decodeBatchFrame(t testing.TB, frame []byte) *Batch {
	t.Helper()
	require.LessOrEqual(t, len(frame), MaxClientFrame)
	f, err := ReadFrame(bytes.NewReader(frame), MaxClientFrame, nil)
	require.NoError(t, err)
	require.Equal(t, MsgBatch, f.Type)
	m, err := Decode(f)
	require.NoError(t, err)
	return m.(*Batch)
}

// largeBet is the biggest bet the codec can carry: 4 + 4×256 + 2 = 1030 bytes.
func largeBet(i int) Bet {
	s := strings.Repeat(string(rune('a'+i%26)), MaxString)
	return Bet{Agency: uint32(i), FirstName: s, LastName: s, Document: s, Birthdate: s, Number: uint16(i)}
}

func TestBatchBuilderMaxCount(t *testing.T) {
	tests := []struct {
		name     string
		maxCount int
		want     int
	}{
		{"seven", 7, 7},
		{"one", 1, 1},
		{"exactly MaxBatchBets", MaxBatchBets, MaxBatchBets},
		{"zero means as many as fit", 0, MaxBatchBets},
		{"negative means as many as fit", -5, MaxBatchBets},
		{"over MaxBatchBets clamps", MaxBatchBets + 1, MaxBatchBets},
		{"huge clamps", 1 << 30, MaxBatchBets},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			bb := NewBatchBuilder(tt.maxCount)

			// The smallest bets, so only the count can stop the builder.
			var bets []Bet
			for i := range tt.want {
				bet := Bet{Number: uint16(i)}
				require.NoError(t, bb.Add(bet), "bet %d", i)
				bets = append(bets, bet)
			}
			before := bytes.Clone(bb.Frame(1))
			require.ErrorIs(t, bb.Add(Bet{}), ErrBatchFull)
			assert.Equal(t, tt.want, bb.Len())
			assert.Equal(t, before, bb.Frame(1), "a refused bet must leave the frame as it was")
			assert.Equal(t, &Batch{Seq: 1, Bets: bets}, decodeBatchFrame(t, bb.Frame(1)))
		})
	}
}

func TestBatchBuilderFrameLimit(t *testing.T) {
	tests := []struct {
		name string
		bet  func(i int) Bet
	}{
		{"largest bets", largeBet},
		{"realistic bets", realisticBet},
		{"mixed sizes", func(i int) Bet {
			if i%3 == 0 {
				return largeBet(i)
			}
			return realisticBet(i)
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			bb := NewBatchBuilder(0)
			var bets []Bet
			var rejected Bet
			for i := 0; ; i++ {
				bet := tt.bet(i)
				err := bb.Add(bet)
				if errors.Is(err, ErrBatchFull) {
					rejected = bet
					break
				}
				require.NoError(t, err)
				bets = append(bets, bet)
			}
			frame := bb.Frame(3)
			require.LessOrEqual(t, len(frame), MaxClientFrame)
			require.Less(t, len(bets), MaxBatchBets, "the frame limit, not the count, must have stopped it")

			// The refused bet really did not fit.
			withRejected, err := AppendBet(bytes.Clone(frame), rejected)
			require.NoError(t, err)
			assert.Greater(t, len(withRejected), MaxClientFrame)

			assert.Equal(t, &Batch{Seq: 3, Bets: bets}, decodeBatchFrame(t, frame))

			// After Reset the refused bet is the first of the next batch.
			bb.Reset()
			assert.Zero(t, bb.Len())
			require.NoError(t, bb.Add(rejected))
			assert.Equal(t, &Batch{Seq: 4, Bets: []Bet{rejected}}, decodeBatchFrame(t, bb.Frame(4)))
		})
	}
	t.Run("largest bets: seven fit", func(t *testing.T) {
		bb := NewBatchBuilder(0)
		for i := range 7 {
			require.NoError(t, bb.Add(largeBet(i)))
		}
		require.ErrorIs(t, bb.Add(largeBet(7)), ErrBatchFull)
		assert.Len(t, bb.Frame(1), HeaderSize+batchPrefix+7*1030)
	})
}

func TestBatchBuilderUnencodableBet(t *testing.T) {
	long := strings.Repeat("n", 300)
	tests := []struct {
		name string
		bet  Bet
	}{
		{"300-byte first name", Bet{Agency: 1, FirstName: long, LastName: "x", Document: "1", Birthdate: "2000-01-01"}},
		{"300-byte last name", Bet{Agency: 1, FirstName: "x", LastName: long}},
		{"256-byte document", Bet{Agency: 1, Document: strings.Repeat("9", 256)}},
		{"256-byte birthdate", Bet{Agency: 1, Birthdate: strings.Repeat("-", 256)}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			bb := NewBatchBuilder(10)
			require.NoError(t, bb.Add(realisticBet(1)))
			before := bytes.Clone(bb.Frame(1))

			err := bb.Add(tt.bet)
			require.ErrorIs(t, err, ErrStringTooLong)
			require.NotErrorIs(t, err, ErrBatchFull, "Reset cannot cure it; it must not look like a full batch")
			assert.Equal(t, 1, bb.Len())
			assert.Equal(t, before, bb.Frame(1))

			// The builder keeps working and no bytes of the refused bet leak into the frame.
			require.NoError(t, bb.Add(realisticBet(2)))
			assert.Equal(t, &Batch{Seq: 1, Bets: []Bet{realisticBet(1), realisticBet(2)}}, decodeBatchFrame(t, bb.Frame(1)))
		})
	}
}

func TestBatchBuilderFrame(t *testing.T) {
	bb := NewBatchBuilder(0)
	for i := range 3 {
		require.NoError(t, bb.Add(realisticBet(i)))
	}
	want := []Bet{realisticBet(0), realisticBet(1), realisticBet(2)}
	for _, seq := range []uint32{1, 2, 0xFFFFFFFF} {
		frame := bb.Frame(seq)
		seqGot, count, ok := PeekBatch(frame[HeaderSize:])
		require.True(t, ok)
		assert.Equal(t, seq, seqGot)
		assert.Equal(t, 3, count)
		assert.Equal(t, &Batch{Seq: seq, Bets: want}, decodeBatchFrame(t, frame))
	}

	// Adding after Frame updates count and length on the next Frame.
	require.NoError(t, bb.Add(realisticBet(3)))
	assert.Equal(t, &Batch{Seq: 9, Bets: append(want, realisticBet(3))}, decodeBatchFrame(t, bb.Frame(9)))

	// An empty builder makes a frame the central refuses as an empty batch.
	bb.Reset()
	f, err := ReadFrame(bytes.NewReader(bb.Frame(10)), MaxClientFrame, nil)
	require.NoError(t, err)
	_, err = Decode(f)
	require.ErrorIs(t, err, ErrEmptyBatch)
}

func TestBatchBuilderDoesNotAllocate(t *testing.T) {
	bets := make([]Bet, 100)
	for i := range bets {
		bets[i] = realisticBet(i)
	}
	bb := NewBatchBuilder(0)
	allocs := testing.AllocsPerRun(50, func() {
		bb.Reset()
		for _, bet := range bets {
			if err := bb.Add(bet); err != nil {
				panic(err)
			}
		}
		_ = bb.Frame(1)
	})
	assert.Zero(t, allocs)
}

// fullBatch returns as many realistic bets as one frame holds.
func fullBatch(tb testing.TB) []Bet {
	bb := NewBatchBuilder(0)
	var bets []Bet
	for i := 0; ; i++ {
		err := bb.Add(realisticBet(i))
		if errors.Is(err, ErrBatchFull) {
			return bets
		}
		require.NoError(tb, err)
		bets = append(bets, realisticBet(i))
	}
}

func BenchmarkBatchBuilder(b *testing.B) {
	bets := fullBatch(b)
	bb := NewBatchBuilder(0)
	b.ReportAllocs()
	b.SetBytes(int64(len(encode(b, Batch{Seq: 1, Bets: bets}))))
	for i := 0; b.Loop(); i++ {
		bb.Reset()
		for _, bet := range bets {
			if err := bb.Add(bet); err != nil {
				b.Fatal(err)
			}
		}
		_ = bb.Frame(uint32(i))
	}
	b.ReportMetric(float64(len(bets)), "bets/frame")
}

func BenchmarkDecodeBatch(b *testing.B) {
	bets := fullBatch(b)
	payload := encode(b, Batch{Seq: 1, Bets: bets})[HeaderSize:]
	var batch Batch
	b.ReportAllocs()
	b.SetBytes(int64(len(payload)))
	for b.Loop() {
		if err := DecodeInto(payload, &batch); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(len(bets)), "bets/frame")
}

func BenchmarkEncodeBatch(b *testing.B) {
	m := Batch{Seq: 1, Bets: fullBatch(b)}
	buf := make([]byte, 0, MaxClientFrame)
	b.ReportAllocs()
	b.SetBytes(int64(len(encode(b, m))))
	for b.Loop() {
		var err error
		if buf, err = AppendMessage(buf[:0], m); err != nil {
			b.Fatal(err)
		}
	}
}
