package lottery

import (
	"encoding/csv"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"

	"lotterycentral.example/protocol"
)

// noLeaks fails t if a goroutine started during it outlives it.
func noLeaks(t *testing.T) {
	t.Helper()
	before := goleak.IgnoreCurrent()
	t.Cleanup(func() { goleak.VerifyNone(t, before) })
}

// recoverTally is the sequential reference: recoverBets and HasWon.
func recoverTally(path string, check func(Bet) error) (Tally, error) {
	t := Tally{Bets: map[int]uint64{}, Winners: map[int][]string{}}
	for b, err := range recoverBets(path, check) {
		if err != nil {
			return Tally{}, err
		}
		t.Rows++
		t.Bets[b.Agency]++
		if HasWon(b) {
			t.Winners[b.Agency] = append(t.Winners[b.Agency], b.Document)
		}
	}
	return t, nil
}

// scanChunkSizes put chunk boundaries everywhere in small files, down to
// records longer than a chunk.
var scanChunkSizes = []int{7, 16, 64, 100, 256, scanChunkSize}

// requireSameScan checks that ScanStore agrees with recoverBets on path, at
// every chunk size and with 1 and 4 workers.
func requireSameScan(t *testing.T, path string, check func(Bet) error) (Tally, error) {
	t.Helper()
	want, wantErr := recoverTally(path, check)
	for _, size := range scanChunkSizes {
		for _, workers := range []int{1, 4} {
			got, err := scanStore(path, ScanOptions{Check: check}, size, workers)
			if wantErr == nil {
				require.NoError(t, err, "chunk %d, %d workers", size, workers)
			} else {
				require.EqualError(t, err, wantErr.Error(), "chunk %d, %d workers", size, workers)
			}
			require.Equal(t, want, got, "chunk %d, %d workers", size, workers)
		}
	}
	return want, wantErr
}

func acceptAll(Bet) error { return nil }

