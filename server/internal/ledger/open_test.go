package ledger

import (
	"errors"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"lotterycentral.example/lottery"
)

// Recovery trusts nothing on disk: a torn last line is cut off either file,
// every other row and journal line is checked, and anything else fails,
// naming the file and the line.
func TestOpen(t *testing.T) {
	three := agencyBetsFor(1, lottery.WinningNumber-1, 3) // the second wins
	two := agencyBetsFor(2, 0, 2)
	rows := csvRows(three[:2]) + csvRows(two) + csvRows(three[2:])
	errStop := errors.New("stop")
	tests := []struct {
		name     string
		bets     string
		journal  string // "-": no journal file
		progress func(uint64) error
		want     Recovered
		wantErr  string // a part of Open's error; "" if it succeeds
		wantBets map[int][]lottery.Bet
	}{
		{"no files", "", "-", nil, Recovered{}, "", map[int][]lottery.Bet{}},
		{"rows and FINISHes", rows, "2,2\n1,3\n", nil, Recovered{Bets: 5, Agencies: 2, Finished: 2}, "",
			map[int][]lottery.Bet{1: three, 2: two}},
		{"a FINISH of an agency without bets", rows, "3,0\n", nil, Recovered{Bets: 5, Agencies: 2, Finished: 1}, "",
			map[int][]lottery.Bet{1: three, 2: two}},
		{"a torn last row is cut", rows + "1,Ana,Pé", "", nil, Recovered{Bets: 5, Agencies: 2, CutBets: 9}, "",
			map[int][]lottery.Bet{1: three, 2: two}},
		{"a torn last FINISH is cut", rows, "2,2\n1,", nil, Recovered{Bets: 5, Agencies: 2, Finished: 1, CutJournal: 2}, "",
			map[int][]lottery.Bet{1: three, 2: two}},
		{"a FINISH repeated with its total", rows, "2,2\n2,2\n", nil, Recovered{Bets: 5, Agencies: 2, Finished: 1}, "",
			map[int][]lottery.Bet{1: three, 2: two}},
		{"a row of an agency out of the round", rows + csvRows(agencyBetsFor(4, 0, 1)), "", nil, Recovered{},
			"line 6: invalid bet: agency: not in 1..3", nil},
		{"an invalid bet", rows + "1,Ana,Pérez,1,1990-01-02,10000\n", "", nil, Recovered{},
			"line 6: invalid bet: number", nil},
		{"a row not as the store writes it", rows + "1,\"Ana\",Pérez,1,1990-01-02,1\n", "", nil, Recovered{},
			lottery.ErrNotCanonical.Error(), nil},
		{"a FINISH whose total is not the stored bets", rows, "1,2\n", nil, Recovered{Bets: 5, Agencies: 2},
			"line 1: agency 1 finished with 2 bets", nil},
		{"a FINISH repeated with another total", rows, "2,2\n2,3\n", nil, Recovered{Bets: 5, Agencies: 2},
			"line 2: agency 2 finished again with 3 bets, first with 2", nil},
		{"a FINISH not in canonical form", rows, "02,2\n", nil, Recovered{Bets: 5, Agencies: 2},
			`line 1: "02,2" is not agency,total`, nil},
		{"a FINISH of an agency out of the round", rows, "4,0\n", nil, Recovered{Bets: 5, Agencies: 2},
			"line 1: agency 4 not in 1..3", nil},
		{"Progress's error ends the recovery", rows, "", func(uint64) error { return errStop }, Recovered{}, "stop", nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "bets.csv")
			if tt.bets != "" {
				require.NoError(t, os.WriteFile(path, []byte(tt.bets), 0o644))
			}
			if tt.journal != "-" {
				require.NoError(t, os.WriteFile(JournalPath(path), []byte(tt.journal), 0o644))
			}
			require.NoError(t, os.WriteFile(probePath(path), []byte("left by a crash while healing"), 0o644))
			l, rec, err := Open(path, Options{Agencies: 3, Progress: tt.progress})
			if tt.wantErr != "" {
				require.Error(t, err)
				assert.ErrorContains(t, err, tt.wantErr)
				assert.Nil(t, l)
				return
			}
			require.NoError(t, err)
			defer l.Close()
			assert.Equal(t, tt.want, rec)
			_, err = os.Stat(probePath(path))
			assert.ErrorIs(t, err, os.ErrNotExist, "the probe a crash left is removed")
			assert.Equal(t, tt.wantBets, storedBets(t, path))
			assertConsistent(t, l, path)
			if len(tt.wantBets[1]) > 0 {
				assert.Equal(t, []string{three[1].Document}, l.Winners(1))
			}
			// The recovered ledger appends after the recovered rows.
			if !l.Agency(3).Finished {
				commitOne(t, l.Batches(3), agencyBetsFor(3, 0, 2))
				assertConsistent(t, l, path)
			}
		})
	}
}
