package lottery

import (
	"bufio"
	"bytes"
	"encoding/csv"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"iter"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"testing/iotest"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func writeTemp(t *testing.T, name, content string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), name)
	require.NoError(t, os.WriteFile(path, []byte(content), 0o644))
	return path
}

func TestReadAgencyFile(t *testing.T) {
	want := []Bet{
		{Agency: 3, FirstName: "Santiago Lionel", LastName: "Lorca", Document: "30904465", Birthdate: "1999-03-17", Number: 2201},
		{Agency: 3, FirstName: "Tiago Nicolás", LastName: "Rivera", Document: "34407251", Birthdate: "2001-08-29", Number: 1033},
	}
	tests := []struct {
		name    string
		content string
	}{
		{"CRLF", "Santiago Lionel,Lorca,30904465,1999-03-17,2201\r\nTiago Nicolás,Rivera,34407251,2001-08-29,1033\r\n"},
		{"LF", "Santiago Lionel,Lorca,30904465,1999-03-17,2201\nTiago Nicolás,Rivera,34407251,2001-08-29,1033\n"},
		{"no final newline", "Santiago Lionel,Lorca,30904465,1999-03-17,2201\r\nTiago Nicolás,Rivera,34407251,2001-08-29,1033"},
		{"BOM", "\uFEFFSantiago Lionel,Lorca,30904465,1999-03-17,2201\r\nTiago Nicolás,Rivera,34407251,2001-08-29,1033\r\n"},
		{"blank lines", "\r\nSantiago Lionel,Lorca,30904465,1999-03-17,2201\r\n\r\nTiago Nicolás,Rivera,34407251,2001-08-29,1033\r\n"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := writeTemp(t, "agency-3.csv", tt.content)
			assert.Equal(t, want, collect(t, ReadAgencyFile(path, 3)))
		})
	}
}

func TestReadAgencyFileEmpty(t *testing.T) {
	assert.Empty(t, collect(t, ReadAgencyFile(writeTemp(t, "agency-1.csv", ""), 1)))
}

func TestReadAgencyFileErrors(t *testing.T) {
	good := "Ana,Paz,1,2000-01-01,5\r\n"
	tests := []struct {
		name    string
		content string
		want    string // after "agency-1.csv:"
		is      error
	}{
		{"four columns", good + "Ana,Paz,1,2000-01-01\r\n", "2: wrong number of fields: got 4, want 5", csv.ErrFieldCount},
		{"six columns", good + good + "1,Ana,Paz,1,2000-01-01,5\r\n", "3: wrong number of fields: got 6, want 5", csv.ErrFieldCount},
		{"header row", "first_name,last_name,document,birthdate,number\r\n", "1: number:", strconv.ErrSyntax},
		{"non-integer number", good + good + good + "Ana,Paz,1,2000-01-01,7574x\r\n", "4: number:", strconv.ErrSyntax},
		{"empty number", good + "Ana,Paz,1,2000-01-01,\r\n", "2: number:", strconv.ErrSyntax},
		{"bare quote", good + "An\"a,Paz,1,2000-01-01,5\r\n", "2: column 3:", csv.ErrBareQuote},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := writeTemp(t, "agency-1.csv", tt.content+good)
			var errs []error
			for _, err := range ReadAgencyFile(path, 1) {
				if err != nil {
					errs = append(errs, err)
				} else {
					require.Empty(t, errs, "no bet after an error")
				}
			}
			require.Len(t, errs, 1)
			assert.ErrorIs(t, errs[0], tt.is)
			assert.Contains(t, errs[0].Error(), "agency-1.csv:"+tt.want)
		})
	}
}

func TestReadAgencyFileMissing(t *testing.T) {
	path := filepath.Join(t.TempDir(), "agency-9.csv")
	var got []error
	for _, err := range ReadAgencyFile(path, 9) {
		got = append(got, err)
	}
	require.Len(t, got, 1)
	assert.ErrorIs(t, got[0], fs.ErrNotExist)
	assert.Contains(t, got[0].Error(), "agency-9.csv")
}

