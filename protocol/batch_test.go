package protocol

import (
	"bytes"
	"errors"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// decodeBatchFrame reads a builder's frame the way an agency's peer does,
// and checks that the central's zero-copy read (BatchRows) agrees.
func decodeBatchFrame(t testing.TB, frame []byte) *Batch {
	t.Helper()
	require.LessOrEqual(t, len(frame), MaxClientFrame)
	f, err := ReadFrame(bytes.NewReader(frame), MaxClientFrame, nil)
	require.NoError(t, err)
	require.Equal(t, MsgBatch, f.Type)
	m, err := Decode(f)
	require.NoError(t, err)
	b := m.(*Batch)
	rows, count, err := BatchRows(f.Payload)
	require.NoError(t, err)
	assert.Equal(t, b.Count, count, "BatchRows' count")
	assert.Equal(t, b.Rows, rows, "BatchRows' rows")
	return b
}

// rowOfSize is a row of n bytes, LF included.
func rowOfSize(n int, fill byte) []byte {
	return append(bytes.Repeat([]byte{fill}, n-1), '\n')
}

// largestRow is the longest row a frame holds: the whole payload but seq
// and count.
const largestRow = MaxClientPayload - batchPrefix

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

			// The smallest rows, so only the count can stop the builder.
			var rows [][]byte
			for i := range tt.want {
				require.NoError(t, bb.AddRow(smallestRow), "row %d", i)
				rows = append(rows, smallestRow)
			}
			before := bytes.Clone(bb.Frame(1))
			require.ErrorIs(t, bb.AddRow(smallestRow), ErrBatchFull)
			assert.Equal(t, tt.want, bb.Len())
			assert.Equal(t, before, bb.Frame(1), "a refused row must leave the frame as it was")
			assert.Equal(t, ptr(batchOf(1, rows...)), decodeBatchFrame(t, bb.Frame(1)))
		})
	}
}

func TestBatchBuilderFrameLimit(t *testing.T) {
	tests := []struct {
		name string
		row  func(i int) []byte
	}{
		{"largest valid rows", largestValidRow},
		{"realistic rows", realisticRow},
		{"rows of 1000 bytes", func(i int) []byte { return rowOfSize(1000, byte('a'+i%26)) }},
		{"mixed sizes", func(i int) []byte {
			switch i % 3 {
			case 0:
				return largestValidRow(i)
			case 1:
				return smallestRow
			}
			return realisticRow(i)
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			bb := NewBatchBuilder(0)
			var rows [][]byte
			var rejected []byte
			for i := 0; ; i++ {
				row := tt.row(i)
				err := bb.AddRow(row)
				if errors.Is(err, ErrBatchFull) {
					rejected = row
					break
				}
				require.NoError(t, err)
				rows = append(rows, row)
			}
			frame := bb.Frame(3)
			require.LessOrEqual(t, len(frame), MaxClientFrame)
			require.Less(t, len(rows), MaxBatchBets, "the frame limit, not the count, must have stopped it")

			// The refused row really did not fit.
			assert.Greater(t, len(frame)+len(rejected), MaxClientFrame)

			assert.Equal(t, ptr(batchOf(3, rows...)), decodeBatchFrame(t, frame))

			// After Reset the refused row is the first of the next batch.
			bb.Reset()
			assert.Zero(t, bb.Len())
			require.NoError(t, bb.AddRow(rejected))
			assert.Equal(t, ptr(batchOf(4, rejected)), decodeBatchFrame(t, bb.Frame(4)))
		})
	}
}

// The frame limit is inclusive: rows that make the frame exactly 8192 bytes fit.
func TestBatchBuilderFrameLimitIsExact(t *testing.T) {
	tests := []struct {
		name  string
		sizes []int // rows' sizes; they add up to largestRow
	}{
		{"one row as large as a frame holds", []int{largestRow}},
		{"two rows", []int{largestRow - 433, 433}},
		{"a smallest row last", []int{largestRow - 5, 5}},
		{"nine rows of 909 bytes", []int{909, 909, 909, 909, 909, 909, 909, 909, 909}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			bb := NewBatchBuilder(0)
			var rows [][]byte
			for i, n := range tt.sizes {
				row := rowOfSize(n, byte('a'+i))
				require.NoError(t, bb.AddRow(row), "row %d", i)
				rows = append(rows, row)
			}
			require.Len(t, bb.Frame(1), MaxClientFrame)
			require.ErrorIs(t, bb.AddRow([]byte("\n")), ErrBatchFull, "not one more byte")
			assert.Equal(t, ptr(batchOf(1, rows...)), decodeBatchFrame(t, bb.Frame(1)))
		})
	}
}

// A row without its LF, or one no frame can hold, is an error Reset cannot
// cure: it leaves the batch as it was and does not look like a full batch.
func TestBatchBuilderRefusesRow(t *testing.T) {
	tests := []struct {
		name string
		row  []byte
		want error
	}{
		{"no bytes", nil, ErrMalformed},
		{"empty", []byte{}, ErrMalformed},
		{"no LF", []byte("Ana,Paz,1,1990-01-02,7"), ErrMalformed},
		{"CR but no LF", []byte("Ana,Paz,1,1990-01-02,7\r"), ErrMalformed},
		{"LF not last", []byte("Ana,Paz,1,1990-01-02,7\n "), ErrMalformed},
		{"a second LF: a quoted line break in a name", []byte("\"Ana\nMaría\",Paz,2,1990-01-02,8\n"), ErrMalformed},
		{"one byte over a frame", rowOfSize(largestRow+1, 'x'), ErrFrameTooLarge},
		{"far over a frame", rowOfSize(3*MaxClientFrame, 'x'), ErrFrameTooLarge},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			check := func(bb *BatchBuilder, want error) {
				t.Helper()
				before, n := bytes.Clone(bb.Frame(1)), bb.Len()
				err := bb.AddRow(tt.row)
				require.ErrorIs(t, err, want)
				if want != ErrBatchFull {
					require.NotErrorIs(t, err, ErrBatchFull, "Reset cannot cure it; it must not look like a full batch")
				}
				assert.Equal(t, n, bb.Len())
				assert.Equal(t, before, bb.Frame(1), "no byte of the refused row may enter the frame")
			}

			bb := NewBatchBuilder(10)
			check(bb, tt.want)
			require.NoError(t, bb.AddRow(realisticRow(1)))
			// A batch under way refuses it for good too: no frame is sent early for it.
			check(bb, tt.want)

			// The builder keeps working.
			require.NoError(t, bb.AddRow(realisticRow(2)))
			assert.Equal(t, ptr(batchOf(1, realisticRow(1), realisticRow(2))), decodeBatchFrame(t, bb.Frame(1)))
		})
	}
}

