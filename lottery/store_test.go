package lottery

import (
	"encoding/csv"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
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
	assert.Equal(t, path, s.Path())

	want := trickyBets()
	require.NoError(t, s.StoreBets(want[:2]))
	require.NoError(t, s.StoreBets(nil))
	require.NoError(t, s.StoreBets(want[2:]))
	assert.Equal(t, want, collect(t, s.LoadBets()))
	require.NoError(t, s.Close())
	assert.Equal(t, want, collect(t, LoadBets(path)))
}

func TestStoreFileFormat(t *testing.T) {
	path := filepath.Join(t.TempDir(), "bets.csv")
	s, err := OpenStore(path)
	require.NoError(t, err)
	require.NoError(t, s.StoreBets(trickyBets()[:2]))
	require.NoError(t, s.Close())

	data, err := os.ReadFile(path)
	require.NoError(t, err)
	assert.Equal(t, "1,Santiago Lionel,Lorca,30904465,1999-03-17,2201\n"+
		`2,"Pérez, Juan","O""Higgins",1,1900-01-01,0`+"\n", string(data))
}

func TestStoreAppendsAcrossReopen(t *testing.T) {
	path := filepath.Join(t.TempDir(), "bets.csv")
	want := trickyBets()
	for _, b := range want {
		s, err := OpenStore(path)
		require.NoError(t, err)
		require.NoError(t, s.StoreBets([]Bet{b}))
		require.NoError(t, s.Close())
	}
	assert.Equal(t, want, collect(t, LoadBets(path)))
}

func TestStoreClose(t *testing.T) {
	s, err := OpenStore(filepath.Join(t.TempDir(), "bets.csv"))
	require.NoError(t, err)
	require.NoError(t, s.StoreBets(trickyBets()))
	require.NoError(t, s.Sync())
	require.NoError(t, s.Close())
	require.NoError(t, s.Close(), "second Close")
	require.ErrorIs(t, s.StoreBets(trickyBets()), os.ErrClosed)
	require.ErrorIs(t, s.Sync(), os.ErrClosed)
	assert.Len(t, collect(t, s.LoadBets()), 4, "a closed store still reads its file")
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
	s, err := OpenStore(path)
	require.NoError(t, err)
	require.NoError(t, s.StoreBets(trickyBets()))
	require.NoError(t, s.Close())

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

func BenchmarkStoreBets(b *testing.B) {
	s, err := OpenStore(filepath.Join(b.TempDir(), "bets.csv"))
	require.NoError(b, err)
	defer s.Close()
	batch := benchBets(150)
	b.ReportAllocs()
	for b.Loop() {
		if err := s.StoreBets(batch); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.N*len(batch))/b.Elapsed().Seconds(), "bets/s")
}

func BenchmarkLoadBets(b *testing.B) {
	const rows = 100_000
	path := filepath.Join(b.TempDir(), "bets.csv")
	s, err := OpenStore(path)
	require.NoError(b, err)
	require.NoError(b, s.StoreBets(benchBets(rows)))
	require.NoError(b, s.Close())
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
