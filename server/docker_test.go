//go:build docker

package main

// The draw in real containers, driven through the compose files, the compose
// command and the Makefile's targets. `make test-docker` builds bin/ and the
// images, then runs
//
//	cd server && go test -tags docker -race -count=1 -run '^TestDocker$' -v -timeout 30m .
//
// Every case runs with mutual TLS, the compose files' default. The cases share
// the fixed container names (server, clientN) and network (lottery_net) of the
// compose files, so they run one after another, in the compose project
// lottery-test (a `make docker-compose-up` project's bets volume is not
// touched); TestDocker refuses to start while another project holds those
// names. Each case removes what it created (compose down -v); the last one
// checks that nothing is left.
//
// Nothing waits on time: a case waits for a log line (docker logs -f, docker
// events, a command's output, through logtest) or for a container to exit
// (docker wait). dockerBound, and logtest.DefaultBound for AwaitT, only turn
// a hang into a failure.
//
// The cases on deployments/docker-compose.yaml mount the repository's .data/
// and .certs/: they rewrite .data/agency-1..5.csv with the official dataset
// (what `make data` writes) and add what .certs/ lacks for 5 agencies. The
// generated cases use temporary directories.

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"lotterycentral.example/lottery"
	"lotterycentral.example/lottery/logfmt"
	"lotterycentral.example/lottery/logfmt/logfmttest"
	"lotterycentral.example/protocol/pki"
	"lotterycentral.example/server/internal/logtest"
	"lotterycentral.example/server/internal/vocab"
)

const (
	dockerProject = "lottery-test"
	dockerNetwork = "lottery_net"
	serverImage   = "lottery-server:latest"
	clientImage   = "lottery-client:latest"
	// The bets file inside the central's container, on the bets volume.
	storeInContainer = "/var/lib/lottery/bets.csv"
	// Bets per agency in the generated cases.
	generatedBets = 5000
)

// Log lines the cases look for (the course's format; see DESIGN.md).
var (
	sorteoSuccess   = regexp.MustCompile(linePattern(vocab.Sorteo.Line(logfmt.Success)) + `( \||$)`)
	shutdownSuccess = regexp.MustCompile(linePattern(vocab.Shutdown.Line(logfmt.Success)) + `( \||$)`)
	errorLine       = regexp.MustCompile(linePrefix + `ERROR `)
	recoveredFour   = regexp.MustCompile(linePattern(vocab.Recuperacion.Line(logfmt.Success)) + ` .*\| ` +
		linePattern(vocab.AgenciasFinalizadas.Int(4).String()) + `( \||$)`)
	// What `make docker-compose-up` must not print on the way up.
	noise = regexp.MustCompile(`(?i)not found|deprecated|warn|swarm mode`)
)

// logs follows a container's output from its first line, across restarts,
// until it stops. It follows by ID once the container has started: `docker
// logs -f` ends at once, with nothing, on a container not yet started
// (moby/moby#37894), and a name can pass to a container compose recreates.
func logs(t *testing.T, container string) *logtest.Recorder {
	t.Helper()
	info := fields(docker(t, "inspect", "-f", "{{.Id}} {{.State.Status}} {{.Created}}", container))
	require.Len(t, info, 3, "docker inspect %s", container)
	id, status, created := info[0], info[1], info[2]
	if status == "created" {
		// Replayed from its creation, so a start that happens meanwhile is seen.
		events := follow(t, "docker", "events", "--since", created,
			"--filter", "container="+id, "--filter", "event=start")
		awaitMatch(t, events, startEvent)
	}
	return follow(t, "docker", "logs", "-f", id)
}

var startEvent = regexp.MustCompile(` container start `)

// --- waiting -------------------------------------------------------------------

// awaitMatch waits for a line of rec matching re.
func awaitMatch(t *testing.T, rec *logtest.Recorder, re *regexp.Regexp) {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), dockerBound)
	defer cancel()
	if _, err := rec.Until(ctx, 0, func(l logtest.Line) bool { return re.MatchString(l.Text) }); err != nil {
		t.Fatalf("no line matching %s: %v:\n%s", re, err, rec)
	}
}

// awaitEnd waits until rec's lines stop coming (the followed container
// stopped), so that counting them counts them all.
func awaitEnd(t *testing.T, rec *logtest.Recorder) {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), dockerBound)
	defer cancel()
	if _, err := rec.Until(ctx, 0, func(logtest.Line) bool { return false }); !errors.Is(err, logtest.ErrEnded) {
		t.Fatalf("the output did not end: %v:\n%s", err, rec)
	}
}

// countMatch is how many of rec's lines match re.
func countMatch(rec *logtest.Recorder, re *regexp.Regexp) int {
	n := 0
	for _, l := range rec.Texts() {
		if re.MatchString(l) {
			n++
		}
	}
	return n
}

