//go:build docker

package main

// The draw in real containers, driven through the compose files, the compose
// command and the Makefile's targets. `make test-docker` builds bin/ and the
// images, then runs
//
//	cd server && go test -tags docker -race -count=1 -run '^TestDocker$' -v -timeout 30m .
//
// Every case runs with mutual TLS, the compose files' default. Compose names
// everything after the project (containers, the network <project>_net, the
// volume <project>_bets), so the cases run in projects of their own,
// lottery-test and, for two rounds side by side, lottery-test-a and -b, beside
// whatever `make docker-compose-up` project runs: its containers, network and
// volume are not touched, and the test rounds publish their status page on a
// port Docker picks (DOCKER_ADMIN_PORT=0) or one the kernel just found free,
// not on the default 9091. A case
// finds its containers by compose's labels (project, service), not by name.
// Each case removes what it created (compose down -v, or the make targets);
// the last one checks that nothing is left.
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
	"io"
	"maps"
	"net/http"
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
	// The network compose makes for a project: the compose files' "net".
	netSuffix   = "_net"
	serverImage = "lottery-server:latest"
	clientImage = "lottery-client:latest"
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
	// What down and clean must not print.
	complaint = regexp.MustCompile(`(?i)error|not found|no such|warn|fail`)
	// The status page's URL as the make targets print it.
	statusURL = regexp.MustCompile(`^docker-compose-(up|logs): status page and metrics at (http://127\.0\.0\.1:[0-9]+/) \(/status\.json, /metrics, /healthz\)$`)
)

// testProjects are every compose project the cases use: what an interrupted
// run left of them is removed first.
var testProjects = []string{dockerProject, dockerProject + "-a", dockerProject + "-b"}

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

	for _, name := range testProjects {
		d.removeProject(t, name)
	}
	t.Cleanup(func() {
		for _, name := range testProjects {
			d.removeProject(t, name)
		}
	})
	return d
}

// runMake runs make with args in the repository as a person runs it: none
// of this test's make's variables (a jobserver it could not reach would warn).
func (d *dockerEnv) runMake(t *testing.T, args ...string) (*logtest.Recorder, error) {
	t.Helper()
	env := slices.DeleteFunc(os.Environ(), func(kv string) bool {
		name, _, _ := strings.Cut(kv, "=")
		return slices.Contains([]string{"MAKEFLAGS", "MFLAGS", "MAKELEVEL", "MAKEOVERRIDES", "GNUMAKEFLAGS"}, name)
	})
	return runRecorded(t, d.root, env, append([]string{"make", "--no-print-directory"}, args...)...)
}

// mustMake is runMake that fails t when make fails.
func (d *dockerEnv) mustMake(t *testing.T, args ...string) *logtest.Recorder {
	t.Helper()
	out, err := d.runMake(t, args...)
	require.NoError(t, err, "%s", out)
	return out
}

func lastLine(r *logtest.Recorder) string {
	if lines := r.Texts(); len(lines) > 0 {
		return lines[len(lines)-1]
	}
	return ""
}

// printedURL is the status page's URL in a make target's output.
func printedURL(t *testing.T, out *logtest.Recorder) string {
	t.Helper()
	for _, l := range out.Texts() {
		if m := statusURL.FindStringSubmatch(l); m != nil {
			return m[2]
		}
	}
	t.Fatalf("no status page URL printed:\n%s", out)
	return ""
}

// get fetches url (bounded by dockerBound) and returns its status code and body.
func get(t *testing.T, url string) (int, string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), dockerBound)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	require.NoError(t, err)
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err, "GET %s", url)
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	require.NoError(t, err, "GET %s", url)
	return resp.StatusCode, string(body)
}

func firstLine(r *logtest.Recorder) string {
	if lines := r.Texts(); len(lines) > 0 {
		return lines[0]
	}
	return ""
}

