// Command bench writes the report of `make bench` from benchstat's CSV summary
// of one run: the targets' figures, ratios of that run's medians, the tree
// against the baseline when the run has one (make bench BASELINE=REV), how
// cost grows with the bets and the agencies (BenchmarkGrowth: a table, and a
// plot drawn into -plot FILE, an SVG), and every benchmark's medians, between
// the bench markers of -out FILE, or printed.
//
//	bench -stats stats.csv [-runs 6] [-baseline REV] [-growth-runs 1] [-plot docs/bench-growth.svg] [-out BENCHMARKS.md]
package main

import (
	"cmp"
	"encoding/csv"
	"errors"
	"flag"
	"fmt"
	"io"
	"math"
	"os"
	"regexp"
	"runtime"
	"strconv"
	"strings"
	"time"
)

func main() {
	if err := report(os.Args[1:], os.Stdout); err != nil && !errors.Is(err, flag.ErrHelp) {
		fmt.Fprintln(os.Stderr, "bench:", err)
		os.Exit(1)
	}
}

const ( // the lines of the report file between which report writes
	beginMark = "<!-- make bench writes from here -->"
	endMark   = "<!-- make bench writes up to here -->"
)

func report(args []string, stdout io.Writer) error {
	fs := flag.NewFlagSet("bench", flag.ContinueOnError)
	stats := fs.String("stats", "", "benchstat -format csv output of the run")
	runs := fs.Int("runs", 0, "runs of each benchmark (make bench's BENCH_COUNT), to say so")
	out := fs.String("out", "-", "markdown file whose marked part to replace; - prints")
	baseline := fs.String("baseline", "", "the revision whose binaries the run's "+baselineSuffix[1:]+" benchmarks ran (make bench's BASELINE), to say so")
	growthRuns := fs.Int("growth-runs", 0, "runs of each Growth benchmark (make bench's BENCH_GROWTH_COUNT), to say so")
	plotPath := fs.String("plot", "", "SVG file to draw the Growth benchmarks into, linked from the report; none when empty")
	if err := fs.Parse(args); err != nil {
		return err
	}
	f, err := os.Open(*stats)
	if err != nil {
		return fmt.Errorf("open the stats: %w", err)
	}
	defer f.Close()
	res, err := parseStats(f)
	if err != nil {
		return fmt.Errorf("%s: %w", *stats, err)
	}
	gr := growthReport{series: growth(res), runs: *growthRuns}
	if *plotPath != "" {
		if len(gr.series) == 0 {
			return fmt.Errorf("-plot %s: %s holds no Growth benchmarks to draw", *plotPath, *stats)
		}
		if err := writeGrowthPlot(*plotPath, gr.series); err != nil {
			return err
		}
		if gr.link, err = plotLink(*out, *plotPath); err != nil {
			return err
		}
	}
	md := render(res, *runs, *baseline, gr, time.Now().UTC())
	if *out == "-" {
		_, err := io.WriteString(stdout, md)
		return err
	}
	old, err := os.ReadFile(*out)
	if err != nil {
		return fmt.Errorf("read the report: %w", err)
	}
	before, rest, ok1 := strings.Cut(string(old), beginMark+"\n")
	_, after, ok2 := strings.Cut(rest, endMark)
	if !ok1 || !ok2 {
		return fmt.Errorf("%s: no lines %q and %q to write between", *out, beginMark, endMark)
	}
	return os.WriteFile(*out, []byte(before+beginMark+"\n"+md+endMark+after), 0o644)
}

// stat is a median and benchstat's 95% confidence interval ("3%", "∞" with too few runs).
type stat struct {
	median float64
	ci     string
}

type results struct {
	cpu     string
	names   []string                   // benchmarks, in benchstat's order
	units   map[string][]string        // benchmark → its units, in order
	medians map[string]map[string]stat // benchmark → unit → median
}

var procsSuffix = regexp.MustCompile(`-\d+$`)