func TestReadAgencyFileDoesNotValidate(t *testing.T) {
	// Validation is the caller's: an out-of-range number or a bad date still comes through.
	path := writeTemp(t, "agency-1.csv", "Ana,Paz,12a,2023-02-30,-5\r\n")
	got := collect(t, ReadAgencyFile(path, 1))
	require.Len(t, got, 1)
	assert.Equal(t, -5, got[0].Number)
	assert.ErrorIs(t, got[0].Validate(testNow), ErrInvalidBet)
}

func TestWriteAgencyFile(t *testing.T) {
	bets := trickyBets()
	var buf bytes.Buffer
	require.NoError(t, WriteAgencyFile(&buf, slices.Values(bets[:2])))
	assert.Equal(t, "Santiago Lionel,Lorca,30904465,1999-03-17,2201\r\n"+
		`"Pérez, Juan","O""Higgins",1,1900-01-01,0`+"\r\n", buf.String())

	buf.Reset()
	require.NoError(t, WriteAgencyFile(&buf, slices.Values(bets)))
	path := writeTemp(t, "agency-7.csv", buf.String())
	got := collect(t, ReadAgencyFile(path, 7))
	require.Len(t, got, len(bets))
	for i := range bets {
		bets[i].Agency = 7 // the agency lives in the file's name, not its rows
	}
	assert.Equal(t, bets, got)
}

// readAgencyFileCSV is ReadAgencyFile without its fast path, all encoding/csv: the
// reference the fast reader must match bet for bet and error text for error text.
func readAgencyFileCSV(path string, agency int) iter.Seq2[Bet, error] {
	return func(yield func(Bet, error) bool) {
		f, err := os.Open(path)
		if err != nil {
			yield(Bet{}, fmt.Errorf("read agency file: %w", err)) // os.Open names the path
			return
		}
		defer f.Close()
		readAgencyCSVRef(f, path, agency, yield)
	}
}

// readAgencyCSVRef is readAgencyFileCSV after os.Open, so tests can feed it any reader:
// the BOM skipped, then encoding/csv for every line (the fast path's fallback, taken
// from line 0).
func readAgencyCSVRef(rd io.Reader, path string, agency int, yield func(Bet, error) bool) {
	br := bufio.NewReaderSize(rd, bufSize)
	if head, _ := br.Peek(len(utf8BOM)); bytes.Equal(head, utf8BOM) {
		br.Discard(len(utf8BOM))
	}
	readAgencyCSV(br, path, agency, 0, yield)
}

// drain returns the bets and the error of seq, which must end at its first error.
func drain(t testing.TB, seq iter.Seq2[Bet, error]) ([]Bet, error) {
	t.Helper()
	var bets []Bet
	var first error
	for b, err := range seq {
		if first != nil {
			t.Fatalf("got %+v, %v after the error %v", b, err, first)
		}
		if err != nil {
			first = err
			continue
		}
		bets = append(bets, b)
	}
	return bets, first
}

var errBoom = errors.New("boom")

// sameResult fails t unless both readers gave the same bets and the same error, both in
// text and in what it wraps.
func sameResult(t testing.TB, wantBets []Bet, wantErr error, gotBets []Bet, gotErr error) {
	t.Helper()
	if !slices.Equal(wantBets, gotBets) {
		t.Fatalf("bets differ:\ncsv: %+v\nnew: %+v", wantBets, gotBets)
	}
	if (wantErr == nil) != (gotErr == nil) || wantErr != nil && wantErr.Error() != gotErr.Error() {
		t.Fatalf("errors differ:\ncsv: %v\nnew: %v", wantErr, gotErr)
	}
	for _, target := range []error{csv.ErrFieldCount, csv.ErrBareQuote, csv.ErrQuote,
		strconv.ErrSyntax, strconv.ErrRange, fs.ErrNotExist, errBoom} {
		if errors.Is(wantErr, target) != errors.Is(gotErr, target) {
			t.Fatalf("errors.Is(err, %v): csv %v, new %v (%v)", target, errors.Is(wantErr, target), errors.Is(gotErr, target), gotErr)
		}
	}
}