func TestScanStoreMatchesRecoverBets(t *testing.T) {
	noLeaks(t)
	now := time.Date(2024, 6, 1, 12, 0, 0, 0, time.UTC)
	valid := func(b Bet) error { return b.Validate(now) }
	const good = "1,Ana,Pérez,11111111,1990-01-02,7574\n"
	tests := []struct {
		name    string
		content string // "" for what the store writes for trickyBets
		check   func(Bet) error
		want    string // in the error; "" for none
		is      error
	}{
		// TestRecoverBets' cases.
		{"what the store writes", "", valid, "", nil},
		{"invalid bet", good + "2,Ana,Pérez,1111a111,1990-01-02,1\n", valid, `line 2: invalid bet: document: not only digits`, ErrInvalidBet},
		{"future birthdate", good + good + "2,Ana,Pérez,1,2024-06-02,1\n", valid, "line 3: invalid bet: birthdate: in the future", ErrInvalidBet},
		{"day that does not exist", "2,Ana,Pérez,1,2023-02-30,1\n", valid, "line 1: invalid bet: birthdate", ErrInvalidBet},
		{"signed agency", "+2,Ana,Pérez,1,1990-01-02,1\n", valid, "line 1: agency:", strconv.ErrSyntax},
		{"needless quotes", good + `2,"Ana",Pérez,1,1990-01-02,1` + "\n", valid, "line 2: first_name: " + ErrNotCanonical.Error(), ErrNotCanonical},
		{"quoted number", good + `2,Ana,Pérez,1,1990-01-02,"1"` + "\n", valid, "line 2: number or line ending: " + ErrNotCanonical.Error(), ErrNotCanonical},
		{"leading space not quoted", "2, Ana,Pérez,1,1990-01-02,1\n", valid, "line 1: first_name: " + ErrNotCanonical.Error(), ErrNotCanonical},
		{"CRLF line ending", good + "2,Ana,Pérez,1,1990-01-02,1\r\n", valid, "line 2: number or line ending", ErrNotCanonical},
		{"blank line between rows", good + "\n" + good, valid, "line 3:", ErrNotCanonical},
		{"blank line at the end", good + "\n", valid, "line 2: " + ErrNotCanonical.Error() + ": a blank line", ErrNotCanonical},
		{"control character in a quoted name", "2,\"A\nna\",Pérez,1,1990-01-02,1\n", valid, "line 1: invalid bet: first_name: contains a control character", ErrInvalidBet},
		{"too few columns", good + "2,Ana,Pérez,1,1990-01-02\n", valid, "line 2: wrong number of fields", csv.ErrFieldCount},
		// More.
		{"quoted fields", good + `2,"Juan, Carlos","O""Brien",22222222,1980-05-06,12` + "\n" + good, valid, "", nil},
		{"too many columns", good + "2,Ana,Pérez,1,1990-01-02,1,1\n", valid, "line 2: wrong number of fields: got 7, want 6", csv.ErrFieldCount},
		{"leading zero", good + "2,Ana,Pérez,1,1990-01-02,0001\n", valid, "line 2: number:", strconv.ErrSyntax},
		{"ten digit agency", "1234567890,Ana,Pérez,1,1990-01-02,1\n", valid, "line 1: agency:", strconv.ErrSyntax},
		{"no-break space not quoted", good + "2,\u00a0Ana,Pérez,1,1990-01-02,1\n", acceptAll, "line 2: first_name: " + ErrNotCanonical.Error(), ErrNotCanonical},
		{"no-break space quoted", good + "2,\"\u00a0Ana\",Pérez,1,1990-01-02,1\n", acceptAll, "", nil},
		{`\. not quoted`, good + `2,\.,Pérez,1,1990-01-02,1` + "\n", acceptAll, "line 2: first_name: " + ErrNotCanonical.Error(), ErrNotCanonical},
		{`\. quoted`, good + `2,"\.",Pérez,1,1990-01-02,1` + "\n", acceptAll, "", nil},
		{"CR inside a field", good + "2,A\rna,Pérez,1,1990-01-02,1\n" + good, acceptAll, "line 2: first_name: " + ErrNotCanonical.Error(), ErrNotCanonical},
		{"bare quote", good + good + `2,A"na,Pérez,1,1990-01-02,1` + "\n" + good, valid, `line 3: column 4: bare " in non-quoted-field`, csv.ErrBareQuote},
		{"text after a closing quote", good + `2,"A"na,Pérez,1,1990-01-02,1` + "\n" + good, valid, `line 2: column 5: extraneous or missing " in quoted-field`, csv.ErrQuote},
		{"quote never closed", good + `2,"Ana,Pérez,1,1990-01-02,1` + "\n" + good + good, valid, `extraneous or missing " in quoted-field`, csv.ErrQuote},
		{"quoted newline across rows", good + "2,\"A\nna\",Pérez,1,1990-01-02,7574\n" + good + "3,\"B\n\n\nb\",Paz,2,1990-01-02,7574\n" + good, acceptAll, "line 2: first_name: " + ErrNotCanonical.Error(), ErrNotCanonical}, // canonicalRow wants a row on one line
		{"quoted CRLF", good + "2,\"A\r\nna\",Pérez,1,1990-01-02,1\n" + good, acceptAll, "line 2: first_name: " + ErrNotCanonical.Error(), ErrNotCanonical},
		{"blank lines first", "\n\n" + good, valid, "line 3: number or line ending", ErrNotCanonical},
		{"CR line between rows", good + "\r\n" + good, valid, "line 3: number or line ending", ErrNotCanonical},
		{"blank line before a bad row", good + "\n2,Ana,Pérez,1,1990-01-02\n", valid, "line 3: wrong number of fields", csv.ErrFieldCount},
		{"blank lines at the end", good + good + "\n\r\n\n", valid, "line 3: " + ErrNotCanonical.Error() + ": a blank line", ErrNotCanonical},
		{"CR at the end", good + "\r", valid, "line 2: " + ErrNotCanonical.Error() + ": a blank line", ErrNotCanonical},
		{"last row without its newline", good + good + "3,Sol,Ruiz,44444444,2000-12-31,7574", valid, "line 3: number or line ending", ErrNotCanonical},
		{"last row without its newline, invalid", good + "3,Sol,Ruiz,4444a444,2000-12-31,7574", valid, "line 2: invalid bet: document", ErrInvalidBet},
		{"only a blank line", "\n", valid, "line 1: " + ErrNotCanonical.Error() + ": a blank line", ErrNotCanonical},
		{"a lone space", " ", valid, "line 1: wrong number of fields", csv.ErrFieldCount},
		{"long row", good + "2," + strings.Repeat("a", 300) + ",Pérez,1,1990-01-02,1\n" + good, valid, "line 2: invalid bet: first_name: longer than", ErrInvalidBet},
		{"empty fields", good + ",,,,,\n", valid, "line 2: agency:", strconv.ErrSyntax},
		{"empty names", good + "2,,,1,1990-01-02,1\n", acceptAll, "", nil},
	}
	// Each case also comes after rows that move it across chunk boundaries.
	prefixes := []int{0, 1, 3, 40}
	for _, tt := range tests {
		for _, rows := range prefixes {
			t.Run(fmt.Sprintf("%s/after %d rows", tt.name, rows), func(t *testing.T) {
				path := filepath.Join(t.TempDir(), "bets.csv")
				require.NoError(t, os.WriteFile(path, []byte(strings.Repeat(good, rows)+tt.content), 0o644))
				if tt.content == "" {
					writeStore(t, path, trickyBets())
				}
				_, err := requireSameScan(t, path, tt.check)
				if tt.want == "" {
					require.NoError(t, err)
					return
				}
				require.ErrorIs(t, err, tt.is)
				assert.ErrorContains(t, err, fmt.Sprintf("recover bets %q: ", path))
				if rows == 0 {
					assert.ErrorContains(t, err, tt.want)
				}
			})
		}
	}
}