// parseStats reads benchstat's CSV: configuration lines ("cpu: …"), then per unit a
// header naming the input file, one naming the unit (",sec/op,CI"), a row per benchmark
// ("Scale/tls=on-2,9.35,2%"; the name loses its GOMAXPROCS suffix), a geomean.
func parseStats(rd io.Reader) (*results, error) {
	cr := csv.NewReader(rd)
	cr.FieldsPerRecord = -1
	res := &results{units: map[string][]string{}, medians: map[string]map[string]stat{}}
	unit := ""
	for {
		rec, err := cr.Read()
		if errors.Is(err, io.EOF) {
			break
		} else if err != nil {
			return nil, err
		}
		line, _ := cr.FieldPos(0)
		switch name := rec[0]; {
		case strings.Contains(name, ": "): // configuration; benchmark names have no spaces
			if v, ok := strings.CutPrefix(strings.Join(rec, ","), "cpu: "); ok {
				res.cpu = v
			}
		case name == "" && len(rec) == 3 && rec[2] == "CI":
			unit = rec[1]
		case name == "" || name == "geomean":
		case unit == "" || len(rec) != 3:
			return nil, fmt.Errorf("line %d: %q is no median under a unit", line, rec)
		default:
			v, err := strconv.ParseFloat(rec[1], 64)
			if err != nil {
				return nil, fmt.Errorf("line %d: %w", line, err)
			}
			name = procsSuffix.ReplaceAllString(name, "")
			if res.medians[name] == nil {
				res.names = append(res.names, name)
				res.medians[name] = map[string]stat{}
			}
			res.units[name] = append(res.units[name], unit)
			res.medians[name][unit] = stat{v, rec[2]}
		}
	}
	if len(res.names) == 0 {
		return nil, errors.New("no benchmarks")
	}
	return res, nil
}

// A figure of the targets table, TLS on and off: the median of bench+"/tls=on"
// and "/tls=off" in unit, or a ratio (see value). A bench ending in "/floor"
// has no TLS: both columns show it.
type figure struct {
	what, bench, unit string
	format            func(float64) string
	target            string
	met               func(float64) bool // of the TLS-on value; nil with no target
}

const (
	overFloor = "/floor"
	tlsCost   = "tls-cost"
	overSmall = "rss-growth" // the central's peak RSS in bench ÷ in bench+"Small"
	cpuBusy   = "cpu-busy"   // CPU the central and agencies used ÷ (end to end × the cores)
	// recoveryOverFloor is the restart's recovery ÷ the floor's end to end:
	// reading the bets back against streaming them in.
	recoveryOverFloor = "recover/floor"
	// cpuVsBaseline is CPU per bet (cpuPerBet) ÷ the baseline's, in the same
	// run; missing without a baseline.
	cpuVsBaseline = "cpu/baseline"
	// cpuOverFloor is CPU per bet ÷ the floor's: its receiver's and senders'
	// CPU, measured as the central's and the agencies' are.
	cpuOverFloor = "cpu/floor"
	// tlsCPU is the CPU, central and agencies, that TLS adds to a round:
	// TLS on − plaintext.
	tlsCPU = "tls-cpu"
	// tlsPerAgency and tlsFixedShare split Scale's tlsCPU in two: what TLS
	// costs whatever the bets (each agency's handshake and key) and what
	// grows with them (see tlsSplit).
	tlsPerAgency  = "tls-per-agency"
	tlsFixedShare = "tls-fixed-share"
)

