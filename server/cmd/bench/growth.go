package main

// How cost grows: the runs of BenchmarkGrowth (server/bench_growth_test.go),
// "Growth/bets=B/agencies=A", as a table in the report and a plot (SVG).

import (
	"bytes"
	"cmp"
	"fmt"
	"image/color"
	"math"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/font"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/vg"
	"gonum.org/v1/plot/vg/draw"
	"gonum.org/v1/plot/vg/vgsvg"
)

// flatWithin is the target: CPU per bet at a series' largest run is within
// this factor of its smallest's, either way.
const flatWithin = 1.2

var growthName = regexp.MustCompile(`^Growth/bets=(\d+)/agencies=(\d+)$`)

// A growthRun is one point: its size and its medians; ok is false when one
// of its figures is missing.
type growthRun struct {
	bets, agencies int
	wall           float64 // end to end, s
	cpuPerBet      float64 // the central's and the agencies' CPU ÷ bets, s
	rssMiB         float64 // the central's peak RSS
	ok             bool
}

// A growthSeries is the runs that differ in one size only (by: "bets" or
// "agencies"), the other being at, in increasing order of the one.
type growthSeries struct {
	by    string
	at    int
	runs  []growthRun
	label string // "bets, at 100 agencies"
}

func (s growthSeries) size(g growthRun) int {
	if s.by == "bets" {
		return g.bets
	}
	return g.agencies
}

// ratio is CPU per bet at the largest run ÷ at the smallest.
func (s growthSeries) ratio() (float64, bool) {
	first, last := s.runs[0], s.runs[len(s.runs)-1]
	return last.cpuPerBet / first.cpuPerBet, first.ok && last.ok && first.cpuPerBet > 0
}

// growth is the series of r's Growth runs: by bets, the runs at the agencies
// most of them share, and by agencies, those at the bets most share. A run
// can be in both (10M bets from 100 agencies); a series needs two runs.
func growth(r *results) []growthSeries {
	var runs []growthRun
	for _, name := range r.names {
		m := growthName.FindStringSubmatch(name)
		if m == nil {
			continue
		}
		g := growthRun{}
		g.bets, _ = strconv.Atoi(m[1])
		g.agencies, _ = strconv.Atoi(m[2])
		wall, okW := r.medians[name]["sec/op"]
		rss, okR := r.medians[name]["central-MiB"]
		cpu, _, okC := cpuPerBet(r, name)
		g.wall, g.rssMiB, g.cpuPerBet, g.ok = wall.median, rss.median, cpu, okW && okR && okC
		runs = append(runs, g)
	}
	var series []growthSeries
	for _, by := range []string{"bets", "agencies"} {
		s := growthSeries{by: by}
		other := func(g growthRun) int { // the size the series holds
			if by == "bets" {
				return g.agencies
			}
			return g.bets
		}
		counts := map[int]int{}
		for _, g := range runs {
			counts[other(g)]++
		}
		for at, n := range counts { // the most shared; the smallest of a tie, for one answer
			if best := counts[s.at]; n > best || n == best && at < s.at {
				s.at = at
			}
		}
		for _, g := range runs {
			if other(g) == s.at {
				s.runs = append(s.runs, g)
			}
		}
		if len(s.runs) < 2 {
			continue
		}
		slices.SortFunc(s.runs, func(a, b growthRun) int { return cmp.Compare(s.size(a), s.size(b)) })
		if by == "bets" {
			s.label = fmt.Sprintf("bets, at %s agencies", thousands(float64(s.at)))
		} else {
			s.label = fmt.Sprintf("agencies, at %s bets", thousands(float64(s.at)))
		}
		series = append(series, s)
	}
	return series
}

// growthReport is what the report shows of the growth runs: their series,
// the runs of each (-growth-runs, to say so) and the plot's link ("": none).
type growthReport struct {
	series []growthSeries
	runs   int
	link   string
}

// plotLink is the link to the plot at path from the report out: relative to
// out's directory, or path itself when the report is printed (out is "-").
func plotLink(out, path string) (string, error) {
	if out == "-" {
		return filepath.ToSlash(path), nil
	}
	dir, err := filepath.Abs(filepath.Dir(out))
	if err != nil {
		return "", fmt.Errorf("locate the report: %w", err)
	}
	abs, err := filepath.Abs(path)
	if err != nil {
		return "", fmt.Errorf("locate the plot: %w", err)
	}
	rel, err := filepath.Rel(dir, abs)
	if err != nil {
		return "", fmt.Errorf("link the plot from the report: %w", err)
	}
	return filepath.ToSlash(rel), nil
}

