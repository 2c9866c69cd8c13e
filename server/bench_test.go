package main

// Benchmarks of the binaries end to end, and of the floor they are measured
// against (bench_floor_test.go). They run only with -bench; `make bench` runs
// them in rounds and summarises them with benchstat into BENCHMARKS.md:
//
//	go test -run '^$' -bench '^Benchmark(Official|Scale|ScaleSmall)$' -benchtime 1x .
//
// BenchmarkOfficial uses the official dataset (.data/dataset.zip, 5 agencies),
// after one untimed run of each kind; BenchmarkScale a generated dataset of
// BENCH_SCALE_AGENCIES agencies (100) of BENCH_SCALE_BETS bets each (100,000),
// seed 1; BenchmarkScaleSmall the same with a tenth of the bets. Each runs
// three sub-benchmarks in this order, one op being one whole
// run on fresh files: floor, tls=off and tls=on. In the last two the central
// (SERVER_PORT=0) is already listening on a fresh bets file when one agency
// process per file is started, in a loop, in plaintext or with mutual TLS.
// Every agency must exit 0 having printed the winners its file holds, and the
// central must log every bet as stored and drawn, and exit 0 on SIGTERM.
//
// With BENCH_BASELINE_BIN, a directory holding an older revision's server and
// client (make bench BASELINE=REV builds them; BENCH_BASELINE names the
// revision), each of tls=off and tls=on is preceded by the same run of those,
// tls=off/build=baseline and tls=on/build=baseline: a slow spell of the
// machine hits both builds alike, and the report compares them. A build's
// central only ever serves its own agencies: the protocols may differ.
//
//	ns/op            agencies started → the last one exited
//	bets/s           ingest: bets ÷ (agencies started → the central's last
//	                 `apuesta_recibida | result: success`, logged once its batch is fsynced)
//	draw-ms          that line → the last `envio_ganadores` (the last FINISH, the draw, every INFORM)
//	sorteo-ms        that line → the `sorteo` line
//	central-MiB      peak RSS (VmHWM) of the central
//	agency-MiB       peak RSS of the largest agency
//	recover-ms       a central started again on the run's bets file: its start →
//	                 `recuperacion` (every row read and checked)
//	recover-MiB      that central's peak RSS by then
//	central-cpu-s    the central's CPU, user and system
//	agencies-cpu-s   the agencies' CPU, together
//	agency-faults    page faults an agency process took, on average
//	agency-switches  context switches of an agency process, on average
//
// The floor reports the last four too, measured the same way: its receiver's
// CPU as the central's, its senders' as the agencies'.
//
// Lines are timed as this process reads them (logtest.Line.At): the logs' own
// timestamps have one-second resolution. Every sub-benchmark also reports its
// dataset (bets, agencies). The datasets and the run directories live under
// BENCH_DIR (../.data/bench), on the repository's file system: on a tmpfs an
// fsync would cost nothing.

import (
	"cmp"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"lotterycentral.example/lottery"
	"lotterycentral.example/lottery/logfmt"
	"lotterycentral.example/protocol/pki"
	"lotterycentral.example/server/internal/logtest"
	"lotterycentral.example/server/internal/vocab"
)

func BenchmarkOfficial(b *testing.B) {
	st, err := os.Stat(officialDataset)
	require.NoError(b, err)
	ds := prepareDataset(b, "official", fmt.Sprintf("dataset.zip, %d bytes", st.Size()), 5, func(dir string) error {
		_, err := lottery.ExtractDataset(officialDataset, dir)
		return err
	})
	benchDataset(b, ds, true)
}

func BenchmarkScale(b *testing.B) {
	benchScale(b, envInt(b, "BENCH_SCALE_BETS", 100_000))
}

// BenchmarkScaleSmall is the scale run with a tenth of the bets, to show
// that the central's memory does not grow with them.
func BenchmarkScaleSmall(b *testing.B) {
	benchScale(b, max(1, envInt(b, "BENCH_SCALE_BETS", 100_000)/10))
}

func benchScale(b *testing.B, bets int) {
	agencies := envInt(b, "BENCH_SCALE_AGENCIES", 100)
	name := fmt.Sprintf("scale-%dx%d-seed1", agencies, bets)
	ds := prepareDataset(b, name, name, agencies, func(dir string) error {
		_, err := lottery.GenerateAgencyFiles(dir, agencies, bets, 1)
		return err
	})
	benchDataset(b, ds, false)
}

