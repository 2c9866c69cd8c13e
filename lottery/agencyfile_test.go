package lottery

import (
	"bytes"
	"encoding/csv"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"testing"

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
