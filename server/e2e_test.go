package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"lotterycentral.example/lottery"
	"lotterycentral.example/lottery/logfmt"
	"lotterycentral.example/server/internal/logtest"
	"lotterycentral.example/server/internal/vocab"
)

// officialDataset is the course's dataset, committed in the repository (.data/dataset.zip):
// the tests that assert its winners (2, 3, 3, 2, 0) require it rather than skip.
const officialDataset = "../.data/dataset.zip"

// builtDir is the directory binaries built into, if it ran: removed at the end.
var builtDir atomic.Pointer[string]

// binaries builds the server and the client once per test run.
var binaries = sync.OnceValues(func() (string, error) {
	dir, err := os.MkdirTemp("", "lottery-e2e-bin")
	if err != nil {
		return "", err
	}
	builtDir.Store(&dir)
	for _, pkg := range []string{".", "../client"} {
		cmd := exec.Command("go", "build", "-o", dir, pkg)
		cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
		if out, err := cmd.CombinedOutput(); err != nil {
			return "", fmt.Errorf("build %s: %w\n%s", pkg, err, out)
		}
	}
	return dir, nil
})

// TestMain removes the binaries if a test built them; a run that needed none
// (go test -run of a unit test, BenchmarkMachine) builds none.
func TestMain(m *testing.M) {
	code := m.Run()
	if dir := builtDir.Load(); dir != nil {
		os.RemoveAll(*dir)
	}
	os.Exit(code)
}

// proc is a running binary whose output lines are recorded as they come.
type proc struct {
	cmd  *exec.Cmd
	out  *logtest.Recorder
	done chan struct{} // closed when its output is drained
}

// startProc runs the tree's binary name (built by binaries()).
func startProc(t testing.TB, name string, env ...string) *proc {
	t.Helper()
	dir, err := binaries()
	require.NoError(t, err)
	return startProcIn(t, dir, name, env...)
}

// startProcIn runs binary name from dir: another build's, such as the
// benchmarks' baseline.
func startProcIn(t testing.TB, dir, name string, env ...string) *proc {
	t.Helper()
	cmd := exec.Command(filepath.Join(dir, name))
	cmd.Env = env
	out, err := cmd.StdoutPipe()
	require.NoError(t, err)
	cmd.Stderr = cmd.Stdout
	p := &proc{cmd: cmd, out: logtest.New(), done: make(chan struct{})}
	require.NoError(t, cmd.Start())
	go func() {
		defer close(p.done)
		_ = p.out.ReadAll(out)
	}()
	t.Cleanup(func() {
		if cmd.ProcessState == nil {
			_ = cmd.Process.Kill()
			<-p.done
			_ = cmd.Wait()
		}
	})
	return p
}

// awaitUntil feeds met every line the process prints, in order and once each,
// until met returns true. It fails the test when the process exits or a long
// bound passes first; the bound only turns a hang into a failure, nothing
// waits on time.
func (p *proc) awaitUntil(t testing.TB, what string, met func(line string) bool) {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), logtest.DefaultBound)
	defer cancel()
	if _, err := p.out.Until(ctx, 0, func(l logtest.Line) bool { return met(l.Text) }); err != nil {
		t.Fatalf("%s: no %s: %v:\n%s", p.cmd.Path, what, err, p.output())
	}
}

// await returns the first line matching re, waiting for it to be printed.
func (p *proc) await(t testing.TB, re *regexp.Regexp) []string {
	t.Helper()
	var match []string
	p.awaitUntil(t, "line matching "+re.String(), func(line string) bool {
		match = re.FindStringSubmatch(line)
		return match != nil
	})
	return match
}

// wait waits for the process to exit and returns its exit code.
func (p *proc) wait(t testing.TB) int {
	t.Helper()
	code, _ := exitOf(t, p, time.Now())
	return code
}

// exitOf waits for p to exit (failing the test after a long bound) and
// returns its code and the time since start.
func exitOf(t testing.TB, p *proc, start time.Time) (int, time.Duration) {
	t.Helper()
	exited := make(chan error, 1)
	go func() {
		<-p.done
		exited <- p.cmd.Wait()
	}()
	select {
	case err := <-exited:
		took := time.Since(start)
		var ee *exec.ExitError
		if errors.As(err, &ee) {
			return ee.ExitCode(), took
		}
		require.NoError(t, err)
		return 0, took
	case <-time.After(logtest.DefaultBound):
		_ = p.cmd.Process.Kill()
		<-exited
		t.Fatalf("%s did not exit:\n%s", p.cmd.Path, p.output())
		return 0, 0
	}
}

func (p *proc) output() string { return p.out.String() }

// cpu is the user and system CPU time the process used; it has exited.
func (p *proc) cpu() time.Duration { return usageOf(p.cmd.ProcessState).cpu }

// procUsage is what a process that exited cost the machine: its CPU (user and
// system), the page faults it took that needed no I/O, and the context
// switches it went through (voluntary or not). Faults and switches are
// counts, steadier from run to run than times, and on a virtual machine each
// costs far more than on bare metal: they show what a process costs to exist
// beside what it costs to work.
type procUsage struct {
	cpu              time.Duration
	faults, switches int64
}

func usageOf(ps *os.ProcessState) procUsage {
	u := procUsage{cpu: ps.UserTime() + ps.SystemTime()}
	if ru, ok := ps.SysUsage().(*syscall.Rusage); ok {
		u.faults, u.switches = ru.Minflt, ru.Nvcsw+ru.Nivcsw
	}
	return u
}

