package main

import (
	"bytes"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// testdata/stats.csv is what the pinned benchstat wrote (-format csv) for six
// runs of micro-benchmarks and of the end-to-end ones.
func fixture(t *testing.T) *results { return fixtureOf(t, "stats.csv") }

// fixtureOf parses testdata/name, a run's benchstat CSV.
func fixtureOf(t *testing.T, name string) *results {
	f, err := os.Open(filepath.Join("testdata", name))
	require.NoError(t, err)
	defer f.Close()
	res, err := parseStats(f)
	require.NoError(t, err)
	return res
}

func TestParseStats(t *testing.T) {
	res := fixture(t)
	tests := []struct {
		name, unit string
		want       stat
	}{
		{"Scale/tls=on", "sec/op", stat{10.1505, "2%"}},
		{"Scale/tls=off", "bets/s", stat{1318947.93, "2%"}},
		{"Official/floor", "fsync-ms", stat{9.1455, "2%"}},
		{"DecodeBatch", "B/op", stat{8246, "0%"}},
		{"StoreBets", "bets/s", stat{2771333, "25%"}},
	}
	for _, tt := range tests {
		t.Run(tt.name+" "+tt.unit, func(t *testing.T) {
			got, ok := res.medians[tt.name][tt.unit]
			require.True(t, ok, "no %s in %s", tt.unit, tt.name)
			assert.InDelta(t, tt.want.median, got.median, 1e-6*tt.want.median)
			assert.Equal(t, tt.want.ci, got.ci)
		})
	}
	assert.Equal(t, "AMD EPYC 7B13", res.cpu)
	assert.Equal(t, []string{"StoreBets", "BatchBuilder", "DecodeBatch", "EncodeBatch",
		"Official/floor", "Official/tls=off", "Official/tls=on", "Scale/floor", "Scale/tls=off", "Scale/tls=on", "ScaleSmall/tls=on", "ScaleSmall/tls=off"}, res.names)
}

func TestParseStatsRefuses(t *testing.T) {
	tests := []struct{ name, csv, want string }{
		{"nothing", "goos: linux\n", "no benchmarks"},
		{"a row before its unit", ",f,\nScale/tls=on-2,1,2%\n", "no median under a unit"},
		{"not a number", ",f,\n,sec/op,CI\nScale/tls=on-2,fast,2%\n", "invalid syntax"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := parseStats(strings.NewReader(tt.csv))
			require.Error(t, err)
			assert.Contains(t, err.Error(), tt.want)
		})
	}
}

// figureNamed is the figure of figures(res) that says what.
func figureNamed(t *testing.T, res *results, what string) figure {
	t.Helper()
	for _, f := range figures(res) {
		if f.what == what {
			return f
		}
	}
	t.Fatalf("no figure %q", what)
	return figure{}
}

func TestFigures(t *testing.T) {
	res := fixture(t)
	tests := []struct {
		what, tls, want string
		met             bool
	}{
		{"official dataset end to end (78,697 bets, 5 agencies)", "on", "160.8 ms ± 2%", true},
		{"official end to end / floor", "on", "3.6×", false},
		{"official end to end / floor", "off", "3.3×", false},
		{"official floor: the same files over loopback into one fsynced file", "off", "44.82 ms ± 2%", true},
		{"scale: ingest", "on", "1,206,000 bets/s ± 2%", false},
		{"scale: what TLS costs the ingest (1 − TLS on ÷ plaintext)", "on", "8.6%", true},
		{"scale: what TLS costs the ingest (1 − TLS on ÷ plaintext)", "off", "missing", true},
		{"scale: draw latency (last batch stored → last INFORM sent)", "on", "1.71 s ± 2%", false},
		{"scale: restart recovery of the stored bets, every row validated (start → recuperacion)", "on", "2.81 s ± 2%", false},
		{"scale: CPU per bet, central and agencies, ÷ the baseline's (make bench BASELINE=REV)", "on", "missing", false},
		// 2805 ms of recovery against a floor of 1.337 s.
		{"scale: restart recovery ÷ the scale floor (reading back no slower than streaming in)", "on", "2.1×", false},
		{"scale: peak RSS of the central", "on", "56.28 MiB ± 2%", true},
		{"scale: … with all the bets ÷ with a tenth (1,000,000 bets, 100 agencies)", "on", "1.1×", true},
		{"scale: … with all the bets ÷ with a tenth (1,000,000 bets, 100 agencies)", "off", "1.1×", true},
		{"scale: peak RSS of the central while it recovers", "on", "21.25 MiB ± 1%", true},
		{"scale: end to end / floor", "on", "7.6×", false},
	}
	for _, tt := range tests {
		t.Run(tt.what+" "+tt.tls, func(t *testing.T) {
			f := figureNamed(t, res, tt.what)
			v, ci, ok := res.value(f, tt.tls)
			assert.Equal(t, tt.want, show(f.format, v, ci, ok))
			if f.met != nil && ok {
				assert.Equal(t, tt.met, f.met(v), "met")
			}
		})
	}
}

