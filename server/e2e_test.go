package main

import (
	"bufio"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"lotterycentral.example/lottery"
)

const officialDataset = "../../shared/datasets/dataset.zip"

// binaries builds the server and the client once per test run.
var binaries = sync.OnceValues(func() (string, error) {
	dir, err := os.MkdirTemp("", "lottery-e2e-bin")
	if err != nil {
		return "", err
	}
	for _, pkg := range []string{".", "../client"} {
		cmd := exec.Command("go", "build", "-o", dir, pkg)
		cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
		if out, err := cmd.CombinedOutput(); err != nil {
			return "", fmt.Errorf("build %s: %w\n%s", pkg, err, out)
		}
	}
	return dir, nil
})

func TestMain(m *testing.M) {
	code := m.Run()
	if dir, err := binaries(); err == nil {
		os.RemoveAll(dir)
	}
	os.Exit(code)
}

// proc is a running binary whose stdout lines are collected as they come.
type proc struct {
	cmd   *exec.Cmd
	mu    sync.Mutex
	lines []string
	grown chan struct{}
	done  chan struct{} // closed when stdout is drained
}

func startProc(t *testing.T, name string, env ...string) *proc {
	t.Helper()
	dir, err := binaries()
	require.NoError(t, err)
	cmd := exec.Command(filepath.Join(dir, name))
	cmd.Env = env
	out, err := cmd.StdoutPipe()
	require.NoError(t, err)
	cmd.Stderr = cmd.Stdout
	p := &proc{cmd: cmd, grown: make(chan struct{}), done: make(chan struct{})}
	require.NoError(t, cmd.Start())
	go func() {
		defer close(p.done)
		sc := bufio.NewScanner(out)
		for sc.Scan() {
			p.mu.Lock()
			p.lines = append(p.lines, sc.Text())
			close(p.grown)
			p.grown = make(chan struct{})
			p.mu.Unlock()
		}
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

// await returns the first line matching re, waiting for it to be printed.
func (p *proc) await(t *testing.T, re *regexp.Regexp) []string {
	t.Helper()
	deadline := time.After(30 * time.Second)
	for i := 0; ; {
		p.mu.Lock()
		lines, grown := p.lines, p.grown
		p.mu.Unlock()
		for ; i < len(lines); i++ {
			if m := re.FindStringSubmatch(lines[i]); m != nil {
				return m
			}
		}
		select {
		case <-grown:
		case <-p.done:
			p.mu.Lock()
			n := len(p.lines)
			p.mu.Unlock()
			if i == n {
				t.Fatalf("%s exited without printing %s:\n%s", p.cmd.Path, re, p.output())
			}
		case <-deadline:
			t.Fatalf("%s did not print %s:\n%s", p.cmd.Path, re, p.output())
		}
	}
}

// wait waits for the process to exit and returns its exit code.
func (p *proc) wait(t *testing.T) int {
	t.Helper()
	<-p.done
	err := p.cmd.Wait()
	if ee, ok := err.(*exec.ExitError); ok {
		return ee.ExitCode()
	}
	require.NoError(t, err)
	return 0
}

func (p *proc) output() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return strings.Join(p.lines, "\n")
}

func (p *proc) count(substr string) int {
	p.mu.Lock()
	defer p.mu.Unlock()
	n := 0
	for _, l := range p.lines {
		if strings.Contains(l, substr) {
			n++
		}
	}
	return n
}

var listening = regexp.MustCompile(`action: escuchar \| result: success \| direccion: .*:(\d+)$`)

// startServer runs the server binary on a free port and returns it with its port.
func startServer(t *testing.T, agencies int, store string, extra ...string) (*proc, int) {
	t.Helper()
	env := append([]string{"SERVER_PORT=0", "SERVER_HOST=127.0.0.1",
		"SERVER_AGENCIES=" + strconv.Itoa(agencies), "SERVER_STORAGE_PATH=" + store}, extra...)
	srv := startProc(t, "server", env...)
	port, err := strconv.Atoi(srv.await(t, listening)[1])
	require.NoError(t, err)
	return srv, port
}

func startClient(t *testing.T, id, port int, dir string) *proc {
	return startProc(t, "client", "CLI_ID="+strconv.Itoa(id),
		fmt.Sprintf("CLI_SERVER_ADDRESS=127.0.0.1:%d", port),
		"CLI_DATA_PATH="+filepath.Join(dir, lottery.AgencyFileName(id)))
}

var winnersLine = regexp.MustCompile(`INFO     action: consulta_ganadores \| result: success \| cant_ganadores: (\d+)$`)

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
		want     []int // winners per agency; nil: computed from the files
	}{
		{"official dataset", 5, func(t *testing.T, dir string) {
			if _, err := os.Stat(officialDataset); err != nil {
				t.Skipf("official dataset not present: %v", err)
			}
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
			want := make(map[lottery.Bet]int)
			for i, c := range clients {
				id := i + 1
				file := filepath.Join(dir, lottery.AgencyFileName(id))
				wantWinners := 0
				if tt.want != nil {
					wantWinners = tt.want[i]
				}
				for bet, err := range lottery.ReadAgencyFile(file, id) {
					require.NoError(t, err)
					want[bet]++
					if tt.want == nil && lottery.HasWon(bet) {
						wantWinners++
					}
				}
				require.Equal(t, 0, c.wait(t), "client %d:\n%s", id, c.output())
				got := c.await(t, winnersLine)
				assert.Equal(t, strconv.Itoa(wantWinners), got[1], "agency %d", id)
			}

			require.NoError(t, srv.cmd.Process.Signal(syscall.SIGTERM))
			require.Equal(t, 0, srv.wait(t), srv.output())
			assert.Equal(t, 1, srv.count("action: sorteo | result: success"))
			assert.Equal(t, 1, srv.count("action: cerrar_archivo_apuestas | result: success"))
			assert.Equal(t, want, rows(t, lottery.LoadBets(store)), "bets file vs agency files")
		})
	}
}