// readers run the reference on oldRd and the new reader on newRd with a bufio.Reader of
// size bufferSize: a small one exercises the switch on a line longer than the buffer, and
// lines cut at the buffer's end.
func readers(t testing.TB, oldRd, newRd io.Reader, bufferSize int) (wantBets []Bet, wantErr error, gotBets []Bet, gotErr error) {
	t.Helper()
	const path = "agency-1.csv"
	if oldRd != nil {
		wantBets, wantErr = drain(t, func(yield func(Bet, error) bool) { readAgencyCSVRef(oldRd, path, 1, yield) })
	}
	gotBets, gotErr = drain(t, func(yield func(Bet, error) bool) {
		readAgency(bufio.NewReaderSize(newRd, bufferSize), path, 1, yield)
	})
	return wantBets, wantErr, gotBets, gotErr
}

// compareReaders checks that both readers give the same on the same bytes.
func compareReaders(t testing.TB, newRd, oldRd io.Reader, bufferSize int) ([]Bet, error) {
	t.Helper()
	wantBets, wantErr, gotBets, gotErr := readers(t, oldRd, newRd, bufferSize)
	sameResult(t, wantBets, wantErr, gotBets, gotErr)
	return gotBets, gotErr
}

func TestReadAgencyFileMatchesCSV(t *testing.T) {
	const good = "Ana,Paz,1,2000-01-01,5\r\n"
	long := strings.Repeat("Ñ", bufSize) // a line longer than the buffer
	tests := []struct {
		name    string
		content string
		bets    int    // how many bets come before the end or the error
		err     string // after "agency-1.csv:", "" for none
	}{
		// Lines without a quote: the fast path.
		{"CRLF", good + good, 2, ""},
		{"LF", "Ana,Paz,1,2000-01-01,5\nAna,Paz,1,2000-01-01,5\n", 2, ""},
		{"mixed endings", "Ana,Paz,1,2000-01-01,5\n" + good, 2, ""},
		{"accents", "Iñaki Ángel,Núñez,30904465,1999-03-17,2201\r\nZoé,Agüero,1,2000-01-01,7574\r\n", 2, ""},
		{"no final newline", good + "Ana,Paz,1,2000-01-01,5", 2, ""},
		{"trailing CR at EOF", good + "Ana,Paz,1,2000-01-01,5\r", 2, ""},
		{"two CRs at EOF", good + "Ana,Paz,1,2000-01-01,5\r\r", 1, "2: number:"},
		{"CR CR LF", good + "Ana,Paz,1,2000-01-01,5\r\r\n", 1, "2: number:"},
		{"bare CR in a field", "An\ra,Paz,1,2000-01-01,5\r\n", 1, ""},
		{"CR before a comma", "Ana\r,Paz,1,2000-01-01,5\r\n", 1, ""},
		{"CR line ending only", "Ana,Paz,1,2000-01-01,5\rAna,Paz,1,2000-01-01,5\r", 0, "1: wrong number of fields: got 9, want 5"},
		{"blank lines", "\r\n\n" + good + "\r\n\r\n\n" + good + "\n\r\n", 2, ""},
		{"blank line of CR at EOF", good + "\r", 1, ""},
		{"blank lines then an error", "\n\r\n\n" + good + "\r\nAna,Paz\r\n", 1, "6: wrong number of fields: got 2, want 5"},
		{"CR CR LF line", good + "\r\r\n", 1, "2: wrong number of fields: got 1, want 5"},
		{"only blank lines", "\r\n\n\r\n", 0, ""},
		{"empty", "", 0, ""},
		{"BOM", "\uFEFF" + good, 1, ""},
		{"BOM only", "\uFEFF", 0, ""},
		{"BOM twice", "\uFEFF\uFEFF" + good, 1, ""},
		{"BOM and an error", "\uFEFF" + good + "x\r\n", 1, "2: wrong number of fields: got 1, want 5"},
		{"four columns", good + "Ana,Paz,1,2000-01-01\r\n", 1, "2: wrong number of fields: got 4, want 5"},
		{"six columns", good + good + "1,Ana,Paz,1,2000-01-01,5\r\n", 2, "3: wrong number of fields: got 6, want 5"},
		{"many commas", ",,,,,,,,,\r\n", 0, "1: wrong number of fields: got 10, want 5"},
		{"one column", "Ana\r\n", 0, "1: wrong number of fields: got 1, want 5"},
		{"empty fields", ",,,,\r\n", 0, "1: number:"},
		{"empty fields and a number", ",,,,0\r\n", 1, ""},
		{"header row", "first_name,last_name,document,birthdate,number\r\n", 0, "1: number:"},
		{"non-integer number", good + good + good + "Ana,Paz,1,2000-01-01,7574x\r\n", 3, "4: number:"},
		{"signed numbers", "Ana,Paz,1,2000-01-01,-5\r\nAna,Paz,1,2000-01-01,+5\r\n", 2, ""},
		{"space in number", "Ana,Paz,1,2000-01-01, 5\r\n", 0, "1: number:"},
		{"number out of range", "Ana,Paz,1,2000-01-01,99999999999999999999\r\n", 0, "1: number:"},
		{"19 digits", "Ana,Paz,1,2000-01-01,9223372036854775807\r\nAna,Paz,1,2000-01-01,9999999999999999999\r\n", 1, "2: number:"},
		{"18 digits", "Ana,Paz,1,2000-01-01,999999999999999999\r\nAna,Paz,1,2000-01-01,000000000000000000005\r\n", 2, ""},
		{"long line", long + ",Paz,1,2000-01-01,5\r\n" + good, 2, ""},
		{"long line then an error", good + long + ",Paz,1,2000-01-01,5\r\n\r\n" + good + "Ana\r\n", 3, "5: wrong number of fields: got 1, want 5"},
		{"long line with too many fields", good + long + ",,Paz,1,2000-01-01,5\r\n", 1, "2: wrong number of fields: got 6, want 5"},

		// From the first line with a quote on, csv reads, and its lines count from the file's.
		{"quoted first line", `"Ana",Paz,1,2000-01-01,5` + "\r\n" + good, 2, ""},
		{"quoted then four columns", good + `"Pérez, Juan",Paz,1,2000-01-01,5` + "\r\n" + good + "Ana,Paz,1,2000-01-01\r\n", 3, "4: wrong number of fields: got 4, want 5"},
		{"quoted then a bad number", good + good + `Ana,"O""Higgins",1,2000-01-01,5` + "\r\n" + good + "Ana,Paz,1,2000-01-01,x\r\n", 4, "5: number:"},
		{"quoted across lines then an error", good + `"Ana` + "\r\nMaría\",Paz,1,2000-01-01,5\r\n" + good + "Ana\r\n", 3, "5: wrong number of fields: got 1, want 5"},
		{"quoted across lines with a bad number", good + `"Ana` + "\r\n\r\n\",Paz,1,2000-01-01,\"\r\nx\"\r\n", 1, "4: number:"},
		{"blank lines then quoted then an error", "\r\n\n" + good + "\r\n" + `"Ana",Paz,1,2000-01-01,5` + "\r\n\r\nx,y\r\n", 2, "7: wrong number of fields: got 2, want 5"},
		{"bare quote", good + "An\"a,Paz,1,2000-01-01,5\r\n", 1, "2: column 3:"},
		{"bare quote later in the line", good + good + "Ana,Paz,1,2000-01-01,5\"\r\n", 2, "3: column 23:"},
		{"bare quote after a switch", good + `"Ana",Paz,1,2000-01-01,5` + "\r\n\r\n" + "Ana,P\"az,1,2000-01-01,5\r\n", 2, "4: column 6:"},
		{"quote then text", good + `"Ana"x,Paz,1,2000-01-01,5` + "\r\n", 1, "2: column 5:"},
		{"unterminated quote", good + good + `"Ana,Paz,1,2000-01-01,5` + "\r\n" + good, 2, "4: column 24:"}, // csv names the last line read
		{"quoted CR", `"An` + "\r" + `a",Paz,1,2000-01-01,5` + "\r\n", 1, ""},
		{"quoted CRLF", `"An` + "\r\n" + `a",Paz,1,2000-01-01,5` + "\r\n", 1, ""},
		{"quoted blank", good + `"",Paz,1,2000-01-01,5` + "\r\n\"\"\r\n", 2, "3: wrong number of fields: got 1, want 5"},
		{"quoted at EOF", good + `"Ana",Paz,1,2000-01-01,"5"`, 2, ""},
		{"quoted with CR at EOF", good + `"Ana",Paz,1,2000-01-01,"5"` + "\r", 2, ""},
		{"BOM then quoted", "\uFEFF" + `"Ana",Paz,1,2000-01-01,5` + "\r\nx\r\n", 1, "2: wrong number of fields: got 1, want 5"},
		{"many lines then quoted", strings.Repeat(good, 50) + "\r\n" + `"Ana",Paz,1,2000-01-01,5` + "\r\n" + strings.Repeat(good, 50) + "x\r\n", 101, "103: wrong number of fields: got 1, want 5"},
		{"long quoted line", good + `"` + long + `",Paz,1,2000-01-01,5` + "\r\nx\r\n", 2, "3: wrong number of fields: got 1, want 5"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := writeTemp(t, "agency-1.csv", tt.content)
			wantBets, wantErr := drain(t, readAgencyFileCSV(path, 1))
			gotBets, gotErr := drain(t, ReadAgencyFile(path, 1))
			sameResult(t, wantBets, wantErr, gotBets, gotErr)
			assert.Len(t, gotBets, tt.bets)
			if tt.err == "" {
				assert.NoError(t, gotErr)
			} else if assert.Error(t, gotErr) {
				assert.Contains(t, gotErr.Error(), path+":"+tt.err)
			}
			// Small buffers: most lines longer than it, or cut at its end; one byte per read.
			for _, size := range []int{16, 100} {
				compareReaders(t, strings.NewReader(tt.content), strings.NewReader(tt.content), size)
				compareReaders(t, iotest.OneByteReader(strings.NewReader(tt.content)), strings.NewReader(tt.content), size)
			}
		})
	}
}