func TestScanStoreMissingFile(t *testing.T) {
	noLeaks(t)
	got, err := ScanStore(filepath.Join(t.TempDir(), "none.csv"), ScanOptions{})
	require.NoError(t, err)
	assert.Equal(t, Tally{Bets: map[int]uint64{}, Winners: map[int][]string{}}, got)
}

func TestScanStoreUnreadable(t *testing.T) {
	noLeaks(t)
	dir := t.TempDir()
	file := filepath.Join(dir, "file")
	require.NoError(t, os.WriteFile(file, nil, 0o644))
	for name, path := range map[string]string{
		"a directory":   dir, // opens but does not read
		"under a file":  filepath.Join(file, "bets.csv"),
		"an empty file": file,
	} {
		t.Run(name, func(t *testing.T) {
			got, err := ScanStore(path, ScanOptions{Check: acceptAll})
			want, wantErr := recoverTally(path, acceptAll)
			if wantErr == nil {
				require.NoError(t, err)
			} else {
				require.EqualError(t, err, wantErr.Error())
			}
			assert.Equal(t, want, got)
		})
	}
}

// randomBets are bets whose names need quoting now and then: commas,
// quotes, accents, leading spaces, `\.`; some win, some come from agencies
// past the workers' dense counters.
func randomBets(r *rand.Rand, n int) []Bet {
	parts := []string{"Ana", "Juan", "Pérez", "Núñez", "O'Brien", `O"Brien`, "Juan, Carlos", " Iñaki", `\.`, "Zoé", `"Ñandú"`, "María José", "\u00a0Sol", "Lu,", `""`}
	name := func() string {
		var b strings.Builder
		for i := range 1 + r.IntN(3) {
			if i > 0 {
				b.WriteByte(' ')
			}
			b.WriteString(parts[r.IntN(len(parts))])
		}
		return b.String()
	}
	bets := make([]Bet, n)
	for i := range bets {
		agency := 1 + r.IntN(20)
		if r.IntN(50) == 0 {
			agency = 1000 + r.IntN(5000)
		}
		number := r.IntN(10000)
		if r.IntN(20) == 0 {
			number = WinningNumber
		}
		bets[i] = Bet{
			Agency:    agency,
			FirstName: name(),
			LastName:  name(),
			Document:  strconv.Itoa(1 + r.IntN(99999999)),
			Birthdate: fmt.Sprintf("%04d-%02d-%02d", 1900+r.IntN(100), 1+r.IntN(12), 1+r.IntN(28)),
			Number:    number,
		}
	}
	return bets
}

// writeStore appends bets to path as the server does, in batches, and closes
// the store.
func writeStore(t testing.TB, path string, bets []Bet) {
	t.Helper()
	s, err := OpenStore(path)
	require.NoError(t, err)
	for batch := range slices.Chunk(bets, 150) {
		require.NoError(t, storeBets(t, s, batch))
		if s.Buffered() >= bufSize {
			require.NoError(t, s.Flush())
		}
	}
	require.NoError(t, s.Close())
}

