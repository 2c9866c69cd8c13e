package wire

import (
	"encoding/csv"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"lotterycentral.example/lottery"
	"lotterycentral.example/protocol"
)

// rowsDigest is the digest worked out apart from FileDigest: BLAKE3
// (DigestWriter) over AppendRow of each bet ReadAgencyFile reads, in order.
func rowsDigest(t *testing.T, path string) (uint64, protocol.Digest) {
	t.Helper()
	var rows []byte
	var n uint64
	for b, err := range lottery.ReadAgencyFile(path, 1) {
		require.NoError(t, err)
		rows = lottery.AppendRow(rows, b)
		n++
	}
	w := protocol.NewDigestWriter()
	w.Write(rows)
	return n, w.Sum()
}

// A file's digest is its bets' rows' digest in order, each row as BATCH
// carries it, whatever the file's line endings, BOM, blank lines or quoting.
func TestFileDigest(t *testing.T) {
	const two = "Ana,Pérez,1,1990-01-02,7574\nLuis,Gómez,2,1980-05-06,12\n"
	tests := []struct {
		name, file string
		wantBets   uint64
		wantRows   string // "" when only rowsDigest says what they are
	}{
		{"two bets", two, 2, two},
		{"no bets", "", 0, ""},
		{"only blank lines", "\r\n\n\r\n", 0, ""},
		{"CRLF", strings.ReplaceAll(two, "\n", "\r\n"), 2, two},
		{"BOM", "\uFEFF" + two, 2, two},
		{"blank lines", "\r\n" + strings.ReplaceAll(two, "\n", "\n\n"), 2, two},
		{"last line without a newline", strings.TrimSuffix(two, "\n"), 2, two},
		{"quoted fields", `"Pérez, Ana","O""Brien",1,1990-01-02,7574` + "\r\n" + `"Luis",Gómez,2,1980-05-06,"12"` + "\r\n", 2,
			`"Pérez, Ana","O""Brien",1,1990-01-02,7574` + "\n" + "Luis,Gómez,2,1980-05-06,12\n"},
		{"a field csv quotes", "Ana, Pérez,1,1990-01-02,7574\n", 1, `Ana," Pérez",1,1990-01-02,7574` + "\n"},
		{"a number written otherwise", "Ana,Pérez,1,1990-01-02,0012\n", 1, "Ana,Pérez,1,1990-01-02,12\n"},
		// Rows are not validated: the central refuses what is no bet.
		{"a number past 9999", "Ana,Pérez,1,1990-01-02,70000\n", 1, "Ana,Pérez,1,1990-01-02,70000\n"},
		{"an invalid birthdate", "Ana,Pérez,1,1990-02-30,-1\n", 1, "Ana,Pérez,1,1990-02-30,-1\n"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "agency-3.csv")
			require.NoError(t, os.WriteFile(path, []byte(tt.file), 0o644))
			n, d, err := FileDigest(path)
			require.NoError(t, err)
			assert.Equal(t, tt.wantBets, n)
			wantN, want := rowsDigest(t, path)
			assert.Equal(t, wantN, n)
			assert.Equal(t, want, d)
			w := protocol.NewDigestWriter()
			w.Write([]byte(tt.wantRows))
			assert.Equal(t, w.Sum(), d, "the digest of the rows %q", tt.wantRows)
		})
	}
}

// FileDigest's errors are ReadAgencyFile's: the file and the line.
func TestFileDigestErrors(t *testing.T) {
	const good = "Ana,Paz,1,1990-01-02,1\r\n"
	tests := []struct {
		name, file string
		want       string // after the path
		is         error
	}{
		{"three fields", good + "Ana,Pérez,1\r\n", ":2: ", csv.ErrFieldCount},
		{"six fields", good + good + "1,Ana,Paz,1,1990-01-02,1\r\n", ":3: ", csv.ErrFieldCount},
		{"a number that is no integer", good + "Ana,Paz,1,1990-01-02,x\r\n", ":2: number: ", strconv.ErrSyntax},
		{"after a quoted line", `"Ana",Paz,1,1990-01-02,1` + "\r\n\r\nAna,Paz\r\n", ":3: ", csv.ErrFieldCount},
		{"a bare quote", good + `An"a,Paz,1,1990-01-02,1` + "\r\n", ":2: column 3: ", csv.ErrBareQuote},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "agency-3.csv")
			require.NoError(t, os.WriteFile(path, []byte(tt.file+good), 0o644))
			n, d, err := FileDigest(path)
			require.ErrorIs(t, err, tt.is)
			assert.ErrorContains(t, err, path+tt.want)
			assert.Zero(t, n)
			assert.Zero(t, d)
			// The same line as ReadAgencyFile's error.
			var readErr error
			for _, err := range lottery.ReadAgencyFile(path, 3) {
				if err != nil {
					readErr = err
				}
			}
			require.Error(t, readErr)
			assert.Equal(t, readErr.Error(), err.Error())
		})
	}

	t.Run("a missing file", func(t *testing.T) {
		path := filepath.Join(t.TempDir(), "agency-9.csv")
		_, _, err := FileDigest(path)
		require.ErrorIs(t, err, fs.ErrNotExist)
		assert.ErrorContains(t, err, path)
	})
}