// value is f's median and CI with TLS on or off; a ratio (overFloor: the time
// over the floor's; tlsCost: 1 − ingest with TLS ÷ without; overSmall) has no CI.
func (r *results) value(f figure, tls string) (float64, string, bool) {
	get := func(name, unit string) (stat, bool) { s, ok := r.medians[name][unit]; return s, ok }
	switch {
	case strings.HasSuffix(f.bench, "/floor"):
		s, ok := get(f.bench, f.unit)
		return s.median, s.ci, ok
	case f.unit == overFloor:
		e, ok := get(f.bench+"/tls="+tls, "sec/op")
		floor, okF := get(f.bench+"/floor", "sec/op")
		return e.median / floor.median, "", ok && okF
	case f.unit == overSmall:
		big, ok := get(f.bench+"/tls="+tls, "central-MiB")
		small, okS := get(f.bench+"Small/tls="+tls, "central-MiB")
		return big.median / small.median, "", ok && okS
	case f.unit == cpuBusy:
		e, ok := get(f.bench+"/tls="+tls, "sec/op")
		cpu, okCPU := r.cpuUsed(f.bench + "/tls=" + tls)
		return cpu / (e.median * float64(runtime.NumCPU())), "", ok && okCPU
	case f.unit == recoveryOverFloor:
		rec, ok := get(f.bench+"/tls="+tls, "recover-ms")
		floor, okF := get(f.bench+"/floor", "sec/op")
		return rec.median / 1000 / floor.median, "", ok && okF
	case f.unit == cpuOverFloor:
		tree, _, ok := cpuPerBet(r, f.bench+"/tls="+tls)
		floor, _, okF := cpuPerBet(r, f.bench+"/floor")
		return tree / floor, "", ok && okF && floor > 0
	case f.unit == cpuVsBaseline:
		tree, _, ok := cpuPerBet(r, f.bench+"/tls="+tls)
		base, _, okB := cpuPerBet(r, f.bench+"/tls="+tls+baselineSuffix)
		return tree / base, "", ok && okB && base > 0
	case f.unit == tlsCost:
		on, ok := get(f.bench+"/tls=on", "bets/s")
		off, okOff := get(f.bench+"/tls=off", "bets/s")
		return 1 - on.median/off.median, "", ok && okOff && tls == "on"
	case f.unit == tlsCPU:
		e, ok := r.tlsCPU(f.bench)
		return e, "", ok && tls == "on"
	case f.unit == tlsPerAgency, f.unit == tlsFixedShare:
		v, share, ok := r.tlsSplit(f.bench, f.bench+"Small")
		if f.unit == tlsFixedShare {
			v = share
		}
		return v, "", ok && tls == "on"
	}
	s, ok := get(f.bench+"/tls="+tls, f.unit)
	return s.median, s.ci, ok
}

// cpuUsed is the CPU the central and the agencies used together in name's
// runs: a sum of medians.
func (r *results) cpuUsed(name string) (float64, bool) {
	c, okC := r.medians[name]["central-cpu-s"]
	a, okA := r.medians[name]["agencies-cpu-s"]
	return c.median + a.median, okC && okA
}

// tlsCPU is the CPU, central and agencies, that TLS adds to bench's rounds:
// a difference of medians.
func (r *results) tlsCPU(bench string) (float64, bool) {
	on, ok := r.cpuUsed(bench + "/tls=on")
	off, okOff := r.cpuUsed(bench + "/tls=off")
	return on - off, ok && okOff
}

// tlsSplit splits what TLS adds to big's rounds with the same agencies and
// fewer bets in small's: a line through the two, extended to no bets, is what
// TLS costs whatever an agency sends (its handshake, its key, a longer-lived
// process). It returns that per agency, in ms, and as a share of big's.
func (r *results) tlsSplit(big, small string) (perAgency, share float64, ok bool) {
	eBig, ok1 := r.tlsCPU(big)
	eSmall, ok2 := r.tlsCPU(small)
	bBig, ok3 := r.medians[big+"/tls=on"]["bets"]
	bSmall, ok4 := r.medians[small+"/tls=on"]["bets"]
	aBig, ok5 := r.medians[big+"/tls=on"]["agencies"]
	aSmall, ok6 := r.medians[small+"/tls=on"]["agencies"]
	if !(ok1 && ok2 && ok3 && ok4 && ok5 && ok6) || aBig.median != aSmall.median || aBig.median <= 0 ||
		bBig.median <= bSmall.median || eBig <= 0 {
		return 0, 0, false
	}
	perBet := (eBig - eSmall) / (bBig.median - bSmall.median)
	fixed := eSmall - perBet*bSmall.median
	return 1000 * fixed / aBig.median, fixed / eBig, true
}

func atMost(limit float64) func(float64) bool { return func(v float64) bool { return v <= limit } }

// size is bench's dataset, as its TLS-on run reports it.
func (r *results) size(bench string) string {
	s := r.medians[bench+"/tls=on"]
	return thousands(s["bets"].median) + " bets, " + thousands(s["agencies"].median) + " agencies"
}