// CPU per bet against the baseline is the tree's CPU (central and agencies)
// per bet over the baseline's, from the same run: (5.5 + 4.5) ÷ (6 + 4.6)
// with TLS in testdata/baseline.csv.
func TestCPUAgainstBaseline(t *testing.T) {
	res := fixtureOf(t, "baseline.csv")
	var f figure
	for _, g := range figures(res) {
		if g.unit == cpuVsBaseline {
			f = g
		}
	}
	require.NotNil(t, f.format, "no such figure")
	v, ci, ok := res.value(f, "on")
	require.True(t, ok)
	assert.InDelta(t, 10.0/10.6, v, 1e-9)
	assert.Empty(t, ci, "a ratio of medians has no interval")
	assert.False(t, f.met(v), "0.94× is not 0.6×")
	v, _, ok = res.value(f, "off")
	require.True(t, ok)
	assert.InDelta(t, 8.5/9.0, v, 1e-9)
}

// The cores' busy share is the CPU of the central and the agencies over what
// the cores gave during the run; it needs all three figures.
func TestCPUBusy(t *testing.T) {
	res := &results{medians: map[string]map[string]stat{
		"Scale/tls=on":  {"sec/op": {5, "3%"}, "central-cpu-s": {3, "2%"}, "agencies-cpu-s": {2, "1%"}},
		"Scale/tls=off": {"sec/op": {4, "3%"}, "central-cpu-s": {3, "2%"}}, // no agencies' CPU
	}}
	var busy figure
	for _, f := range figures(res) {
		if f.unit == cpuBusy {
			busy = f
		}
	}
	require.NotNil(t, busy.format, "no busy figure")
	v, ci, ok := res.value(busy, "on")
	require.True(t, ok)
	assert.InDelta(t, 5.0/(5*float64(runtime.NumCPU())), v, 1e-9)
	assert.Empty(t, ci, "a ratio of medians has no interval")
	_, _, ok = res.value(busy, "off")
	assert.False(t, ok, "missing the agencies' CPU")
}