func TestScanStoreTally(t *testing.T) {
	noLeaks(t)
	now := time.Date(2024, 6, 1, 12, 0, 0, 0, time.UTC)
	valid := func(b Bet) error { return b.Validate(now) }
	path := filepath.Join(t.TempDir(), "bets.csv")
	bets := randomBets(rand.New(rand.NewPCG(1, 2)), 5000)
	writeStore(t, path, bets)

	want, err := requireSameScan(t, path, valid)
	require.NoError(t, err)
	require.EqualValues(t, len(bets), want.Rows)
	require.Greater(t, len(want.Winners), 1)
	require.Greater(t, len(want.Bets), 20, "agencies past the dense counters")

	for _, workers := range []int{1, 2, 4, runtime.GOMAXPROCS(0)} {
		t.Run(fmt.Sprintf("workers=%d", workers), func(t *testing.T) {
			var progress []uint64
			got, err := scanStore(path, ScanOptions{Check: valid, Progress: func(rows uint64) error {
				progress = append(progress, rows)
				return nil
			}}, 4<<10, workers)
			require.NoError(t, err)
			assert.Equal(t, want, got)
			require.Greater(t, len(progress), 10)
			for i := 1; i < len(progress); i++ {
				assert.Greater(t, progress[i], progress[i-1])
			}
			assert.Equal(t, got.Rows, progress[len(progress)-1])
		})
	}
}

// An error from Progress ends the scan with it, soon, and leaves no goroutine behind.
func TestScanStoreProgressStops(t *testing.T) {
	noLeaks(t)
	path := filepath.Join(t.TempDir(), "bets.csv")
	writeStore(t, path, randomBets(rand.New(rand.NewPCG(5, 6)), 5000))
	stop := errors.New("central stopping")
	calls := 0
	got, err := scanStore(path, ScanOptions{Progress: func(rows uint64) error {
		calls++
		if calls == 3 {
			return stop
		}
		return nil
	}}, 4<<10, 2)
	require.ErrorIs(t, err, stop)
	assert.Equal(t, 3, calls, "no progress after the error")
	assert.Contains(t, err.Error(), fmt.Sprintf("recover bets %q: after ", path))
	assert.Equal(t, Tally{}, got)
}

// A bad row in a late chunk gives recoverBets' error whatever the chunking.
func TestScanStoreErrorInLaterChunk(t *testing.T) {
	noLeaks(t)
	now := time.Date(2024, 6, 1, 12, 0, 0, 0, time.UTC)
	valid := func(b Bet) error { return b.Validate(now) }
	dir := t.TempDir()
	bets := randomBets(rand.New(rand.NewPCG(3, 4)), 3000)
	for _, at := range []int{1, 1499, 2999} {
		for name, bad := range map[string]string{
			"invalid":   "7,Ana,Pérez,1,2099-01-01,5\n",
			"quoted":    "7,\"Ana\",Pérez,1,1990-01-01,5\n",
			"CRLF":      "7,Ana,Pérez,1,1990-01-01,5\r\n",
			"blank":     "\n",
			"unclosed":  "7,\"Ana,Pérez,1,1990-01-01,5\n",
			"bare":      "7,An\"a,Pérez,1,1990-01-01,5\n",
			"3 columns": "7,Ana,Pérez\n",
		} {
			t.Run(fmt.Sprintf("%s after %d rows", name, at), func(t *testing.T) {
				path := filepath.Join(dir, fmt.Sprintf("%s-%d.csv", name, at))
				writeStore(t, path, bets[:at])
				f, err := os.OpenFile(path, os.O_APPEND|os.O_WRONLY, 0)
				require.NoError(t, err)
				_, err = f.WriteString(bad)
				require.NoError(t, err)
				require.NoError(t, f.Close())
				writeStore(t, path, bets[at:])
				for _, size := range []int{256, 4 << 10, scanChunkSize} {
					for _, workers := range []int{1, 2, 4} {
						got, err := scanStore(path, ScanOptions{Check: valid}, size, workers)
						_, want := recoverTally(path, valid)
						require.Error(t, want)
						require.EqualError(t, err, want.Error(), "chunk %d, %d workers", size, workers)
						require.Equal(t, Tally{}, got)
					}
				}
			})
		}
	}
}