func figures(r *results) []figure {
	size := r.size
	ratio := func(v float64) string { return fmt.Sprintf("%.1f×", v) }
	percent := func(v float64) string { return fmt.Sprintf("%.1f%%", 100*v) }
	mib := func(v float64) string { return number(v) + " MiB" }
	return []figure{
		{"official dataset end to end (" + size("Official") + ")", "Official", "sec/op", seconds, "", nil},
		{"official floor: the same files over loopback into one fsynced file", "Official/floor", "sec/op", seconds, "", nil},
		{"official floor: … of which an fsync was running", "Official/floor", "fsync-ms", millis, "", nil},
		{"official end to end / floor", "Official", overFloor, ratio, "≤ 2.5×", atMost(2.5)},
		{"scale (" + size("Scale") + "): end to end (agencies started → last exited)", "Scale", "sec/op", seconds, "", nil},
		{"scale floor, timed the same way", "Scale/floor", "sec/op", seconds, "", nil},
		{"scale floor: … of which an fsync was running", "Scale/floor", "fsync-ms", millis, "", nil},
		{"scale: end to end / floor", "Scale", overFloor, ratio, "≤ 3×", atMost(3)},
		{"scale: ingest", "Scale", "bets/s", func(v float64) string { return thousands(v) + " bets/s" }, "", nil},
		{"scale: what TLS costs the ingest (1 − TLS on ÷ plaintext)", "Scale", tlsCost, percent, "≤ 10%", atMost(0.10)},
		{"scale: CPU TLS adds, central and agencies (TLS on − plaintext)", "Scale", tlsCPU, seconds, "", nil},
		{"scale, a tenth of the bets (" + size("ScaleSmall") + "): CPU TLS adds, the same way", "ScaleSmall", tlsCPU, seconds, "", nil},
		{"what TLS costs per agency process whatever it sends (the two above extended to no bets: handshake, key)", "Scale",
			tlsPerAgency, millis, "", nil},
		{"scale: … that cost's share of the CPU TLS adds", "Scale", tlsFixedShare, percent, "", nil},
		{"scale: CPU per bet, central and agencies, ÷ the baseline's (make bench BASELINE=REV)", "Scale", cpuVsBaseline,
			func(v float64) string { return fmt.Sprintf("%.2f×", v) }, "≤ 0.6×", atMost(0.6)},
		{"scale: CPU per bet, central and agencies, ÷ the floor's (its receiver and senders, measured the same way)", "Scale",
			cpuOverFloor, ratio, "", nil},
		{"official: CPU per bet ÷ the floor's, the same way", "Official", cpuOverFloor, ratio, "", nil},
		{"scale: CPU the central used (user + system)", "Scale", "central-cpu-s", seconds, "", nil},
		{"scale: CPU the agencies used, together", "Scale", "agencies-cpu-s", seconds, "", nil},
		{"scale: how busy the cores were (those two ÷ end to end × cores)", "Scale", cpuBusy, percent, "", nil},
		{"scale: draw latency (last batch stored → last INFORM sent)", "Scale", "draw-ms", millis, "", nil},
		{"scale: restart recovery of the stored bets, every row validated (start → recuperacion)", "Scale", "recover-ms", millis, "", nil},
		{"scale: restart recovery ÷ the scale floor (reading back no slower than streaming in)", "Scale", recoveryOverFloor,
			ratio, "≤ 1×", atMost(1)},
		{"scale: peak RSS of the central", "Scale", "central-MiB", mib, "", nil},
		{"scale: … with all the bets ÷ with a tenth (" + size("ScaleSmall") + ")", "Scale", overSmall, ratio, "≤ 1.1×", atMost(1.1)},
		{"scale: peak RSS of the central while it recovers", "Scale", "recover-MiB", mib, "", nil},
		{"scale: peak RSS of an agency (the largest)", "Scale", "agency-MiB", mib, "", nil},
		// What a process costs to exist: counted, so steadier than the times.
		{"scale: page faults of an agency process (mean)", "Scale", "agency-faults", thousands, "", nil},
		{"scale floor: page faults of a sender process (mean)", "Scale/floor", "agency-faults", thousands, "", nil},
		{"scale: context switches of an agency process (mean)", "Scale", "agency-switches", thousands, "", nil},
		{"scale floor: context switches of a sender process (mean)", "Scale/floor", "agency-switches", thousands, "", nil},
	}
}