func (u procUsage) plus(v procUsage) procUsage {
	return procUsage{u.cpu + v.cpu, u.faults + v.faults, u.switches + v.switches}
}

// perProcess reports u, the usage of n processes together, in m: their CPU
// (agencies-cpu-s) and each one's page faults and context switches on average
// (agency-faults, agency-switches).
func (u procUsage) perProcess(m map[string]float64, n int) {
	m["agencies-cpu-s"] = u.cpu.Seconds()
	m["agency-faults"] = float64(u.faults) / float64(n)
	m["agency-switches"] = float64(u.switches) / float64(n)
}

// countParts is how many lines printed so far contain every one of parts.
func (p *proc) countParts(parts ...string) int { return p.out.Count(parts...) }

var listening = regexp.MustCompile(linePattern(vocab.Escuchar.Line(logfmt.Success, vocab.Direccion.Str(pat(`.*:(\d+)`)))) + "$")

// startServer runs the server binary on a free port and returns it with its port.
func startServer(t testing.TB, agencies int, store string, extra ...string) (*proc, int) {
	t.Helper()
	dir, err := binaries()
	require.NoError(t, err)
	return startServerIn(t, dir, agencies, store, extra...)
}

// startServerIn is startServer with the server binary in dir.
func startServerIn(t testing.TB, dir string, agencies int, store string, extra ...string) (*proc, int) {
	t.Helper()
	env := append([]string{"SERVER_PORT=0", "SERVER_HOST=127.0.0.1", "SERVER_ADMIN_ADDRESS=127.0.0.1:0",
		"SERVER_AGENCIES=" + strconv.Itoa(agencies), "SERVER_STORAGE_PATH=" + store}, extra...)
	srv := startProcIn(t, dir, "server", env...)
	port, err := strconv.Atoi(srv.await(t, listening)[1])
	require.NoError(t, err)
	return srv, port
}

func startClient(t *testing.T, id, port int, dir string) *proc {
	return startProc(t, "client", "CLI_ID="+strconv.Itoa(id),
		fmt.Sprintf("CLI_SERVER_ADDRESS=127.0.0.1:%d", port),
		"CLI_DATA_PATH="+filepath.Join(dir, lottery.AgencyFileName(id)))
}

// agencyFiles reads the agency files of agencies 1..n in dir: every bet as a
// multiset row (agency column included) and each agency's winner count.
func agencyFiles(t *testing.T, dir string, n int) (want map[lottery.Bet]int, winners []int) {
	t.Helper()
	want = make(map[lottery.Bet]int)
	winners = make([]int, n)
	for id := 1; id <= n; id++ {
		for bet, err := range lottery.ReadAgencyFile(filepath.Join(dir, lottery.AgencyFileName(id)), id) {
			require.NoError(t, err)
			want[bet]++
			if lottery.HasWon(bet) {
				winners[id-1]++
			}
		}
	}
	return want, winners
}

var winnersLine = regexp.MustCompile(`INFO     ` + regexp.QuoteMeta(agencyWinners) + `(\d+)$`)

// rows is a multiset of bets, agency column included.
func rows(t *testing.T, bets func(yield func(lottery.Bet, error) bool)) map[lottery.Bet]int {
	t.Helper()
	m := make(map[lottery.Bet]int)
	for bet, err := range bets {
		require.NoError(t, err)
		m[bet]++
	}
	return m
}

func TestBinariesEndToEnd(t *testing.T) {
	tests := []struct {
		name     string
		agencies int
		prepare  func(t *testing.T, dir string)
		want     []int // winners per agency as published; nil: only computed from the files
	}{
		{"official dataset", 5, func(t *testing.T, dir string) {
			_, err := lottery.ExtractDataset(officialDataset, dir)
			require.NoError(t, err)
		}, []int{2, 3, 3, 2, 0}},
		{"generated, three agencies", 3, func(t *testing.T, dir string) {
			_, err := lottery.GenerateAgencyFiles(dir, 3, 5000, 3)
			require.NoError(t, err)
		}, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			tt.prepare(t, dir)
			store := filepath.Join(dir, "bets.csv")
			srv, port := startServer(t, tt.agencies, store)

			clients := make([]*proc, tt.agencies)
			for i := range clients {
				clients[i] = startClient(t, i+1, port, dir)
			}
			want, winners := agencyFiles(t, dir, tt.agencies)
			if tt.want != nil {
				require.Equal(t, tt.want, winners, "the dataset's own winners")
			}
			for i, c := range clients {
				require.Equal(t, 0, c.wait(t), "client %d:\n%s", i+1, c.output())
				assert.Equal(t, strconv.Itoa(winners[i]), c.await(t, winnersLine)[1], "agency %d", i+1)
			}

			require.NoError(t, srv.cmd.Process.Signal(syscall.SIGTERM))
			require.Equal(t, 0, srv.wait(t), srv.output())
			assert.Equal(t, 1, srv.countParts(vocab.Sorteo.Line(logfmt.Success)))
			assert.Equal(t, 1, srv.countParts(vocab.CerrarArchivoApuestas.Line(logfmt.Success)))
			assert.Equal(t, want, rows(t, lottery.LoadBets(store)), "bets file vs agency files")
		})
	}
}