func TestReadAgencyFileReadError(t *testing.T) {
	const good = "Ana,Paz,1,2000-01-01,5\r\n"
	tests := []struct {
		name string
		data string // before the read error
		bets int
		is   error
	}{
		{"at the start", "", 2, nil}, // the BOM check's Peek drops it, as it always did
		{"after a line", good, 1, errBoom},
		{"mid-line", good + "Ana,Paz", 1, errBoom},
		{"mid-line with a CR", good + "Ana,Paz,1,2000-01-01,5\r", 1, errBoom},
		{"mid-line with a quote", good + `"Ana",Paz,1,2000-01-01,5`, 1, errBoom},
		{"mid-line with a bare quote", good + `Ana",Paz`, 1, csv.ErrBareQuote}, // csv parses what came first
		{"inside a quoted field", good + `"Ana` + "\r\n", 1, errBoom},
		{"after a quoted line", `"Ana",Paz,1,2000-01-01,5` + "\r\n", 1, errBoom},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			// Data comes again after the error: neither reader may read on past it.
			rd := func() io.Reader {
				return io.MultiReader(strings.NewReader(tt.data), &errOnce{err: errBoom}, strings.NewReader(good+good))
			}
			for _, size := range []int{16, bufSize} {
				bets, err := compareReaders(t, rd(), rd(), size)
				assert.Len(t, bets, tt.bets)
				if tt.is == nil {
					assert.NoError(t, err)
				} else {
					assert.ErrorIs(t, err, tt.is)
				}
			}
		})
	}

	t.Run("a directory", func(t *testing.T) {
		dir := t.TempDir()
		wantBets, wantErr := drain(t, readAgencyFileCSV(dir, 1))
		gotBets, gotErr := drain(t, ReadAgencyFile(dir, 1))
		sameResult(t, wantBets, wantErr, gotBets, gotErr)
		assert.ErrorContains(t, gotErr, "read agency file "+dir+": ")
	})
}

