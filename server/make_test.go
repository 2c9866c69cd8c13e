package main

// What a newcomer meets first, through make itself, from the repository's
// root: `make run` (its lines in the order they were logged, a quiet `make
// certs`, HOLD=1, the summary of a failed round), make's knobs refusing values
// they do not know, and `make help` against the README's table. Each test
// skips, saying so, only when make is not installed.
//
// The rounds use their own RUN_DIR, DATA and CERTS (temporary directories) and
// ports found free, so they run beside a developer's own `make run` and the
// package's other tests; they share bin/ with it (make build links only what
// changed), so they run one after another, as subtests of TestMakeRun.

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// makeRunRounds is how many times testMakeRunShowsTheDrawBeforeTheWinners
// runs `make run`; MAKE_RUN_ROUNDS changes it.
const makeRunRounds = 20

// makeRunTimeout turns a round that hangs into a failure.
const makeRunTimeout = 3 * time.Minute

// repoMake finds make and the repository's root, or skips the test.
func repoMake(t *testing.T) (makePath, root string) {
	t.Helper()
	makePath, err := exec.LookPath("make")
	if err != nil {
		t.Skip("make is not installed: the Makefile's own tests need it")
	}
	root, err = filepath.Abs("..")
	require.NoError(t, err)
	require.FileExists(t, filepath.Join(root, "Makefile"))
	return makePath, root
}

// makeEnv is this process's environment without what would change make's
// behaviour behind the test's back: an outer make's flags (make test runs
// these tests), the knobs, and SERVER_* and CLI_* settings; extra is added.
func makeEnv(extra ...string) []string {
	drop := map[string]bool{"MAKEFLAGS": true, "MFLAGS": true, "MAKELEVEL": true, "MAKEOVERRIDES": true,
		"GNUMAKEFLAGS": true, "TLS": true, "RESUME": true, "HOLD": true, "AGENCIES": true, "BETS": true,
		"SEED": true, "DATASET": true, "RUN_DIR": true, "CERTS": true, "DATA": true, "AGENCY": true}
	var env []string
	for _, kv := range os.Environ() {
		name, _, _ := strings.Cut(kv, "=")
		if drop[name] || strings.HasPrefix(name, "SERVER_") || strings.HasPrefix(name, "CLI_") {
			continue
		}
		env = append(env, kv)
	}
	return append(env, extra...)
}

// makeCmd is make with args in the repository's root. It runs in a process
// group of its own, which a cancelled ctx sends SIGTERM (run-local.sh then
// stops what it started), and SIGKILL 10 s later.
func makeCmd(ctx context.Context, t *testing.T, env []string, args ...string) *exec.Cmd {
	makePath, root := repoMake(t)
	cmd := exec.CommandContext(ctx, makePath, append([]string{"--no-print-directory"}, args...)...)
	cmd.Dir = root
	cmd.Env = env
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.Cancel = func() error { return syscall.Kill(-cmd.Process.Pid, syscall.SIGTERM) }
	cmd.WaitDelay = 10 * time.Second
	return cmd
}

// roundDirs are one test's RUN_DIR, DATA and CERTS, as make arguments.
func roundDirs(t *testing.T) []string {
	dir := t.TempDir()
	return []string{"RUN_DIR=" + filepath.Join(dir, "run"), "DATA=" + filepath.Join(dir, "data"),
		"CERTS=" + filepath.Join(dir, "certs")}
}

// roundEnv gives a round ports of its own: the agencies' and the status page's.
func roundEnv(t *testing.T) []string {
	return makeEnv("SERVER_PORT="+strconv.Itoa(freePort(t)),
		"SERVER_ADMIN_ADDRESS=127.0.0.1:"+strconv.Itoa(freePort(t)))
}

var (
	runDrawLine    = regexp.MustCompile(`^server   \| \S+ \S+ INFO +action: sorteo \| result: success`)
	runWinnersLine = regexp.MustCompile(`^client(\d+) +\| \S+ \S+ INFO +action: consulta_ganadores \| result: success \| cant_ganadores: (\d+)$`)
	runCertsLine   = regexp.MustCompile(`action: certs? \| |action: certificado \| `)
)