// What TLS adds at scale and at a tenth of the bets, with the same agencies,
// splits into a cost per agency whatever it sends and one per bet: here
// 1.2 s and 0.84 s, so 0.04 s per million bets and 0.8 s for 100 agencies.
func TestTLSSplit(t *testing.T) {
	round := func(central, agencies, bets, procs float64) map[string]stat {
		return map[string]stat{"central-cpu-s": {central, "2%"}, "agencies-cpu-s": {agencies, "1%"},
			"bets": {bets, ""}, "agencies": {procs, ""}}
	}
	both := map[string]map[string]stat{
		"Scale/tls=on": round(3, 4.2, 10e6, 100), "Scale/tls=off": round(2.5, 3.5, 10e6, 100),
		"ScaleSmall/tls=on": round(0.9, 2.94, 1e6, 100), "ScaleSmall/tls=off": round(0.6, 2.4, 1e6, 100),
	}
	without := func(name string) map[string]map[string]stat {
		m := map[string]map[string]stat{}
		for k, v := range both {
			if k != name {
				m[k] = v
			}
		}
		return m
	}
	otherAgencies := without("ScaleSmall/tls=on")
	otherAgencies["ScaleSmall/tls=on"] = round(0.9, 2.94, 1e6, 10)
	const (
		added      = "scale: CPU TLS adds, central and agencies (TLS on − plaintext)"
		addedSmall = "scale, a tenth of the bets (1,000,000 bets, 100 agencies): CPU TLS adds, the same way"
		perAgency  = "what TLS costs per agency process whatever it sends (the two above extended to no bets: handshake, key)"
		share      = "scale: … that cost's share of the CPU TLS adds"
	)
	tests := []struct {
		name    string
		medians map[string]map[string]stat
		what    string
		tls     string
		want    string
	}{
		{"added at scale", both, added, "on", "1.20 s"},
		{"added at a tenth", both, addedSmall, "on", "840.0 ms"},
		{"per agency", both, perAgency, "on", "8.00 ms"},
		{"share", both, share, "on", "66.7%"},
		{"no plaintext column", both, perAgency, "off", "missing"},
		{"no small plaintext run", without("ScaleSmall/tls=off"), perAgency, "on", "missing"},
		{"other agencies at a tenth", otherAgencies, share, "on", "missing"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			res := &results{medians: tt.medians}
			f := figureNamed(t, res, tt.what)
			v, ci, ok := res.value(f, tt.tls)
			assert.Equal(t, tt.want, show(f.format, v, ci, ok))
		})
	}
}

// CPU per bet over the floor's is the central's and agencies' CPU per bet
// over the floor's receiver's and senders', from the same run; the rows of
// counts show a process's page faults and context switches as counted.
func TestCPUOverFloor(t *testing.T) {
	res := &results{medians: map[string]map[string]stat{
		"Scale/tls=on":    {"central-cpu-s": {3, "2%"}, "agencies-cpu-s": {2, "1%"}, "bets": {10, ""}, "agency-faults": {597.4, "1%"}},
		"Scale/tls=off":   {"central-cpu-s": {2, "2%"}, "agencies-cpu-s": {2, "1%"}, "bets": {10, ""}},
		"Scale/floor":     {"central-cpu-s": {0.5, "2%"}, "agencies-cpu-s": {0.5, "1%"}, "bets": {10, ""}, "agency-faults": {190, "0%"}},
		"Official/tls=on": {"central-cpu-s": {1, "2%"}, "agencies-cpu-s": {1, "1%"}, "bets": {10, ""}},
		"Official/floor":  {"bets": {10, ""}}, // the floor's CPU missing
	}}
	tests := []struct{ what, tls, want string }{
		{"scale: CPU per bet, central and agencies, ÷ the floor's (its receiver and senders, measured the same way)", "on", "5.0×"},
		{"scale: CPU per bet, central and agencies, ÷ the floor's (its receiver and senders, measured the same way)", "off", "4.0×"},
		{"official: CPU per bet ÷ the floor's, the same way", "on", "missing"},
		{"scale: page faults of an agency process (mean)", "on", "597 ± 1%"},
		{"scale: context switches of an agency process (mean)", "on", "missing"},
		{"scale floor: page faults of a sender process (mean)", "on", "190"},
	}
	for _, tt := range tests {
		t.Run(tt.what+" "+tt.tls, func(t *testing.T) {
			f := figureNamed(t, res, tt.what)
			v, ci, ok := res.value(f, tt.tls)
			assert.Equal(t, tt.want, show(f.format, v, ci, ok))
		})
	}
}