// renderGrowth writes the section of the growth runs.
func renderGrowth(sb *strings.Builder, gr growthReport) {
	series, runs := gr.series, gr.runs
	sb.WriteString("\n## How cost grows\n\nBenchmarkGrowth, mutual TLS as shipped")
	if runs > 0 {
		fmt.Fprintf(sb, ", %d run%s of each size", runs, map[bool]string{true: "s"}[runs > 1])
	}
	sb.WriteString(": the central and one agency process per agency, end to end as above. CPU per bet is the CPU the central and the agencies used, " +
		"user + system, ÷ the bets; the peak RSS is the central's. The target is a flat cost per bet: at a series' largest run, " +
		fmt.Sprintf("within %.1f× of its smallest's, either way.\n\n", flatWithin))
	if gr.link != "" {
		fmt.Fprintf(sb, "![How cost grows: end to end per million bets, CPU per bet and the central's peak RSS, against bets and against agencies, on log scales](%s)\n\n", gr.link)
	}
	sb.WriteString("| series | run | end to end | CPU per bet | peak RSS of the central |\n|---|---|---|---|---|\n")
	mib := func(v float64) string { return number(v) + " MiB" }
	for _, s := range series {
		for _, g := range s.runs {
			fmt.Fprintf(sb, "| %s | %s bets, %s agencies | %s | %s | %s |\n", s.label, thousands(float64(g.bets)), thousands(float64(g.agencies)),
				show(seconds, g.wall, "", g.ok), show(micros, g.cpuPerBet, "", g.ok), show(mib, g.rssMiB, "", g.ok))
		}
	}
	sb.WriteString("\n| series | CPU per bet, largest ÷ smallest | target | met |\n|---|---|---|---|\n")
	for _, s := range series {
		r, ok := s.ratio()
		met := "—"
		if ok {
			met = map[bool]string{true: "yes", false: "**no**"}[r <= flatWithin && r >= 1/flatWithin]
		}
		fmt.Fprintf(sb, "| %s: %s → %s | %s | within %.1f× either way | %s |\n", s.label,
			thousands(float64(s.size(s.runs[0]))), thousands(float64(s.size(s.runs[len(s.runs)-1]))),
			show(func(v float64) string { return fmt.Sprintf("%.2f×", v) }, r, "", ok), flatWithin, met)
	}
}

// A panel of the plot: one figure of each run, against one series' size.
type panel struct {
	title, unit string
	value       func(growthRun) float64
}

var panels = []panel{
	{"end to end per million bets", "s", func(g growthRun) float64 { return g.wall / float64(g.bets) * 1e6 }},
	{"CPU per bet, central + agencies", "µs", func(g growthRun) float64 { return g.cpuPerBet * 1e6 }},
	{"peak RSS of the central", "MiB", func(g growthRun) float64 { return g.rssMiB }},
}

// writeGrowthPlot draws series into an SVG at path.
func writeGrowthPlot(path string, series []growthSeries) error {
	w, h := growthPlotSize(series)
	canvas := vgsvg.New(w, h)
	if err := drawGrowth(canvas, series); err != nil {
		return err
	}
	var buf bytes.Buffer
	if _, err := canvas.WriteTo(&buf); err != nil {
		return fmt.Errorf("write the growth plot: %w", err)
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return fmt.Errorf("create the growth plot's directory: %w", err)
	}
	if err := os.WriteFile(path, buf.Bytes(), 0o644); err != nil {
		return fmt.Errorf("write the growth plot: %w", err)
	}
	return nil
}

// growthPlotSize is the size of the plot of series: a cell per panel.
func growthPlotSize(series []growthSeries) (w, h vg.Length) {
	return 3.6 * vg.Inch * vg.Length(len(panels)), 3 * vg.Inch * vg.Length(len(series))
}