// waitExit waits for the containers to exit (docker wait) and returns their exit codes.
func waitExit(t *testing.T, containers ...string) []int {
	t.Helper()
	out := must(t, append([]string{"docker", "wait"}, containers...)...)
	lines := out.Texts()
	require.Len(t, lines, len(containers), "docker wait %v:\n%s", containers, out)
	codes := make([]int, len(lines))
	for i, l := range lines {
		c, err := strconv.Atoi(strings.TrimSpace(l))
		require.NoError(t, err, "docker wait %v:\n%s", containers, out)
		codes[i] = c
	}
	return codes
}

// state is a container's "status exitcode", or "missing" when there is none.
func state(t *testing.T, container string) string {
	t.Helper()
	out, err := runRecorded(t, "", nil, "docker", "inspect", "-f", "{{.State.Status}} {{.State.ExitCode}}", container)
	if err != nil {
		return "missing"
	}
	return strings.TrimSpace(out.String())
}

// --- the environment -----------------------------------------------------------

// dockerEnv is what every case shares: the repository and the compose command.
type dockerEnv struct {
	root    string   // the repository
	compose []string // "docker compose" (v2) when it works, else "docker-compose" (v1.29), as the Makefile picks
}

func newDockerEnv(t *testing.T) *dockerEnv {
	t.Helper()
	root, err := filepath.Abs("..")
	require.NoError(t, err)
	root, err = filepath.EvalSymlinks(root) // as the generator and docker name it
	require.NoError(t, err)
	d := &dockerEnv{root: root}
	if _, err := runRecorded(t, "", nil, "docker", "info"); err != nil {
		t.Fatalf("no Docker engine: %v", err)
	}
	if _, err := runRecorded(t, "", nil, "docker", "compose", "version"); err == nil {
		d.compose = []string{"docker", "compose"}
	} else if _, err := exec.LookPath("docker-compose"); err == nil {
		d.compose = []string{"docker-compose"}
	} else {
		t.Fatal("neither 'docker compose' nor 'docker-compose' is installed")
	}
	version, _ := runRecorded(t, "", nil, append(d.compose, "version")...)
	t.Logf("compose: %s (%s)", strings.Join(d.compose, " "), firstLine(version))
	for _, image := range []string{serverImage, clientImage} {
		if _, err := runRecorded(t, "", nil, "docker", "image", "inspect", image); err != nil {
			t.Fatalf("image %s missing: make docker-image (make test-docker builds it)", image)
		}
	}

	// The fixed names must be free, or ours (left by an interrupted run).
	ps := must(t, "docker", "ps", "-a", "--format", `{{.Names}} {{.Label "com.docker.compose.project"}}`)
	fixed := regexp.MustCompile(`^(server|client[0-9]+)$`)
	for _, l := range ps.Texts() {
		name, project, _ := strings.Cut(l, " ")
		if fixed.MatchString(name) && project != dockerProject {
			t.Fatalf("container %s belongs to another project (%q): make docker-compose-down first", name, project)
		}
	}
	if out, err := runRecorded(t, "", nil, "docker", "network", "inspect", "-f",
		`{{index .Labels "com.docker.compose.project"}}`, dockerNetwork); err == nil {
		if p := strings.TrimSpace(out.String()); p != dockerProject {
			t.Fatalf("network %s belongs to another project (%q): make docker-compose-down first", dockerNetwork, p)
		}
	}
	d.removeProject(t)
	t.Cleanup(func() { d.removeProject(t) })
	return d
}

func firstLine(r *logtest.Recorder) string {
	if lines := r.Texts(); len(lines) > 0 {
		return lines[0]
	}
	return ""
}

// projectObjects lists what the test project owns: its containers, volumes and
// networks, by compose's label.
func (d *dockerEnv) projectObjects(t *testing.T) map[string][]string {
	t.Helper()
	label := "label=com.docker.compose.project=" + dockerProject
	list := func(args ...string) []string {
		out, err := runRecorded(t, "", nil, args...)
		if err != nil {
			return nil
		}
		return slices.DeleteFunc(out.Texts(), func(s string) bool { return strings.TrimSpace(s) == "" })
	}
	return map[string][]string{
		"container": list("docker", "ps", "-aq", "--filter", label),
		"volume":    list("docker", "volume", "ls", "-q", "--filter", label),
		"network":   list("docker", "network", "ls", "-q", "--filter", label),
	}
}

// removeProject removes whatever the test project left (an interrupted run, a
// failed case without its compose file).
func (d *dockerEnv) removeProject(t *testing.T) {
	t.Helper()
	objs := d.projectObjects(t)
	for _, kind := range []string{"container", "volume", "network"} {
		if len(objs[kind]) == 0 {
			continue
		}
		args := map[string][]string{"container": {"rm", "-f"}, "volume": {"volume", "rm"}, "network": {"network", "rm"}}[kind]
		_, _ = runRecorded(t, "", nil, append(append([]string{"docker"}, args...), objs[kind]...)...)
	}
}

// project is the compose project on some compose files.
type project struct {
	d     *dockerEnv
	files []string
}

// project starts from nothing on files (absolute, or relative to the
// repository) and removes everything the case creates when it ends, the bets
// volume included.
func (d *dockerEnv) project(t *testing.T, files ...string) *project {
	t.Helper()
	p := &project{d: d}
	for _, f := range files {
		if !filepath.IsAbs(f) {
			f = filepath.Join(d.root, f)
		}
		p.files = append(p.files, f)
	}
	p.down(t)
	t.Cleanup(func() { p.down(t) })
	return p
}

