package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"lotterycentral.example/lottery"
)

// timedLine is one line of a child's output and the moment the harness read it.
// Log timestamps have one-second resolution; these have the harness clock's.
type timedLine struct {
	at   time.Time
	text string
}

// proc is a running binary whose output (stdout and stderr together) is read,
// timestamped and kept as it comes.
type proc struct {
	name  string
	cmd   *exec.Cmd
	mu    sync.Mutex
	lines []timedLine
	grown chan struct{} // closed and replaced whenever a line is added
	done  chan struct{} // closed when the process exited and its output is drained

	exitAt  time.Time // valid once done is closed
	waitErr error
}

// childEnv is the environment of every child: the given variables plus the Go
// runtime's tuning knobs when the harness was given them.
func childEnv(vars ...string) []string {
	for _, k := range []string{"GOGC", "GOMEMLIMIT", "GOMAXPROCS", "GODEBUG", "TZ"} {
		if v, ok := os.LookupEnv(k); ok {
			vars = append(vars, k+"="+v)
		}
	}
	return vars
}

func startProc(name, path string, env []string, args ...string) (*proc, error) {
	cmd := exec.Command(path, args...)
	cmd.Env = env
	out, err := cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	cmd.Stderr = cmd.Stdout
	p := &proc{name: name, cmd: cmd, grown: make(chan struct{}), done: make(chan struct{})}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("start %s: %w", name, err)
	}
	go func() {
		sc := bufio.NewScanner(out)
		sc.Buffer(make([]byte, 64<<10), 1<<20)
		for sc.Scan() {
			l := timedLine{at: time.Now(), text: sc.Text()}
			p.mu.Lock()
			p.lines = append(p.lines, l)
			close(p.grown)
			p.grown = make(chan struct{})
			p.mu.Unlock()
		}
		// EOF comes when the process exits (nothing else holds the pipe).
		err := cmd.Wait()
		p.mu.Lock()
		p.exitAt, p.waitErr = time.Now(), err
		p.mu.Unlock()
		close(p.done)
	}()
	return p, nil
}

func (p *proc) pid() int { return p.cmd.Process.Pid }

// await returns the index of the first line at or after from that matches,
// waiting for it until ctx ends or the process exits without printing it.
func (p *proc) await(ctx context.Context, from int, match func(string) bool) (int, error) {
	for i := from; ; {
		p.mu.Lock()
		lines, grown := p.lines, p.grown
		p.mu.Unlock()
		for ; i < len(lines); i++ {
			if match(lines[i].text) {
				return i, nil
			}
		}
		select {
		case <-grown:
		case <-p.done:
			p.mu.Lock()
			n := len(p.lines)
			p.mu.Unlock()
			if i == n {
				return 0, fmt.Errorf("%s exited before printing the awaited line", p.name)
			}
		case <-ctx.Done():
			return 0, fmt.Errorf("%s: waiting for a line: %w", p.name, context.Cause(ctx))
		}
	}
}

// wait waits for the process to exit and its output to be drained.
func (p *proc) wait(ctx context.Context) error {
	select {
	case <-p.done:
		return nil
	case <-ctx.Done():
		return fmt.Errorf("%s did not exit: %w", p.name, context.Cause(ctx))
	}
}

// exitCode is valid after wait returned nil.
func (p *proc) exitCode() int { return p.cmd.ProcessState.ExitCode() }

// kill ends the process if it is still running and reaps it.
func (p *proc) kill() {
	select {
	case <-p.done:
		return
	default:
	}
	_ = p.cmd.Process.Kill()
	<-p.done
}

func (p *proc) snapshot() []timedLine {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.lines
}

// tail returns the last n lines of output, for error messages.
func (p *proc) tail(n int) string {
	lines := p.snapshot()
	lines = lines[max(0, len(lines)-n):]
	var sb strings.Builder
	for _, l := range lines {
		sb.WriteString("    " + p.name + " | " + l.text + "\n")
	}
	return sb.String()
}

var (
	listeningLine = regexp.MustCompile(`action: escuchar \| result: success \| direccion: (127\.0\.0\.1:\d+)$`)
	winnersLine   = regexp.MustCompile(`action: consulta_ganadores \| result: success \| cant_ganadores: (\d+)$`)
	storedLine    = regexp.MustCompile(`action: apuesta_recibida \| result: success \| cantidad: (\d+)`)
	drawLine      = regexp.MustCompile(`action: sorteo \| result: success \| apuestas: (\d+)`)
)

const informLine = "action: envio_ganadores | result: success"

// e2eResult is one end-to-end run: a fresh central, every agency started together.
type e2eResult struct {
	wall        time.Duration // agencies started → last agency exited 0
	ingest      float64       // bets / (agencies started → last apuesta_recibida success read)
	drawLatency time.Duration // last apuesta_recibida → last envio_ganadores
	drawScan    time.Duration // last apuesta_recibida → sorteo
	inform      time.Duration // sorteo → last envio_ganadores
	serverRSS   int64         // KiB
	clientRSS   int64         // KiB, the largest of the agencies
}

