package main

import (
	"bytes"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"lotterycentral.example/lottery"
)

func TestGenerateThenWinners(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "data")
	var stdout, stderr bytes.Buffer
	require.Equal(t, 0, run([]string{"generate", "-agencies", "3", "-bets", "50", "-seed", "2", "-out", dir}, &stdout, &stderr), stderr.String())
	require.Equal(t, 0, run([]string{"winners", "-dir", dir}, &stdout, &stderr), stderr.String())

	lines := strings.Split(strings.TrimSuffix(stdout.String(), "\n"), "\n")
	require.Len(t, lines, 3)
	// 50 bets rarely win on their own, so the forced winners (agency i: (i-1)%4) are all there.
	assert.Equal(t, "agency 1: bets 50 winners 0 documents ", lines[0])
	assert.Regexp(t, `^agency 2: bets 50 winners 1 documents \d{8}$`, lines[1])
	assert.Regexp(t, `^agency 3: bets 50 winners 2 documents \d{8},\d{8}$`, lines[2])
}

func TestExtractMissingZip(t *testing.T) {
	var stdout, stderr bytes.Buffer
	code := run([]string{"extract", "-zip", filepath.Join(t.TempDir(), "none.zip"), "-out", t.TempDir()}, &stdout, &stderr)
	assert.Equal(t, 1, code)
	assert.Contains(t, stderr.String(), "none.zip")
}

// Run from the repository root (as make does), extract finds the committed dataset by
// default, and a generated dataset written over it leaves no official agency behind.
func TestDefaultDatasetThenGenerate(t *testing.T) {
	out, err := filepath.Abs(filepath.Join(t.TempDir(), "data"))
	require.NoError(t, err)
	t.Chdir("../../..")
	var stdout, stderr bytes.Buffer
	require.Equal(t, 0, run([]string{"extract", "-out", out}, &stdout, &stderr), stderr.String())
	require.Equal(t, 0, run([]string{"winners", "-dir", out}, &stdout, &stderr), stderr.String())
	var winners []string
	for line := range strings.Lines(stdout.String()) {
		winners = append(winners, strings.Fields(line)[5])
	}
	assert.Equal(t, []string{"2", "3", "3", "2", "0"}, winners, "the official dataset's winners per agency")

	stdout.Reset()
	require.Equal(t, 0, run([]string{"generate", "-agencies", "2", "-bets", "10", "-out", out}, &stdout, &stderr), stderr.String())
	require.Equal(t, 0, run([]string{"winners", "-dir", out}, &stdout, &stderr), stderr.String())
	assert.Equal(t, 2, strings.Count(stdout.String(), "\n"), "agencies 3-5 of the official dataset are gone:\n%s", stdout.String())
}

func TestWinnersEmptyDir(t *testing.T) {
	var stdout, stderr bytes.Buffer
	assert.Equal(t, 1, run([]string{"winners", "-dir", t.TempDir()}, &stdout, &stderr))
	assert.Contains(t, stderr.String(), "no agency-N.csv files")
}

func TestUsage(t *testing.T) {
	tests := []struct {
		name string
		args []string
		code int
		want string // in the output, besides the usage
	}{
		{"no command", nil, 2, ""},
		{"unknown command", []string{"shuffle"}, 2, ""},
		{"unknown flag", []string{"generate", "-colour", "red"}, 2, ""},
		{"bad flag value", []string{"generate", "-bets", "many"}, 2, ""},
		{"extra argument", []string{"winners", "-dir", ".", "extra"}, 2, ""},
		{"dir and store", []string{"winners", "-dir", ".data", "-store", "bets.csv"}, 2, "dataset winners: -dir and -store are mutually exclusive"},
		{"store and dir", []string{"winners", "-store", "bets.csv", "-dir", ".data"}, 2, "mutually exclusive"},
		{"empty store", []string{"winners", "-store="}, 2, "dataset winners: -store needs a file"},
		{"help", []string{"-h"}, 0, "-store"},
		{"command help", []string{"extract", "-h"}, 0, ""},
		{"winners help", []string{"winners", "-h"}, 0, "-store file"},
		{"help names digest", []string{"-h"}, 0, "digest    print each agency's digest"},
		{"digest help", []string{"digest", "-h"}, 0, "-exclude list"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var stdout, stderr bytes.Buffer
			assert.Equal(t, tt.code, run(tt.args, &stdout, &stderr))
			assert.Contains(t, stdout.String()+stderr.String(), "sage")
			assert.Contains(t, stdout.String()+stderr.String(), tt.want)
		})
	}
}

