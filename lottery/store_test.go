package lottery

import (
	"encoding/csv"
	"fmt"
	"io"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// collect drains seq, failing the test on the first error.
func collect(t testing.TB, seq func(func(Bet, error) bool)) []Bet {
	t.Helper()
	var bets []Bet
	for b, err := range seq {
		require.NoError(t, err)
		bets = append(bets, b)
	}
	return bets
}

func trickyBets() []Bet {
	return []Bet{
		{Agency: 1, FirstName: "Santiago Lionel", LastName: "Lorca", Document: "30904465", Birthdate: "1999-03-17", Number: 2201},
		{Agency: 2, FirstName: "Pérez, Juan", LastName: `O"Higgins`, Document: "1", Birthdate: "1900-01-01", Number: 0},
		{Agency: 3, FirstName: " Iñaki", LastName: `"Ñandú"`, Document: "1234567890", Birthdate: "2000-02-29", Number: WinningNumber},
		{Agency: 12, FirstName: `\.`, LastName: "Zoé Ávila", Document: "007", Birthdate: "1970-01-01", Number: 9999},
	}
}

func TestStoreRoundTrip(t *testing.T) {
	path := filepath.Join(t.TempDir(), "bets.csv")
	s, err := OpenStore(path)
	require.NoError(t, err)

	want := trickyBets()
	require.NoError(t, storeBets(t, s, want[:2]))
	require.NoError(t, storeBets(t, s, nil))
	require.NoError(t, storeBets(t, s, want[2:]))
	assert.Empty(t, collect(t, LoadBets(path)), "gathered, not flushed")
	require.NoError(t, s.Flush())
	assert.Equal(t, want, collect(t, LoadBets(path)))
	require.NoError(t, s.Close())
	assert.Equal(t, want, collect(t, LoadBets(path)))
}

func TestStoreFileFormat(t *testing.T) {
	path := filepath.Join(t.TempDir(), "bets.csv")
	writeStore(t, path, trickyBets()[:2])

	data, err := os.ReadFile(path)
	require.NoError(t, err)
	assert.Equal(t, "1,Santiago Lionel,Lorca,30904465,1999-03-17,2201\n"+
		`2,"Pérez, Juan","O""Higgins",1,1900-01-01,0`+"\n", string(data))
}

func TestStoreAppendsAcrossReopen(t *testing.T) {
	path := filepath.Join(t.TempDir(), "bets.csv")
	want := trickyBets()
	for _, b := range want {
		writeStore(t, path, []Bet{b})
	}
	assert.Equal(t, want, collect(t, LoadBets(path)))
}

func TestStoreClose(t *testing.T) {
	path := filepath.Join(t.TempDir(), "bets.csv")
	s, err := OpenStore(path)
	require.NoError(t, err)
	require.NoError(t, storeBets(t, s, trickyBets()))
	require.NoError(t, s.Sync())
	require.NoError(t, s.Close())
	require.NoError(t, s.Close(), "second Close")
	require.ErrorIs(t, storeBets(t, s, trickyBets()), os.ErrClosed)
	require.ErrorIs(t, s.Sync(), os.ErrClosed)
	assert.Len(t, collect(t, LoadBets(path)), 4, "the closed store's file holds its rows")
}

func TestOpenStoreMissingDir(t *testing.T) {
	_, err := OpenStore(filepath.Join(t.TempDir(), "no", "bets.csv"))
	require.ErrorIs(t, err, os.ErrNotExist)
	assert.Contains(t, err.Error(), "open store")
}

func TestLoadBetsMissingFile(t *testing.T) {
	assert.Empty(t, collect(t, LoadBets(filepath.Join(t.TempDir(), "none.csv"))))
}

func TestLoadBetsCorrupt(t *testing.T) {
	good := "1,Ana,Paz,1,2000-01-01,5\n"
	tests := []struct {
		name    string
		content string
		want    string // in the error
		is      error
	}{
		{"too few fields", good + good + "1,Ana,Paz,1,2000-01-01\n", "line 3: wrong number of fields: got 5, want 6", csv.ErrFieldCount},
		{"too many fields", good + "1,Ana,Paz,1,2000-01-01,5,6\n", "line 2: wrong number of fields", csv.ErrFieldCount},
		{"non-integer number", good + "1,Ana,Paz,1,2000-01-01,five\n", "line 2: number:", strconv.ErrSyntax},
		{"non-integer agency", "x,Ana,Paz,1,2000-01-01,5\n", "line 1: agency:", strconv.ErrSyntax},
		{"signed agency", "+1,Ana,Paz,1,2000-01-01,5\n", "line 1: agency: \"+1\": invalid syntax", strconv.ErrSyntax},
		{"agency with a leading zero", good + "01,Ana,Paz,1,2000-01-01,5\n", "line 2: agency:", strconv.ErrSyntax},
		{"number with a leading zero", good + "1,Ana,Paz,1,2000-01-01,07574\n", "line 2: number:", strconv.ErrSyntax},
		{"number with a space", good + "1,Ana,Paz,1,2000-01-01, 7574\n", "line 2: number:", strconv.ErrSyntax},
		{"negative number", good + "1,Ana,Paz,1,2000-01-01,-5\n", "line 2: number:", strconv.ErrSyntax},
		{"number past int range", good + "1,Ana,Paz,1,2000-01-01,99999999999999999999\n", "line 2: number:", strconv.ErrSyntax},
		{"bare quote", good + good + good + "1,A\"na,Paz,1,2000-01-01,5\n", "line 4: column 4:", csv.ErrBareQuote},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "bets.csv")
			require.NoError(t, os.WriteFile(path, []byte(tt.content+good), 0o644))
			var n int
			var gotErr error
			for b, err := range LoadBets(path) {
				if err != nil {
					require.NoError(t, gotErr, "only one error, then the sequence ends")
					assert.Zero(t, b)
					gotErr = err
					continue
				}
				require.NoError(t, gotErr, "no bet after the error")
				n++
			}
			require.Error(t, gotErr)
			assert.ErrorIs(t, gotErr, tt.is)
			assert.Contains(t, gotErr.Error(), tt.want)
			assert.Contains(t, gotErr.Error(), "load bets")
		})
	}
}