// errOnce fails its first read and is at EOF after that.
type errOnce struct {
	err  error
	done bool
}

func (r *errOnce) Read([]byte) (int, error) {
	if r.done {
		return 0, io.EOF
	}
	r.done = true
	return 0, r.err
}

func TestReadAgencyFileStopEarly(t *testing.T) {
	const good = "Ana,Paz,1,2000-01-01,5\r\n"
	for name, content := range map[string]string{
		"plain":  good + good + good,
		"quoted": `"Ana",Paz,1,2000-01-01,5` + "\r\n" + good + good,
	} {
		t.Run(name, func(t *testing.T) {
			path := writeTemp(t, "agency-1.csv", content)
			n := 0
			for _, err := range ReadAgencyFile(path, 1) {
				require.NoError(t, err)
				if n++; n == 2 {
					break // a yield after this would panic
				}
			}
			assert.Equal(t, 2, n)
		})
	}
}

func FuzzReadAgencyFile(f *testing.F) {
	for _, s := range []string{
		"",
		"Santiago Lionel,Lorca,30904465,1999-03-17,2201\r\nTiago Nicolás,Rivera,34407251,2001-08-29,1033\r\n",
		"Ana,Paz,1,2000-01-01,5\nAna,Paz,1,2000-01-01,5",
		"\uFEFFAna,Paz,1,2000-01-01,5\r",
		"\r\n\n\r\r\n\r",
		"Ana,Paz,1,2000-01-01,5\r\r\nAna\r,Paz,1,2000-01-01,5\r\n",
		"Ana,Paz,1,2000-01-01\r\n",
		"Ana,Paz,1,2000-01-01,5,\r\n",
		"Ana,Paz,1,2000-01-01,x\r\n",
		"Ana,Paz,1,2000-01-01,5\r\n\"Pérez, Juan\",\"O\"\"Higgins\",1,1900-01-01,0\r\nAna\r\n",
		"Ana,Paz,1,2000-01-01,5\r\n\"An\r\na\",Paz,1,2000-01-01,\"5\r\n\"\r\nx\r\n",
		"Ana,Paz,1,2000-01-01,5\r\nAn\"a,Paz,1,2000-01-01,5\r\n",
		"\"Ana\"x,Paz,1,2000-01-01,5\r\n",
		"Ana,Paz,1,2000-01-01,5\r\n\"Ana,Paz",
		"Ana,Paz,1,2000-01-01,5\r\nAna Maria Josefina,Paz,1,2000-01-01,5\r\nx\r\n",
		strings.Repeat("Iñaki Ángel,Núñez,30904465,1999-03-17,2201\r\n", 5) + "\"Ana\",Paz,1,2000-01-01,5\r\nx\r\n",
		strings.Repeat("Ana,Paz,1,2000-01-01,5\n", 10) + "Ana,Paz,1,2000-01-01,+5\r\n\r\nAna,Paz,1,2000-01-01\r\n",
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		wantBets, wantErr, gotBets, gotErr := readers(t, bytes.NewReader(data), bytes.NewReader(data), bufSize)
		sameResult(t, wantBets, wantErr, gotBets, gotErr)
		// 16 bytes, bufio's least, sends most lines to csv as longer than the buffer; 100
		// cuts lines at the buffer's end and still has whole 64-byte blocks.
		for _, size := range []int{16, 100} {
			_, _, gotBets, gotErr := readers(t, nil, bytes.NewReader(data), size)
			sameResult(t, wantBets, wantErr, gotBets, gotErr)
		}
	})
}

func BenchmarkReadAgencyFile(b *testing.B) {
	const n = 100_000
	paths, err := GenerateAgencyFiles(b.TempDir(), 1, n, 1)
	require.NoError(b, err)
	for _, bm := range []struct {
		name string
		read func(string, int) iter.Seq2[Bet, error]
	}{
		{"new", ReadAgencyFile},
		{"csv", readAgencyFileCSV},
	} {
		b.Run(bm.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				got := 0
				for _, err := range bm.read(paths[0], 1) {
					if err != nil {
						b.Fatal(err)
					}
					got++
				}
				if got != n {
					b.Fatalf("read %d bets, want %d", got, n)
				}
			}
			b.ReportMetric(float64(n)*float64(b.N)/b.Elapsed().Seconds(), "bets/s")
		})
	}
}
