package lottery

import (
	"encoding/csv"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// csvRow is b's row as encoding/csv's Writer writes it: what the store must
// write and ScanStore accepts.
func csvRow(t testing.TB, b Bet) string {
	var w strings.Builder
	cw := csv.NewWriter(&w)
	require.NoError(t, cw.Write([]string{strconv.Itoa(b.Agency), b.FirstName, b.LastName, b.Document, b.Birthdate, strconv.Itoa(b.Number)}))
	cw.Flush()
	return w.String()
}

var rowsNow = time.Date(2026, 12, 3, 12, 0, 0, 0, time.UTC)

// storeBets gathers bets in s as the central stores a batch: each checked and
// formatted by Rows.Add (an invalid one fails t), then StoreRows, whose error
// it returns. Like StoreRows it writes nothing: Flush, Sync or Close do.
func storeBets(t testing.TB, s *Store, bets []Bet) error {
	t.Helper()
	var r Rows
	for _, b := range bets {
		require.NoError(t, r.Add(b, rowsNow))
	}
	return s.StoreRows(&r)
}

// Rows.Add checks a bet as Validate does and writes the row csv.Writer
// writes: names that need quotes get them, the rest are copied as they are.
func TestRowsAdd(t *testing.T) {
	valid := func(first, last string) Bet {
		return Bet{Agency: 3, FirstName: first, LastName: last, Document: "30904465", Birthdate: "1999-03-17", Number: 42}
	}
	tests := []struct {
		name string
		bet  Bet
	}{
		{"plain", valid("Ana", "Lorca")},
		{"comma in the first name", valid("Pérez, Juan", "Lorca")},
		{"quote in the last name", valid("Ana", `O"Higgins`)},
		{"both names quoted", valid(`"Ñandú"`, "Ávila, Zoé")},
		{"leading ASCII space", valid(" Iñaki", "Lorca")},
		{"leading no-break space", valid("Ana", "\u00a0Eva")},
		{"leading em space", valid("\u2003Eva", "Lorca")},
		{"the field csv.Writer quotes whole", valid(`\.`, `\.`)},
		{"a backslash-dot prefix is not quoted", valid(`\.x`, "Lorca")},
		{"trailing space", valid("Ana ", "Lorca ")},
		{"only quotes, and accents", valid(`""`, "Zoé")},
		{"largest number and agency", Bet{Agency: 12345, FirstName: "A", LastName: "B", Document: "1234567890", Birthdate: "1900-01-01", Number: 9999}},
		{"winner, zero-padded document", Bet{Agency: 1, FirstName: "A", LastName: "B", Document: "007", Birthdate: "2000-02-29", Number: WinningNumber}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			require.NoError(t, tt.bet.Validate(rowsNow), "the case must be a valid bet")
			var r Rows
			require.NoError(t, r.Add(tt.bet, rowsNow))
			assert.Equal(t, 1, r.Len())
			assert.Equal(t, csvRow(t, tt.bet), string(r.buf))
		})
	}
}

// An invalid bet gets Validate's error and leaves the rows as they were.
func TestRowsAddRefuses(t *testing.T) {
	good := Bet{Agency: 3, FirstName: "Ana", LastName: "Lorca", Document: "30904465", Birthdate: "1999-03-17", Number: 42}
	tests := []struct {
		name   string
		change func(*Bet)
		field  string
	}{
		{"agency 0", func(b *Bet) { b.Agency = 0 }, "agency"},
		{"blank first name", func(b *Bet) { b.FirstName = " \u00a0" }, "first_name"},
		{"newline in the last name", func(b *Bet) { b.LastName = "Lor\nca" }, "last_name"},
		{"C1 control in the last name", func(b *Bet) { b.LastName = "Lor\u0085ca" }, "last_name"},
		{"invalid UTF-8", func(b *Bet) { b.FirstName = "An\xffa" }, "first_name"},
		{"comma in the document", func(b *Bet) { b.Document = "1,2" }, "document"},
		{"birthdate with a quote", func(b *Bet) { b.Birthdate = `1999-03-1"` }, "birthdate"},
		{"birthdate tomorrow", func(b *Bet) { b.Birthdate = "2026-12-04" }, "birthdate"},
		{"number 10000", func(b *Bet) { b.Number = 10000 }, "number"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var r Rows
			require.NoError(t, r.Add(good, rowsNow))
			before := string(r.buf)
			bad := good
			tt.change(&bad)
			err := r.Add(bad, rowsNow)
			var fe *FieldError
			require.ErrorAs(t, err, &fe)
			assert.Equal(t, tt.field, fe.Field)
			assert.Equal(t, bad.Validate(rowsNow), err)
			assert.Equal(t, 1, r.Len())
			assert.Equal(t, before, string(r.buf))
		})
	}
}

