// Command bench measures the lottery central and its agencies and prints one
// markdown table, every figure the median of several runs taken in the same
// invocation; a full run also writes the table to BENCHMARKS.md with the
// machine's CPU, core count and Go version. A -quick run (a smoke test) only
// prints: it never overwrites BENCHMARKS.md unless -out names a file. `make
// bench` runs it after `make build`:
//
//	go run ./server/cmd/bench -repo . [-quick] [-runs 5] [-scale-runs 5]
//
// What it measures:
//
//  1. the Go micro-benchmarks of protocol/ and lottery/ (go test -bench -benchmem);
//  2. the official dataset end to end (.data/dataset.zip, committed in the
//     repository): bin/server already listening, five bin/client processes
//     started together, until the last one exits 0;
//  3. scale: a generated dataset (10,000,000 bets over 100 agencies): ingest
//     rate, draw latency, peak RSS of the central and of an agency;
//  4. the floor: the same files copied over loopback TCP into one fsynced file
//     (see floor.go), timed the same way, and ours/floor.
//
// `bench floor-send` is the floor's sender process (floor.go).
package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"lotterycentral.example/lottery"
)

func main() {
	if len(os.Args) > 1 && os.Args[1] == "floor-send" {
		os.Exit(floorSend(os.Args[2:]))
	}
	os.Exit(run(os.Args[1:]))
}

// bench is what every measurement needs.
type bench struct {
	repo      string
	serverBin string
	clientBin string
	self      string // this binary, for floor-send
	work      string // fresh run directories are made (and removed) here
	rss       *rssPoller
}

type options struct {
	repo, dir, zip, out    string
	runs, scaleRuns        int
	scaleAgencies          int
	scaleBets              int // per agency
	seed                   uint64
	quick                  bool
	micro, official, scale bool
	benchtime              string
	timeout, scaleTimeout  time.Duration
}

func run(args []string) int {
	var o options
	fs := flag.NewFlagSet("bench", flag.ContinueOnError)
	fs.StringVar(&o.repo, "repo", ".", "repository root: bin/server, bin/client, protocol/, lottery/")
	fs.StringVar(&o.dir, "dir", "", "datasets and run directories (default <repo>/.data/bench, git-ignored)")
	fs.StringVar(&o.zip, "dataset", "", "official dataset (default <repo>/.data/dataset.zip)")
	fs.StringVar(&o.out, "out", "", "markdown report; \"-\" writes none (default <repo>/BENCHMARKS.md, none with -quick)")
	fs.IntVar(&o.runs, "runs", 5, "runs of each micro-benchmark and of the official dataset")
	fs.IntVar(&o.scaleRuns, "scale-runs", 5, "runs of the scale dataset")
	fs.IntVar(&o.scaleAgencies, "scale-agencies", 100, "agencies of the scale dataset")
	fs.IntVar(&o.scaleBets, "scale-bets", 100_000, "bets per agency of the scale dataset")
	fs.Uint64Var(&o.seed, "seed", 1, "seed of the scale dataset")
	fs.BoolVar(&o.quick, "quick", os.Getenv("BENCH_QUICK") == "1",
		"smoke test: 1 scale run of 1,000,000 bets, short micro-benchmarks (also BENCH_QUICK=1)")
	fs.BoolVar(&o.micro, "micro", true, "run the micro-benchmarks")
	fs.BoolVar(&o.official, "official", true, "run the official dataset and its floor")
	fs.BoolVar(&o.scale, "scale", true, "run the scale dataset and its floor")
	fs.StringVar(&o.benchtime, "benchtime", "", "go test -benchtime (default go test's; 200ms with -quick)")
	fs.DurationVar(&o.timeout, "timeout", time.Minute, "limit of one official run")
	fs.DurationVar(&o.scaleTimeout, "scale-timeout", 5*time.Minute, "limit of one scale run")
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		return 2
	}
	if fs.NArg() > 0 || o.runs < 1 || o.scaleRuns < 1 || o.scaleAgencies < 1 || o.scaleBets < 1 {
		fmt.Fprintln(os.Stderr, "bench: bad arguments")
		fs.Usage()
		return 2
	}
	if o.quick {
		o.scaleRuns = 1
		o.scaleBets = max(1, 1_000_000/o.scaleAgencies)
		if o.benchtime == "" {
			o.benchtime = "200ms"
		}
	}

	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	if err := measure(ctx, o); err != nil {
		fmt.Fprintln(os.Stderr, "bench:", err)
		return 1
	}
	return 0
}