func TestLoadBetsBreak(t *testing.T) {
	path := filepath.Join(t.TempDir(), "bets.csv")
	writeStore(t, path, trickyBets())

	for _, stopAfter := range []int{1, 2, 4} {
		t.Run(fmt.Sprint(stopAfter), func(t *testing.T) {
			// A range-over-func iterator that kept yielding after a break would panic here.
			var got []Bet
			for b, err := range LoadBets(path) {
				require.NoError(t, err)
				got = append(got, b)
				if len(got) == stopAfter {
					break
				}
			}
			assert.Equal(t, trickyBets()[:stopAfter], got)
		})
	}
}

func benchBets(n int) []Bet {
	bets := make([]Bet, n)
	for i := range bets {
		bets[i] = Bet{Agency: i%5 + 1, FirstName: "Santiago Lionel", LastName: "Núñez", Document: "30904465", Birthdate: "1999-03-17", Number: i % 10000}
	}
	return bets
}

func BenchmarkLoadBets(b *testing.B) {
	const rows = 100_000
	path := filepath.Join(b.TempDir(), "bets.csv")
	writeStore(b, path, benchBets(rows))
	b.ReportAllocs()
	for b.Loop() {
		n := 0
		for _, err := range LoadBets(path) {
			if err != nil {
				b.Fatal(err)
			}
			n++
		}
		if n != rows {
			b.Fatalf("loaded %d bets, want %d", n, rows)
		}
	}
	b.ReportMetric(float64(b.N*rows)/b.Elapsed().Seconds(), "bets/s")
}