func (p *project) args(args ...string) []string {
	a := append(slices.Clone(p.d.compose), "-p", dockerProject)
	for _, f := range p.files {
		a = append(a, "-f", f)
	}
	return append(a, args...)
}

// run runs the compose command with args.
func (p *project) run(t *testing.T, args ...string) (*logtest.Recorder, error) {
	t.Helper()
	return runRecorded(t, p.d.root, nil, p.args(args...)...)
}

// must runs the compose command with args and fails t when it fails.
func (p *project) must(t *testing.T, args ...string) *logtest.Recorder {
	t.Helper()
	out, err := p.run(t, args...)
	require.NoError(t, err, "%s", out)
	return out
}

// down removes the project's containers, network and bets volume.
func (p *project) down(t *testing.T) {
	t.Helper()
	_, _ = p.run(t, "down", "-v", "--remove-orphans", "-t", "1")
}

// --- data and expectations -----------------------------------------------------

// expected is what a round on some agency files must give.
type expected struct {
	dir       string              // the agency files
	agencies  int                 // 1..agencies
	bets      map[lottery.Bet]int // every bet of every file, as a multiset
	perAgency []int               // bets in agency i+1's file
	winners   []int               // winners of agency i+1
}

func expect(t *testing.T, dir string, agencies int) expected {
	t.Helper()
	e := expected{dir: dir, agencies: agencies, perAgency: make([]int, agencies)}
	e.bets, e.winners = agencyFiles(t, dir, agencies)
	for bet, n := range e.bets {
		e.perAgency[bet.Agency-1] += n
	}
	return e
}

func (e expected) total() int {
	n := 0
	for _, b := range e.perAgency {
		n += b
	}
	return n
}

// officialData writes the official dataset into the repository's .data/ (as
// `make data` does) and what .certs/ lacks for its 5 agencies (as `make certs`
// does): what deployments/docker-compose.yaml mounts.
func (d *dockerEnv) officialData(t *testing.T) expected {
	t.Helper()
	dir := filepath.Join(d.root, ".data")
	_, err := lottery.ExtractDataset(officialDataset, dir)
	require.NoError(t, err)
	_, err = pki.WriteDir(filepath.Join(d.root, ".certs"), 5, nil, false)
	require.NoError(t, err)
	e := expect(t, dir, 5)
	require.Equal(t, []int{2, 3, 3, 2, 0}, e.winners, "the official dataset's winners")
	return e
}

// generated writes a compose file for n agencies into a temporary directory,
// with generated agency files and certificates of their own beside it.
func (d *dockerEnv) generated(t *testing.T, n int) (file string, e expected) {
	t.Helper()
	tmp := t.TempDir()
	data, certs := filepath.Join(tmp, "data"), filepath.Join(tmp, "certs")
	_, err := lottery.GenerateAgencyFiles(data, n, generatedBets, uint64(n))
	require.NoError(t, err)
	_, err = pki.WriteDir(certs, n, nil, false)
	require.NoError(t, err)
	file = filepath.Join(tmp, fmt.Sprintf("docker-compose-%d.yaml", n))
	out, err := runRecorded(t, d.root, append(os.Environ(), "DATA_DIR="+data, "CERTS_DIR="+certs),
		"./scripts/generar-compose.sh", file, strconv.Itoa(n))
	require.NoError(t, err, "%s", out)
	return file, expect(t, data, n)
}

func clientNames(from, to int) []string {
	var names []string
	for i := from; i <= to; i++ {
		names = append(names, "client"+strconv.Itoa(i))
	}
	return names
}

// --- assertions on a round -----------------------------------------------------

// assertWinners asserts that an agency's output says its winners exactly once.
func assertWinners(t *testing.T, name string, rec *logtest.Recorder, want int) {
	t.Helper()
	n := 0
	for _, l := range rec.Texts() {
		if m := winnersLine.FindStringSubmatch(l); m != nil {
			n++
			assert.Equal(t, strconv.Itoa(want), m[1], "%s: cant_ganadores", name)
		}
	}
	assert.Equal(t, 1, n, "%s: one consulta_ganadores success line:\n%s", name, rec)
}

// betsOnVolume copies the bets file out of the (stopped) central and compares
// it, bet by bet, with the agency files: nothing lost, nothing stored twice.
func betsOnVolume(t *testing.T, e expected) {
	t.Helper()
	dst := filepath.Join(t.TempDir(), "bets.csv")
	must(t, "docker", "cp", "server:"+storeInContainer, dst)
	got := rows(t, lottery.LoadBets(dst))
	if maps.Equal(e.bets, got) {
		return
	}
	// A short account rather than a diff of every bet.
	perAgency := func(m map[lottery.Bet]int) map[int]int {
		c := map[int]int{}
		for b, n := range m {
			c[b.Agency] += n
		}
		return c
	}
	var differ []string
	note := func(b lottery.Bet) {
		if len(differ) < 5 {
			differ = append(differ, fmt.Sprintf("%+v: %d in the agency files, %d on the volume", b, e.bets[b], got[b]))
		}
	}
	for b, n := range e.bets {
		if got[b] != n {
			note(b)
		}
	}
	for b := range got {
		if _, ok := e.bets[b]; !ok {
			note(b)
		}
	}
	t.Errorf("the bets file on the volume is not the agency files: bets per agency %v on the volume, %v in the files; e.g.\n%s",
		perAgency(got), perAgency(e.bets), strings.Join(differ, "\n"))
}