// runE2E runs the central on a free port with a fresh bets file, waits for it to
// listen, starts one agency process per file at once, and checks that each exits
// 0 having printed its consulta_ganadores success with the expected count.
func (b *bench) runE2E(parent context.Context, ds *dataset, timeout time.Duration) (res e2eResult, err error) {
	ctx, cancel := context.WithTimeoutCause(parent, timeout, fmt.Errorf("run took longer than %s", timeout))
	defer cancel()
	runDir, err := os.MkdirTemp(b.work, "run-")
	if err != nil {
		return res, err
	}
	defer os.RemoveAll(runDir)

	n := ds.Agencies
	srv, err := startProc("server", b.serverBin, childEnv(
		"SERVER_PORT=0", "SERVER_HOST=127.0.0.1",
		"SERVER_AGENCIES="+strconv.Itoa(n),
		"SERVER_MAX_CONNECTIONS="+strconv.Itoa(max(2*n, 128)),
		"SERVER_STORAGE_PATH="+filepath.Join(runDir, "bets.csv")))
	if err != nil {
		return res, err
	}
	defer srv.kill()
	b.rss.watch(srv.pid())
	defer b.rss.forget(srv.pid())
	clients := make([]*proc, n)
	defer func() {
		for _, c := range clients {
			if c != nil {
				c.kill()
				b.rss.forget(c.pid())
			}
		}
	}()
	fail := func(err error, procs ...*proc) (e2eResult, error) {
		var sb strings.Builder
		for _, p := range append(procs, srv) {
			if p != nil {
				sb.WriteString(p.tail(15))
			}
		}
		return e2eResult{}, fmt.Errorf("%w\n%s", err, sb.String())
	}

	i, err := srv.await(ctx, 0, listeningLine.MatchString)
	if err != nil {
		return fail(err)
	}
	addr := listeningLine.FindStringSubmatch(srv.snapshot()[i].text)[1]

	t0 := time.Now()
	for k := range clients {
		id := k + 1
		c, err := startProc(fmt.Sprintf("client%d", id), b.clientBin, childEnv(
			"CLI_ID="+strconv.Itoa(id),
			"CLI_SERVER_ADDRESS="+addr,
			"CLI_DATA_PATH="+filepath.Join(ds.dir, lottery.AgencyFileName(id)),
			"CLI_REPLY_TIMEOUT="+timeout.String()))
		if err != nil {
			return fail(err)
		}
		clients[k] = c
		b.rss.watch(c.pid())
	}

	var lastExit time.Time
	for k, c := range clients {
		if err := c.wait(ctx); err != nil {
			return fail(err, c)
		}
		if code := c.exitCode(); code != 0 {
			return fail(fmt.Errorf("%s exited %d", c.name, code), c)
		}
		lastExit = latest(lastExit, c.exitAt)
		res.clientRSS = max(res.clientRSS, b.rss.forget(c.pid()))
		got := -1
		for _, l := range c.snapshot() {
			if m := winnersLine.FindStringSubmatch(l.text); m != nil {
				got, _ = strconv.Atoi(m[1])
			}
		}
		if got != ds.Winners[k] {
			return fail(fmt.Errorf("%s: consulta_ganadores success with %d winners expected, got %d (-1: no such line)",
				c.name, ds.Winners[k], got), c)
		}
	}
	res.wall = lastExit.Sub(t0)

	// An agency may exit before the central logs that it sent the winners.
	from := 0
	for range n {
		i, err := srv.await(ctx, from, func(s string) bool { return strings.Contains(s, informLine) })
		if err != nil {
			return fail(err)
		}
		from = i + 1
	}
	b.rss.sample(srv.pid())
	if err := srv.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		return fail(err)
	}
	if err := srv.wait(ctx); err != nil {
		return fail(err)
	}
	if code := srv.exitCode(); code != 0 {
		return fail(fmt.Errorf("server exited %d after SIGTERM", code))
	}
	res.serverRSS = b.rss.peak(srv.pid())

	var lastStored, drawAt, lastInform time.Time
	stored, drawn := 0, -1
	for _, l := range srv.snapshot() {
		if m := storedLine.FindStringSubmatch(l.text); m != nil {
			c, _ := strconv.Atoi(m[1])
			stored += c
			lastStored = l.at
		} else if m := drawLine.FindStringSubmatch(l.text); m != nil {
			drawn, _ = strconv.Atoi(m[1])
			drawAt = l.at
		} else if strings.Contains(l.text, informLine) {
			lastInform = l.at
		}
	}
	switch {
	case stored != ds.Total:
		return fail(fmt.Errorf("the central logged %d stored bets, the files hold %d", stored, ds.Total))
	case drawn != ds.Total:
		return fail(fmt.Errorf("the draw scanned %d bets (-1: no sorteo line), the files hold %d", drawn, ds.Total))
	}
	res.ingest = float64(ds.Total) / lastStored.Sub(t0).Seconds()
	res.drawLatency = lastInform.Sub(lastStored)
	res.drawScan = drawAt.Sub(lastStored)
	res.inform = lastInform.Sub(drawAt)
	return res, nil
}

func latest(a, b time.Time) time.Time {
	if b.After(a) {
		return b
	}
	return a
}

var errNoBinary = errors.New("binary missing: run make build")

func checkBinary(path string) error {
	st, err := os.Stat(path)
	if err != nil || !st.Mode().IsRegular() {
		return fmt.Errorf("%s: %w", path, errNoBinary)
	}
	return nil
}