// The rows of many small StoreRows calls are gathered, none written, until
// Flush hands them all to the OS in one write; Rewind drops the rows not
// written yet.
func TestStoreGathersRows(t *testing.T) {
	path := filepath.Join(t.TempDir(), "bets.csv")
	s, err := OpenStore(path)
	require.NoError(t, err)
	defer s.Close()
	writes := &countingWriter{w: s.f}
	s.out = writes

	bets := benchBets(3000) // several times bufSize
	for batch := range slices.Chunk(bets, 10) {
		require.NoError(t, storeBets(t, s, batch))
	}
	assert.Zero(t, writes.calls, "written before Flush")
	assert.Zero(t, s.Size(), "rows gathered are not counted")
	gathered := s.Buffered()
	require.NoError(t, s.Flush())
	assert.Equal(t, 1, writes.calls)
	assert.Equal(t, gathered, writes.bytes)
	assert.Zero(t, s.Buffered())
	require.NoError(t, s.Flush())
	assert.Equal(t, 1, writes.calls, "nothing gathered, nothing written")
	assert.Equal(t, bets, collect(t, LoadBets(path)))
	assert.Equal(t, int64(writes.bytes), s.Size())

	good := s.Size()
	require.NoError(t, storeBets(t, s, trickyBets()))
	require.NoError(t, s.Rewind(good))
	assert.Zero(t, s.Buffered())
	require.NoError(t, storeBets(t, s, trickyBets()[:1]))
	require.NoError(t, s.Sync())
	assert.Equal(t, append(bets, trickyBets()[0]), collect(t, LoadBets(path)), "the rewound rows never reached the file")
}

type countingWriter struct {
	w            io.Writer
	calls, bytes int
}

func (c *countingWriter) Write(p []byte) (int, error) {
	c.calls++
	n, err := c.w.Write(p)
	c.bytes += n
	return n, err
}

// shortWriter accepts the first room bytes, then fails the way a full disk does.
type shortWriter struct {
	w    io.Writer
	room int
}

func (s *shortWriter) Write(p []byte) (int, error) {
	n := min(len(p), s.room)
	n, _ = s.w.Write(p[:n])
	s.room -= n
	if n < len(p) {
		return n, syscall.ENOSPC
	}
	return n, nil
}

// A write that fails halfway leaves part of a row in the file and an error in
// the store; Rewind to Size cuts the row off, drops the rows not written, and
// the store appends cleanly again.
func TestStoreRewindAfterShortWrite(t *testing.T) {
	tests := []struct {
		name string
		room int // bytes the disk takes of the failing batch
	}{
		{"nothing written", 0},
		{"cut inside the first row", 10},
		{"cut after a whole row", len("3,Ana,Pérez,11111111,1990-01-02,7574\n")},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "bets.csv")
			s, err := OpenStore(path)
			require.NoError(t, err)
			defer s.Close()
			first := trickyBets()[:2]
			require.NoError(t, storeBets(t, s, first))
			assert.Zero(t, s.Size(), "gathered, not written")
			require.NoError(t, s.Flush())
			good := s.Size()
			fi, err := os.Stat(path)
			require.NoError(t, err)
			require.Equal(t, fi.Size(), good)

			s.out = &shortWriter{w: s.f, room: tt.room}
			failing := []Bet{{Agency: 3, FirstName: "Ana", LastName: "Pérez", Document: "11111111", Birthdate: "1990-01-02", Number: 7574}, trickyBets()[2]}
			require.NoError(t, storeBets(t, s, failing), "gathered")
			require.ErrorIs(t, s.Sync(), syscall.ENOSPC)
			assert.Equal(t, good, s.Size(), "Size counts only whole writes")
			require.ErrorIs(t, storeBets(t, s, first), syscall.ENOSPC, "the store keeps its error until Rewind")
			require.ErrorIs(t, s.Flush(), syscall.ENOSPC, "the store keeps its error until Rewind")

			s.out = s.f // the disk has room again
			require.NoError(t, s.Rewind(good))
			require.NoError(t, storeBets(t, s, trickyBets()[2:]))
			require.NoError(t, s.Sync())
			assert.Equal(t, trickyBets(), collect(t, LoadBets(path)))
			fi, err = os.Stat(path)
			require.NoError(t, err)
			assert.Equal(t, fi.Size(), s.Size())
		})
	}
}

