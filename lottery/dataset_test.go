package lottery

import (
	"archive/zip"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// officialZip is the course's dataset as seen from this module; it is not ours to commit.
const officialZip = "../../shared/datasets/dataset.zip"

func TestOfficialDataset(t *testing.T) {
	if _, err := os.Stat(officialZip); err != nil {
		t.Skipf("official dataset not available: %v", err)
	}
	dir := t.TempDir()
	paths, err := ExtractDataset(officialZip, filepath.Join(dir, "data"))
	require.NoError(t, err)
	require.Len(t, paths, 5)

	s, err := OpenStore(filepath.Join(dir, "bets.csv"))
	require.NoError(t, err)
	defer s.Close()
	for i, path := range paths {
		agency := i + 1
		require.Equal(t, AgencyFileName(agency), filepath.Base(path))
		var batch []Bet
		for b, err := range ReadAgencyFile(path, agency) {
			require.NoError(t, err)
			require.NoError(t, b.Validate(time.Now()), "official bets are valid")
			batch = append(batch, b)
		}
		require.NoError(t, s.StoreBets(batch))
	}
	require.NoError(t, s.Sync())

	total := 0
	winners := map[int]int{}
	for b, err := range s.LoadBets() {
		require.NoError(t, err)
		total++
		if HasWon(b) {
			winners[b.Agency]++
		}
	}
	assert.Equal(t, 78_697, total)
	assert.Equal(t, map[int]int{1: 2, 2: 3, 3: 3, 4: 2}, winners)
}

func TestExtractDatasetRefusesUnsafeNames(t *testing.T) {
	for _, name := range []string{"../agency-1.csv", "data/agency-1.csv", `data\agency-1.csv`, "/agency-1.csv", ".."} {
		t.Run(name, func(t *testing.T) {
			dir := t.TempDir()
			zipPath := filepath.Join(dir, "evil.zip")
			writeZip(t, zipPath, map[string]string{"agency-2.csv": "Ana,Paz,1,2000-01-01,5\r\n", name: "x"})
			out := filepath.Join(dir, "out")
			_, err := ExtractDataset(zipPath, out)
			require.ErrorContains(t, err, "unsafe entry name")
			_, err = os.Stat(filepath.Join(dir, "agency-1.csv"))
			assert.ErrorIs(t, err, os.ErrNotExist, "nothing written outside out")
			_, err = os.Stat(filepath.Join(out, "agency-2.csv"))
			assert.ErrorIs(t, err, os.ErrNotExist, "nothing written at all")
		})
	}
}

func TestExtractDatasetSkipsOthers(t *testing.T) {
	dir := t.TempDir()
	zipPath := filepath.Join(dir, "d.zip")
	writeZip(t, zipPath, map[string]string{
		"agency-10.csv": "a", "agency-2.csv": "b", "README.md": "c", "agency-x.csv": "d",
	})
	paths, err := ExtractDataset(zipPath, filepath.Join(dir, "out"))
	require.NoError(t, err)
	assert.Equal(t, []string{filepath.Join(dir, "out", "agency-2.csv"), filepath.Join(dir, "out", "agency-10.csv")}, paths)
	entries, err := os.ReadDir(filepath.Join(dir, "out"))
	require.NoError(t, err)
	assert.Len(t, entries, 2)
}

func writeZip(t *testing.T, path string, files map[string]string) {
	t.Helper()
	f, err := os.Create(path)
	require.NoError(t, err)
	defer f.Close()
	zw := zip.NewWriter(f)
	for name, content := range files {
		w, err := zw.Create(name)
		require.NoError(t, err)
		_, err = w.Write([]byte(content))
		require.NoError(t, err)
	}
	require.NoError(t, zw.Close())
}

func TestParseAgencyFileName(t *testing.T) {
	tests := []struct {
		name string
		want int // 0 means not an agency file
	}{
		{"agency-1.csv", 1},
		{"agency-42.csv", 42},
		{"agency-0.csv", 0},
		{"agency-01.csv", 0},
		{"agency-+1.csv", 0},
		{"agency--1.csv", 0},
		{"agency-.csv", 0},
		{"agency-1.csv.bak", 0},
		{"bets.csv", 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			n, ok := ParseAgencyFileName(tt.name)
			assert.Equal(t, tt.want, n)
			assert.Equal(t, tt.want != 0, ok)
			if ok {
				assert.Equal(t, tt.name, AgencyFileName(n))
			}
		})
	}
}

func TestGenerateAgencyFiles(t *testing.T) {
	dir := t.TempDir()
	paths, err := GenerateAgencyFiles(filepath.Join(dir, "new"), 5, 2000, 1)
	require.NoError(t, err)
	require.Len(t, paths, 5)
	for i, path := range paths {
		agency := i + 1
		assert.Equal(t, AgencyFileName(agency), filepath.Base(path))
		n, winners := 0, 0
		for b, err := range ReadAgencyFile(path, agency) {
			require.NoError(t, err)
			require.NoError(t, b.Validate(time.Now()), "row %d", n+1)
			assert.Len(t, b.Document, 8)
			n++
			if HasWon(b) {
				winners++
			}
		}
		assert.Equal(t, 2000, n)
		assert.GreaterOrEqual(t, winners, (agency-1)%4, "forced winners")
	}
}

func TestGenerateAgencyFilesFewBets(t *testing.T) {
	// Agency 4 forces 3 winners: with 3 or fewer rows all of them win, none is lost.
	for _, n := range []int{0, 1, 3} {
		paths, err := GenerateAgencyFiles(t.TempDir(), 4, n, 9)
		require.NoError(t, err)
		got := collect(t, ReadAgencyFile(paths[3], 4))
		require.Len(t, got, n)
		for _, b := range got {
			assert.True(t, HasWon(b))
		}
	}
}

func TestGenerateAgencyFilesDeterministic(t *testing.T) {
	read := func(seed uint64) [][]byte {
		paths, err := GenerateAgencyFiles(t.TempDir(), 3, 500, seed)
		require.NoError(t, err)
		var files [][]byte
		for _, p := range paths {
			data, err := os.ReadFile(p)
			require.NoError(t, err)
			files = append(files, data)
		}
		return files
	}
	a, b, c := read(7), read(7), read(8)
	assert.Equal(t, a, b, "same seed, same bytes")
	for i := range a {
		assert.NotEqual(t, a[i], c[i], "agency %d: different seed, different bets", i+1)
	}
	assert.NotEqual(t, a[0], a[1], "agencies differ from each other")
}

func TestGenerateAgencyFilesBadArgs(t *testing.T) {
	_, err := GenerateAgencyFiles(t.TempDir(), 0, 10, 1)
	require.Error(t, err)
	_, err = GenerateAgencyFiles(t.TempDir(), 1, -1, 1)
	require.Error(t, err)
}