// TestMakeRun runs make run, the rounds one after another, beside the
// package's other tests.
func TestMakeRun(t *testing.T) {
	repoMake(t)
	t.Parallel()
	t.Run("the draw before the winners", testMakeRunShowsTheDrawBeforeTheWinners)
	t.Run("HOLD=1", testMakeRunHold)
	t.Run("an agency fails", testMakeRunAgencyFails)
}

// The central logs its draw before it sends any winners, and an agency logs
// its winners after it has them: make run must show them in that order, every
// time. (Each process's output once went through a printer of its own, and the
// central's hundreds of batch lines made its printer lag: the agencies' winners
// came about 240 lines before the draw.) The default mode: the official
// dataset, five agencies, mutual TLS. The second round on makes no
// certificate, and `make certs` then says so in one line.
func testMakeRunShowsTheDrawBeforeTheWinners(t *testing.T) {
	rounds := envInt(t, "MAKE_RUN_ROUNDS", makeRunRounds)
	dirs := roundDirs(t)
	start, i := time.Now(), 1
	for ; i <= rounds; i++ {
		ctx, cancel := context.WithTimeout(context.Background(), makeRunTimeout)
		began := time.Now()
		out, err := makeCmd(ctx, t, roundEnv(t), append([]string{"run", "TLS=1", "AGENCIES=5", "RESUME=", "HOLD="}, dirs...)...).CombinedOutput()
		cancel()
		require.NoError(t, err, "round %d:\n%s", i, out)
		lines := strings.Split(strings.TrimSuffix(string(out), "\n"), "\n")

		draw := -1
		winners := map[string]string{}
		for n, line := range lines {
			if runDrawLine.MatchString(line) && draw < 0 {
				draw = n
			}
			if m := runWinnersLine.FindStringSubmatch(line); m != nil {
				assert.True(t, draw >= 0 && n > draw, "round %d: line %d, %q, comes before the draw", i, n+1, line)
				winners[m[1]] = m[2]
			}
		}
		require.GreaterOrEqual(t, draw, 0, "round %d: no draw line in:\n%s", i, out)
		assert.Equal(t, map[string]string{"1": "2", "2": "3", "3": "3", "4": "2", "5": "0"}, winners, "round %d", i)
		// The round's digest, from the sorteo line, is bin/dataset digest's of the files.
		assert.Regexp(t, "^"+regexp.QuoteMeta("run-local: every agency got its winners (2,3,3,2,0 for agencies 1..5); bets stored in "+
			strings.TrimPrefix(dirs[0], "RUN_DIR=")+"/bets.csv, whose recount agrees, and the round's digest ")+
			"[0-9a-f]{64}"+regexp.QuoteMeta(" equals bin/dataset digest of the agency files in ")+`\S+$`,
			lines[len(lines)-1], "round %d", i)
		if i > 1 {
			var certs []string
			for _, line := range lines {
				if runCertsLine.MatchString(line) {
					certs = append(certs, line)
				}
			}
			assert.Len(t, certs, 1, "round %d: make certs should say nothing changed in one line:\n%s", i, strings.Join(certs, "\n"))
		}
		t.Logf("round %d: %d lines, the draw on line %d, %s", i, len(lines), draw+1, time.Since(began).Round(time.Millisecond))
		if t.Failed() {
			t.Logf("round %d's output:\n%s", i, out)
			break
		}
	}
	t.Logf("%d rounds of make run in %s", min(i, rounds), time.Since(start).Round(time.Millisecond))
}