func measure(ctx context.Context, o options) error {
	repo, err := filepath.Abs(o.repo)
	if err != nil {
		return err
	}
	if o.dir == "" {
		o.dir = filepath.Join(repo, ".data", "bench")
	}
	if o.zip == "" {
		o.zip = filepath.Join(repo, ".data", "dataset.zip")
	}
	o.out = reportPath(o, repo)
	b := &bench{repo: repo, serverBin: filepath.Join(repo, "bin", "server"), clientBin: filepath.Join(repo, "bin", "client")}
	for _, bin := range []string{b.serverBin, b.clientBin} {
		if err := checkBinary(bin); err != nil {
			return err
		}
	}
	if b.self, err = os.Executable(); err != nil {
		return err
	}
	b.work = filepath.Join(o.dir, "runs")
	if err := os.MkdirAll(b.work, 0o755); err != nil {
		return err
	}
	b.rss = newRSSPoller()
	defer b.rss.close()

	var rows []row
	if o.micro {
		r, err := runMicro(ctx, repo, o.runs, o.benchtime)
		if err != nil {
			return err
		}
		rows = append(rows, r...)
	}
	if o.official {
		r, err := b.official(ctx, o)
		if err != nil {
			return err
		}
		rows = append(rows, r...)
	}
	if o.scale {
		r, err := b.scaleRuns(ctx, o)
		if err != nil {
			return err
		}
		rows = append(rows, r...)
	}

	table := renderTable(rows)
	fmt.Print("\n" + table)
	if o.out == "-" {
		if o.quick {
			fmt.Fprintln(os.Stderr, "bench: quick run, BENCHMARKS.md left as it is (a full run rewrites it)")
		}
		return nil
	}
	report := renderReport(ctx, o, table)
	if err := os.WriteFile(o.out, []byte(report), 0o644); err != nil {
		return err
	}
	fmt.Fprintf(os.Stderr, "bench: wrote %s\n", o.out)
	return nil
}

// reportPath is where the markdown report goes, "-" for nowhere: -out when given,
// else BENCHMARKS.md for a full run and nowhere for a -quick one (a smoke test's
// figures must not replace the report's).
func reportPath(o options, repo string) string {
	switch {
	case o.out != "":
		return o.out
	case o.quick:
		return "-"
	}
	return filepath.Join(repo, "BENCHMARKS.md")
}

// ---------------------------------------------------------------- datasets

// dataset is a directory of agency-1.csv … agency-N.csv and what they hold,
// cached in dataset.json beside them.
type dataset struct {
	Source   string  `json:"source"`
	Agencies int     `json:"agencies"`
	Bets     []int   `json:"bets"`
	Winners  []int   `json:"winners"`
	Sizes    []int64 `json:"sizes"`
	Total    int     `json:"total"`
	Bytes    int64   `json:"bytes"`
	dir      string
}