// A bad first row stops the other workers well before the end of the file,
// and no goroutine outlives ScanStore.
func TestScanStoreStopsEarly(t *testing.T) {
	noLeaks(t)
	path := filepath.Join(t.TempDir(), "bets.csv")
	require.NoError(t, os.WriteFile(path, []byte("+1,Ana,Pérez,1,1990-01-02,1\n"), 0o644))
	writeStore(t, path, benchBets(200_000))
	var mu sync.Mutex
	checked := 0
	count := func(Bet) error {
		mu.Lock()
		checked++
		mu.Unlock()
		return nil
	}
	_, err := scanStore(path, ScanOptions{Check: count}, 4<<10, 4)
	require.ErrorIs(t, err, strconv.ErrSyntax)
	assert.Contains(t, err.Error(), "line 1: agency:")
	assert.Less(t, checked, 100_000, "rows checked after the failure")
}

func TestScanStoreCheckError(t *testing.T) {
	noLeaks(t)
	path := filepath.Join(t.TempDir(), "bets.csv")
	writeStore(t, path, benchBets(1000))
	errOut := errors.New("agency out of range")
	check := func(b Bet) error {
		if b.Agency > 4 {
			return fmt.Errorf("agency %d: %w", b.Agency, errOut)
		}
		return nil
	}
	_, err := ScanStore(path, ScanOptions{Check: check})
	require.ErrorIs(t, err, errOut)
	assert.EqualError(t, err, fmt.Sprintf("recover bets %q: line 5: agency 5: agency out of range", path))
}