// The file StoreRows leaves is byte for byte what encoding/csv's Writer
// writes for the same bets, whatever the sizes: rows that fit beside what is
// gathered, rows that push it past the buffer (flushed there, as the central
// does), more rows than the buffer holds in one call, and empty calls.
func TestStoreRowsWritesCSVWriterRows(t *testing.T) {
	tests := []struct {
		name  string
		sizes []int // bets per call
	}{
		{"one small call", []int{3}},
		{"many calls below the buffer", []int{100, 100, 100, 100}},
		{"calls across the buffer", []int{900, 900, 900}},
		{"a call larger than the buffer", []int{10, 5000, 10}},
		{"empty calls", []int{0, 7, 0}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "bets.csv")
			total := 0
			for _, n := range tt.sizes {
				total += n
			}
			bets := benchBets(total)
			bets[total/2] = trickyBets()[1] // quotes doubled, a comma quoted
			var want strings.Builder
			cw := csv.NewWriter(&want)
			s, err := OpenStore(path)
			require.NoError(t, err)
			var r Rows
			from := 0
			for _, n := range tt.sizes {
				part := bets[from : from+n]
				from += n
				r.Reset()
				for _, b := range part {
					require.NoError(t, r.Add(b, rowsNow))
					require.NoError(t, cw.Write([]string{strconv.Itoa(b.Agency), b.FirstName, b.LastName, b.Document, b.Birthdate, strconv.Itoa(b.Number)}))
				}
				require.NoError(t, s.StoreRows(&r))
				if s.Buffered() >= bufSize {
					require.NoError(t, s.Flush())
				}
			}
			require.NoError(t, s.Close())
			cw.Flush()
			require.NoError(t, cw.Error())
			got, err := os.ReadFile(path)
			require.NoError(t, err)
			assert.Equal(t, want.String(), string(got))
			assert.Equal(t, int64(want.Len()), s.Size())
			assert.Equal(t, bets, collect(t, LoadBets(path)))
		})
	}
}

// StoreRows only gathers; a failed write of what it gathered is kept: later
// calls fail until Rewind.
func TestStoreRowsAfterFailedWrite(t *testing.T) {
	s, err := OpenStore(filepath.Join(t.TempDir(), "bets.csv"))
	require.NoError(t, err)
	s.out = &shortWriter{w: s.f, room: 100} // part of a row, then a full disk
	var r Rows
	for _, b := range benchBets(2000) { // more than the buffer: gathered whole all the same
		require.NoError(t, r.Add(b, rowsNow))
	}
	require.NoError(t, s.StoreRows(&r))
	assert.Equal(t, len(r.buf), s.Buffered())
	assert.Zero(t, s.Size(), "nothing handed to the OS before Flush")
	require.Error(t, s.Flush())
	assert.Zero(t, s.Size())
	require.Error(t, s.StoreRows(&r), "the failure is kept")
	require.Error(t, s.Close(), "to the end")
	require.ErrorIs(t, s.StoreRows(&r), os.ErrClosed)
}

// For any bet, Rows.Add agrees with Validate, and a valid bet's row is
// csv.Writer's.
func FuzzRowsAdd(f *testing.F) {
	for _, b := range trickyBets() {
		f.Add(b.Agency, b.FirstName, b.LastName, b.Document, b.Birthdate, b.Number)
	}
	f.Add(1, "\u2003Eva", `\.`, "1,2", "1999-03-1\"", -1)
	f.Fuzz(func(t *testing.T, agency int, first, last, document, birthdate string, number int) {
		b := Bet{Agency: agency, FirstName: first, LastName: last, Document: document, Birthdate: birthdate, Number: number}
		var r Rows
		err := r.Add(b, rowsNow)
		require.Equal(t, b.Validate(rowsNow), err)
		if err != nil {
			require.Zero(t, r.Len())
			require.Empty(t, r.buf)
			return
		}
		require.Equal(t, csvRow(t, b), string(r.buf))
	})
}

// A batch as the central stores it: every bet checked and formatted in one
// pass (Rows), the rows gathered, and handed to the OS once bufSize bytes are.
func BenchmarkStoreBatch(b *testing.B) {
	batch := benchBets(150)
	s, err := OpenStore(filepath.Join(b.TempDir(), "bets.csv"))
	require.NoError(b, err)
	defer s.Close()
	var r Rows
	b.ReportAllocs()
	for b.Loop() {
		r.Reset()
		for _, bet := range batch {
			if err := r.Add(bet, rowsNow); err != nil {
				b.Fatal(err)
			}
		}
		if err := s.StoreRows(&r); err != nil {
			b.Fatal(err)
		}
		if s.Buffered() >= bufSize {
			if err := s.Flush(); err != nil {
				b.Fatal(err)
			}
		}
	}
	b.ReportMetric(float64(b.N*len(batch))/b.Elapsed().Seconds(), "bets/s")
}