// A full run replaces what is between the markers and keeps the prose; a
// quick one (no -out) only prints.
func TestReport(t *testing.T) {
	stats := filepath.Join("testdata", "stats.csv")
	out := filepath.Join(t.TempDir(), "BENCHMARKS.md")
	doc := "# Benchmarks\n\nprose before\n\n" + beginMark + "\nold figures\n" + endMark + "\n\n## How measured\n\nprose after\n"
	require.NoError(t, os.WriteFile(out, []byte(doc), 0o644))

	var printed bytes.Buffer
	require.NoError(t, report([]string{"-stats", stats, "-runs", "6"}, &printed))
	assert.Contains(t, printed.String(), "from 6 runs of each benchmark")
	assert.Contains(t, printed.String(), "| scale: what TLS costs the ingest (1 − TLS on ÷ plaintext) | 8.6% | — | ≤ 10% | yes |")
	assert.Contains(t, printed.String(), "| DecodeBatch | 18.41 µs/op ± 59% · 444.5 MB/s ± 37% · 143 bets/frame · 8,246 B/op · 2 allocs/op |")
	unchanged, err := os.ReadFile(out)
	require.NoError(t, err)
	assert.Equal(t, doc, string(unchanged), "printing wrote the file")

	require.NoError(t, report([]string{"-stats", stats, "-out", out}, &printed))
	got, err := os.ReadFile(out)
	require.NoError(t, err)
	before, rest, _ := strings.Cut(string(got), beginMark+"\n")
	generated, after, _ := strings.Cut(rest, endMark)
	assert.Equal(t, "# Benchmarks\n\nprose before\n\n", before)
	assert.Equal(t, "\n\n## How measured\n\nprose after\n", after)
	assert.True(t, strings.HasPrefix(generated, "Written by `make bench`"), generated)
	assert.Contains(t, generated, "| official end to end / floor | 3.6× | 3.3× | ≤ 2.5× | **no** |")
	assert.NotContains(t, string(got), "old figures")

	require.NoError(t, os.WriteFile(out, []byte("# no markers\n"), 0o644))
	assert.ErrorContains(t, report([]string{"-stats", stats, "-out", out}, &printed), "no lines")
}