// round is the output of a compose round, each container's followed from its start.
type round struct {
	server  *logtest.Recorder
	clients []*logtest.Recorder // client1..clientN
}

// fullDraw runs a whole round on the project: up -d, every agency sends its
// bets and gets its winners, one draw, stop -t 5, every bet on the volume.
// The stopped containers and the volume are left to the caller.
func (p *project) fullDraw(t *testing.T, e expected) round {
	t.Helper()
	p.must(t, "up", "-d")
	var r round
	names := clientNames(1, e.agencies)
	codes := waitExit(t, names...)
	for i, name := range names {
		// Read once it exited, like the central's below.
		r.clients = append(r.clients, must(t, "docker", "logs", name))
		assert.Equal(t, 0, codes[i], "%s exit code:\n%s", name, r.clients[i])
		assertWinners(t, name, r.clients[i], e.winners[i])
	}
	health := must(t, "docker", "inspect", "-f", "{{.State.Health.Status}}", "server")
	assert.Equal(t, "healthy", strings.TrimSpace(health.String()), "the central's health check, with TLS on")

	p.must(t, "stop", "-t", "5")
	// The central's whole output, read from its stopped container: a CI run
	// once found a `docker logs -f` started right after up still empty when the
	// agencies were done (it ends at once, with nothing, on a container not yet
	// started: moby/moby#37894). Nothing is followed here.
	r.server = must(t, "docker", "logs", "server")
	assert.Equal(t, 1, r.server.Count(vocab.Config.Line(logfmt.Success), "| "+vocab.Agencias.Int(e.agencies).String()+" |"),
		"the central expects %d agencies:\n%s", e.agencies, r.server)
	assert.Equal(t, 1, countMatch(r.server, sorteoSuccess), "one draw:\n%s", r.server)
	assert.Equal(t, "exited 0", state(t, "server"), "the central:\n%s", r.server)
	betsOnVolume(t, e)
	return r
}

// assertTLS asserts that the round ran with mutual TLS on both sides.
func assertTLS(t *testing.T, r round) {
	t.Helper()
	assert.Equal(t, 1, r.server.Count(vocab.Config.Line(logfmt.Success), "| "+vocab.TLSKey.Str("on").String()), "central:\n%s", r.server)
	assert.Equal(t, 1, r.server.Count(vocab.TLS.Line(logfmt.Success, vocab.Modo.Str("mutual_tls"))), "central:\n%s", r.server)
	for i, c := range r.clients {
		assert.Equal(t, 1, c.Count(agencyConfig, agencyTLSOn), "client%d:\n%s", i+1, c)
	}
}

// mount is one of a container's mounts, as docker inspect shows it.
type mount struct {
	Type        string
	Source      string
	Destination string
	RW          bool
}

// assertMounts asserts that container mounts exactly want (read-only bind
// mounts: container path -> host path) besides a volume at volumeAt (if
// any), and runs with the compose files' hardening.
func assertMounts(t *testing.T, container string, want map[string]string, volumeAt string) {
	t.Helper()
	out := must(t, "docker", "inspect", "-f",
		`{{json .Mounts}}|{{json .HostConfig.CapDrop}}|{{json .HostConfig.CapAdd}}|{{.HostConfig.ReadonlyRootfs}}|{{json .HostConfig.SecurityOpt}}`, container)
	parts := strings.Split(strings.TrimSpace(out.String()), "|")
	require.Len(t, parts, 5, "%s", out)
	var mounts []mount
	require.NoError(t, json.Unmarshal([]byte(parts[0]), &mounts))
	got := map[string]string{}
	for _, m := range mounts {
		if m.Type == "volume" && m.Destination == volumeAt {
			assert.True(t, m.RW, "%s: the bets volume is writable", container)
			continue
		}
		assert.Equal(t, "bind", m.Type, "%s: %s", container, m.Destination)
		assert.False(t, m.RW, "%s: %s is mounted read-only", container, m.Destination)
		got[m.Destination] = m.Source
	}
	assert.Equal(t, want, got, "%s mounts", container)
	assert.Equal(t, `["ALL"]`, parts[1], "%s cap_drop", container)
	assert.Equal(t, `["DAC_READ_SEARCH"]`, parts[2], "%s cap_add", container)
	assert.Equal(t, "true", parts[3], "%s read-only root file system", container)
	assert.Contains(t, parts[4], "no-new-privileges", "%s security_opt", container)
}

// --- the cases -----------------------------------------------------------------

