package lottery

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

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
			s, err := OpenStore(path)
			require.NoError(t, err)
			require.NoError(t, s.StoreBets([]Bet{{Agency: 5, FirstName: "Eva", LastName: "Díaz", Document: "5", Birthdate: "1970-07-08", Number: 1}}))
			require.NoError(t, s.Close())
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