func benchDataset(b *testing.B, ds *dataset, warmUp bool) {
	certs := b.TempDir()
	_, err := pki.WriteDir(certs, ds.Agencies, nil, false)
	require.NoError(b, err)
	tree, err := binaries()
	require.NoError(b, err)
	baseline := baselineBuild(b)
	type kind struct {
		name  string
		bin   build
		certs string
	}
	var kinds []kind
	for _, tls := range []struct{ name, certs string }{{"tls=off", ""}, {"tls=on", certs}} {
		if baseline != nil {
			kinds = append(kinds, kind{tls.name + "/build=baseline", *baseline, tls.certs})
		}
		kinds = append(kinds, kind{tls.name, build{"the tree's", tree}, tls.certs})
	}
	if warmUp {
		runFloor(b, ds)
		for _, k := range kinds {
			runE2E(b, ds, k.bin, k.certs)
		}
	}
	b.Run("floor", func(b *testing.B) { measure(b, ds, func() map[string]float64 { return runFloor(b, ds) }) })
	for _, k := range kinds {
		b.Run(k.name, func(b *testing.B) {
			measure(b, ds, func() map[string]float64 { return runE2E(b, ds, k.bin, k.certs) })
		})
	}
}

// build is a directory of server and client binaries that runE2E runs.
type build struct {
	name string // for failure messages
	dir  string
}

// baselineBuild is the baseline's build (BENCH_BASELINE_BIN), nil without one.
func baselineBuild(b *testing.B) *build {
	dir := os.Getenv("BENCH_BASELINE_BIN")
	if dir == "" {
		return nil
	}
	for _, name := range []string{"server", "client"} {
		if _, err := os.Stat(filepath.Join(dir, name)); err != nil {
			b.Fatalf("BENCH_BASELINE_BIN=%s: no %s binary: %v (make bench BASELINE=REV builds them)", dir, name, err)
		}
	}
	return &build{"the baseline's (" + cmp.Or(os.Getenv("BENCH_BASELINE"), dir) + ")", dir}
}

// measure runs run b.N times and reports the mean of each of its figures.
func measure(b *testing.B, ds *dataset, run func() map[string]float64) {
	sums := map[string]float64{}
	for range b.N {
		for unit, v := range run() {
			sums[unit] += v
		}
	}
	for unit, v := range sums {
		b.ReportMetric(v/float64(b.N), unit)
	}
	b.ReportMetric(float64(ds.Bets), "bets")
	b.ReportMetric(float64(ds.Agencies), "agencies")
}

var drawLine = regexp.MustCompile(linePattern(vocab.Sorteo.Line(logfmt.Success, vocab.Apuestas.Str(pat(`(\d+)`)))))

var informLine = vocab.EnvioGanadores.Line(logfmt.Success)