func render(r *results, runs int, baseline string, gr growthReport, now time.Time) string {
	var sb strings.Builder
	fmt.Fprintf(&sb, "Written by `make bench` on %s", now.Format("2006-01-02 15:04 MST"))
	if runs > 0 {
		fmt.Fprintf(&sb, " from %d run%s of each benchmark", runs, map[bool]string{true: "s"}[runs > 1])
	}
	sb.WriteString(". A figure is benchstat's median of its runs ± its 95% confidence interval (none under 6 runs); a ratio is one of two medians of this run.\n\n")
	fmt.Fprintf(&sb, "- CPU: %s\n- cores: %d\n- Go: %s %s/%s\n", cmp.Or(r.cpu, "unknown"), runtime.NumCPU(), runtime.Version(), runtime.GOOS, runtime.GOARCH)
	if k, err := os.ReadFile("/proc/sys/kernel/osrelease"); err == nil {
		fmt.Fprintf(&sb, "- kernel: Linux %s\n", strings.TrimSpace(string(k)))
	}
	sb.WriteString("\n## Targets\n\nA target applies to mutual TLS, as shipped; plaintext is beside it.\n\n" +
		"| figure | TLS on | plaintext | target | met |\n|---|---|---|---|---|\n")
	for _, f := range figures(r) {
		on, onCI, ok := r.value(f, "on")
		off, offCI, okOff := r.value(f, "off")
		met := "—"
		if f.met != nil && ok {
			met = map[bool]string{true: "yes", false: "**no**"}[f.met(on)]
		}
		plain := show(f.format, off, offCI, okOff)
		switch f.unit {
		case tlsCost, tlsCPU, tlsPerAgency, tlsFixedShare:
			plain = "—" // a comparison of the two columns, not a figure of either
		}
		fmt.Fprintf(&sb, "| %s | %s | %s | %s | %s |\n", f.what, show(f.format, on, onCI, ok), plain, cmp.Or(f.target, "—"), met)
	}
	if r.hasBaseline() {
		renderBaseline(&sb, r, baseline)
	}
	if len(gr.series) > 0 {
		renderGrowth(&sb, gr)
	}
	sb.WriteString("\n## Every benchmark\n\n| benchmark | medians |\n|---|---|\n")
	for _, name := range r.names {
		var parts []string
		for _, unit := range r.units[name] {
			s := r.medians[name][unit]
			parts = append(parts, show(func(v float64) string { return withUnit(unit, v) }, s.median, s.ci, true))
		}
		fmt.Fprintf(&sb, "| %s | %s |\n", name, strings.Join(parts, " · "))
	}
	return sb.String()
}

// show formats a median and its confidence interval, or says it is missing.
func show(format func(float64) string, v float64, ci string, ok bool) string {
	switch {
	case !ok:
		return "missing"
	case ci == "" || ci == "∞" || ci == "0%":
		return format(v)
	}
	return format(v) + " ± " + ci
}

// withUnit formats a median in the unit benchstat gives it (a time per
// anything, ns/fault, reaches it as sec/fault).
func withUnit(unit string, v float64) string {
	switch per, isTime := strings.CutPrefix(unit, "sec/"); {
	case isTime:
		return seconds(v) + "/" + per
	case unit == "B/s":
		return number(v/1e6) + " MB/s"
	case unit == "B/op", unit == "allocs/op", unit == "bets/s", unit == "bets", unit == "agencies":
		return thousands(v) + " " + unit
	}
	return number(v) + " " + unit
}

// seconds formats a duration given in seconds: "7.91 µs", "147.6 ms", "9.35 s".
func seconds(s float64) string {
	switch {
	case s < 1e-6:
		return number(s*1e9) + " ns"
	case s < 1e-3:
		return number(s*1e6) + " µs"
	case s < 1:
		return number(s*1e3) + " ms"
	}
	return number(s) + " s"
}

func millis(ms float64) string { return seconds(ms / 1000) }

// number formats v with three or four significant digits, or whole with
// thousands separators when it is whole or from 1,000 up.
func number(v float64) string {
	switch {
	case v >= 1000 || v == math.Trunc(v):
		return thousands(v)
	case v >= 100:
		return strconv.FormatFloat(v, 'f', 1, 64)
	}
	return strconv.FormatFloat(v, 'f', 2, 64)
}

// thousands rounds v and formats it with comma separators: 1234567.4 → "1,234,567".
func thousands(v float64) string {
	s := strconv.FormatInt(int64(v+0.5), 10)
	for i := len(s) - 3; i > 0; i -= 3 {
		s = s[:i] + "," + s[i:]
	}
	return s
}

// ---------------------------------------------------------------- the baseline

// baselineSuffix ends the name of a run of the baseline's binaries:
// "Scale/tls=on/build=baseline" is "Scale/tls=on" with them.
const baselineSuffix = "/build=baseline"

func (r *results) hasBaseline() bool {
	for _, name := range r.names {
		if strings.HasSuffix(name, baselineSuffix) {
			return true
		}
	}
	return false
}

