package wire

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"lotterycentral.example/lottery"
	"lotterycentral.example/protocol"
)

func TestBet(t *testing.T) {
	b := lottery.Bet{Agency: 3, FirstName: "Ana", LastName: "Pérez", Document: "1", Birthdate: "1990-01-02", Number: 7574}
	tests := []struct {
		name    string
		number  int
		wantErr bool
	}{
		{"a lottery number", 7574, false},
		{"the largest BATCH carries", 65535, false},
		{"past 16 bits: it would wrap", 65536, true},
		{"negative", -1, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b.Number = tt.number
			wb, err := Bet(b)
			if tt.wantErr {
				var fe *lottery.FieldError
				require.ErrorAs(t, err, &fe)
				assert.Equal(t, "number", fe.Field)
				_, err = AppendBet(nil, b)
				assert.Error(t, err)
				return
			}
			require.NoError(t, err)
			assert.Equal(t, protocol.Bet{Agency: 3, FirstName: "Ana", LastName: "Pérez", Document: "1",
				Birthdate: "1990-01-02", Number: uint16(tt.number)}, wb)
			enc, err := AppendBet(nil, b)
			require.NoError(t, err)
			want, err := protocol.AppendBet(nil, wb)
			require.NoError(t, err)
			assert.Equal(t, want, enc)
		})
	}
}

// A file's digest is its bets' digest in order, each as BATCH encodes it.
func TestFileDigest(t *testing.T) {
	dir := t.TempDir()
	tests := []struct {
		name, file string
		wantBets   uint64
		wantErr    string
	}{
		{"two bets", "Ana,Pérez,1,1990-01-02,7574\nLuis,Gómez,2,1980-05-06,12\n", 2, ""},
		{"no bets", "", 0, ""},
		{"a number BATCH cannot carry", "Ana,Pérez,1,1990-01-02,7574\nLuis,Gómez,2,1980-05-06,70000\n", 0,
			"bet 2: invalid bet: number: out of range 0..9999"},
		{"a row that is not a bet", "Ana,Pérez,1\n", 0, ":1: "},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := filepath.Join(dir, strings.ReplaceAll(tt.name, " ", "-")+".csv")
			require.NoError(t, os.WriteFile(path, []byte(tt.file), 0o644))
			n, d, err := FileDigest(path, 3)
			if tt.wantErr != "" {
				require.ErrorContains(t, err, tt.wantErr)
				assert.Contains(t, err.Error(), path)
				return
			}
			require.NoError(t, err)
			assert.Equal(t, tt.wantBets, n)
			w := protocol.NewDigestWriter()
			for b, err := range lottery.ReadAgencyFile(path, 3) {
				require.NoError(t, err)
				enc, err := protocol.AppendBet(nil, protocol.Bet{Agency: 3, FirstName: b.FirstName, LastName: b.LastName,
					Document: b.Document, Birthdate: b.Birthdate, Number: uint16(b.Number)})
				require.NoError(t, err)
				w.Write(enc)
			}
			assert.Equal(t, w.Sum(), d)
		})
	}
}