// runE2E is one run of bin's binaries over ds, with mutual TLS when certs is
// a directory of certificates; it returns the run's figures.
func runE2E(b *testing.B, ds *dataset, bin build, certs string) map[string]float64 {
	b.StopTimer()
	dir := runDir(b)
	defer os.RemoveAll(dir)
	n := ds.Agencies
	// The agencies all dial from 127.0.0.1: let as many be unidentified at once
	// from there as if each had its own host.
	env := append(goRuntimeEnv(), "SERVER_MAX_UNIDENTIFIED_PER_SOURCE="+strconv.Itoa(max(32, n)),
		"SERVER_MAX_UNIDENTIFIED="+strconv.Itoa(max(256, n)))
	if certs != "" {
		env = append(env, "SERVER_TLS_CERT="+filepath.Join(certs, pki.CentralFile),
			"SERVER_TLS_KEY="+filepath.Join(certs, pki.CentralKeyFile),
			"SERVER_TLS_CLIENT_CA="+filepath.Join(certs, pki.CAFile))
	}
	srv, port := startServerIn(b, bin.dir, n, filepath.Join(dir, "bets.csv"), env...)

	agencies := make([]*proc, n)
	peaks := make([]<-chan int64, n)
	b.StartTimer()
	t0 := time.Now()
	for k := range agencies {
		id := k + 1
		env := append(goRuntimeEnv(), "CLI_ID="+strconv.Itoa(id),
			fmt.Sprintf("CLI_SERVER_ADDRESS=127.0.0.1:%d", port), "CLI_DATA_PATH="+ds.file(id))
		if certs != "" {
			env = append(env, "CLI_TLS_CERT="+filepath.Join(certs, pki.AgencyFile(id)),
				"CLI_TLS_KEY="+filepath.Join(certs, pki.AgencyKeyFile(id)),
				"CLI_TLS_CA="+filepath.Join(certs, pki.CAFile))
		}
		agencies[k] = startProcIn(b, bin.dir, "client", env...)
		peaks[k] = peakRSS(agencies[k])
	}
	for k, a := range agencies {
		<-a.done // unbounded here (go test -timeout bounds it): a scale run may be long
		if code := a.wait(b); code != 0 {
			b.Fatalf("%s agency %d exited %d:\n%s", bin.name, k+1, code, a.output())
		}
	}
	wall := time.Since(t0)
	b.StopTimer()

	var agencyKiB int64
	var agencyUse procUsage
	for k, a := range agencies {
		agencyKiB = max(agencyKiB, <-peaks[k])
		agencyUse = agencyUse.plus(usageOf(a.cmd.ProcessState))
		require.Equal(b, strconv.Itoa(ds.Winners[k]), a.await(b, winnersLine)[1], "winners of %s agency %d", bin.name, k+1)
	}
	srv.out.AwaitT(b, n, informLine) // an agency may exit before the central logs its answer
	centralKiB := vmHWM(srv.cmd.Process.Pid)
	require.NoError(b, srv.cmd.Process.Signal(syscall.SIGTERM))
	if code := srv.wait(b); code != 0 {
		b.Fatalf("%s central exited %d after SIGTERM:\n%s", bin.name, code, srv.output())
	}

	recoverMS, recoverKiB := restart(b, bin, n, filepath.Join(dir, "bets.csv"), env)

	stored, drawn := 0, 0
	var lastStored, drawAt, lastInform time.Time
	for _, l := range srv.out.Lines() {
		if c := ackedIn(l.Text); c > 0 {
			stored, lastStored = stored+c, l.At
		} else if m := drawLine.FindStringSubmatch(l.Text); m != nil {
			drawn, _ = strconv.Atoi(m[1])
			drawAt = l.At
		} else if strings.Contains(l.Text, informLine) {
			lastInform = l.At
		}
	}
	require.Equal(b, ds.Bets, stored, "bets %s central logged as stored", bin.name)
	require.Equal(b, ds.Bets, drawn, "bets %s central's draw scanned", bin.name)
	figures := map[string]float64{
		"ns/op":       float64(wall.Nanoseconds()),
		"bets/s":      float64(ds.Bets) / lastStored.Sub(t0).Seconds(),
		"draw-ms":     ms(lastInform.Sub(lastStored)),
		"sorteo-ms":   ms(drawAt.Sub(lastStored)),
		"central-MiB": float64(centralKiB) / 1024,
		"agency-MiB":  float64(agencyKiB) / 1024,
		"recover-ms":  recoverMS,
		"recover-MiB": float64(recoverKiB) / 1024,
		// CPU, user and system: the machine's 2 cores bound what a run can do.
		"central-cpu-s": srv.cpu().Seconds(),
	}
	agencyUse.perProcess(figures, n)
	return figures
}

var recoveredLine = vocab.Recuperacion.Line(logfmt.Success)

// restart starts bin's central on a finished round's bets file and returns
// how long it took from its start to having read and checked every row
// (recuperacion), in ms, and its peak RSS then; it stops it with SIGTERM.
func restart(b *testing.B, bin build, agencies int, store string, env []string) (float64, int64) {
	began := time.Now()
	srv, _ := startServerIn(b, bin.dir, agencies, store, env...)
	srv.out.AwaitT(b, 1, recoveredLine)
	kib := vmHWM(srv.cmd.Process.Pid)
	require.NoError(b, srv.cmd.Process.Signal(syscall.SIGTERM))
	if code := srv.wait(b); code != 0 {
		b.Fatalf("%s restarted central exited %d after SIGTERM:\n%s", bin.name, code, srv.output())
	}
	for _, l := range srv.out.Lines() {
		if strings.Contains(l.Text, recoveredLine) {
			return ms(l.At.Sub(began)), kib
		}
	}
	b.Fatalf("no %q line:\n%s", recoveredLine, srv.output())
	return 0, 0
}