// make run HOLD=1 keeps the central and its status page up after the round,
// says so, and stops it on Ctrl-C (SIGINT to the foreground group) with exit
// status 0 and a line saying it was stopped on request.
func testMakeRunHold(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), makeRunTimeout)
	defer cancel()
	admin := freePort(t)
	env := makeEnv("SERVER_PORT="+strconv.Itoa(freePort(t)), "SERVER_ADMIN_ADDRESS=127.0.0.1:"+strconv.Itoa(admin))
	cmd := makeCmd(ctx, t, env, append([]string{"run", "HOLD=1"}, roundDirs(t)...)...)
	pr, pw, err := os.Pipe()
	require.NoError(t, err)
	cmd.Stdout, cmd.Stderr = pw, pw
	require.NoError(t, cmd.Start())
	pw.Close()
	var out strings.Builder
	held := make(chan string, 1)
	done := make(chan struct{})
	go func() {
		defer close(done)
		sc := bufio.NewScanner(pr)
		for sc.Scan() {
			out.WriteString(sc.Text() + "\n")
			if strings.HasPrefix(sc.Text(), "run-local: HOLD=1: the central stays up") {
				held <- sc.Text()
			}
		}
	}()
	url := fmt.Sprintf("http://127.0.0.1:%d/", admin)
	select {
	case line := <-held:
		assert.Equal(t, "run-local: HOLD=1: the central stays up with its status page at "+url+
			" (/status.json, /metrics, /healthz) until Ctrl-C", line)
	case <-done:
		require.FailNow(t, "make run HOLD=1 ended without holding", out.String())
	}
	// The round is over and the central still answers.
	code, _ := httpGet(t, url+"healthz")
	assert.Equal(t, 200, code)
	code, body := httpGet(t, url+"status.json")
	assert.Equal(t, 200, code)
	assert.True(t, json.Valid([]byte(body)), "status.json: %s", body)

	// Ctrl-C: the terminal sends SIGINT to the whole foreground group.
	require.NoError(t, syscall.Kill(-cmd.Process.Pid, syscall.SIGINT))
	<-done
	_ = cmd.Wait()
	assert.Contains(t, out.String(), "\nrun-local: stopped on request (SIGINT) after a successful round: every agency got its winners (2,3,3,2,0")
	assert.Contains(t, out.String(), "server   | ")
	assert.Regexp(t, `action: shutdown \| result: success\n(run-local: .*\n)*$`, out.String())
}

// An agency that fails ends the round at once, and the last lines say which,
// how it exited, its last line, where every line is, and what next: here no
// bet was stored (every agency's configuration is wrong, so whichever fails
// first), so the round starts again; after bets, `make run RESUME=1`.
func testMakeRunAgencyFails(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), makeRunTimeout)
	defer cancel()
	env := append(roundEnv(t), "CLI_MAX_RETRIES=-1")
	dirs := roundDirs(t)
	out, err := makeCmd(ctx, t, env, append([]string{"run"}, dirs...)...).CombinedOutput()
	require.Error(t, err, "%s", out)
	text := string(out)
	runDir := strings.TrimPrefix(dirs[0], "RUN_DIR=")
	assert.Regexp(t, `run-local: FAILED: agency (\d+) exited with status 2\n`+
		`run-local:   agency (\d+)'s last line: \S+ \S+ ERROR +action: config \| result: fail \| error: .*CLI_MAX_RETRIES: "-1".*\n`+
		`run-local:   the central's last line: .*\n`+
		`run-local:   every line of this run: `+regexp.QuoteMeta(runDir)+`/run\.log \(one process's: grep '\^client\d+ ' `+regexp.QuoteMeta(runDir)+`/run\.log\)\n`+
		`run-local:   no bet was stored: once what the last lines say is fixed, 'make run' starts the round again\n`+
		`make: \*\*\* \[Makefile:\d+: run\] Error 1\n$`, text)
}