// projectObjects lists what a project owns: its containers, volumes and
// networks, by compose's label.
func (d *dockerEnv) projectObjects(t *testing.T, name string) map[string][]string {
	t.Helper()
	label := "label=com.docker.compose.project=" + name
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

// removeProject removes whatever a test project left (an interrupted run, a
// failed case without its compose file).
func (d *dockerEnv) removeProject(t *testing.T, name string) {
	t.Helper()
	objs := d.projectObjects(t, name)
	for _, kind := range []string{"container", "volume", "network"} {
		if len(objs[kind]) == 0 {
			continue
		}
		args := map[string][]string{"container": {"rm", "-f"}, "volume": {"volume", "rm"}, "network": {"network", "rm"}}[kind]
		_, _ = runRecorded(t, "", nil, append(append([]string{"docker"}, args...), objs[kind]...)...)
	}
}

// project is a compose project on some compose files.
type project struct {
	d     *dockerEnv
	name  string
	files []string
}

// project is projectNamed in the project lottery-test.
func (d *dockerEnv) project(t *testing.T, files ...string) *project {
	t.Helper()
	return d.projectNamed(t, dockerProject, files...)
}

// projectNamed starts the project name from nothing on files (absolute, or
// relative to the repository) and removes everything the case creates when it
// ends, the bets volume included.
func (d *dockerEnv) projectNamed(t *testing.T, name string, files ...string) *project {
	t.Helper()
	p := &project{d: d, name: name}
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
	a := append(slices.Clone(p.d.compose), "-p", p.name)
	for _, f := range p.files {
		a = append(a, "-f", f)
	}
	return append(a, args...)
}

// run runs the compose command with args. The status page is published on a
// port Docker picks, so that a round of `make docker-compose-up` (9091) or
// another case's project may run beside.
func (p *project) run(t *testing.T, args ...string) (*logtest.Recorder, error) {
	t.Helper()
	return runRecorded(t, p.d.root, append(os.Environ(), "DOCKER_ADMIN_PORT=0"), p.args(args...)...)
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

// container is the ID of the project's container of service, by compose's
// labels ("" when there is none): compose names it after the project, and
// differently in v1 (p_server_1) and v2 (p-server-1).
func (p *project) container(t *testing.T, service string) string {
	t.Helper()
	ids := fields(docker(t, "ps", "-aq", "--filter", "label=com.docker.compose.project="+p.name,
		"--filter", "label=com.docker.compose.service="+service))
	require.LessOrEqual(t, len(ids), 1, "containers of service %s in %s", service, p.name)
	if len(ids) == 0 {
		return ""
	}
	return ids[0]
}

// containers are the IDs of the project's containers of services, which must exist.
func (p *project) containers(t *testing.T, services ...string) []string {
	t.Helper()
	ids := make([]string, len(services))
	for i, s := range services {
		ids[i] = p.container(t, s)
		require.NotEmpty(t, ids[i], "no container of service %s in %s", s, p.name)
	}
	return ids
}

// server is the ID of the project's central container.
func (p *project) server(t *testing.T) string {
	t.Helper()
	return p.containers(t, "server")[0]
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

// betsOnVolume copies the bets file out of the (stopped) central container
// server and compares it, bet by bet, with the agency files: nothing lost,
// nothing stored twice.
func betsOnVolume(t *testing.T, server string, e expected) {
	t.Helper()
	dst := filepath.Join(t.TempDir(), "bets.csv")
	must(t, "docker", "cp", server+":"+storeInContainer, dst)
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
	ids := p.containers(t, names...)
	server := p.server(t)
	codes := waitExit(t, ids...)
	for i, name := range names {
		// Read once it exited, like the central's below.
		r.clients = append(r.clients, must(t, "docker", "logs", ids[i]))
		assert.Equal(t, 0, codes[i], "%s exit code:\n%s", name, r.clients[i])
		assertWinners(t, name, r.clients[i], e.winners[i])
	}
	health := must(t, "docker", "inspect", "-f", "{{.State.Health.Status}}", server)
	assert.Equal(t, "healthy", strings.TrimSpace(health.String()), "the central's health check, with TLS on")

	p.must(t, "stop", "-t", "5")
	// The central's whole output, read from its stopped container: a CI run
	// once found a `docker logs -f` started right after up still empty when the
	// agencies were done (it ends at once, with nothing, on a container not yet
	// started: moby/moby#37894). Nothing is followed here.
	r.server = must(t, "docker", "logs", server)
	assert.Equal(t, 1, r.server.Count(vocab.Config.Line(logfmt.Success), "| "+vocab.Agencias.Int(e.agencies).String()+" |"),
		"the central expects %d agencies:\n%s", e.agencies, r.server)
	assert.Equal(t, 1, countMatch(r.server, sorteoSuccess), "one draw:\n%s", r.server)
	assert.Equal(t, "exited 0", state(t, server), "the central:\n%s", r.server)
	betsOnVolume(t, server, e)
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

// assertMounts asserts that the project's container of service (container in
// the messages) mounts exactly want (read-only bind mounts: container path ->
// host path) besides a volume at volumeAt (if any), and runs with the compose
// files' hardening.
func assertMounts(t *testing.T, p *project, container string, want map[string]string, volumeAt string) {
	t.Helper()
	out := must(t, "docker", "inspect", "-f",
		`{{json .Mounts}}|{{json .HostConfig.CapDrop}}|{{json .HostConfig.CapAdd}}|{{.HostConfig.ReadonlyRootfs}}|{{json .HostConfig.SecurityOpt}}`,
		p.containers(t, container)[0])
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
		// Nothing named but by the project; the status page on the host's loopback only.
		assert.NotContains(t, string(want), "container_name", "%s names a container", defaultFile)
		assert.NotRegexp(t, `(?m)^networks:\n(  .*\n)*    name:`, string(want), "%s names its network", defaultFile)
		assert.NotRegexp(t, `(?m)^volumes:\n(  .*\n)*    (name|external):`, string(want), "%s names its volume", defaultFile)
		assert.Equal(t, 1, strings.Count(string(want), `- "127.0.0.1:${DOCKER_ADMIN_PORT:-9091}:9090"`),
			"%s publishes the admin port on 127.0.0.1 once:\n%s", defaultFile, want)

		// At the repository's root (a git-ignored name): compose accepts it,
		// and its mounts are this repository's .data/ and .certs/.
		dev := filepath.Join(d.root, fmt.Sprintf("docker-compose-test-%d.yaml", os.Getpid()))
		t.Cleanup(func() { os.Remove(dev) })
		must(t, filepath.Join(d.root, "scripts/generar-compose.sh"), dev, "5")
		p := &project{d: d, name: dockerProject, files: []string{dev}}
		p.must(t, "config", "-q")
		resolved := p.must(t, "config").String()
		assert.Contains(t, resolved, filepath.Join(d.root, ".data/agency-5.csv"))
		assert.Contains(t, resolved, filepath.Join(d.root, ".certs/agency-5-key.pem"))
		(&project{d: d, name: dockerProject, files: []string{filepath.Join(d.root, defaultFile)}}).must(t, "config", "-q")

		// TLS=0: plaintext, nothing of .certs/ mounted.
		plain := filepath.Join(tmp, "plain.yaml")
		rec, err := runRecorded(t, d.root, append(os.Environ(), "TLS=0"), "./scripts/generar-compose.sh", plain, "2")
		require.NoError(t, err, "%s", rec)
		text, err := os.ReadFile(plain)
		require.NoError(t, err)
		assert.NotContains(t, string(text), "TLS_")
		assert.NotContains(t, string(text), ".certs")
		(&project{d: d, name: dockerProject, files: []string{plain}}).must(t, "config", "-q")
	})

	t.Run("official dataset", func(t *testing.T) {
		e := d.officialData(t)
		p := d.project(t, defaultFile)

		ok := t.Run("five agencies, deployments/docker-compose.yaml: 2 3 3 2 0", func(t *testing.T) {
			r := p.fullDraw(t, e)
			assertTLS(t, r)
			certs := filepath.Join(d.root, ".certs")
			assertMounts(t, p, "server", map[string]string{
				"/certs/central.pem":     filepath.Join(certs, "central.pem"),
				"/certs/central-key.pem": filepath.Join(certs, "central-key.pem"),
				"/certs/ca.pem":          filepath.Join(certs, "ca.pem"),
			}, "/var/lib/lottery")
			for i := 1; i <= 5; i++ {
				assertMounts(t, p, fmt.Sprintf("client%d", i), map[string]string{
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
		server := p.server(t)
		srv := logs(t, server)
		srv.AwaitT(t, 4, vocab.FinApuestas.Line(logfmt.Success))
		srv.AwaitT(t, 4, vocab.EsperaSorteo.Line(logfmt.InProgress))

		must(t, "docker", "kill", server)
		awaitEnd(t, srv)
		must(t, "docker", "start", server)
		srv = logs(t, server) // both lives
		awaitMatch(t, srv, recoveredFour)

		p.must(t, "up", "-d", "client5")
		names := clientNames(1, 5)
		ids := p.containers(t, names...)
		clients := make([]*logtest.Recorder, len(names))
		for i, id := range ids {
			clients[i] = logs(t, id)
		}
		codes := waitExit(t, ids...)
		for i, name := range names {
			awaitEnd(t, clients[i])
			assert.Equal(t, 0, codes[i], "%s exit code:\n%s", name, clients[i])
			assertWinners(t, name, clients[i], e.winners[i])
		}
		p.must(t, "stop", "-t", "5")
		awaitEnd(t, srv)
		assert.Equal(t, 1, countMatch(srv, sorteoSuccess), "one draw:\n%s", srv)
		betsOnVolume(t, server, e)
	})

	t.Run("make docker-compose-up: a fresh round each time, RESUME=1 continues", func(t *testing.T) {
		e := d.officialData(t)
		p := d.project(t, defaultFile)
		// up runs make docker-compose-up and checks its round: the central
		// started from stored bets, each agency found its own stored (or none)
		// and got its winners, and the way up was quiet. It returns make's
		// output and the central's.
		up := func(t *testing.T, what string, stored int, args ...string) (out, srv *logtest.Recorder) {
			t.Helper()
			out = d.mustMake(t, append([]string{"docker-compose-up", "COMPOSE_PROJECT_NAME=" + dockerProject,
				"COMPOSE_FILE=" + defaultFile, "DOCKER_ADMIN_PORT=0"}, args...)...)
			names := clientNames(1, 5)
			ids := p.containers(t, names...)
			codes := waitExit(t, ids...)
			for _, l := range out.Texts() {
				assert.NotRegexp(t, noise, l, "%s: noise on the way up", what)
			}
			srv = logs(t, p.server(t))
			srv.AwaitT(t, 1, vocab.Recuperacion.Line(logfmt.Success), "| "+vocab.Apuestas.Int(stored).String()+" |")
			for i, name := range names {
				c := logs(t, ids[i])
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

	// Two rounds as an operator runs them, under two project names at once:
	// each its own containers, network, volume and status page port (one
	// chosen, one Docker's pick); each status page answers on the URL its
	// docker-compose-up printed; each docker-compose-logs ends with the
	// verdict; docker-compose-down, then docker-compose-clean says only what
	// it removed.
	t.Run("make docker-compose-up under two project names at once: the printed status page, the verdict, a quiet clean after down", func(t *testing.T) {
		e := d.officialData(t)
		rounds := []struct {
			name string
			port int // DOCKER_ADMIN_PORT; 0: Docker picks
			url  string
		}{
			{name: dockerProject + "-a", port: freePort(t)},
			{name: dockerProject + "-b", port: 0},
		}
		args := func(i int, target string) []string {
			return []string{target, "COMPOSE_PROJECT_NAME=" + rounds[i].name, "DOCKER_ADMIN_PORT=" + strconv.Itoa(rounds[i].port)}
		}
		for i := range rounds {
			d.projectNamed(t, rounds[i].name, defaultFile) // its leftovers gone now, everything gone at the end
			out := d.mustMake(t, args(i, "docker-compose-up")...)
			for _, l := range out.Texts() {
				assert.NotRegexp(t, noise, l, "%s: noise on the way up", rounds[i].name)
			}
			rounds[i].url = printedURL(t, out)
			if rounds[i].port != 0 {
				assert.Equal(t, fmt.Sprintf("http://127.0.0.1:%d/", rounds[i].port), rounds[i].url, "the port chosen")
			}
		}

		// Both up at once, nothing shared.
		seen := map[string]string{}
		distinct := func(what, name, v string) {
			t.Helper()
			if other, ok := seen[v]; ok {
				t.Errorf("%s %s of %s is %s's too", what, v, name, other)
			}
			seen[v] = name
		}
		for _, r := range rounds {
			p := &project{d: d, name: r.name}
			server := p.server(t)
			assert.Equal(t, "running", strings.Fields(state(t, server))[0], "%s's central", r.name)
			distinct("URL", r.name, r.url)
			for _, id := range append(p.containers(t, clientNames(1, 5)...), server) {
				distinct("container", r.name, id)
				name := strings.TrimPrefix(docker(t, "inspect", "-f", "{{.Name}}", id), "/")
				assert.True(t, strings.HasPrefix(name, r.name), "container %s is named after the project %s", name, r.name)
				distinct("container name", r.name, name)
			}
			objs := d.projectObjects(t, r.name)
			for kind, want := range map[string]string{"network": r.name + netSuffix, "volume": r.name + "_bets"} {
				if assert.Len(t, objs[kind], 1, "%s's %ss", r.name, kind) {
					got := docker(t, kind, "inspect", "-f", "{{.Name}}", objs[kind][0])
					assert.Equal(t, want, got, "%s's %s", r.name, kind)
					distinct(kind, r.name, got)
				}
			}
		}

		for i, r := range rounds {
			t.Run(r.name, func(t *testing.T) {
				out := d.mustMake(t, args(i, "docker-compose-logs")...)
				lines := out.Texts()
				require.GreaterOrEqual(t, len(lines), 2, "%s", out)
				assert.Regexp(t, "^"+regexp.QuoteMeta("docker-compose-logs: every agency got its winners (2,3,3,2,0 for agencies 1..5, "+
					"as their data files say) and exited 0, and the round's digest ")+"[0-9a-f]{64}"+
					regexp.QuoteMeta(" equals bin/dataset digest of their data files in ")+`\S+$`,
					lines[len(lines)-1], "the verdict:\n%s", out)
				assert.Equal(t, "docker-compose-logs: status page and metrics at "+r.url+" (/status.json, /metrics, /healthz)",
					lines[len(lines)-2], "the URL again:\n%s", out)

				// The status page answers on the printed URL, after the round.
				code, body := get(t, r.url+"healthz")
				assert.Equal(t, http.StatusOK, code, "/healthz: %s", body)
				assert.Equal(t, "ok\n", body, "/healthz")
				code, body = get(t, r.url+"status.json")
				require.Equal(t, http.StatusOK, code, "/status.json: %s", body)
				var status struct {
					Agencies int `json:"agencies"`
					Rows     []struct {
						Agency  int  `json:"agency"`
						Winners *int `json:"winners"`
					} `json:"rows"`
					Draw struct {
						State string `json:"state"`
					} `json:"draw"`
				}
				require.NoError(t, json.Unmarshal([]byte(body), &status), "/status.json: %s", body)
				assert.Equal(t, 5, status.Agencies, "/status.json: %s", body)
				assert.Equal(t, "drawn", status.Draw.State, "/status.json: %s", body)
				winners := make([]int, 0, len(status.Rows))
				for _, row := range status.Rows {
					if assert.NotNil(t, row.Winners, "agency %d's winners: %s", row.Agency, body) {
						winners = append(winners, *row.Winners)
					}
				}
				assert.Equal(t, e.winners, winners, "/status.json's winners: %s", body)
			})
		}

		// down, then clean: no complaint, and nothing of either project left.
		for i, r := range rounds {
			out := d.mustMake(t, args(i, "docker-compose-down")...)
			for _, l := range out.Texts() {
				assert.NotRegexp(t, complaint, l, "%s: docker-compose-down:\n%s", r.name, out)
			}
			volume := r.name + "_bets"
			must(t, "docker", "volume", "inspect", volume) // down keeps it
			out = d.mustMake(t, args(i, "docker-compose-clean")...)
			assert.Equal(t, []string{"docker-compose-clean: removed the volume " + volume}, out.Texts(),
				"%s: docker-compose-clean after down", r.name)
			for kind, ids := range d.projectObjects(t, r.name) {
				assert.Empty(t, ids, "%ss of %s left", kind, r.name)
			}
			out = d.mustMake(t, args(i, "docker-compose-clean")...)
			assert.Equal(t, []string{"docker-compose-clean: nothing of project " + r.name + " is left"}, out.Texts(),
				"%s: docker-compose-clean again", r.name)
		}
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
		server := p.server(t)
		srv := logs(t, server)
		names := clientNames(1, 4)
		ids := p.containers(t, names...)
		clients := make([]*logtest.Recorder, len(names))
		for i, id := range ids {
			clients[i] = logs(t, id)
		}
		srv.AwaitT(t, 4, vocab.FinApuestas.Line(logfmt.Success))
		srv.AwaitT(t, 4, vocab.EsperaSorteo.Line(logfmt.InProgress))
		assert.Zero(t, srv.Count(logfmttest.AnyLine(vocab.Sorteo)), "no draw without the fifth agency")

		start := time.Now()
		p.must(t, "stop", "-t", "5")
		took := time.Since(start)
		assert.Less(t, took, 5*time.Second, "stopped before the grace period ran out")
		for i, id := range append([]string{server}, ids...) {
			assert.Equal(t, "exited 0", state(t, id), append([]string{"server"}, names...)[i])
		}
		assert.Empty(t, p.container(t, "client5"), "client5 was never created")

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

		// What make docker-compose-logs says of such a round: which agency, and why.
		out, err := d.runMake(t, "docker-compose-logs", "COMPOSE_PROJECT_NAME="+dockerProject, "COMPOSE_FILE="+defaultFile)
		assert.Error(t, err, "a FAILED verdict fails the target:\n%s", out)
		said := slices.DeleteFunc(out.Texts(), func(l string) bool { return !strings.HasPrefix(l, "docker-compose-logs: ") })
		assert.Equal(t, []string{
			"docker-compose-logs: the central has stopped (exited 0): no status page",
			"docker-compose-logs: FAILED: agency 1 exited 0 without its winners; agency 2 exited 0 without its winners; " +
				"agency 3 exited 0 without its winners; agency 4 exited 0 without its winners; agency 5 has no container",
		}, said, "the URL and the verdict:\n%s", out)
		assert.Regexp(t, `^make: \*\*\* .*docker-compose-logs.* Error 1$`, lastLine(out), "then make's own line")
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
    image: %[2]s
    env_file: %[3]q
    environment:
      CLI_ID: "3"
      CLI_DATA_PATH: /data/agency-3.csv
%[4]s    volumes:
%[5]s%[6]s    networks: [net]
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
		server := p.server(t)
		srv := logs(t, server)
		names := append(clientNames(1, 3), "impostor-cert", "impostor-plaintext")
		ids := p.containers(t, names...)
		recs := make([]*logtest.Recorder, len(names))
		for i, id := range ids {
			recs[i] = logs(t, id)
		}
		codes := waitExit(t, ids...)
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
		betsOnVolume(t, server, e) // the honest agencies' bets, and nothing else
	})

	t.Run("validar-servidor.sh", func(t *testing.T) {
		p := d.project(t, defaultFile)
		since := strconv.FormatInt(time.Now().Unix()-1, 10)
		p.must(t, "up", "-d", "server")
		server := p.server(t)
		id := strings.TrimSpace(must(t, "docker", "inspect", "-f", "{{.Id}}", server).String())
		health := follow(t, "docker", "events", "--since", since, "--filter", "container="+id,
			"--filter", "event=health_status", "--format", "{{.Status}}")
		health.AwaitT(t, 1, "health_status: healthy")

		validar := func(t *testing.T, what string, want logfmt.Result, env ...string) {
			t.Helper()
			start := time.Now()
			// The network is the project's: lottery-test_net.
			out, err := runRecorded(t, d.root, append(append(os.Environ(), "VALIDAR_TIMEOUT=10",
				"COMPOSE_PROJECT_NAME="+dockerProject), env...), "./scripts/validar-servidor.sh")
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
		// Only the admin port, only on the host's loopback; not the agencies' port.
		assert.Regexp(t, `^9090/tcp -> 127\.0\.0\.1:[1-9][0-9]*$`, strings.TrimSpace(must(t, "docker", "port", server).String()),
			"the central publishes its admin port on 127.0.0.1, nothing else")
		validar(t, "in plaintext against the TLS central", logfmt.Fail, "TLS=0")
		if _, err := runRecorded(t, "", nil, "docker", "pause", server); err == nil {
			validar(t, "against a frozen central (docker pause)", logfmt.Fail)
			must(t, "docker", "unpause", server)
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
		for _, name := range testProjects {
			for kind, ids := range d.projectObjects(t, name) {
				assert.Empty(t, ids, "%ss of %s left", kind, name)
			}
			for _, kind := range []string{"network", "volume"} {
				obj := name + map[string]string{"network": netSuffix, "volume": "_bets"}[kind]
				_, err := runRecorded(t, "", nil, "docker", kind, "inspect", obj)
				assert.Error(t, err, "the %s %s is left", kind, obj)
			}
		}
		probes := must(t, "docker", "ps", "-aq", "--filter", "name=^validar-servidor-")
		assert.Empty(t, strings.TrimSpace(probes.String()), "validar-servidor.sh's probe containers are left")
	})
}