// goRuntimeEnv passes the Go runtime's knobs given to the benchmark on to the
// processes it starts, which otherwise get only the variables named for them.
func goRuntimeEnv() []string {
	var env []string
	for _, k := range []string{"GOGC", "GOMEMLIMIT", "GOMAXPROCS", "GODEBUG"} {
		if v, ok := os.LookupEnv(k); ok {
			env = append(env, k+"="+v)
		}
	}
	return env
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

// ---------------------------------------------------------------- peak RSS

// vmHWM is the peak resident set size of process pid in KiB: VmHWM in
// /proc/pid/status, the kernel's high-water mark of the process's own memory
// (0 once it exited). Not ru_maxrss from wait4: Go starts a child sharing the
// parent's memory until exec, so the child's ru_maxrss counts the parent's.
func vmHWM(pid int) int64 {
	data, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/status")
	if err != nil {
		return 0
	}
	for line := range strings.Lines(string(data)) {
		if rest, ok := strings.CutPrefix(line, "VmHWM:"); ok {
			kib, _ := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(rest), " kB"), 10, 64)
			return kib
		}
	}
	return 0
}

// peakRSS reads p's VmHWM, which only grows, at each line p prints, the last
// ones just before it exits; once p's output ended it sends the highest read.
func peakRSS(p *proc) <-chan int64 {
	out := make(chan int64, 1)
	go func() {
		var peak int64
		_, _ = p.out.Until(context.Background(), 0, func(logtest.Line) bool {
			peak = max(peak, vmHWM(p.cmd.Process.Pid))
			return false
		})
		out <- peak
	}()
	return out
}

// ---------------------------------------------------------------- datasets

// dataset is a directory of agency files (agency-1.csv …) and what they hold,
// cached in dataset.json beside them.
type dataset struct {
	Source   string `json:"source"`
	Agencies int    `json:"agencies"`
	Bets     int    `json:"bets"`
	Bytes    int64  `json:"bytes"`
	Winners  []int  `json:"winners"` // by agency
	dir      string
}

func (ds *dataset) file(id int) string { return filepath.Join(ds.dir, lottery.AgencyFileName(id)) }

// filesBytes is the size of ds's agency files together, -1 if one is missing.
func (ds *dataset) filesBytes() int64 {
	var total int64
	for id := 1; id <= ds.Agencies; id++ {
		st, err := os.Stat(ds.file(id))
		if err != nil {
			return -1
		}
		total += st.Size()
	}
	return total
}

// prepareDataset returns the dataset in BENCH_DIR/name: the one there when its
// dataset.json names source and its files have their recorded size, else one
// made anew by create, its bets and winners counted, and flushed to disk.
func prepareDataset(b *testing.B, name, source string, agencies int, create func(dir string) error) *dataset {
	dir := filepath.Join(benchDir(b), name)
	meta := filepath.Join(dir, "dataset.json")
	ds := &dataset{dir: dir}
	if data, err := os.ReadFile(meta); err == nil && json.Unmarshal(data, ds) == nil &&
		ds.Source == source && ds.Agencies == agencies && len(ds.Winners) == agencies && ds.filesBytes() == ds.Bytes {
		return ds
	}
	*ds = dataset{Source: source, Agencies: agencies, Winners: make([]int, agencies), dir: dir}
	b.Logf("preparing %s", dir)
	require.NoError(b, os.RemoveAll(dir))
	require.NoError(b, create(dir))
	for id := 1; id <= agencies; id++ {
		for bet, err := range lottery.ReadAgencyFile(ds.file(id), id) {
			require.NoError(b, err)
			ds.Bets++
			if lottery.HasWon(bet) {
				ds.Winners[id-1]++
			}
		}
	}
	ds.Bytes = ds.filesBytes()
	data, err := json.Marshal(ds)
	require.NoError(b, err)
	require.NoError(b, os.WriteFile(meta, data, 0o644))
	syscall.Sync() // so that writing the files back does not slow the first run's fsyncs
	return ds
}

// benchDir is BENCH_DIR, by default the repository's .data/bench (git-ignored).
func benchDir(b *testing.B) string {
	dir, err := filepath.Abs(cmp.Or(os.Getenv("BENCH_DIR"), filepath.Join("..", ".data", "bench")))
	require.NoError(b, err)
	require.NoError(b, os.MkdirAll(dir, 0o755))
	return dir
}

// runDir is a fresh directory for one run's files; the caller removes it.
func runDir(b *testing.B) string {
	dir, err := os.MkdirTemp(benchDir(b), "run-")
	require.NoError(b, err)
	return dir
}
