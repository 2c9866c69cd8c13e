package lottery

import (
	"archive/zip"
	"crypto/sha256"
	"encoding/hex"
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// officialZip is the course's dataset, committed in the repository, as seen from this module.
const officialZip = "../.data/dataset.zip"

// officialSHA256 is the published checksum of the official dataset.
const officialSHA256 = "c32dcd15ec93d4c7be14ac9783d5afbbe39c6dfa0108cca6bd31552189a43efd"

func TestOfficialDataset(t *testing.T) {
	data, err := os.ReadFile(officialZip)
	require.NoError(t, err, "the official dataset ships in the repository as .data/dataset.zip")
	sum := sha256.Sum256(data)
	require.Equal(t, officialSHA256, hex.EncodeToString(sum[:]), "%s is not the official dataset", officialZip)

	dir := t.TempDir()
	paths, err := ExtractDataset(officialZip, filepath.Join(dir, "data"))
	require.NoError(t, err)
	require.Len(t, paths, 5)

	store := filepath.Join(dir, "bets.csv")
	s, err := OpenStore(store)
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
		require.NoError(t, storeBets(t, s, batch))
	}
	require.NoError(t, s.Sync())

	total := 0
	winners := map[int]int{}
	for b, err := range LoadBets(store) {
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

// A dataset written over another leaves only its own agency files: nothing of the
// previous one is left for a run (or `dataset winners`) to read, and other files stay.
func TestDatasetReplacesAgencyFiles(t *testing.T) {
	generate := func(agencies int) func(t *testing.T, dir string) ([]string, error) {
		return func(t *testing.T, dir string) ([]string, error) {
			return GenerateAgencyFiles(dir, agencies, 3, 1)
		}
	}
	extract := func(agencies ...int) func(t *testing.T, dir string) ([]string, error) {
		return func(t *testing.T, dir string) ([]string, error) {
			files := map[string]string{"README.md": "not an agency"}
			for _, a := range agencies {
				files[AgencyFileName(a)] = "Ana,Paz,1,2000-01-01,5\r\n"
			}
			zipPath := filepath.Join(t.TempDir(), "d.zip")
			writeZip(t, zipPath, files)
			return ExtractDataset(zipPath, dir)
		}
	}
	tests := []struct {
		name        string
		first, then func(t *testing.T, dir string) ([]string, error)
		want        []int // the agency files left
	}{
		{"generate 10 then generate 5", generate(10), generate(5), []int{1, 2, 3, 4, 5}},
		{"generate 10 then extract 5", generate(10), extract(1, 2, 3, 4, 5), []int{1, 2, 3, 4, 5}},
		{"extract 2, 7 then generate 3", extract(2, 7), generate(3), []int{1, 2, 3}},
		{"generate 3 then extract 4", generate(3), extract(4), []int{4}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			_, err := tt.first(t, dir)
			require.NoError(t, err)
			// Not agency files: kept whatever is written.
			keep := []string{"dataset.zip", "bets.csv", "agency-01.csv", "agency-x.csv"}
			for _, name := range keep {
				require.NoError(t, os.WriteFile(filepath.Join(dir, name), []byte(name), 0o644))
			}
			require.NoError(t, os.Mkdir(filepath.Join(dir, "agency-9.csv.d"), 0o755))

			paths, err := tt.then(t, dir)
			require.NoError(t, err)
			var want []string
			for _, a := range tt.want {
				want = append(want, filepath.Join(dir, AgencyFileName(a)))
			}
			assert.Equal(t, want, paths)

			entries, err := os.ReadDir(dir)
			require.NoError(t, err)
			var agencies []int
			var others []string
			for _, e := range entries {
				if a, ok := ParseAgencyFileName(e.Name()); ok {
					agencies = append(agencies, a)
				} else {
					others = append(others, e.Name())
				}
			}
			slices.Sort(agencies)
			assert.Equal(t, tt.want, agencies, "agency files left in the directory")
			assert.ElementsMatch(t, append(keep, "agency-9.csv.d"), others, "other files untouched")
		})
	}
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
