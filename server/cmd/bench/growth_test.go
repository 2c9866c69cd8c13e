package main

import (
	"bytes"
	"encoding/xml"
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// testdata/growth.csv is one run of BenchmarkGrowth's five sizes, in
// benchstat's CSV, with the figures the report uses. CPU per bet: 1.87 µs at
// 1M bets, 1.065 at 10M, 1.063 at 30M (100 agencies); 0.99 µs with 10
// agencies and 1.15 with 500 (10M bets).
const growthStats = "testdata/growth.csv"

func growthFixture(t *testing.T) []growthSeries {
	f, err := os.Open(growthStats)
	require.NoError(t, err)
	defer f.Close()
	res, err := parseStats(f)
	require.NoError(t, err)
	return growth(res)
}

func TestGrowthSeries(t *testing.T) {
	series := growthFixture(t)
	tests := []struct {
		label string
		sizes []int   // of what varies, in order
		ratio float64 // CPU per bet, largest ÷ smallest
	}{
		{"bets, at 100 agencies", []int{1_000_000, 10_000_000, 30_000_000}, (31.9 / 30e6) / (1.87 / 1e6)},
		{"agencies, at 10,000,000 bets", []int{10, 100, 500}, (11.5 / 10e6) / (9.9 / 10e6)},
	}
	require.Len(t, series, len(tests))
	for i, tt := range tests {
		t.Run(tt.label, func(t *testing.T) {
			s := series[i]
			assert.Equal(t, tt.label, s.label)
			var sizes []int
			for _, g := range s.runs {
				sizes = append(sizes, s.size(g))
				assert.True(t, g.ok, "run %d×%d has every figure", g.bets, g.agencies)
			}
			assert.Equal(t, tt.sizes, sizes)
			r, ok := s.ratio()
			require.True(t, ok)
			assert.InDelta(t, tt.ratio, r, 1e-9)
		})
	}
}

// A run missing a figure shows as missing and is left out of the plot; a
// series needs two runs; the runs that are not Growth's are ignored.
func TestGrowthPartial(t *testing.T) {
	full := map[string]stat{"sec/op": {2, ""}, "central-MiB": {40, ""}, "central-cpu-s": {1, ""}, "agencies-cpu-s": {1, ""}, "bets": {1e6, ""}}
	noRSS := map[string]stat{"sec/op": {2, ""}, "central-cpu-s": {1, ""}, "agencies-cpu-s": {1, ""}, "bets": {2e6, ""}}
	res := &results{
		names: []string{"Scale/tls=on", "Growth/bets=1000000/agencies=100", "Growth/bets=2000000/agencies=100", "Growth/bets=1000000/agencies=7"},
		medians: map[string]map[string]stat{"Scale/tls=on": full, "Growth/bets=1000000/agencies=100": full,
			"Growth/bets=2000000/agencies=100": noRSS, "Growth/bets=1000000/agencies=7": full},
	}
	series := growth(res)
	require.Len(t, series, 2, "by bets at 100 agencies, by agencies at 1M bets")

	var sb strings.Builder
	renderGrowth(&sb, growthReport{series: series})
	md := sb.String()
	tests := []struct{ name, want string }{
		{"a full run", "| bets, at 100 agencies | 1,000,000 bets, 100 agencies | 2 s | 2 µs | 40 MiB |"},
		{"a run without its RSS", "| bets, at 100 agencies | 2,000,000 bets, 100 agencies | missing | missing | missing |"},
		{"no ratio without the largest run", "| bets, at 100 agencies: 1,000,000 → 2,000,000 | missing | within 1.2× either way | — |"},
		{"the other series", "| agencies, at 1,000,000 bets: 7 → 100 | 1.00× | within 1.2× either way | yes |"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) { assert.Contains(t, md, tt.want+"\n") })
	}
	assert.NotContains(t, md, "![", "no plot, no link")

	path := filepath.Join(t.TempDir(), "growth.svg")
	require.NoError(t, writeGrowthPlot(path, series))
	assert.NotContains(t, svgTexts(t, path), "2M", "the run without its RSS has no tick")

	assert.Empty(t, growth(&results{names: []string{"Growth/bets=1/agencies=1"},
		medians: map[string]map[string]stat{"Growth/bets=1/agencies=1": full}}), "one run is no series")
}