func TestDocker(t *testing.T) {
	d := newDockerEnv(t)
	const defaultFile = "deployments/docker-compose.yaml"

	t.Run("generar-compose.sh: arguments, and deployments/docker-compose.yaml is its output", func(t *testing.T) {
		tmp := t.TempDir()
		out := filepath.Join(tmp, "bad.yaml")
		for _, bad := range [][]string{{}, {"OUT"}, {"OUT", "0"}, {"OUT", "05"}, {"OUT", "-1"}, {"OUT", "abc"},
			{"OUT", "1.5"}, {"OUT", "1000001"}, {"OUT", "1", "2"}, {"", "3"}, {"TLS=2", "OUT", "3"}} {
			env := os.Environ()
			var args []string
			for _, a := range bad {
				switch {
				case a == "OUT":
					args = append(args, out)
				case strings.HasPrefix(a, "TLS="):
					env = append(env, a)
				default:
					args = append(args, a)
				}
			}
			rec, err := runRecorded(t, d.root, env, append([]string{"./scripts/generar-compose.sh"}, args...)...)
			var ee *exec.ExitError
			if assert.ErrorAs(t, err, &ee, "%q", bad) {
				assert.Equal(t, 2, ee.ExitCode(), "%q", bad)
			}
			assert.Contains(t, rec.String(), "usage:", "%q", bad)
			assert.NoFileExists(t, out, "%q wrote a file", bad)
		}

		// Regenerated beside the committed file, so that the relative paths are the same.
		regen, err := os.CreateTemp(filepath.Join(d.root, "deployments"), ".docker-compose.regen.*.yaml")
		require.NoError(t, err)
		regen.Close()
		t.Cleanup(func() { os.Remove(regen.Name()) })
		must(t, filepath.Join(d.root, "scripts/generar-compose.sh"), regen.Name(), "5")
		want, err := os.ReadFile(filepath.Join(d.root, defaultFile))
		require.NoError(t, err)
		got, err := os.ReadFile(regen.Name())
		require.NoError(t, err)
		assert.Equal(t, string(want), string(got), "%s is not generar-compose.sh's output for N=5: regenerate it", defaultFile)
		assert.NotContains(t, string(want), d.root, "%s names a path of this machine", defaultFile)

		// At the repository's root (a git-ignored name): compose accepts it,
		// and its mounts are this repository's .data/ and .certs/.
		dev := filepath.Join(d.root, fmt.Sprintf("docker-compose-test-%d.yaml", os.Getpid()))
		t.Cleanup(func() { os.Remove(dev) })
		must(t, filepath.Join(d.root, "scripts/generar-compose.sh"), dev, "5")
		p := &project{d: d, files: []string{dev}}
		p.must(t, "config", "-q")
		resolved := p.must(t, "config").String()
		assert.Contains(t, resolved, filepath.Join(d.root, ".data/agency-5.csv"))
		assert.Contains(t, resolved, filepath.Join(d.root, ".certs/agency-5-key.pem"))
		(&project{d: d, files: []string{filepath.Join(d.root, defaultFile)}}).must(t, "config", "-q")

		// TLS=0: plaintext, nothing of .certs/ mounted.
		plain := filepath.Join(tmp, "plain.yaml")
		rec, err := runRecorded(t, d.root, append(os.Environ(), "TLS=0"), "./scripts/generar-compose.sh", plain, "2")
		require.NoError(t, err, "%s", rec)
		text, err := os.ReadFile(plain)
		require.NoError(t, err)
		assert.NotContains(t, string(text), "TLS_")
		assert.NotContains(t, string(text), ".certs")
		(&project{d: d, files: []string{plain}}).must(t, "config", "-q")
	})

	t.Run("official dataset", func(t *testing.T) {
		e := d.officialData(t)
		p := d.project(t, defaultFile)

		ok := t.Run("five agencies, deployments/docker-compose.yaml: 2 3 3 2 0", func(t *testing.T) {
			r := p.fullDraw(t, e)
			assertTLS(t, r)
			certs := filepath.Join(d.root, ".certs")
			assertMounts(t, "server", map[string]string{
				"/certs/central.pem":     filepath.Join(certs, "central.pem"),
				"/certs/central-key.pem": filepath.Join(certs, "central-key.pem"),
				"/certs/ca.pem":          filepath.Join(certs, "ca.pem"),
			}, "/var/lib/lottery")
			for i := 1; i <= 5; i++ {
				assertMounts(t, fmt.Sprintf("client%d", i), map[string]string{
					fmt.Sprintf("/data/agency-%d.csv", i):      filepath.Join(e.dir, fmt.Sprintf("agency-%d.csv", i)),
					fmt.Sprintf("/certs/agency-%d.pem", i):     filepath.Join(certs, fmt.Sprintf("agency-%d.pem", i)),
					fmt.Sprintf("/certs/agency-%d-key.pem", i): filepath.Join(certs, fmt.Sprintf("agency-%d-key.pem", i)),
					"/certs/ca.pem": filepath.Join(certs, "ca.pem"),
				}, "")
			}
			p.must(t, "down", "--remove-orphans", "-t", "1") // the bets volume stays
		})

		// The same draw again on the volume the previous case kept: the
		// agencies resume from the bets the central holds, nothing is stored
		// twice, the same winners.
		t.Run("the bets volume outlives the containers: down, up, same draw", func(t *testing.T) {
			if !ok {
				t.Skip("needs the volume of the previous case")
			}
			must(t, "docker", "volume", "inspect", dockerProject+"_bets")
			r := p.fullDraw(t, e)
			for i, c := range r.clients {
				assert.Equal(t, 1, c.Count(agencyConnected, fmt.Sprintf(agencyStored, e.perAgency[i])),
					"client%d resumed with its bets already stored:\n%s", i+1, c)
			}
			assert.Zero(t, r.server.Count(logfmttest.AnyLine(vocab.ApuestaRecibida)), "no bet stored again:\n%s", r.server)
		})
	})

	// The central dies (SIGKILL) while four agencies wait for the draw, and its
	// container is started again, as a restart policy or an operator would: it
	// recovers the bets and the four FINISHes from the volume, the four
	// reconnect, the fifth comes, and the one draw gives everyone its winners.
	t.Run("a central killed and started again resumes from the volume", func(t *testing.T) {
		e := d.officialData(t)
		p := d.project(t, defaultFile)
		p.must(t, "up", "-d", "server", "client1", "client2", "client3", "client4")
		srv := logs(t, "server")
		srv.AwaitT(t, 4, vocab.FinApuestas.Line(logfmt.Success))
		srv.AwaitT(t, 4, vocab.EsperaSorteo.Line(logfmt.InProgress))

		must(t, "docker", "kill", "server")
		awaitEnd(t, srv)
		must(t, "docker", "start", "server")
		srv = logs(t, "server") // both lives
		awaitMatch(t, srv, recoveredFour)

		p.must(t, "up", "-d", "client5")
		names := clientNames(1, 5)
		clients := make([]*logtest.Recorder, len(names))
		for i, name := range names {
			clients[i] = logs(t, name)
		}
		codes := waitExit(t, names...)
		for i, name := range names {
			awaitEnd(t, clients[i])
			assert.Equal(t, 0, codes[i], "%s exit code:\n%s", name, clients[i])
			assertWinners(t, name, clients[i], e.winners[i])
		}
		p.must(t, "stop", "-t", "5")
		awaitEnd(t, srv)
		assert.Equal(t, 1, countMatch(srv, sorteoSuccess), "one draw:\n%s", srv)
		betsOnVolume(t, e)
	})

	t.Run("make docker-compose-up: a fresh round each time, RESUME=1 continues", func(t *testing.T) {
		e := d.officialData(t)
		p := d.project(t, defaultFile)
		// The Makefile as a person runs it: none of this test's make's
		// variables (a jobserver it could not reach would warn).
		env := slices.DeleteFunc(os.Environ(), func(kv string) bool {
			name, _, _ := strings.Cut(kv, "=")
			return slices.Contains([]string{"MAKEFLAGS", "MFLAGS", "MAKELEVEL", "MAKEOVERRIDES", "GNUMAKEFLAGS"}, name)
		})
		// up runs make docker-compose-up and checks its round: the central
		// started from stored bets, each agency found its own stored (or none)
		// and got its winners, and the way up was quiet. It returns make's
		// output and the central's.
		up := func(t *testing.T, what string, stored int, args ...string) (out, srv *logtest.Recorder) {
			t.Helper()
			out, err := runRecorded(t, d.root, env, append([]string{"make", "--no-print-directory", "docker-compose-up",
				"COMPOSE_PROJECT_NAME=" + dockerProject, "COMPOSE_FILE=" + defaultFile}, args...)...)
			require.NoError(t, err, "%s", out)
			names := clientNames(1, 5)
			codes := waitExit(t, names...)
			for _, l := range out.Texts() {
				assert.NotRegexp(t, noise, l, "%s: noise on the way up", what)
			}
			srv = logs(t, "server")
			srv.AwaitT(t, 1, vocab.Recuperacion.Line(logfmt.Success), "| "+vocab.Apuestas.Int(stored).String()+" |")
			for i, name := range names {
				c := logs(t, name)
				awaitEnd(t, c)
				almacenadas := 0
				if stored > 0 {
					almacenadas = e.perAgency[i]
				}
				assert.Equal(t, 1, c.Count(agencyConnected, fmt.Sprintf(agencyStored, almacenadas)),
					"%s: %s found %d of its bets stored:\n%s", what, name, almacenadas, c)
				assert.Equal(t, 0, codes[i], "%s: %s exit code:\n%s", what, name, c)
				assertWinners(t, name, c, e.winners[i])
			}
			return out, srv
		}
		up(t, "first round", 0)
		out, _ := up(t, "second round (fresh)", 0)
		assert.Equal(t, 1, out.Count("a fresh round: removing "+dockerProject+"_bets"), "it says it removed the volume:\n%s", out)
		_, srv := up(t, "RESUME=1", e.total(), "RESUME=1")
		p.must(t, "stop", "-t", "1")
		awaitEnd(t, srv) // the central's container of this round only
		assert.Zero(t, srv.Count(logfmttest.AnyLine(vocab.ApuestaRecibida)), "RESUME=1: no bet stored again:\n%s", srv)
	})

	for _, g := range []struct {
		name string
		n    int
	}{{"generated compose, 1 agency", 1}, {"generated compose, 10 agencies", 10}} {
		t.Run(g.name, func(t *testing.T) {
			file, e := d.generated(t, g.n)
			p := d.project(t, file)
			assertTLS(t, p.fullDraw(t, e))
		})
	}

	t.Run("stop -t 5 while four agencies wait for the draw", func(t *testing.T) {
		d.officialData(t)
		p := d.project(t, defaultFile)
		p.must(t, "up", "-d", "server", "client1", "client2", "client3", "client4") // client5 never comes
		srv := logs(t, "server")
		names := clientNames(1, 4)
		clients := make([]*logtest.Recorder, len(names))
		for i, name := range names {
			clients[i] = logs(t, name)
		}
		srv.AwaitT(t, 4, vocab.FinApuestas.Line(logfmt.Success))
		srv.AwaitT(t, 4, vocab.EsperaSorteo.Line(logfmt.InProgress))
		assert.Zero(t, srv.Count(logfmttest.AnyLine(vocab.Sorteo)), "no draw without the fifth agency")

		start := time.Now()
		p.must(t, "stop", "-t", "5")
		took := time.Since(start)
		assert.Less(t, took, 5*time.Second, "stopped before the grace period ran out")
		for _, name := range append([]string{"server"}, names...) {
			assert.Equal(t, "exited 0", state(t, name), name)
		}
		assert.Equal(t, "missing", state(t, "client5"), "client5 was never created")

		awaitEnd(t, srv)
		assert.Equal(t, 1, srv.Count(vocab.CerrarListener.Line(logfmt.Success)), "%s", srv)
		for i := 1; i <= 4; i++ {
			assert.Equal(t, 1, srv.Count(vocab.CerrarConexion.Line(logfmt.Success, vocab.Agencia.Int(i))+" |"),
				"cerrar_conexion of agency %d:\n%s", i, srv)
		}
		assert.Equal(t, 1, srv.Count(vocab.CerrarArchivoApuestas.Line(logfmt.Success)), "%s", srv)
		lines := srv.Texts()
		require.NotEmpty(t, lines)
		assert.Regexp(t, shutdownSuccess, lines[len(lines)-1], "the central's last line")
		assert.Equal(t, 4, srv.Count(vocab.EsperaSorteo.Line(logfmt.Fail), "| "+vocab.Motivo.Str("conexion_cerrada").String()),
			"each parked wait ended:\n%s", srv)
		assert.Zero(t, countMatch(srv, errorLine), "no ERROR line:\n%s", srv)
		for i, c := range clients {
			awaitEnd(t, c)
			assert.Equal(t, 1, c.Count(agencyShutdown), "client%d:\n%s", i+1, c)
			assert.Zero(t, c.Count(agencyConsult), "client%d:\n%s", i+1, c)
		}
	})

	// Two agency containers that are not who they say: one presents agency
	// 2's certificate and says HELLO 3, the other has no certificate at all.
	// Both fail at once with the reason; the honest agencies get their winners
	// and the draw is that of their files alone.
	t.Run("TLS: another agency's certificate or none is refused, the honest agencies get their winners", func(t *testing.T) {
		file, e := d.generated(t, 3)
		dir := filepath.Dir(file)
		certs := filepath.Join(dir, "certs")
		impostors := filepath.Join(dir, "impostors.yaml")
		bind := func(src, dst string) string {
			return fmt.Sprintf("      - {type: bind, source: %q, target: %q, read_only: true}\n", src, dst)
		}
		service := func(name, tlsEnv, tlsMounts string) string {
			return fmt.Sprintf(`  %[1]s:
    container_name: %[1]s
    image: %[2]s
    env_file: %[3]q
    environment:
      CLI_ID: "3"
      CLI_DATA_PATH: /data/agency-3.csv
%[4]s    volumes:
%[5]s%[6]s    networks: [lottery_net]
    depends_on:
      server:
        condition: service_healthy
`, name, clientImage, filepath.Join(d.root, "deployments/client.env"), tlsEnv,
				bind(filepath.Join(e.dir, "agency-3.csv"), "/data/agency-3.csv"), tlsMounts)
		}
		override := "services:\n" +
			service("impostor-cert",
				"      CLI_TLS_CERT: /certs/agency-2.pem\n      CLI_TLS_KEY: /certs/agency-2-key.pem\n      CLI_TLS_CA: /certs/ca.pem\n",
				bind(filepath.Join(certs, "agency-2.pem"), "/certs/agency-2.pem")+
					bind(filepath.Join(certs, "agency-2-key.pem"), "/certs/agency-2-key.pem")+
					bind(filepath.Join(certs, "ca.pem"), "/certs/ca.pem")) +
			service("impostor-plaintext", "", "")
		require.NoError(t, os.WriteFile(impostors, []byte(override), 0o644))

		p := d.project(t, file, impostors)
		p.must(t, "up", "-d")
		srv := logs(t, "server")
		names := append(clientNames(1, 3), "impostor-cert", "impostor-plaintext")
		recs := make([]*logtest.Recorder, len(names))
		for i, name := range names {
			recs[i] = logs(t, name)
		}
		codes := waitExit(t, names...)
		for i, name := range names {
			awaitEnd(t, recs[i])
			if i < 3 {
				assert.Equal(t, 0, codes[i], "%s exit code:\n%s", name, recs[i])
				assertWinners(t, name, recs[i], e.winners[i])
				continue
			}
			if lines := recs[i].Texts(); len(lines) > 0 {
				t.Logf("%s exited %d: %s", name, codes[i], lines[len(lines)-1])
			}
			assert.Equal(t, 1, codes[i], "%s exit code:\n%s", name, recs[i])
			assert.Equal(t, 1, recs[i].Count(logfmttest.AnyFail, "unauthorized"), "%s: a clear refusal:\n%s", name, recs[i])
			assert.Zero(t, recs[i].Count(agencyWinners), "%s:\n%s", name, recs[i])
		}
		srv.AwaitT(t, 1, vocab.Autorizacion.Line(logfmt.Fail), logfmttest.Fields(vocab.AgenciaCertificado.Str("agency-2"), vocab.AgenciaDeclarada.Int(3)))
		srv.AwaitT(t, 1, vocab.TLSHandshake.Line(logfmt.Fail), vocab.Motivo.Str("not_tls").String()+" |")
		p.must(t, "stop", "-t", "5")
		awaitEnd(t, srv)
		assert.Equal(t, 1, countMatch(srv, sorteoSuccess), "one draw:\n%s", srv)
		assert.Equal(t, 1, srv.Count(vocab.Config.Line(logfmt.Success), "| "+vocab.TLSKey.Str("on").String()), "%s", srv)
		betsOnVolume(t, e) // the honest agencies' bets, and nothing else
	})

	t.Run("validar-servidor.sh", func(t *testing.T) {
		p := d.project(t, defaultFile)
		since := strconv.FormatInt(time.Now().Unix()-1, 10)
		p.must(t, "up", "-d", "server")
		id := strings.TrimSpace(must(t, "docker", "inspect", "-f", "{{.Id}}", "server").String())
		health := follow(t, "docker", "events", "--since", since, "--filter", "container="+id,
			"--filter", "event=health_status", "--format", "{{.Status}}")
		health.AwaitT(t, 1, "health_status: healthy")

		validar := func(t *testing.T, what string, want logfmt.Result, env ...string) {
			t.Helper()
			start := time.Now()
			out, err := runRecorded(t, d.root, append(append(os.Environ(), "VALIDAR_TIMEOUT=10"), env...),
				"./scripts/validar-servidor.sh")
			took := time.Since(start)
			if want == logfmt.Success {
				assert.NoError(t, err, "%s:\n%s", what, out)
			} else {
				var ee *exec.ExitError
				if assert.ErrorAs(t, err, &ee, "%s:\n%s", what, out) {
					assert.Equal(t, 1, ee.ExitCode(), "%s:\n%s", what, out)
				}
			}
			lines := out.Texts()
			if assert.NotEmpty(t, lines, what) {
				assert.Equal(t, vocab.TestServer.Line(want), lines[len(lines)-1], "%s:\n%s", what, out)
			}
			assert.LessOrEqual(t, took, 15*time.Second, "%s: answered within its bound", what)
		}
		validar(t, "against the running central, over TLS", logfmt.Success)
		assert.Empty(t, strings.TrimSpace(must(t, "docker", "port", "server").String()), "the central publishes no port")
		validar(t, "in plaintext against the TLS central", logfmt.Fail, "TLS=0")
		if _, err := runRecorded(t, "", nil, "docker", "pause", "server"); err == nil {
			validar(t, "against a frozen central (docker pause)", logfmt.Fail)
			must(t, "docker", "unpause", "server")
		} else {
			t.Log("docker pause unavailable here: the frozen central is not tried")
		}
		p.must(t, "stop", "-t", "1", "server")
		validar(t, "against the stopped central", logfmt.Fail)
		p.down(t)
		validar(t, "without the network", logfmt.Fail)
	})

	// Each case removed what it made (its t.Cleanup): nothing is left.
	t.Run("cleanup leaves nothing behind", func(t *testing.T) {
		for kind, ids := range d.projectObjects(t) {
			assert.Empty(t, ids, "%ss of %s left", kind, dockerProject)
		}
		_, err := runRecorded(t, "", nil, "docker", "network", "inspect", dockerNetwork)
		assert.Error(t, err, "the network %s is left", dockerNetwork)
		probes := must(t, "docker", "ps", "-aq", "--filter", "name=^validar-servidor-")
		assert.Empty(t, strings.TrimSpace(probes.String()), "validar-servidor.sh's probe containers are left")
	})
}
