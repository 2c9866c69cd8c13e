package main

import (
	"bytes"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
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
	}{
		{"no command", nil, 2},
		{"unknown command", []string{"shuffle"}, 2},
		{"unknown flag", []string{"generate", "-colour", "red"}, 2},
		{"bad flag value", []string{"generate", "-bets", "many"}, 2},
		{"extra argument", []string{"winners", "-dir", ".", "extra"}, 2},
		{"help", []string{"-h"}, 0},
		{"command help", []string{"extract", "-h"}, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var stdout, stderr bytes.Buffer
			assert.Equal(t, tt.code, run(tt.args, &stdout, &stderr))
			assert.Contains(t, stdout.String()+stderr.String(), "sage")
		})
	}
}