// With -plot, the report draws the SVG and links it from the report: relative
// to a written report, as given to a printed one.
func TestGrowthReport(t *testing.T) {
	tests := []struct {
		name     string
		out      string // "" prints; else a file under the test's directory
		plot     string // under the test's directory
		wantLink func(dir string) string
	}{
		{"printed", "", "bench/growth.svg", func(dir string) string { return filepath.ToSlash(filepath.Join(dir, "bench/growth.svg")) }},
		{"written beside its plot's directory", "BENCHMARKS.md", "docs/bench-growth.svg", func(string) string { return "docs/bench-growth.svg" }},
		{"written below its plot", "docs/BENCHMARKS.md", "bench-growth.svg", func(string) string { return "../bench-growth.svg" }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			plot := filepath.Join(dir, tt.plot)
			args := []string{"-stats", growthStats, "-growth-runs", "1", "-plot", plot}
			out := ""
			if tt.out != "" {
				out = filepath.Join(dir, tt.out)
				require.NoError(t, os.MkdirAll(filepath.Dir(out), 0o755))
				require.NoError(t, os.WriteFile(out, []byte(beginMark+"\n"+endMark+"\n"), 0o644))
				args = append(args, "-out", out)
			}
			var printed bytes.Buffer
			require.NoError(t, report(args, &printed))
			md := printed.String()
			if out != "" {
				data, err := os.ReadFile(out)
				require.NoError(t, err)
				md = string(data)
			}
			_, section, ok := strings.Cut(md, "\n## How cost grows\n")
			require.True(t, ok, "no growth section:\n%s", md)
			section, _, _ = strings.Cut(section, "\n## ")
			for _, want := range []string{
				"BenchmarkGrowth, mutual TLS as shipped, 1 run of each size:",
				"](" + tt.wantLink(dir) + ")\n",
				"| bets, at 100 agencies | 1,000,000 bets, 100 agencies | 1.14 s | 1.87 µs | 47.04 MiB |\n",
				"| bets, at 100 agencies | 30,000,000 bets, 100 agencies | 19.20 s | 1.06 µs | 51.20 MiB |\n",
				"| agencies, at 10,000,000 bets | 10,000,000 bets, 500 agencies | 7.40 s | 1.15 µs | 61.30 MiB |\n",
				"| bets, at 100 agencies: 1,000,000 → 30,000,000 | 0.57× | within 1.2× either way | **no** |\n",
				"| agencies, at 10,000,000 bets: 10 → 500 | 1.16× | within 1.2× either way | yes |\n",
			} {
				assert.Contains(t, section, want)
			}
			texts := svgTexts(t, plot)
			for _, want := range []string{"bets, at 100 agencies", "agencies, at 10,000,000 bets",
				"end to end per million bets", "CPU per bet, central + agencies", "peak RSS of the central",
				"1M", "30M", "10", "500", "µs", "MiB", "1.87"} {
				assert.Contains(t, texts, want)
			}
		})
	}
}

func TestGrowthReportRefuses(t *testing.T) {
	tests := []struct{ name, stats, plot, want string }{
		{"a plot without Growth runs", "testdata/stats.csv", "growth.svg", "holds no Growth benchmarks to draw"},
		{"a plot where no file can be", growthStats, "stats.csv/growth.svg", "create the growth plot's directory"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			require.NoError(t, os.WriteFile(filepath.Join(dir, "stats.csv"), nil, 0o644))
			err := report([]string{"-stats", tt.stats, "-plot", filepath.Join(dir, tt.plot)}, io.Discard)
			assert.ErrorContains(t, err, tt.want)
		})
	}
}

func TestShort(t *testing.T) {
	tests := []struct {
		v    float64
		want string
	}{{10, "10"}, {500, "500"}, {10_000, "10k"}, {1_000_000, "1M"}, {30_000_000, "30M"}, {2_500_000, "2.5M"}}
	for _, tt := range tests {
		t.Run(tt.want, func(t *testing.T) { assert.Equal(t, tt.want, short(tt.v)) })
	}
}

// svgTexts parses the SVG at path as XML and returns its <text> elements'
// contents; it fails the test if the file is no well-formed SVG.
func svgTexts(t *testing.T, path string) []string {
	t.Helper()
	data, err := os.ReadFile(path)
	require.NoError(t, err)
	dec := xml.NewDecoder(bytes.NewReader(data))
	var texts []string
	root := ""
	for {
		tok, err := dec.Token()
		if errors.Is(err, io.EOF) {
			break
		}
		require.NoError(t, err, "parse %s as XML", path)
		if se, ok := tok.(xml.StartElement); ok {
			if root == "" {
				root = se.Name.Local
			}
			if se.Name.Local == "text" {
				var s string
				require.NoError(t, dec.DecodeElement(&s, &se))
				texts = append(texts, s)
			}
		}
	}
	require.Equal(t, "svg", root, "the root element")
	return texts
}