// A row of the comparison with the baseline: a figure of bench+"/tls=on" and
// "/tls=off", the tree's, and of the same names+baselineSuffix, the baseline's.
type versus struct {
	what, bench string
	format      func(float64) string
	value       func(r *results, name string) (float64, string, bool) // a median and its CI
}

// median is a versus value: unit's median.
func median(unit string) func(*results, string) (float64, string, bool) {
	return func(r *results, name string) (float64, string, bool) {
		s, ok := r.medians[name][unit]
		return s.median, s.ci, ok
	}
}

// cpuPerBet is the CPU the central and the agencies used together per bet; a
// ratio of medians, without a CI.
func cpuPerBet(r *results, name string) (float64, string, bool) {
	cpu, ok := r.cpuUsed(name)
	n, okN := r.medians[name]["bets"]
	return cpu / n.median, "", ok && okN && n.median > 0
}

func versusFigures(r *results) []versus {
	var vs []versus
	for _, d := range []struct{ bench, what string }{{"Official", "official"}, {"Scale", "scale"}} {
		at := d.what + " (" + r.size(d.bench) + "): "
		vs = append(vs,
			versus{at + "end to end", d.bench, seconds, median("sec/op")},
			versus{at + "ingest", d.bench, func(v float64) string { return thousands(v) + " bets/s" }, median("bets/s")},
			versus{at + "CPU of the central", d.bench, seconds, median("central-cpu-s")},
			versus{at + "CPU of the agencies, together", d.bench, seconds, median("agencies-cpu-s")},
			versus{at + "CPU per bet, central and agencies", d.bench, seconds, cpuPerBet},
			versus{at + "page faults of an agency process (mean)", d.bench, thousands, median("agency-faults")},
			versus{at + "context switches of an agency process (mean)", d.bench, thousands, median("agency-switches")},
			versus{at + "restart recovery", d.bench, millis, median("recover-ms")},
			versus{at + "peak RSS of the central", d.bench, func(v float64) string { return number(v) + " MiB" }, median("central-MiB")},
		)
	}
	return vs
}

// baselineCost is 1 − the tree's ingest with TLS at scale ÷ the baseline's:
// what the tree's changes cost (negative: what they gained).
func (r *results) baselineCost() (float64, bool) {
	tree, ok := r.medians["Scale/tls=on"]["bets/s"]
	base, okB := r.medians["Scale/tls=on"+baselineSuffix]["bets/s"]
	return 1 - tree.median/base.median, ok && okB && base.median > 0
}

func renderBaseline(sb *strings.Builder, r *results, revision string) {
	rev := "a revision the run did not name"
	if revision != "" {
		rev = "`" + revision + "`"
	}
	fmt.Fprintf(sb, "\n## Against the baseline\n\nThe baseline is %s: its server and client, built from that revision as the benchmarks build the tree's, "+
		"ran on the same datasets in the same rounds as the tree's, each run just before the tree's of the same kind. "+
		"A ratio is one of two medians of this run: under 1, the tree takes less time, CPU or memory; over 1 in ingest, it is faster. "+
		"A negative cost is a gain.\n\n", rev)
	sb.WriteString("| figure | baseline, TLS on | tree, TLS on | tree ÷ baseline | baseline, plaintext | tree, plaintext | tree ÷ baseline |\n" +
		"|---|---|---|---|---|---|---|\n")
	for _, v := range versusFigures(r) {
		fmt.Fprintf(sb, "| %s |", v.what)
		for _, tls := range []string{"on", "off"} {
			name := v.bench + "/tls=" + tls
			tree, treeCI, ok := v.value(r, name)
			base, baseCI, okB := v.value(r, name+baselineSuffix)
			ratio := "missing"
			if ok && okB && base != 0 {
				ratio = fmt.Sprintf("%.2f×", tree/base)
			}
			fmt.Fprintf(sb, " %s | %s | %s |", show(v.format, base, baseCI, okB), show(v.format, tree, treeCI, ok), ratio)
		}
		sb.WriteString("\n")
	}
	cost, ok := r.baselineCost()
	fmt.Fprintf(sb, "| scale ingest with TLS: what the tree costs against the baseline (1 − tree ÷ baseline bets/s) | — | — | %s | — | — | — |\n",
		show(func(v float64) string { return fmt.Sprintf("%.1f%%", 100*v) }, cost, "", ok))
}