// storeFile writes bets to path through the central's own path, Rows and a Store,
// in batches of one agency's bets each.
func storeFile(t *testing.T, path string, batches ...[]lottery.Bet) {
	t.Helper()
	s, err := lottery.OpenStore(path)
	require.NoError(t, err)
	var rows lottery.Rows
	for _, batch := range batches {
		rows.Reset()
		for _, b := range batch {
			require.NoError(t, rows.Add(b, time.Now()))
		}
		require.NoError(t, s.StoreRows(&rows))
	}
	require.NoError(t, s.Close())
}

// winners -store recounts a central's bets file with lottery.LoadBets, in the
// lines winners -dir prints, and fails naming the line of a row it cannot read.
func TestWinnersStore(t *testing.T) {
	bet := func(agency int, document string, number int) lottery.Bet {
		return lottery.Bet{Agency: agency, FirstName: "Ana", LastName: "Pérez, Juan", Document: document, Birthdate: "1990-01-02", Number: number}
	}
	const good = "1,Ana,Paz,11111111,1990-01-02,7574\n"
	tests := []struct {
		name   string
		file   func(t *testing.T, path string) // nil: no file
		code   int
		stdout string
		stderr string // in stderr
	}{
		{"written by the store", func(t *testing.T, path string) {
			storeFile(t, path,
				[]lottery.Bet{bet(3, "30", 1), bet(3, "31", lottery.WinningNumber)},
				[]lottery.Bet{bet(12, "120", 2)},
				[]lottery.Bet{bet(3, "32", lottery.WinningNumber), bet(1, "10", 9999)},
			)
		}, 0, "agency 1: bets 1 winners 0 documents \n" +
			"agency 3: bets 3 winners 2 documents 31,32\n" +
			"agency 12: bets 1 winners 0 documents \n", ""},
		{"an empty file: no agency", func(t *testing.T, path string) { storeFile(t, path) }, 0, "", ""},
		{"missing file", nil, 1, "", "bets file: stat "},
		{"corrupt row", func(t *testing.T, path string) {
			require.NoError(t, os.WriteFile(path, []byte(good+good+"2,Ana,Paz,22222222\n"+good), 0o644))
		}, 1, "", "line 3: wrong number of fields: got 4, want 6"},
		{"a number not as the store writes it", func(t *testing.T, path string) {
			require.NoError(t, os.WriteFile(path, []byte(good+"2,Ana,Paz,22222222,1990-01-02,07574\n"), 0o644))
		}, 1, "", "line 2: number: \"07574\""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "bets.csv")
			if tt.file != nil {
				tt.file(t, path)
			}
			var stdout, stderr bytes.Buffer
			assert.Equal(t, tt.code, run([]string{"winners", "-store", path}, &stdout, &stderr))
			assert.Equal(t, tt.stdout, stdout.String(), "nothing printed before an error")
			if tt.stderr == "" {
				assert.Empty(t, stderr.String())
				return
			}
			assert.Contains(t, stderr.String(), tt.stderr)
			assert.Contains(t, stderr.String(), path)
		})
	}
}

// The agencies' bets stored as the central stores them, interleaved, recount to
// what winners -dir says of the agency files.
func TestWinnersStoreMatchesDir(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "data")
	var stdout, stderr bytes.Buffer
	require.Equal(t, 0, run([]string{"generate", "-agencies", "4", "-bets", "300", "-seed", "5", "-out", dir}, &stdout, &stderr), stderr.String())
	var perAgency [][][]lottery.Bet // each agency's batches
	for agency := 1; agency <= 4; agency++ {
		var bets []lottery.Bet
		for b, err := range lottery.ReadAgencyFile(filepath.Join(dir, lottery.AgencyFileName(agency)), agency) {
			require.NoError(t, err)
			bets = append(bets, b)
		}
		perAgency = append(perAgency, slices.Collect(slices.Chunk(bets, 40)))
	}
	var batches [][]lottery.Bet // a batch of each agency in turn
	for i := range perAgency[0] {
		for _, own := range perAgency {
			batches = append(batches, own[i])
		}
	}
	store := filepath.Join(t.TempDir(), "bets.csv")
	storeFile(t, store, batches...)

	require.Equal(t, 0, run([]string{"winners", "-dir", dir}, &stdout, &stderr), stderr.String())
	fromDir := stdout.String()
	stdout.Reset()
	require.Equal(t, 0, run([]string{"winners", "-store", store}, &stdout, &stderr), stderr.String())
	assert.Equal(t, fromDir, stdout.String())
	assert.Equal(t, 4, strings.Count(fromDir, "\n"))
}
