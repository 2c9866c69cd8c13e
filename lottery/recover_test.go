package lottery

import (
	"bufio"
	"encoding/csv"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"iter"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestRepairTail(t *testing.T) {
	const good = "1,Ana,Pérez,11111111,1990-01-02,7574\n" +
		"2,\"Juan, Carlos\",\"O\"\"Brien\",22222222,1980-05-06,12\n"
	tests := []struct {
		name string
		head string // complete rows
		tail string // the partial row a crash left
		rows int
	}{
		{"complete file", good, "", 2},
		{"empty file", "", "", 0},
		{"cut inside a field", good, "3,Lu", 2},
		{"cut inside a quoted name", good, "3,\"María, Jos", 2},
		{"cut inside the last number", good, "3,Sol,Ruiz,44444444,2000-12-31,75", 2},
		{"row without its newline", good, "3,Sol,Ruiz,44444444,2000-12-31,7574", 2},
		{"only a partial first row", "", "1,Ana,Pé", 0},
		{"partial row longer than a read block", good, strings.Repeat("x", 70<<10), 2},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "bets.csv")
			require.NoError(t, os.WriteFile(path, []byte(tt.head+tt.tail), 0o644))
			removed, err := RepairTail(path)
			require.NoError(t, err)
			assert.Equal(t, int64(len(tt.tail)), removed)
			rows := 0
			for _, err := range LoadBets(path) {
				require.NoError(t, err)
				rows++
			}
			assert.Equal(t, tt.rows, rows)

			// Appending after a repair continues on a clean row.
			writeStore(t, path, []Bet{{Agency: 5, FirstName: "Eva", LastName: "Díaz", Document: "5", Birthdate: "1970-07-08", Number: 1}})
			var last Bet
			for b, err := range LoadBets(path) {
				require.NoError(t, err)
				last = b
			}
			assert.Equal(t, 5, last.Agency)
		})
	}
}

func TestRepairTailMissingFile(t *testing.T) {
	removed, err := RepairTail(filepath.Join(t.TempDir(), "none.csv"))
	require.NoError(t, err)
	assert.Zero(t, removed)
}

// The reference itself holds to the rows a store file may hold.
func TestRecoverBets(t *testing.T) {
	now := time.Date(2024, 6, 1, 12, 0, 0, 0, time.UTC)
	valid := func(b Bet) error { return b.Validate(now) }
	const good = "1,Ana,Pérez,11111111,1990-01-02,7574\n"
	tests := []struct {
		name    string
		content string
		rows    int    // bets yielded before the error, or in all
		want    string // in the error; "" for none
		is      error
	}{
		{"what the store writes", "", 4, "", nil},
		{"invalid bet", good + "2,Ana,Pérez,1111a111,1990-01-02,1\n", 1, `line 2: invalid bet: document: not only digits`, ErrInvalidBet},
		{"future birthdate", good + good + "2,Ana,Pérez,1,2024-06-02,1\n", 2, "line 3: invalid bet: birthdate: in the future", ErrInvalidBet},
		{"day that does not exist", "2,Ana,Pérez,1,2023-02-30,1\n", 0, "line 1: invalid bet: birthdate", ErrInvalidBet},
		{"signed agency", "+2,Ana,Pérez,1,1990-01-02,1\n", 0, "line 1: agency:", strconv.ErrSyntax},
		{"needless quotes", good + `2,"Ana",Pérez,1,1990-01-02,1` + "\n", 1, "line 2: first_name: " + ErrNotCanonical.Error(), ErrNotCanonical},
		{"quoted number", good + `2,Ana,Pérez,1,1990-01-02,"1"` + "\n", 1, "line 2: number or line ending: " + ErrNotCanonical.Error(), ErrNotCanonical},
		{"leading space not quoted", "2, Ana,Pérez,1,1990-01-02,1\n", 0, "line 1: first_name: " + ErrNotCanonical.Error(), ErrNotCanonical},
		{"CRLF line ending", good + "2,Ana,Pérez,1,1990-01-02,1\r\n", 1, "line 2: number or line ending", ErrNotCanonical},
		{"blank line between rows", good + "\n" + good, 1, "line 3:", ErrNotCanonical},
		{"blank line at the end", good + "\n", 1, "line 2: " + ErrNotCanonical.Error() + ": a blank line", ErrNotCanonical},
		{"control character in a quoted name", "2,\"A\nna\",Pérez,1,1990-01-02,1\n", 0, "line 1: invalid bet: first_name: contains a control character", ErrInvalidBet},
		{"too few columns", good + "2,Ana,Pérez,1,1990-01-02\n", 1, "line 2: wrong number of fields", csv.ErrFieldCount},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "bets.csv")
			if tt.content == "" {
				writeStore(t, path, trickyBets())
			} else {
				require.NoError(t, os.WriteFile(path, []byte(tt.content), 0o644))
			}
			var rows int
			var gotErr error
			for _, err := range recoverBets(path, valid) {
				if err != nil {
					gotErr = err
					continue
				}
				require.NoError(t, gotErr, "no bet after the error")
				rows++
			}
			assert.Equal(t, tt.rows, rows)
			if tt.want == "" {
				require.NoError(t, gotErr)
				return
			}
			require.ErrorIs(t, gotErr, tt.is)
			assert.ErrorContains(t, gotErr, fmt.Sprintf("recover bets %q: ", path))
			assert.ErrorContains(t, gotErr, tt.want)
		})
	}
}