func TestStoreSizeAcrossReopen(t *testing.T) {
	path := filepath.Join(t.TempDir(), "bets.csv")
	s, err := OpenStore(path)
	require.NoError(t, err)
	assert.Zero(t, s.Size())
	require.NoError(t, storeBets(t, s, trickyBets()))
	require.NoError(t, s.Close())
	size := s.Size()
	assert.Positive(t, size, "Close flushed")
	require.ErrorIs(t, s.Rewind(0), os.ErrClosed)
	require.ErrorIs(t, s.Flush(), os.ErrClosed)

	s, err = OpenStore(path)
	require.NoError(t, err)
	defer s.Close()
	assert.Equal(t, size, s.Size())
}

// A call far larger than the buffer is gathered whole, written at Close and
// counted whole.
func TestStoreLargeCall(t *testing.T) {
	path := filepath.Join(t.TempDir(), "bets.csv")
	s, err := OpenStore(path)
	require.NoError(t, err)
	bets := benchBets(5000) // several times bufSize
	require.NoError(t, storeBets(t, s, bets))
	require.NoError(t, s.Close())
	fi, err := os.Stat(path)
	require.NoError(t, err)
	assert.Equal(t, fi.Size(), s.Size())
	assert.Equal(t, bets, collect(t, LoadBets(path)))
}

// The store's form rules agree with what they stand for: needsQuotes,
// quotedStart and encodedLen with encoding/csv's Writer, decimal with
// strconv.Itoa, appendInt with strconv.AppendInt.
func TestStoreFormRules(t *testing.T) {
	for _, f := range []string{"", "a", "Ana", " a", "\u00a0a", "\u0085a", "\u2003a", "\ta", "\va", "a b", `\.`, `\`, `\..`,
		"a,b", `a"b`, "a\rb", "a\nb", "Ñandú", "\xffa", "\x00x", "\x1fx", "x ", "7"} {
		var w strings.Builder
		cw := csv.NewWriter(&w)
		require.NoError(t, cw.Write([]string{"x", f}))
		cw.Flush()
		written := strings.TrimSuffix(strings.TrimPrefix(w.String(), "x,"), "\n")
		assert.Equal(t, written != f, needsQuotes(f), "needsQuotes(%q)", f)
		assert.Equal(t, len(written), encodedLen(f), "encodedLen(%q)", f)
		if !strings.ContainsAny(f, "\",\r\n") {
			assert.Equal(t, written != f, quotedStart(f), "quotedStart(%q)", f)
		}
	}
	for _, s := range []string{"", "0", "7", "07", "+7", "-7", " 7", "7 ", "123456789", "1234567890", "9999", "1a", "٣"} {
		v, err := strconv.Atoi(s)
		want := err == nil && v >= 0 && strconv.Itoa(v) == s && len(s) <= maxDigits
		n, ok := decimal(s)
		assert.Equal(t, want, ok, "decimal(%q)", s)
		if want {
			assert.Equal(t, v, n, "decimal(%q)", s)
		}
	}
	for _, n := range []int{math.MinInt, -1, 0, 9, 10, 99, 100, 999, 1000, 7574, 9999, 10000, math.MaxInt} {
		assert.Equal(t, strconv.AppendInt([]byte("x"), int64(n), 10), appendInt([]byte("x"), n), "appendInt(%d)", n)
	}
}