// A knob with a value make does not know stops make before it runs anything,
// naming the knob, the value and what it accepts, whether the value comes from
// the command line or the environment.
func TestMakeKnobs(t *testing.T) {
	repoMake(t)
	t.Parallel()
	bad := []struct{ knob, want string }{
		{"TLS=maybe", "TLS=maybe: want 0 or 1"},
		{"TLS=", "TLS=: want 0 or 1"},
		{"RESUME=yes", "RESUME=yes: want 1 or nothing"},
		{"HOLD=0", "HOLD=0: want 1 or nothing"},
		{"BENCH_QUICK=true", "BENCH_QUICK=true: want 1 or nothing"},
		{"AGENCIES=0", "AGENCIES=0: want a whole number, 1 or more"},
		{"AGENCIES=five", "AGENCIES=five: want a whole number, 1 or more"},
		{"AGENCY=0", "AGENCY=0: want a whole number, 1 or more"},
		{"AGENCY=two", "AGENCY=two: want a whole number, 1 or more"},
		{"BETS=-5", "BETS=-5: want a whole number"},
		{"SEED=1.5", "SEED=1.5: want a whole number"},
		{"CHAOS_KILLS=lots", "CHAOS_KILLS=lots: want a whole number"},
		{"BENCH_COUNT=0", "BENCH_COUNT=0: want a whole number, 1 or more"},
		{"FUZZTIME=long", "FUZZTIME=long: want a duration (60s, 2m) or a count of runs (20000x)"},
		{"FUZZ_SHORT=20000", "FUZZ_SHORT=20000: want a duration (60s, 2m) or a count of runs (20000x)"},
	}
	for _, tt := range bad {
		for _, where := range []string{"command line", "environment"} {
			t.Run(tt.knob+" on the "+where, func(t *testing.T) {
				env, args := makeEnv(), []string{"-n", "run"}
				if where == "command line" {
					args = append(args, tt.knob)
				} else {
					env = append(env, tt.knob)
				}
				out, err := makeCmd(context.Background(), t, env, args...).CombinedOutput()
				var exit *exec.ExitError
				require.ErrorAs(t, err, &exit, "%s", out)
				assert.Equal(t, 2, exit.ExitCode())
				assert.Regexp(t, `^Makefile:\d+: \*\*\* `+regexp.QuoteMeta(tt.want)+`\.  Stop\.\n$`, string(out))
			})
		}
	}
	t.Run("every bad knob at once", func(t *testing.T) {
		out, err := makeCmd(context.Background(), t, makeEnv(), "-n", "run", "TLS=2", "HOLD=x").CombinedOutput()
		require.Error(t, err)
		assert.Contains(t, string(out), "TLS=2: want 0 or 1; HOLD=x: want 1 or nothing.  Stop.")
	})
	good := []string{"TLS=0", "TLS=1", "RESUME=1", "RESUME=", "HOLD=1", "AGENCIES=12", "AGENCY=2", "BETS=0", "SEED=42",
		"FUZZTIME=30s", "FUZZTIME=1m30s", "FUZZ_SHORT=500x", "BENCH_QUICK=1", "BENCH_MICRO_TIME=100ms"}
	t.Run("good values", func(t *testing.T) {
		out, err := makeCmd(context.Background(), t, makeEnv(), append([]string{"-n", "run"}, good...)...).CombinedOutput()
		require.NoError(t, err, "%s", out)
	})
}