// drawGrowth draws series on c, of growthPlotSize: a row of panels per
// series, one column per figure; the runs with a missing figure are left out.
func drawGrowth(c vg.CanvasSizer, series []growthSeries) error {
	// Sans for the plot's text; an SVG names the font, it does not embed it.
	plot.DefaultFont = font.Font{Typeface: "Liberation", Variant: "Sans"}
	plotter.DefaultFont = plot.DefaultFont
	plots := make([][]*plot.Plot, len(series))
	for i, s := range series {
		var runs []growthRun
		for _, g := range s.runs {
			if g.ok {
				runs = append(runs, g)
			}
		}
		if len(runs) == 0 {
			return fmt.Errorf("plot the growth: every run by %s misses a figure", s.by)
		}
		for _, pn := range panels {
			p, err := growthPanel(s, runs, pn)
			if err != nil {
				return fmt.Errorf("plot %s against %s: %w", pn.title, s.label, err)
			}
			plots[i] = append(plots[i], p)
		}
	}
	tiles := draw.Tiles{Rows: len(series), Cols: len(panels), PadX: vg.Points(12), PadY: vg.Points(12),
		PadTop: vg.Points(6), PadBottom: vg.Points(6), PadLeft: vg.Points(6), PadRight: vg.Points(6)}
	dc := draw.New(c)
	// White behind the panels too: a page in a dark theme shows the SVG's
	// transparent gaps dark, and its black text would vanish there.
	dc.SetColor(color.White)
	dc.Fill(dc.Rectangle.Path())
	cells := plot.Align(plots, tiles, dc)
	for i := range plots {
		for j, p := range plots[i] {
			p.Draw(cells[i][j])
		}
	}
	return nil
}

// growthPanel is pn's figure of runs against s's size, on a log scale (the
// sizes span 30× and 50×), from 0 up so that a flat line looks flat; each
// point is labelled with its value. The series is named in the title: an x
// axis's label wider than about half the panel squeezes it.
func growthPanel(s growthSeries, runs []growthRun, pn panel) (*plot.Plot, error) {
	p := plot.New()
	p.Title.Text = pn.title + "\n" + s.label
	p.X.Label.Text = s.by
	p.Y.Label.Text = pn.unit
	p.X.Scale = plot.LogScale{}
	xys := make(plotter.XYs, len(runs))
	labels := make([]string, len(runs))
	var ticks plot.ConstantTicks
	for k, g := range runs {
		x := float64(s.size(g))
		xys[k] = plotter.XY{X: x, Y: pn.value(g)}
		labels[k] = number(pn.value(g))
		ticks = append(ticks, plot.Tick{Value: x, Label: short(x)})
	}
	p.X.Tick.Marker = ticks
	// Room either side of the first and last points, for their labels.
	p.X.Min, p.X.Max = xys[0].X/1.6, xys[len(xys)-1].X*1.6
	top := 0.0
	for _, xy := range xys {
		top = max(top, xy.Y)
	}
	p.Y.Min, p.Y.Max = 0, top*1.25
	p.Y.Tick.Marker = plot.TickerFunc(plainTicks)
	line, points, err := plotter.NewLinePoints(xys)
	if err != nil {
		return nil, err
	}
	points.GlyphStyle.Shape = draw.CircleGlyph{}
	values, err := plotter.NewLabels(plotter.XYLabels{XYs: xys, Labels: labels})
	if err != nil {
		return nil, err
	}
	values.Offset = vg.Point{X: -vg.Points(8), Y: vg.Points(6)}
	p.Add(plotter.NewGrid(), line, points, values)
	return p, nil
}

// plainTicks are plot's default ticks labelled without trailing zeros (25,
// not 25.00).
func plainTicks(lo, hi float64) []plot.Tick {
	ticks := plot.DefaultTicks{}.Ticks(lo, hi)
	for i, t := range ticks {
		if t.Label != "" {
			ticks[i].Label = strconv.FormatFloat(t.Value, 'g', 6, 64)
		}
	}
	return ticks
}

// micros formats seconds in µs, however few: CPU per bet, in one unit.
func micros(s float64) string { return number(s*1e6) + " µs" }

// short is a size as a tick label: 500, 10k, 1M, 30M.
func short(v float64) string {
	for _, u := range []struct {
		div    float64
		suffix string
	}{{1e9, "G"}, {1e6, "M"}, {1e3, "k"}} {
		if v >= u.div {
			return strconv.FormatFloat(math.Round(v/u.div*10)/10, 'f', -1, 64) + u.suffix
		}
	}
	return strconv.FormatFloat(v, 'f', -1, 64)
}