// prepareDataset reuses dir when its dataset.json names source and every file
// still has its recorded size; otherwise it recreates dir with create and counts
// each file's bets and winners.
func prepareDataset(dir, source string, agencies int, create func() error) (*dataset, error) {
	meta := filepath.Join(dir, "dataset.json")
	if data, err := os.ReadFile(meta); err == nil {
		var ds dataset
		if json.Unmarshal(data, &ds) == nil && ds.Source == source && ds.Agencies == agencies {
			if sizes, err := fileSizes(dir, agencies); err == nil && slices.Equal(sizes, ds.Sizes) {
				ds.dir = dir
				fmt.Fprintf(os.Stderr, "bench: reusing %s (%s bets)\n", dir, thousands(int64(ds.Total)))
				return &ds, nil
			}
		}
	}
	fmt.Fprintf(os.Stderr, "bench: preparing %s (%s)\n", dir, source)
	if err := os.RemoveAll(dir); err != nil {
		return nil, err
	}
	if err := create(); err != nil {
		return nil, err
	}
	ds := &dataset{Source: source, Agencies: agencies, Bets: make([]int, agencies), Winners: make([]int, agencies), dir: dir}
	var err error
	if ds.Sizes, err = fileSizes(dir, agencies); err != nil {
		return nil, err
	}
	// Count bets and winners, a few files at a time.
	errs := make([]error, agencies)
	sem := make(chan struct{}, runtime.NumCPU())
	var wg sync.WaitGroup
	for k := range agencies {
		wg.Go(func() {
			sem <- struct{}{}
			defer func() { <-sem }()
			for bet, err := range lottery.ReadAgencyFile(filepath.Join(dir, lottery.AgencyFileName(k+1)), k+1) {
				if err != nil {
					errs[k] = err
					return
				}
				ds.Bets[k]++
				if lottery.HasWon(bet) {
					ds.Winners[k]++
				}
			}
		})
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	for k := range agencies {
		ds.Total += ds.Bets[k]
		ds.Bytes += ds.Sizes[k]
	}
	data, err := json.MarshalIndent(ds, "", "  ")
	if err != nil {
		return nil, err
	}
	return ds, os.WriteFile(meta, data, 0o644)
}

// ---------------------------------------------------------------- runs

func (b *bench) official(ctx context.Context, o options) ([]row, error) {
	st, err := os.Stat(o.zip)
	if err != nil {
		return nil, fmt.Errorf("official dataset: %w", err)
	}
	dir := filepath.Join(o.dir, "official")
	source := fmt.Sprintf("official %s, %d bytes", filepath.Base(o.zip), st.Size())
	ds, err := prepareDataset(dir, source, 5, func() error {
		_, err := lottery.ExtractDataset(o.zip, dir)
		return err
	})
	if err != nil {
		return nil, err
	}

	// One untimed run of each warms the page cache and the binaries.
	if _, err := b.runE2E(ctx, ds, o.timeout); err != nil {
		return nil, fmt.Errorf("official warm-up: %w", err)
	}
	if _, err := b.runFloor(ctx, ds, o.timeout); err != nil {
		return nil, fmt.Errorf("official floor warm-up: %w", err)
	}
	var ours, floor []time.Duration
	for i := range o.runs {
		e, err := b.runE2E(ctx, ds, o.timeout)
		if err != nil {
			return nil, fmt.Errorf("official run %d: %w", i+1, err)
		}
		f, err := b.runFloor(ctx, ds, o.timeout)
		if err != nil {
			return nil, fmt.Errorf("official floor %d: %w", i+1, err)
		}
		ours, floor = append(ours, e.wall), append(floor, f)
		fmt.Fprintf(os.Stderr, "bench: official %d/%d: ours %s, floor %s\n", i+1, o.runs, fmtDur(e.wall), fmtDur(f))
	}
	mo, mf := median(ours), median(floor)
	ratio := float64(mo) / float64(mf)
	n := strconv.Itoa(o.runs)
	bets := thousands(int64(ds.Total))
	return []row{
		{"official dataset end to end (" + bets + " bets, 5 agencies)", fmtDur(mo), n, "≤ 150 ms", met(mo <= 150*time.Millisecond)},
		{"floor: the same files over loopback into one fsynced file", fmtDur(mf), n, "—", "—"},
		{"official end to end / floor", fmt.Sprintf("%.1f×", ratio), n, "≤ 4×", met(ratio <= 4)},
	}, nil
}

func (b *bench) scaleRuns(ctx context.Context, o options) ([]row, error) {
	dir := filepath.Join(o.dir, fmt.Sprintf("scale-%dx%d-seed%d", o.scaleAgencies, o.scaleBets, o.seed))
	source := fmt.Sprintf("generated agencies=%d bets=%d seed=%d", o.scaleAgencies, o.scaleBets, o.seed)
	ds, err := prepareDataset(dir, source, o.scaleAgencies, func() error {
		_, err := lottery.GenerateAgencyFiles(dir, o.scaleAgencies, o.scaleBets, o.seed)
		return err
	})
	if err != nil {
		return nil, err
	}
	var (
		wall, latency, scan, inform, floor []time.Duration
		ingest                             []float64
		srvRSS, cliRSS                     []int64
	)
	for i := range o.scaleRuns {
		e, err := b.runE2E(ctx, ds, o.scaleTimeout)
		if err != nil {
			return nil, fmt.Errorf("scale run %d: %w", i+1, err)
		}
		f, err := b.runFloor(ctx, ds, o.scaleTimeout)
		if err != nil {
			return nil, fmt.Errorf("scale floor %d: %w", i+1, err)
		}
		wall, latency = append(wall, e.wall), append(latency, e.drawLatency)
		scan, inform, floor = append(scan, e.drawScan), append(inform, e.inform), append(floor, f)
		ingest, srvRSS, cliRSS = append(ingest, e.ingest), append(srvRSS, e.serverRSS), append(cliRSS, e.clientRSS)
		fmt.Fprintf(os.Stderr, "bench: scale %d/%d: wall %s (floor %s), ingest %s bets/s, draw latency %s, RSS server %s client %s\n",
			i+1, o.scaleRuns, fmtDur(e.wall), fmtDur(f), thousands(int64(e.ingest)), fmtDur(e.drawLatency),
			fmtMiB(e.serverRSS), fmtMiB(e.clientRSS))
	}
	n := strconv.Itoa(o.scaleRuns)
	what := fmt.Sprintf("%s bets, %d agencies", thousands(int64(ds.Total)), ds.Agencies)
	mIngest, mLatency, mSrv, mCli := median(ingest), median(latency), median(srvRSS), median(cliRSS)
	mWall, mFloor := median(wall), median(floor)
	return []row{
		{"scale (" + what + "): ingest rate", thousands(int64(mIngest)) + " bets/s", n, "≥ 1,000,000 bets/s", met(mIngest >= 1_000_000)},
		{"scale: draw latency (last batch stored → last INFORM sent)", fmtDur(mLatency), n, "≤ 2 s", met(mLatency <= 2*time.Second)},
		{"scale: … of which the draw (last batch stored → sorteo)", fmtDur(median(scan)), n, "—", "—"},
		{"scale: … of which the answers (sorteo → last INFORM sent)", fmtDur(median(inform)), n, "—", "—"},
		{"scale: peak RSS of the central", fmtMiB(mSrv), n, "≤ 64 MiB", met(mSrv <= 64<<10)},
		{"scale: peak RSS of an agency (the largest)", fmtMiB(mCli), n, "≤ 32 MiB", met(mCli <= 32<<10)},
		{"scale: end to end (agencies started → last exited)", fmtDur(mWall), n, "—", "—"},
		{"scale: floor, timed the same way", fmtDur(mFloor), n, "—", "—"},
		{"scale: end to end / floor", fmt.Sprintf("%.1f×", float64(mWall)/float64(mFloor)), n, "—", "—"},
	}, nil
}

// ---------------------------------------------------------------- micro-benchmarks

type microBench struct {
	pkg, name, what string
	betsFrom        string // a benchmark whose bets/frame this one shares, if it reports none
}

var microBenches = []microBench{
	// Encode and decode run over the same full batch (protocol's fullBatch).
	{"protocol", "BenchmarkEncodeBatch", "encode a full batch", "BenchmarkDecodeBatch"},
	{"protocol", "BenchmarkDecodeBatch", "decode a full batch", ""},
	{"protocol", "BenchmarkBatchBuilder", "the agency packing bets into a frame", ""},
	{"lottery", "BenchmarkStoreBets", "store a batch of 150 bets (no fsync)", ""},
	{"lottery", "BenchmarkLoadBets", "LoadBets over a 100,000-bet file", ""},
}

// runMicro runs the micro-benchmarks count times each and returns one row per
// benchmark with the medians of its figures.
func runMicro(ctx context.Context, repo string, count int, benchtime string) ([]row, error) {
	byPkg := map[string][]string{}
	var pkgs []string
	for _, mb := range microBenches {
		if _, ok := byPkg[mb.pkg]; !ok {
			pkgs = append(pkgs, mb.pkg)
		}
		byPkg[mb.pkg] = append(byPkg[mb.pkg], mb.name)
	}
	results := map[string]map[string][]float64{} // benchmark → unit → values
	for _, pkg := range pkgs {
		args := []string{"test", "-run", "^$", "-bench", "^(" + strings.Join(byPkg[pkg], "|") + ")$",
			"-benchmem", "-count", strconv.Itoa(count)}
		if benchtime != "" {
			args = append(args, "-benchtime", benchtime)
		}
		args = append(args, ".")
		fmt.Fprintf(os.Stderr, "bench: (cd %s && go %s)\n", pkg, strings.Join(args, " "))
		cmd := exec.CommandContext(ctx, "go", args...)
		cmd.Dir = filepath.Join(repo, pkg)
		var out bytes.Buffer
		cmd.Stdout, cmd.Stderr = &out, &out
		if err := cmd.Run(); err != nil {
			return nil, fmt.Errorf("go test -bench in %s: %w\n%s", pkg, err, out.String())
		}
		parseBench(out.String(), results)
	}
	var rows []row
	for _, mb := range microBenches {
		r := results[mb.name]
		if len(r["bets/frame"]) == 0 && mb.betsFrom != "" && len(results[mb.betsFrom]["bets/frame"]) > 0 {
			perFrame := median(results[mb.betsFrom]["bets/frame"])
			for range r["ns/op"] {
				r["bets/frame"] = append(r["bets/frame"], perFrame)
			}
		}
		figure := fmt.Sprintf("micro: %s (%s)", mb.what, mb.name)
		if len(r["ns/op"]) == 0 {
			rows = append(rows, row{figure, "missing: the benchmark did not run", "0", "—", "—"})
			continue
		}
		parts := []string{
			fmtNs(median(r["ns/op"])),
			fmt.Sprintf("%s B/op", thousands(int64(median(r["B/op"])))),
			fmt.Sprintf("%s allocs/op", thousands(int64(median(r["allocs/op"])))),
		}
		switch {
		case len(r["bets/s"]) > 0:
			parts = append(parts, thousands(int64(median(r["bets/s"])))+" bets/s")
		case len(r["bets/frame"]) > 0:
			// bets per second through this step alone, run by run
			var rate []float64
			for i := range min(len(r["ns/op"]), len(r["bets/frame"])) {
				rate = append(rate, r["bets/frame"][i]*1e9/r["ns/op"][i])
			}
			parts = append(parts, thousands(int64(median(rate)))+" bets/s")
			parts = append(parts, fmt.Sprintf("%.0f bets/frame", median(r["bets/frame"])))
		}
		if mbs := r["MB/s"]; len(mbs) > 0 {
			parts = append(parts, fmt.Sprintf("%.0f MB/s", median(mbs)))
		}
		rows = append(rows, row{figure, strings.Join(parts, " · "), strconv.Itoa(len(r["ns/op"])), "—", "—"})
	}
	return rows, nil
}

// parseBench adds the figures of every "BenchmarkX-N  iters  v unit  v unit …" line.
func parseBench(out string, into map[string]map[string][]float64) {
	for line := range strings.Lines(out) {
		f := strings.Fields(line)
		if len(f) < 4 || !strings.HasPrefix(f[0], "Benchmark") {
			continue
		}
		if _, err := strconv.Atoi(f[1]); err != nil {
			continue
		}
		name := f[0]
		if i := strings.LastIndexByte(name, '-'); i > 0 {
			if _, err := strconv.Atoi(name[i+1:]); err == nil {
				name = name[:i]
			}
		}
		if into[name] == nil {
			into[name] = map[string][]float64{}
		}
		for i := 2; i+1 < len(f); i += 2 {
			v, err := strconv.ParseFloat(f[i], 64)
			if err != nil {
				break
			}
			into[name][f[i+1]] = append(into[name][f[i+1]], v)
		}
	}
}

// ---------------------------------------------------------------- the report

type row struct{ figure, median, runs, target, met string }

func met(ok bool) string {
	if ok {
		return "yes"
	}
	return "**no**"
}

func renderTable(rows []row) string {
	var sb strings.Builder
	sb.WriteString("| figure | median | runs | target | met |\n|---|---|---|---|---|\n")
	for _, r := range rows {
		fmt.Fprintf(&sb, "| %s | %s | %s | %s | %s |\n", r.figure, r.median, r.runs, r.target, r.met)
	}
	return sb.String()
}

func renderReport(ctx context.Context, o options, table string) string {
	var sb strings.Builder
	sb.WriteString("# Benchmarks\n\n")
	fmt.Fprintf(&sb, "Written by `make bench` (`go run ./server/cmd/bench`) on %s.\n\n", time.Now().Format("2006-01-02 15:04 MST"))
	if o.quick {
		sb.WriteString("**Quick run** (`-quick`): one scale run of a smaller dataset — a smoke test, not the issue's figures.\n\n")
	}
	fmt.Fprintf(&sb, "- CPU: %s\n", cpuModel())
	fmt.Fprintf(&sb, "- cores (`nproc`): %s\n", nproc(ctx))
	fmt.Fprintf(&sb, "- Go: %s\n", goVersion(ctx))
	if k, err := os.ReadFile("/proc/sys/kernel/osrelease"); err == nil {
		fmt.Fprintf(&sb, "- kernel: Linux %s\n", strings.TrimSpace(string(k)))
	}
	fmt.Fprintf(&sb, "- runs: %d of each micro-benchmark and of the official dataset, %d of the scale dataset (%d agencies × %s bets)\n\n",
		o.runs, o.scaleRuns, o.scaleAgencies, thousands(int64(o.scaleBets)))
	sb.WriteString(table)
	sb.WriteString(howMeasured)
	return sb.String()
}

const howMeasured = `
## How measured

Every figure is the median of the runs in its row, all taken in the same invocation.
Each end-to-end run uses a fresh bets file in a fresh directory (removed afterwards);
the agency files are prepared once under ` + "`.data/bench/`" + ` and reused, and the run
directories live there too, on the repository's file system (not a tmpfs). The official dataset
gets one untimed warm-up run (ours and floor) first; its timed runs alternate ours, floor,
ours, floor…, and so do the scale runs.

- **Micro-benchmarks**: ` + "`go test -run '^$' -bench … -benchmem -count <runs>`" + ` in ` + "`protocol/`" + ` and
  ` + "`lottery/`" + `; the medians of ns/op, B/op and allocs/op over the runs. bets/s is the benchmark's
  own figure (store, LoadBets) or bets per frame ÷ time per frame (encode, decode, packing).
  Storing a batch does not fsync: that cost is in the end-to-end figures.
- **End to end**: ` + "`bin/server`" + ` is started (` + "`SERVER_PORT=0 SERVER_HOST=127.0.0.1`" + `) and is
  already listening (its ` + "`escuchar`" + ` line was read) before the clock starts; then one
  ` + "`bin/client`" + ` per agency is started in a loop, and the time runs until the last client has
  exited 0. Each client must have printed ` + "`consulta_ganadores | result: success`" + ` with the
  number of winners its file holds, and the central must have logged exactly the files' bets
  as stored and scanned; then it gets SIGTERM and must exit 0.
- **Ingest rate**: the files' bets ÷ the time from starting the agencies to the moment the
  harness read the central's last ` + "`apuesta_recibida | result: success`" + ` line (logged once the
  batch is fsynced, just before its acknowledgement).
- **Draw latency**: from reading the last ` + "`apuesta_recibida | result: success`" + ` line to
  reading the last ` + "`envio_ganadores`" + ` line (logged after an agency's winners were written to
  its socket). It brackets the last FINISH (journal fsync), the draw (one pass over the bets
  file, run inside the last FINISH and logged as ` + "`sorteo`" + ` before that FINISH's own line) and
  every INFORM. Log timestamps have one-second resolution, so every line of the central's
  output is timestamped by the harness as it reads it from the pipe; the two rows below it
  split the span at the ` + "`sorteo`" + ` line.
- **Peak RSS**: VmHWM from ` + "`/proc/<pid>/status`" + `, the process's own high-water mark
  (polled every 50 ms while the process runs, and read once more just before the central
  gets SIGTERM). For the agencies, the largest of all of them in the run. Not ` + "`ru_maxrss`" + `
  from wait4: a child Go starts shares the parent's memory until exec, and its
  ` + "`ru_maxrss`" + ` then counts the harness's RSS (a ` + "`/bin/true`" + ` started by a process holding
  100 MiB reports 105 MiB).
- **Floor**: an in-harness receiver on 127.0.0.1 accepts one connection per agency and
  appends what each sends to ONE file (whole lines, under a mutex); when a stream ends it
  fsyncs the file and answers one byte. The senders are processes, as the agencies are (the
  harness binary run as ` + "`bench floor-send`" + `): each streams its agency file raw in 8 KiB writes,
  half-closes, and waits for the byte. Timed like the end-to-end runs, from starting the
  senders to the last one's exit; the copy must hold exactly the files' bytes. The floor
  does no parsing, validation, framing, per-batch acknowledgement or draw, and fsyncs once
  per agency where the central fsyncs per group of batches before acknowledging them.
  ours/floor is the ratio of the two medians.
`

// ---------------------------------------------------------------- helpers

type number interface {
	~int64 | ~float64
}

// median of xs (the mean of the two middle values when len is even).
func median[T number](xs []T) T {
	if len(xs) == 0 {
		return 0
	}
	s := slices.Clone(xs)
	slices.Sort(s)
	m := len(s) / 2
	if len(s)%2 == 1 {
		return s[m]
	}
	return (s[m-1] + s[m]) / 2
}

func fmtDur(d time.Duration) string {
	if d < time.Second {
		return fmt.Sprintf("%.1f ms", float64(d)/float64(time.Millisecond))
	}
	return fmt.Sprintf("%.2f s", d.Seconds())
}

func fmtNs(ns float64) string {
	switch {
	case ns >= 1e6:
		return fmt.Sprintf("%.2f ms/op", ns/1e6)
	case ns >= 1e4:
		return fmt.Sprintf("%.1f µs/op", ns/1e3)
	}
	return fmt.Sprintf("%.0f ns/op", ns)
}

func fmtMiB(kib int64) string { return fmt.Sprintf("%.1f MiB", float64(kib)/1024) }

// thousands formats n with comma separators: 1234567 → "1,234,567".
func thousands(n int64) string {
	s := strconv.FormatInt(n, 10)
	neg := strings.HasPrefix(s, "-")
	s = strings.TrimPrefix(s, "-")
	var sb strings.Builder
	for i, c := range s {
		if i > 0 && (len(s)-i)%3 == 0 {
			sb.WriteByte(',')
		}
		sb.WriteRune(c)
	}
	if neg {
		return "-" + sb.String()
	}
	return sb.String()
}

func cpuModel() string {
	data, err := os.ReadFile("/proc/cpuinfo")
	if err != nil {
		return runtime.GOARCH
	}
	for line := range strings.Lines(string(data)) {
		if k, v, ok := strings.Cut(line, ":"); ok && strings.TrimSpace(k) == "model name" {
			return strings.TrimSpace(v)
		}
	}
	return runtime.GOARCH
}

func nproc(ctx context.Context) string {
	if out, err := exec.CommandContext(ctx, "nproc").Output(); err == nil {
		return strings.TrimSpace(string(out))
	}
	return strconv.Itoa(runtime.NumCPU())
}

func goVersion(ctx context.Context) string {
	cmd := exec.CommandContext(ctx, "go", "version")
	cmd.Stderr = io.Discard
	if out, err := cmd.Output(); err == nil {
		return "`" + strings.TrimSpace(string(out)) + "`"
	}
	return "`" + runtime.Version() + "` (the harness's toolchain)"
}