// make reissue AGENCY=N revokes agency N's certificate onto revoked.pem and
// gives it a new pair; make revoke AGENCY=N revokes the one it has now; both
// say which knob they need without it, before anything runs.
func TestMakeRevoke(t *testing.T) {
	repoMake(t)
	t.Parallel()
	dir := filepath.Join(t.TempDir(), "certs")
	run := func(args ...string) (string, error) {
		out, err := makeCmd(context.Background(), t, makeEnv(), append(args, "CERTS="+dir)...).CombinedOutput()
		return string(out), err
	}
	out, err := run("certs", "AGENCIES=2")
	require.NoError(t, err, out)
	line := func(action, rest string) string {
		return `(?m)^\S+ \S+ INFO +action: ` + action + ` \| result: success \| ` + rest + `$`
	}
	list := regexp.QuoteMeta(filepath.Join(dir, "revoked.pem"))
	cert := regexp.QuoteMeta(filepath.Join(dir, "agency-2.pem"))

	out, err = run("reissue", "AGENCY=2")
	require.NoError(t, err, out)
	assert.Regexp(t, line("revocar", `archivo: `+cert+` \| serie: [0-9a-f]+ \| estado: revocado`), out)
	assert.Regexp(t, line("lista_revocacion", `archivo: `+list+` \| estado: reemplazado \| revocados: 1 \| numero_lista: 2 \| aviso: .*server reload, or SIGHUP`), out)
	assert.Regexp(t, line("certificado", `archivo: `+cert+` \| estado: reemplazado \| motivo: revoked, reissued \| serie: [0-9a-f]+`), out)

	out, err = run("revoke", "AGENCY=2")
	require.NoError(t, err, out)
	assert.Regexp(t, line("lista_revocacion", `archivo: `+list+` \| estado: reemplazado \| revocados: 2 \| numero_lista: 3 \| .*`), out,
		"the reissued certificate is revoked in its turn")

	for _, target := range []string{"revoke", "reissue"} {
		out, err = run(target)
		var exit *exec.ExitError
		require.ErrorAs(t, err, &exit, out)
		assert.Equal(t, 2, exit.ExitCode())
		assert.Regexp(t, `^Makefile:\d+: \*\*\* AGENCY=N: which agency's certificate\? e\.g\. make `+target+` AGENCY=2\.  Stop\.\n$`, out)
	}
}

// make help starts with run and test, describes test in words rather than by
// the targets it runs, and lists every target the README's table names.
func TestMakeHelp(t *testing.T) {
	_, root := repoMake(t)
	t.Parallel()
	out, err := makeCmd(context.Background(), t, makeEnv(), "help").CombinedOutput()
	require.NoError(t, err, "%s", out)
	listed := map[string]string{}
	var order []string
	for line := range strings.Lines(string(out)) {
		f := strings.Fields(line)
		require.True(t, len(f) >= 3 && f[0] == "make", "help line %q", line)
		listed[f[1]] = strings.Join(f[2:], " ")
		order = append(order, f[1])
	}
	require.GreaterOrEqual(t, len(order), 2)
	assert.Equal(t, []string{"run", "test"}, order[:2])
	for _, target := range []string{"tidy-check", "fmt-check", "deadcode", "binaries-check", "fuzz-short", "race-cc"} {
		assert.NotRegexp(t, `(^|[\s,(])`+regexp.QuoteMeta(target)+`($|[\s,)])`, listed["test"], "make help describes test by its targets")
	}

	readme, err := os.ReadFile(filepath.Join(root, "README.md"))
	require.NoError(t, err)
	named := readmeTargets(t, string(readme))
	require.NotEmpty(t, named)
	for _, target := range named {
		assert.Contains(t, listed, target, "the README's make targets name %s; make help does not list it", target)
	}
}

// readmeTargets reads the first column of the README's table of make targets:
// "`build`, `all`" is build and all; "`docker-compose-up`, `-logs`" is
// docker-compose-up and docker-compose-logs.
func readmeTargets(t *testing.T, readme string) []string {
	_, section, ok := strings.Cut(readme, "\n## Make targets\n")
	require.True(t, ok, "README.md has no '## Make targets' section")
	section, _, _ = strings.Cut(section, "\n## ")
	name := regexp.MustCompile("`([a-z-]+)`")
	var targets []string
	for line := range strings.Lines(section) {
		if !strings.HasPrefix(line, "| `") {
			continue
		}
		first := strings.Split(line, "|")[1]
		base := ""
		for _, m := range name.FindAllStringSubmatch(first, -1) {
			target := m[1]
			if strings.HasPrefix(target, "-") {
				target = base + target
			} else if i := strings.LastIndex(target, "-"); i > 0 {
				base = target[:i]
			}
			targets = append(targets, target)
		}
	}
	return targets
}