func TestBatchBuilderFrame(t *testing.T) {
	bb := NewBatchBuilder(0)
	assert.Empty(t, bb.Rows(), "a new builder holds no rows")
	var want [][]byte
	for i := range 3 {
		require.NoError(t, bb.AddRow(realisticRow(i)))
		want = append(want, realisticRow(i))
		assert.Equal(t, bytes.Join(want, nil), bb.Rows(), "Rows after %d rows", i+1)
	}
	for _, seq := range []uint32{1, 2, 0xFFFFFFFF} {
		frame := bb.Frame(seq)
		seqGot, count, ok := PeekBatch(frame[HeaderSize:])
		require.True(t, ok)
		assert.Equal(t, seq, seqGot)
		assert.Equal(t, 3, count)
		assert.Equal(t, ptr(batchOf(seq, want...)), decodeBatchFrame(t, frame))
		// Rows is the frame's rows, what the agency's digest covers.
		assert.Equal(t, frame[HeaderSize+batchPrefix:], bb.Rows())
		rows, _, err := BatchRows(frame[HeaderSize:])
		require.NoError(t, err)
		assert.Equal(t, rows, bb.Rows())
	}

	// Adding after Frame updates count and length on the next Frame.
	require.NoError(t, bb.AddRow(realisticRow(3)))
	want = append(want, realisticRow(3))
	assert.Equal(t, ptr(batchOf(9, want...)), decodeBatchFrame(t, bb.Frame(9)))
	assert.Equal(t, bytes.Join(want, nil), bb.Rows())

	// The builder copies a row: the caller may reuse its buffer.
	row := bytes.Clone(realisticRow(4))
	require.NoError(t, bb.AddRow(row))
	want = append(want, realisticRow(4))
	copy(row, "XXXXXXXX")
	assert.Equal(t, ptr(batchOf(10, want...)), decodeBatchFrame(t, bb.Frame(10)))

	// An empty builder makes a frame the central refuses as an empty batch.
	bb.Reset()
	assert.Empty(t, bb.Rows())
	f, err := ReadFrame(bytes.NewReader(bb.Frame(11)), MaxClientFrame, nil)
	require.NoError(t, err)
	_, err = Decode(f)
	require.ErrorIs(t, err, ErrEmptyBatch)
	_, _, err = BatchRows(f.Payload)
	require.ErrorIs(t, err, ErrEmptyBatch)
}

func TestBatchBuilderDoesNotAllocate(t *testing.T) {
	rows := make([][]byte, 100)
	for i := range rows {
		rows[i] = realisticRow(i)
	}
	bb := NewBatchBuilder(0)
	allocs := testing.AllocsPerRun(50, func() {
		bb.Reset()
		for _, row := range rows {
			if err := bb.AddRow(row); err != nil {
				panic(err)
			}
		}
		_ = bb.Frame(1)
	})
	assert.Zero(t, allocs)
}

// fullBatch returns as many realistic rows as one frame holds.
func fullBatch(tb testing.TB) [][]byte {
	bb := NewBatchBuilder(0)
	var rows [][]byte
	for i := 0; ; i++ {
		err := bb.AddRow(realisticRow(i))
		if errors.Is(err, ErrBatchFull) {
			return rows
		}
		require.NoError(tb, err)
		rows = append(rows, realisticRow(i))
	}
}

func BenchmarkBatchBuilder(b *testing.B) {
	rows := fullBatch(b)
	bb := NewBatchBuilder(0)
	b.ReportAllocs()
	b.SetBytes(int64(len(encode(b, batchOf(1, rows...)))))
	for i := 0; b.Loop(); i++ {
		bb.Reset()
		for _, row := range rows {
			if err := bb.AddRow(row); err != nil {
				b.Fatal(err)
			}
		}
		_ = bb.Frame(uint32(i))
	}
	b.ReportMetric(float64(len(rows)), "bets/frame")
}

// BenchmarkBatchRows is the central's read of a batch: no copy.
func BenchmarkBatchRows(b *testing.B) {
	rows := fullBatch(b)
	payload := encode(b, batchOf(1, rows...))[HeaderSize:]
	b.ReportAllocs()
	b.SetBytes(int64(len(payload)))
	for b.Loop() {
		if _, _, err := BatchRows(payload); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(len(rows)), "bets/frame")
}

func BenchmarkDecodeBatch(b *testing.B) {
	rows := fullBatch(b)
	payload := encode(b, batchOf(1, rows...))[HeaderSize:]
	var batch Batch
	b.ReportAllocs()
	b.SetBytes(int64(len(payload)))
	for b.Loop() {
		if err := DecodeInto(payload, &batch); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(len(rows)), "bets/frame")
}

func BenchmarkEncodeBatch(b *testing.B) {
	m := batchOf(1, fullBatch(b)...)
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
