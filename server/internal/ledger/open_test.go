package ledger

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"lotterycentral.example/lottery"
	"lotterycentral.example/protocol"
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
		{"rows and FINISHes", rows, finLine(2, two) + finLine(1, three), nil, Recovered{Bets: 5, Agencies: 2, Finished: 2}, "",
			map[int][]lottery.Bet{1: three, 2: two}},
		{"a FINISH of an agency without bets", rows, finLine(3, nil), nil, Recovered{Bets: 5, Agencies: 2, Finished: 1}, "",
			map[int][]lottery.Bet{1: three, 2: two}},
		{"a torn last row is cut", rows + "1,Ana,Pé", "", nil, Recovered{Bets: 5, Agencies: 2, CutBets: 9}, "",
			map[int][]lottery.Bet{1: three, 2: two}},
		{"a torn last FINISH is cut", rows, finLine(2, two) + "1,", nil, Recovered{Bets: 5, Agencies: 2, Finished: 1, CutJournal: 2}, "",
			map[int][]lottery.Bet{1: three, 2: two}},
		{"a FINISH repeated with its total", rows, finLine(2, two) + finLine(2, two), nil, Recovered{Bets: 5, Agencies: 2, Finished: 1}, "",
			map[int][]lottery.Bet{1: three, 2: two}},
		{"a row of an agency out of the round", rows + csvRows(agencyBetsFor(4, 0, 1)), "", nil, Recovered{},
			"line 6: invalid bet: agency: not in 1..3", nil},
		{"an invalid bet", rows + "1,Ana,Pérez,1,1990-01-02,10000\n", "", nil, Recovered{},
			"line 6: invalid bet: number", nil},
		{"a row not as the store writes it", rows + "1,\"Ana\",Pérez,1,1990-01-02,1\n", "", nil, Recovered{},
			lottery.ErrNotCanonical.Error(), nil},
		{"a FINISH whose total is not the stored bets", rows, finLine(1, three[:2]), nil, Recovered{Bets: 5, Agencies: 2},
			"line 1: agency 1 finished with 2 bets", nil},
		{"a FINISH repeated with another total", rows, finLine(2, two) + finLine(2, three[:2]), nil, Recovered{Bets: 5, Agencies: 2},
			"line 2: agency 2 finished again as", nil},
		{"a FINISH not in canonical form", rows, "02,2\n", nil, Recovered{Bets: 5, Agencies: 2},
			`line 1: "02,2" is not agency,total,digest`, nil},
		{"a FINISH of an agency out of the round", rows, finLine(4, nil), nil, Recovered{Bets: 5, Agencies: 2},
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

// A finished agency's rows are what its FINISH journaled: a restart refuses
// a bets file changed behind the central's back, naming the agency and the
// journal's line, even when every count and every row still checks.
func TestOpenRefusesTamperedRows(t *testing.T) {
	one := agencyBetsFor(1, 100, 3)
	two := agencyBetsFor(2, 200, 2)
	tests := []struct {
		name    string
		tamper  func(rows [][]byte) // rows of the bets file, one each, as the ledger wrote them
		wantErr string              // "" if Open succeeds
	}{
		{"untouched", func([][]byte) {}, ""},
		{"one row edited by hand", func(rows [][]byte) {
			rows[1] = bytes.Replace(rows[1], []byte(",101\n"), []byte(",7574\n"), 1)
		}, "line 2: agency 1 finished with digest " + digestOf(one).String()},
		{"two rows swapped between agencies", func(rows [][]byte) {
			// Agency 1's third bet and agency 2's first trade everything but the agency.
			a, b := rows[2], rows[3]
			rows[2] = append([]byte("1"), b[1:]...)
			rows[3] = append([]byte("2"), a[1:]...)
		}, "line 1: agency 2 finished with digest " + digestOf(two).String()},
		{"two rows of an agency in another order", func(rows [][]byte) {
			rows[0], rows[1] = rows[1], rows[0]
		}, "line 2: agency 1 finished with digest " + digestOf(one).String()},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			l, path, _ := openTest(t, 2, nil)
			commitOne(t, l.Batches(1), one)
			commitOne(t, l.Batches(2), two)
			_, err := l.Finish(2, 2)
			require.NoError(t, err)
			_, err = l.Finish(1, 3)
			require.NoError(t, err)
			require.NoError(t, l.Close())

			data, err := os.ReadFile(path)
			require.NoError(t, err)
			rows := bytes.SplitAfter(data, []byte("\n"))
			rows = rows[:len(rows)-1] // after the last newline
			require.Len(t, rows, 5)
			tt.tamper(rows)
			require.NoError(t, os.WriteFile(path, bytes.Join(rows, nil), 0o644))

			l2, _, err := Open(path, Options{Agencies: 2})
			if tt.wantErr == "" {
				require.NoError(t, err)
				defer l2.Close()
				assert.Equal(t, protocol.RoundDigest([]protocol.Digest{digestOf(one), digestOf(two)}), l2.Round().Digest)
				return
			}
			require.Error(t, err)
			assert.Nil(t, l2)
			assert.ErrorContains(t, err, fmt.Sprintf("recover journal %q: %s", JournalPath(path), tt.wantErr))
			assert.ErrorContains(t, err, "its bets changed after its FINISH")
		})
	}
}
