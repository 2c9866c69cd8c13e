package main

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"lotterycentral.example/lottery"
	"lotterycentral.example/protocol"
)

// digestFixture is a directory of agency files 1, 2, 3 and 10 (ordered as
// numbers, not names), with files that are not an agency's beside them.
func digestFixture(t *testing.T) (dir string, agencies []int) {
	t.Helper()
	dir = filepath.Join(t.TempDir(), "data")
	var stdout, stderr bytes.Buffer
	require.Equal(t, 0, run([]string{"generate", "-agencies", "3", "-bets", "200", "-seed", "7", "-out", dir}, &stdout, &stderr), stderr.String())
	f, err := os.Create(filepath.Join(dir, lottery.AgencyFileName(10)))
	require.NoError(t, err)
	bets := []lottery.Bet{
		{FirstName: "Ana", LastName: "Pérez, Paz", Document: "101", Birthdate: "1990-01-02", Number: lottery.WinningNumber},
		{FirstName: "Juan", LastName: "O'Neill", Document: "102", Birthdate: "1985-12-31", Number: 0},
	}
	require.NoError(t, lottery.WriteAgencyFile(f, slices.Values(bets)))
	require.NoError(t, f.Close())
	for _, other := range []string{"notes.txt", "agency-01.csv", "agency-0.csv"} {
		require.NoError(t, os.WriteFile(filepath.Join(dir, other), []byte("not,an,agency\n"), 0o644))
	}
	return dir, []int{1, 2, 3, 10}
}

// storedDigest is agency's digest computed apart from the command: its
// bets' rows (AppendRow of each bet ReadAgencyFile reads) in one BATCH, read
// back as the central reads a batch and hashed as it hashes what it stores.
func storedDigest(t *testing.T, dir string, agency int) (protocol.Digest, int) {
	t.Helper()
	var batch protocol.Batch
	for b, err := range lottery.ReadAgencyFile(filepath.Join(dir, lottery.AgencyFileName(agency)), agency) {
		require.NoError(t, err)
		batch.Rows = lottery.AppendRow(batch.Rows, b)
		batch.Count++
	}
	payload, err := batch.AppendPayload(nil)
	require.NoError(t, err)
	rows, count, err := protocol.BatchRows(payload)
	require.NoError(t, err)
	require.Equal(t, batch.Count, count)
	w := protocol.NewDigestWriter()
	w.Write(rows)
	return w.Sum(), count
}

// digest prints each agency's digest, as the central computes it from the
// rows it stores, and the round's: RoundDigest of those not excluded, in
// ascending agency order. Excluding agencies changes the round's only.
func TestDigest(t *testing.T) {
	dir, agencies := digestFixture(t)
	digests := map[int]protocol.Digest{}
	bets := map[int]int{}
	for _, n := range agencies {
		digests[n], bets[n] = storedDigest(t, dir, n)
	}
	everyone := protocol.RoundDigest([]protocol.Digest{digests[1], digests[2], digests[3], digests[10]})

	tests := []struct {
		name     string
		args     []string // after digest -dir DIR
		excluded []int
	}{
		{"none excluded", nil, nil},
		{"empty -exclude", []string{"-exclude", ""}, nil},
		{"one", []string{"-exclude", "2"}, []int{2}},
		{"a list", []string{"-exclude", "10,1"}, []int{1, 10}},
		{"a range, as the central writes it", []string{"-exclude", "1-3"}, []int{1, 2, 3}},
		{"a range and a number in it", []string{"-exclude", "2-3,3"}, []int{2, 3}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var want strings.Builder
			var in []protocol.Digest
			for _, n := range agencies {
				fmt.Fprintf(&want, "agency %d: bets %d digest %s", n, bets[n], digests[n])
				if slices.Contains(tt.excluded, n) {
					want.WriteString(" excluded")
				} else {
					in = append(in, digests[n])
				}
				want.WriteString("\n")
			}
			round := protocol.RoundDigest(in)
			fmt.Fprintf(&want, "round: %s\n", round)

			var stdout, stderr bytes.Buffer
			require.Equal(t, 0, run(append([]string{"digest", "-dir", dir}, tt.args...), &stdout, &stderr), stderr.String())
			assert.Equal(t, want.String(), stdout.String())
			assert.Empty(t, stderr.String())
			if len(tt.excluded) == 0 {
				assert.Equal(t, everyone, round)
			} else {
				assert.NotEqual(t, everyone, round, "excluding %v left the round's digest as it was", tt.excluded)
			}
		})
	}
}

// A bad -exclude is a usage error (exit 2), named; a directory without
// agency files or with a broken one fails (exit 1). Nothing is printed on
// standard output before either.
func TestDigestErrors(t *testing.T) {
	dir, _ := digestFixture(t)
	tests := []struct {
		name   string
		dir    func(t *testing.T) string // nil: the fixture's
		args   []string
		code   int
		stderr []string // each in stderr
	}{
		{"not a number", nil, []string{"-exclude", "x"}, 2, []string{`dataset digest: -exclude "x": "x" is not an agency number`}},
		{"agency 0", nil, []string{"-exclude", "0"}, 2, []string{`"0" is not an agency number`}},
		{"a number written otherwise", nil, []string{"-exclude", "02"}, 2, []string{`"02" is not an agency number`}},
		{"an empty item", nil, []string{"-exclude", "1,,2"}, 2, []string{`-exclude "1,,2": "" is not an agency number`}},
		{"a range downwards", nil, []string{"-exclude", "3-1"}, 2, []string{`"3-1": a range is low-high (1-3)`}},
		{"a list the central cut short", nil, []string{"-exclude", "1,...+3 more"}, 2, []string{`"...+3 more" is not an agency number`}},
		{"not an agency of the directory", nil, []string{"-exclude", "2,4"}, 2,
			[]string{"dataset digest: -exclude 4: no agency-4.csv in ", "(its agencies: 1,2,3,10)"}},
		{"every agency", nil, []string{"-exclude", "1-3,10"}, 2,
			[]string{"-exclude leaves no agency of ", "every one of 1,2,3,10 is excluded"}},
		{"an argument", nil, []string{"extra"}, 2, []string{`unexpected arguments ["extra"]`}},
		{"no agency files", func(t *testing.T) string { return t.TempDir() }, nil, 1, []string{"no agency-N.csv files in "}},
		{"a broken agency file", func(t *testing.T) string {
			d := t.TempDir()
			require.NoError(t, os.WriteFile(filepath.Join(d, "agency-1.csv"), []byte("Ana,Paz,1,1990-01-02,1\n"), 0o644))
			require.NoError(t, os.WriteFile(filepath.Join(d, "agency-2.csv"), []byte("Ana,Paz,1,1990-01-02,1\nAna,\"Paz,2,1990-01-02,1\n"), 0o644))
			return d
		}, nil, 1, []string{"dataset: digest agency 2: ", "agency-2.csv:2"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d := dir
			if tt.dir != nil {
				d = tt.dir(t)
			}
			var stdout, stderr bytes.Buffer
			assert.Equal(t, tt.code, run(append([]string{"digest", "-dir", d}, tt.args...), &stdout, &stderr))
			assert.Empty(t, stdout.String())
			for _, want := range tt.stderr {
				assert.Contains(t, stderr.String(), want)
			}
			if tt.code == 2 {
				assert.Contains(t, stderr.String(), "Usage of dataset digest")
			}
		})
	}
}