// encodedLen agrees with csv.Writer on every kind of field a bet can hold.
func TestEncodedLenMatchesCSVWriter(t *testing.T) {
	fields := []string{"", "Ana", "Pérez, Juan", `O"Higgins`, `""`, " Iñaki", "\tx", "\u00a0x", `\.`, `\.x`, "a\rb", "a\nb", "x ", "7574"}
	for _, f := range fields {
		var buf strings.Builder
		w := csv.NewWriter(&buf)
		require.NoError(t, w.Write([]string{"1", f}))
		w.Flush()
		assert.Equal(t, buf.Len()-len("1,\n"), encodedLen(f), "field %q", f)
	}
}

// recoverBets is the sequential reference ScanStore is tested against: it
// reads a store file with encoding/csv, a record at a time, and trusts
// nothing: every bet must pass check, and every row must be byte for byte
// what the store writes for that bet (canonicalRow), numbers in strconv.Itoa
// form, no blank line. The first bad row yields (Bet{}, err) and ends the
// sequence; err reads `recover bets "path": line N: reason`. A missing file
// yields nothing.
func recoverBets(path string, check func(Bet) error) iter.Seq2[Bet, error] {
	const op = "recover bets"
	return func(yield func(Bet, error) bool) {
		f, err := os.Open(path)
		if errors.Is(err, fs.ErrNotExist) {
			return
		}
		if err != nil {
			yield(Bet{}, fmt.Errorf("%s: %w", op, err))
			return
		}
		defer f.Close()

		r := csv.NewReader(bufio.NewReaderSize(f, bufSize))
		r.FieldsPerRecord = len(storeColumns)
		r.ReuseRecord = true
		var end int64 // where the last row ended
		rows := 0     // the rows read so far, one line each
		for {
			rec, err := r.Read()
			if err == io.EOF {
				if r.InputOffset() != end {
					// The reader skips blank lines; the store never writes one.
					yield(Bet{}, fmt.Errorf("%s %q: line %d: %w: a blank line", op, path, rows+1, ErrNotCanonical))
				}
				return
			}
			if err != nil {
				if line, cause := csvError(err, rec, len(storeColumns)); line > 0 {
					err = fmt.Errorf("line %d: %w", line, cause)
				}
				yield(Bet{}, fmt.Errorf("%s %q: %w", op, path, err))
				return
			}
			b, err := parseStoreRecord(rec)
			if err == nil {
				err = check(b)
			}
			if err == nil {
				err = canonicalRow(r, rec, r.InputOffset()-end)
			}
			if err != nil {
				line, _ := r.FieldPos(0)
				yield(Bet{}, fmt.Errorf("%s %q: line %d: %w", op, path, line, err))
				return
			}
			end = r.InputOffset()
			rows++
			if !yield(b, nil) {
				return
			}
		}
	}
}