// Files made by breaking a store at random places give recoverBets' error.
func TestScanStoreMutations(t *testing.T) {
	noLeaks(t)
	now := time.Date(2024, 6, 1, 12, 0, 0, 0, time.UTC)
	valid := func(b Bet) error { return b.Validate(now) }
	path := filepath.Join(t.TempDir(), "bets.csv")
	r := rand.New(rand.NewPCG(5, 6))
	writeStore(t, path, randomBets(r, 60))
	store, err := os.ReadFile(path)
	require.NoError(t, err)
	pieces := []string{`"`, "\r", "\n", ",", " ", "\u00a0", "x", "0", `\`, ".", "\r\n", `""`}
	for i := range 300 {
		data := []byte(string(store))
		for range 1 + r.IntN(3) {
			at := r.IntN(len(data))
			switch r.IntN(3) {
			case 0: // insert
				data = append(data[:at], append([]byte(pieces[r.IntN(len(pieces))]), data[at:]...)...)
			case 1: // replace
				data = append(data[:at], append([]byte(pieces[r.IntN(len(pieces))]), data[at+1:]...)...)
			default:
				data = append(data[:at], data[at+1:]...)
			}
		}
		require.NoError(t, os.WriteFile(path, data, 0o644))
		check := valid
		if i%2 == 0 {
			check = acceptAll
		}
		requireSameScan(t, path, check)
	}
}

// One stray quote near the start leaves quotes open for the rest of the file
// as far as counting them can tell; the scan still stops at its row without
// holding the file.
func TestScanStoreStrayQuoteStaysSmall(t *testing.T) {
	noLeaks(t)
	path := filepath.Join(t.TempDir(), "bets.csv")
	require.NoError(t, os.WriteFile(path, []byte("1,Ana,Pérez,1,1990-01-02,1\n1,A\"na,Pérez,1,1990-01-02,1\n"), 0o644))
	writeStore(t, path, benchBets(200_000)) // 10 MB
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	_, err := scanStore(path, ScanOptions{Check: acceptAll}, 64<<10, 2)
	runtime.ReadMemStats(&after)
	require.ErrorIs(t, err, csv.ErrBareQuote)
	assert.ErrorContains(t, err, "line 2: column 4: bare")
	assert.Less(t, after.TotalAlloc-before.TotalAlloc, uint64(2<<20), "bytes allocated")
}

// FuzzScanStore checks that ScanStore and recoverBets agree on any file,
// in any chunking.
func FuzzScanStore(f *testing.F) {
	const good = "1,Ana,Pérez,11111111,1990-01-02,7574\n"
	for _, s := range []string{good, good + good, good + "\n" + good, good + "\r\n", "2,\"A\nna\",P,1,1990-01-02,1\n", `2,"Juan, Carlos","O""Brien",22222222,1980-05-06,12` + "\n", good + "2,\"Ana", "\n", "\r", good + "3,Sol"} {
		f.Add([]byte(s), uint16(16), uint8(2), true)
	}
	now := time.Date(2024, 6, 1, 12, 0, 0, 0, time.UTC)
	valid := func(b Bet) error { return b.Validate(now) }
	f.Fuzz(func(t *testing.T, data []byte, size uint16, workers uint8, validate bool) {
		path := filepath.Join(t.TempDir(), "bets.csv")
		require.NoError(t, os.WriteFile(path, data, 0o644))
		check := acceptAll
		if validate {
			check = valid
		}
		want, wantErr := recoverTally(path, check)
		got, err := scanStore(path, ScanOptions{Check: check}, 1+int(size%512), 1+int(workers%4))
		if wantErr != nil {
			require.EqualError(t, err, wantErr.Error())
		} else {
			require.NoError(t, err)
		}
		require.Equal(t, want, got)
	})
}

// BenchmarkScanStore scans a store of a million rows; 10,000,000 rows in a
// second is the target for a central's restart.
func BenchmarkScanStore(b *testing.B) {
	const rows = 1_000_000
	path := filepath.Join(b.TempDir(), "bets.csv")
	bets := benchBets(rows)
	for i := range bets {
		bets[i].Agency = i/143%5 + 1 // batches of 143 bets, the agencies in turn, as a central's file holds them
	}
	writeStore(b, path, bets)
	now := time.Now()
	valid := func(bet Bet) error { return bet.Validate(now) }
	// With digests, as a central recovers: each bet's row, as BATCH carries
	// it, hashed into its agency's digest.
	digests := map[int]*protocol.DigestWriter{}
	hash := func(agency int, bets []byte) {
		if digests[agency] == nil {
			digests[agency] = protocol.NewDigestWriter()
		}
		digests[agency].Write(bets)
	}
	for _, tt := range []struct {
		name    string
		opts    ScanOptions
		workers int
	}{
		{"workers=1", ScanOptions{Check: valid}, 1},
		{"workers=2", ScanOptions{Check: valid}, 2},
		{"workers=2/digests", ScanOptions{Check: valid, Hash: hash}, 2},
		// As a central recovers: ingest's row rules, and the digests.
		{"workers=2/rules", ScanOptions{Now: now}, 2},
		{"workers=2/rules/digests", ScanOptions{Now: now, Hash: hash}, 2},
	} {
		b.Run(tt.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				t, err := scanStore(path, tt.opts, scanChunkSize, tt.workers)
				if err != nil {
					b.Fatal(err)
				}
				if t.Rows != rows {
					b.Fatalf("scanned %d bets, want %d", t.Rows, rows)
				}
			}
			b.ReportMetric(float64(b.N*rows)/b.Elapsed().Seconds(), "bets/s")
		})
	}
}

// Hash is handed each agency's rows (AppendRow's) in file order, wherever
// chunks end: rows read in place, through csv (quoted fields), and past the
// chunks (records longer than scanMaxGrowth chunks).
func TestScanStoreHashesEachAgencyInOrder(t *testing.T) {
	noLeaks(t)
	now := time.Date(2024, 6, 1, 12, 0, 0, 0, time.UTC)
	valid := func(b Bet) error { return b.Validate(now) }
	path := filepath.Join(t.TempDir(), "bets.csv")
	bets := randomBets(rand.New(rand.NewPCG(3, 4)), 3000)
	writeStore(t, path, bets)
	want := map[int]string{}
	for _, b := range bets {
		want[b.Agency] += string(AppendRow(nil, b))
	}

	for _, size := range scanChunkSizes {
		for _, workers := range []int{1, 4} {
			t.Run(fmt.Sprintf("chunk=%d/workers=%d", size, workers), func(t *testing.T) {
				got := map[int]string{}
				calls := 0
				_, err := scanStore(path, ScanOptions{Check: valid, Hash: func(agency int, enc []byte) {
					got[agency] += string(enc)
					calls++
				}}, size, workers)
				require.NoError(t, err)
				assert.Equal(t, want, got)
				assert.Less(t, calls, len(bets), "runs of one agency's bets go in one call")
			})
		}
	}
}

// Limit reads a prefix of the file, as if the rest were not there yet: a
// central's synced rows while it appends more.
func TestScanStoreLimit(t *testing.T) {
	noLeaks(t)
	path := filepath.Join(t.TempDir(), "bets.csv")
	bets := randomBets(rand.New(rand.NewPCG(5, 6)), 600)
	writeStore(t, path, bets)
	data, err := os.ReadFile(path)
	require.NoError(t, err)
	rowEnds := []int{}
	for i, c := range data {
		if c == '\n' {
			rowEnds = append(rowEnds, i+1)
		}
	}
	require.Len(t, rowEnds, len(bets), "one line per bet")
	for _, rows := range []int{1, 137, 599} {
		for _, size := range []int{16, scanChunkSize} {
			t.Run(fmt.Sprintf("rows=%d/chunk=%d", rows, size), func(t *testing.T) {
				want, err := recoverTally(writePrefix(t, data[:rowEnds[rows-1]]), acceptAll)
				require.NoError(t, err)
				got, err := scanStore(path, ScanOptions{Check: acceptAll, Limit: int64(rowEnds[rows-1])}, size, 2)
				require.NoError(t, err)
				assert.Equal(t, want, got)
				assert.EqualValues(t, rows, got.Rows)
			})
		}
	}
}

// writePrefix writes data to a file of its own and returns its path.
func writePrefix(t *testing.T, data []byte) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "prefix.csv")
	require.NoError(t, os.WriteFile(path, data, 0o644))
	return path
}

// Now holds every row to ingest's row rules: a store row is refused with the
// reason, and on the line, that Validate gives, whether it is read in place
// or through csv (quoted names), and a valid store passes as with Validate.
func TestScanStoreNowChecksTheRowRules(t *testing.T) {
	noLeaks(t)
	now := time.Date(2024, 6, 1, 12, 0, 0, 0, time.UTC)
	good := "1,Ana,Pérez,1,1990-01-02,7574\n2,\"Paz, Eva\",Ruiz,2,1980-05-06,12\n3,Zoé,Ávila,3,2024-06-01,0\n"
	tests := []struct {
		name, row string // the row after good's three
		wantErr   string // "" if valid
	}{
		{"valid, plain", "1,Luis,Gómez,4,1970-01-01,9999\n", ""},
		{"valid, quoted name", "1,\"O\"\"Higgins\",Paz,5,1970-01-01,1\n", ""},
		{"valid, name past ASCII first", "1,Ángel,Núñez,6,1970-01-01,2\n", ""},
		{"agency 0", "0,Ana,Paz,1,1990-01-02,5\n", "agency: must be at least 1"},
		{"blank name", "1, ,Paz,1,1990-01-02,5\n", "first_name"},
		{"control character in a name", "1,An\x01a,Paz,1,1990-01-02,5\n", "first_name: contains a control character"},
		{"C1 control in a name", "1,An\u0085a,Paz,1,1990-01-02,5\n", "first_name: contains a control character"},
		{"invalid UTF-8", "1,An\xffa,Paz,1,1990-01-02,5\n", "first_name: not valid UTF-8"},
		{"name too long", "1," + strings.Repeat("a", MaxNameLen+1) + ",Paz,1,1990-01-02,5\n", "first_name: longer than"},
		{"document with a letter", "1,Ana,Paz,1a,1990-01-02,5\n", "document: not only digits"},
		{"birthdate in the future", "1,Ana,Paz,1,2024-06-02,5\n", "birthdate: in the future"},
		{"no such day", "1,Ana,Paz,1,2023-02-29,5\n", "birthdate: not a date"},
		{"number past 9999", "1,Ana,Paz,1,1990-01-02,10000\n", "number: out of range"},
		{"quoted name, then a bad document", "1,\"Paz, Eva\",Ruiz,x,1980-05-06,12\n", "document: not only digits"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "bets.csv")
			require.NoError(t, os.WriteFile(path, []byte(good+tt.row), 0o644))
			validate := func(b Bet) error { return b.Validate(now) }
			want, wantErr := ScanStore(path, ScanOptions{Check: validate})
			got, err := ScanStore(path, ScanOptions{Now: now})
			if tt.wantErr == "" {
				require.NoError(t, wantErr)
				require.NoError(t, err)
				assert.Equal(t, want, got)
				return
			}
			require.ErrorContains(t, wantErr, tt.wantErr)
			require.EqualError(t, err, wantErr.Error(), "the same reason on the same line as Validate's")
			assert.ErrorContains(t, err, "line 4: ")
		})
	}
}