// testdata/baseline.csv is a run with the baseline's binaries beside the
// tree's (make bench BASELINE=REV), in benchstat's CSV; the baseline's
// plaintext run of the official dataset has no recovery figure.
func TestAgainstBaseline(t *testing.T) {
	var printed bytes.Buffer
	require.NoError(t, report([]string{"-stats", filepath.Join("testdata", "baseline.csv"), "-baseline", "687e976"}, &printed))
	md := printed.String()
	_, section, ok := strings.Cut(md, "\n## Against the baseline\n")
	require.True(t, ok, "no section against the baseline:\n%s", md)
	section, _, _ = strings.Cut(section, "\n## ")
	assert.Contains(t, section, "The baseline is `687e976`:")
	rows := map[string]string{}
	for line := range strings.Lines(section) {
		if cells := strings.Split(strings.TrimSpace(line), " | "); len(cells) == 7 {
			rows[strings.TrimPrefix(cells[0], "| ")] = strings.Join(cells[1:], " | ")
		}
	}
	tests := []struct{ what, want string }{
		{"official (78,697 bets, 5 agencies): end to end",
			"125 ms ± 2% | 100 ms ± 2% | 0.80× | 100 ms ± 4% | 80 ms ± 5% | 0.80× |"},
		{"official (78,697 bets, 5 agencies): CPU per bet, central and agencies", // (0.1 + 0.075) ÷ 78,697: a ratio, no CI
			"2.22 µs | 1.91 µs | 0.86× | 1.65 µs | 1.40 µs | 0.85× |"},
		{"official (78,697 bets, 5 agencies): restart recovery",
			"35 ms ± 8% | 28 ms ± 7% | 0.80× | missing | 27 ms ± 9% | missing |"},
		{"scale (10,000,000 bets, 100 agencies): ingest",
			"1,500,000 bets/s ± 2% | 1,600,000 bets/s ± 1% | 1.07× | 1,800,000 bets/s ± 2% | 1,900,000 bets/s ± 3% | 1.06× |"},
		{"scale (10,000,000 bets, 100 agencies): CPU of the central",
			"6 s ± 3% | 5.50 s ± 2% | 0.92× | 5.20 s ± 2% | 4.80 s ± 2% | 0.92× |"},
		{"scale (10,000,000 bets, 100 agencies): CPU of the agencies, together",
			"4.60 s ± 3% | 4.50 s ± 2% | 0.98× | 3.80 s ± 2% | 3.70 s ± 2% | 0.97× |"},
		{"scale (10,000,000 bets, 100 agencies): restart recovery",
			"1.80 s ± 3% | 1.70 s ± 2% | 0.94× | 1.75 s ± 2% | 1.70 s ± 2% | 0.97× |"},
		{"scale (10,000,000 bets, 100 agencies): peak RSS of the central",
			"45 MiB ± 1% | 49.50 MiB ± 1% | 1.10× | 44 MiB ± 1% | 44.80 MiB ± 1% | 1.02× |"},
		{"scale (10,000,000 bets, 100 agencies): page faults of an agency process (mean)",
			"690 ± 1% | 597 ± 1% | 0.87× | 530 | 470 ± 1% | 0.89× |"},
		{"official (78,697 bets, 5 agencies): context switches of an agency process (mean)",
			"420 ± 6% | 400 ± 9% | 0.95× | 300 ± 8% | 280 ± 7% | 0.93× |"},
		// 1 − 1.6M ÷ 1.5M: the tree ingests faster, a negative cost.
		{"scale ingest with TLS: what the tree costs against the baseline (1 − tree ÷ baseline bets/s)",
			"— | — | -6.7% | — | — | — |"},
	}
	for _, tt := range tests {
		t.Run(tt.what, func(t *testing.T) {
			assert.Equal(t, tt.want, rows[tt.what])
		})
	}
	assert.Len(t, rows, 2*9+2, "a header, 9 figures of each dataset, the cost")

	// The rest of the report is as without a baseline; its runs are among every benchmark's.
	assert.Contains(t, md, "| scale: ingest | 1,600,000 bets/s ± 1% | 1,900,000 bets/s ± 3% | — | — |")
	assert.Contains(t, md, "\n| Scale/tls=on/build=baseline | 6.60 s/op ± 2% · ")
}

// The section is there when the run has baseline benchmarks, and only then;
// -baseline only names the revision.
func TestAgainstBaselineOnlyWithOne(t *testing.T) {
	tests := []struct {
		name, stats string
		args        []string
		want        string // "" for no section
	}{
		{"no baseline", "stats.csv", nil, ""},
		{"a -baseline but no baseline benchmarks", "stats.csv", []string{"-baseline", "687e976"}, ""},
		{"baseline benchmarks, unnamed", "baseline.csv", nil, "The baseline is a revision the run did not name:"},
		{"baseline benchmarks, named", "baseline.csv", []string{"-baseline", "v1.2"}, "The baseline is `v1.2`:"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var printed bytes.Buffer
			require.NoError(t, report(append([]string{"-stats", filepath.Join("testdata", tt.stats)}, tt.args...), &printed))
			if tt.want == "" {
				assert.NotContains(t, printed.String(), "Against the baseline")
				assert.NotContains(t, printed.String(), "build=baseline")
				return
			}
			assert.Contains(t, printed.String(), "\n## Against the baseline\n\n"+tt.want)
		})
	}
}

// A median shows in its unit; a time per anything (benchstat turns ns/fault
// into sec/fault) as a time.
func TestWithUnit(t *testing.T) {
	tests := []struct {
		unit string
		v    float64
		want string
	}{
		{"sec/op", 0.00294, "2.94 ms/op"},
		{"sec/fault", 1.0001e-05, "10.00 µs/fault"},
		{"B/op", 66016, "66,016 B/op"},
		{"agency-faults", 576, "576 agency-faults"},
	}
	for _, tt := range tests {
		t.Run(tt.unit, func(t *testing.T) {
			assert.Equal(t, tt.want, withUnit(tt.unit, tt.v))
		})
	}
}
