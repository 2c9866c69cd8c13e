//go:build swarm

// The stack of scripts/generar-stack.sh on a real single-node Docker Swarm:
// `make test-swarm` runs it (go test -tags swarm -run '^TestSwarm$'), after
// `make docker-image`. It needs a Docker engine that is not a swarm worker, and
// leaves the engine as it found it: it initialises a swarm only when there is
// none (and then leaves it), labels the node lottery.central=true only when it
// is not (and then restores the label), and removes the stack, its secrets,
// network and volume. Everything it creates is named after swarmStack; it
// refuses to start when something of that name is already there.

package main

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"lotterycentral.example/lottery"
	"lotterycentral.example/lottery/logfmt"
	"lotterycentral.example/protocol/pki"
	"lotterycentral.example/server/internal/logtest"
	"lotterycentral.example/server/internal/vocab"
)

const (
	// swarmStack names the test's stack; its services, secrets, network and
	// volume are prefixed with it. make swarm-up uses another name.
	swarmStack    = "lottery-swarmtest"
	swarmAgencies = 5
	// centralLabel pins the central (scripts/generar-stack.sh).
	centralLabel = "lottery.central"
	// stackLabel is on everything docker stack deploy creates.
	stackLabel = "com.docker.stack.namespace=" + swarmStack
	// roundBound bounds one round, from deploy to the last agency's exit, and
	// the removal of the stack: it only turns a hang into a failure.
	roundBound = 4 * time.Minute
	// faultBatch and faultBets: the batch size and the bets per agency of
	// the round whose central is restarted (see TestSwarm).
	faultBatch = 1
	faultBets  = 100_000
	// faultAfter is how many stored batches the central logs before the test
	// restarts it.
	faultAfter = 1
)

func nowArg() string { return strconv.FormatFloat(float64(time.Now().UnixNano())/1e9, 'f', 9, 64) }

// useSwarm makes this engine a single-node swarm manager for the test and
// labels its node for the central, undoing at the end only what it did.
func useSwarm(t *testing.T) {
	state, err := dockerCmd("info", "--format", "{{.Swarm.LocalNodeState}} {{.Swarm.ControlAvailable}}")
	if err != nil {
		t.Skipf("no Docker engine: %v", err)
	}
	switch state {
	case "inactive false":
		_, gwErr := dockerCmd("network", "inspect", "docker_gwbridge")
		hadGateway := gwErr == nil
		netEvents := follow(t, "docker", "events", "--since", nowArg(), "--filter", "type=network",
			"--format", "{{.Action}} {{.Actor.Attributes.name}}")
		docker(t, "swarm", "init", "--advertise-addr", "127.0.0.1")
		t.Log("initialised a single-node swarm; the test leaves it at the end")
		t.Cleanup(func() {
			if _, err := dockerCmd("swarm", "leave", "--force"); err != nil {
				t.Errorf("leave the swarm the test initialised: %v", err)
			}
			if _, err := dockerCmd("network", "inspect", "ingress"); err == nil {
				t.Errorf("the swarm's ingress network outlived the swarm the test initialised and left")
			}
			// The bridge a swarm creates for its containers' outside traffic
			// outlives the swarm: it goes too when it was not there before.
			if _, err := dockerCmd("network", "inspect", "docker_gwbridge"); err == nil && !hadGateway {
				if _, err := dockerCmd("network", "rm", "docker_gwbridge"); err != nil {
					t.Errorf("remove docker_gwbridge: %v", err)
				}
			}
		})
		// Leaving before the node has made its ingress network leaves that
		// network behind, half removed: wait for it before anything can fail.
		ctx, cancel := context.WithTimeout(t.Context(), logtest.DefaultBound)
		defer cancel()
		if err := netEvents.Await(ctx, 1, "create ingress"); err != nil {
			t.Errorf("the swarm's ingress network: %v", err)
		}
	case "active true":
		t.Log("the engine is already a swarm manager: the test uses that swarm and leaves it be")
	default:
		t.Skipf("this engine cannot run the test's swarm (swarm state %q): a worker, or a swarm pending, locked or in error", state)
	}
	if nodes := fields(docker(t, "node", "ls", "-q")); len(nodes) != 1 {
		t.Skipf("the swarm has %d nodes: the test runs on a single-node swarm (local images, bind mounts)", len(nodes))
	}

	node := docker(t, "info", "--format", "{{.Swarm.NodeID}}")
	var labels map[string]string
	require.NoError(t, json.Unmarshal([]byte(docker(t, "node", "inspect", "--format", "{{json .Spec.Labels}}", node)), &labels))
	old, had := labels[centralLabel]
	if had && old == "true" {
		return
	}
	docker(t, "node", "update", "--label-add", centralLabel+"=true", node)
	t.Cleanup(func() {
		restore := []string{"node", "update", "--label-rm", centralLabel, node}
		if had {
			restore = []string{"node", "update", "--label-add", centralLabel + "=" + old, node}
		}
		if _, err := dockerCmd(restore...); err != nil {
			t.Errorf("restore the node's %s label: %v", centralLabel, err)
		}
	})
}

// stackLeftovers lists what of the test's stack exists: services, secrets,
// networks, containers and the bets volume.
func stackLeftovers() ([]string, error) {
	var left []string
	for _, kind := range []string{"service", "secret", "network", "container", "volume"} {
		args := []string{kind, "ls", "-q", "--filter", "label=" + stackLabel}
		if kind == "container" {
			args = []string{"ps", "-aq", "--filter", "label=" + stackLabel}
		}
		out, err := dockerCmd(args...)
		if err != nil {
			return nil, err
		}
		for _, id := range fields(out) {
			left = append(left, kind+" "+id)
		}
	}
	if _, err := dockerCmd("volume", "inspect", swarmStack+"_bets"); err == nil {
		left = append(left, "volume "+swarmStack+"_bets")
	}
	return left, nil
}

// removeStack removes the stack, waits for its containers to be destroyed
// (the volume is in use until then) and removes its volume. events is the
// stack's container events since before it was deployed.
func removeStack(t *testing.T, events *logtest.Recorder) {
	// The test's context is already cancelled when cleanups run.
	ctx, cancel := context.WithTimeout(context.Background(), roundBound)
	defer cancel()
	// A task that has no container yet when its service is removed may still
	// get one (and recreate the volume) after: first let every service's
	// container come, as it has in any round that got far enough.
	created, cancelCreated := context.WithTimeout(ctx, time.Minute)
	for _, s := range stackServices() {
		if err := events.Await(created, 1, "create "+s+" "); err != nil {
			t.Logf("service %s: no container before its removal: %v", s, err)
		}
	}
	cancelCreated()
	if _, err := dockerCmd("stack", "rm", swarmStack); err != nil {
		t.Errorf("%v", err)
	}
	ids := make(map[string]bool)
	for _, l := range events.Texts() {
		if f := strings.Fields(l); len(f) >= 3 && f[0] == "create" {
			ids[f[2]] = true
		}
	}
	out, err := dockerCmd("ps", "-aq", "--no-trunc", "--filter", "label="+stackLabel)
	if err != nil {
		t.Errorf("%v", err)
	}
	for _, id := range fields(out) {
		ids[id] = true
	}
	for id := range ids {
		if err := events.Await(ctx, 1, "destroy ", " "+id+" "); err != nil {
			t.Errorf("container %s of the stack was not removed: %v", id, err)
		}
	}
	if _, err := dockerCmd("volume", "inspect", swarmStack+"_bets"); err == nil {
		if _, err := dockerCmd("volume", "rm", swarmStack+"_bets"); err != nil {
			t.Errorf("%v", err)
		}
	}
	left, err := stackLeftovers()
	if err != nil {
		t.Errorf("%v", err)
	}
	if len(left) > 0 {
		t.Errorf("left behind after removing the stack: %v", left)
	}
}

// stackServices names the stack's services.
func stackServices() []string {
	s := []string{swarmStack + "_server"}
	for i := 1; i <= swarmAgencies; i++ {
		s = append(s, fmt.Sprintf("%s_client%d", swarmStack, i))
	}
	return s
}

// swarmRound is what one round needs: the agency files, the certificates and
// where to write.
type swarmRound struct {
	data, certs, dir string
	batch            int // CLI_BATCH_MAXAMOUNT for every agency; 0: client.env's
}

// deploy writes the stack file with scripts/generar-stack.sh and deploys it,
// after registering its removal. It returns the stack's container events.
func (r swarmRound) deploy(t *testing.T) *logtest.Recorder {
	t.Helper()
	left, err := stackLeftovers()
	require.NoError(t, err)
	require.Empty(t, left, "already there, from an earlier run? the test removes only what it creates: "+
		"docker stack rm %s; docker volume rm %s_bets", swarmStack, swarmStack)

	file := filepath.Join(r.dir, "stack.yaml")
	gen := exec.Command("../scripts/generar-stack.sh", file, strconv.Itoa(swarmAgencies))
	gen.Env = append(os.Environ(), "DATA_DIR="+r.data, "CERTS_DIR="+r.certs, "PIN_AGENCIES=auto")
	out, err := gen.CombinedOutput()
	require.NoError(t, err, "%s", out)
	raw, err := os.ReadFile(file)
	require.NoError(t, err)
	stack := string(raw)
	// The test reads the central's whole log (centralLogs), half a million
	// lines in the restart round: an engine's default rotation (10 MB × 3
	// here) would drop its start.
	require.Equal(t, 1, strings.Count(stack, "\n  server:\n"), "the generator's server service")
	stack = strings.Replace(stack, "\n  server:\n",
		"\n  server:\n    logging:\n      driver: json-file\n      options:\n        max-size: 500m\n", 1)
	if r.batch > 0 {
		n := strings.Count(stack, "\n      CLI_ID: ")
		require.Equal(t, swarmAgencies, n, "the generator's CLI_ID lines")
		stack = strings.ReplaceAll(stack, "\n      CLI_ID: ",
			fmt.Sprintf("\n      CLI_BATCH_MAXAMOUNT: \"%d\"\n      CLI_ID: ", r.batch))
	}
	require.NoError(t, os.WriteFile(file, []byte(stack), 0o644))

	// Every container event of the stack from now on, one line each:
	// "ACTION SERVICE CONTAINER-ID exit=CODE;" (the code only on die).
	events := follow(t, "docker", "events", "--since", nowArg(),
		"--filter", "type=container", "--filter", "label="+stackLabel, "--format",
		`{{.Action}} {{index .Actor.Attributes "com.docker.swarm.service.name"}} {{.Actor.ID}} exit={{index .Actor.Attributes "exitCode"}};`)
	t.Cleanup(func() { removeStack(t, events) })
	docker(t, "stack", "deploy", "--detach=true", "--resolve-image", "never", "-c", file, swarmStack)
	return events
}

// awaitAgencies waits for every agency's container to exit and requires that
// each exits 0 the first time, then returns each agency's log.
func awaitAgencies(t *testing.T, ctx context.Context, events *logtest.Recorder) []string {
	t.Helper()
	logs := make([]string, swarmAgencies)
	for i := range logs {
		service := fmt.Sprintf("%s_client%d", swarmStack, i+1)
		var died string
		_, err := events.Until(ctx, 0, func(l logtest.Line) bool {
			if strings.HasPrefix(l.Text, "die "+service+" ") {
				died = l.Text
				return true
			}
			return false
		})
		require.NoError(t, err, "agency %d did not exit; events:\n%s", i+1, events)
		logs[i], _ = dockerCmd("service", "logs", "--raw", "--no-trunc", service)
		require.True(t, strings.HasSuffix(died, " exit=0;"), "agency %d: %s\n%s", i+1, died, logs[i])
	}
	return logs
}

// centralLogs follows the output of the central's containers, in the order
// they were created (events holds their create lines): `docker service logs
// --follow` can stall for good on this much output (half a million lines;
// moby/moby#38640), where `docker logs` reads each container's own log file.
func centralLogs(t *testing.T, events *logtest.Recorder) *logtest.Recorder {
	t.Helper()
	var script []string
	for _, l := range events.Texts() {
		if f := strings.Fields(l); len(f) >= 3 && f[0] == "create" && f[1] == swarmStack+"_server" {
			script = append(script, "docker logs "+f[2])
		}
	}
	require.NotEmpty(t, script, "the central's containers:\n%s", events)
	// The last one is the running central: follow it, as the shell's own
	// process, so that the cleanup's kill ends it (a child would keep the
	// output pipe open, and the cleanup would wait for it forever).
	script[len(script)-1] = "exec " + strings.Replace(script[len(script)-1], "logs", "logs --follow", 1)
	return follow(t, "sh", "-c", strings.Join(script, " && "))
}

// storedBets copies the bets file out of the running central's container (its
// volume is mounted there) and returns it as a multiset.
func storedBets(t *testing.T, dir string) map[lottery.Bet]int {
	t.Helper()
	ids := fields(docker(t, "ps", "-q", "--filter", "label=com.docker.swarm.service.name="+swarmStack+"_server",
		"--filter", "status=running"))
	require.Len(t, ids, 1, "the central's running container")
	copied := filepath.Join(dir, "bets.csv")
	docker(t, "cp", ids[0]+":/var/lib/lottery/bets.csv", copied)
	return rows(t, lottery.LoadBets(copied))
}

var recovered = regexp.MustCompile(linePattern(vocab.Recuperacion.Line(logfmt.Success, vocab.Apuestas.Str(pat(`(\d+)`)),
	vocab.AgenciasConApuestas.Str(pat(`\d+`)), vocab.AgenciasFinalizadas.Str(pat(`(\d+)`)))))

func TestSwarm(t *testing.T) {
	useSwarm(t)

	base := t.TempDir()
	data, certs := filepath.Join(base, "data"), filepath.Join(base, "certs")
	_, err := lottery.ExtractDataset(officialDataset, data)
	require.NoError(t, err)
	_, err = pki.WriteDir(certs, swarmAgencies, nil, false)
	require.NoError(t, err)
	// The fault round sends a generated dataset, one bet per batch: long
	// enough that the restart, seconds from the command to the old task's
	// SIGTERM, lands while the agencies are still sending.
	faultData := filepath.Join(base, "fault-data")
	_, err = lottery.GenerateAgencyFiles(faultData, swarmAgencies, faultBets, 7)
	require.NoError(t, err)
	official, officialWinners := agencyFiles(t, data, swarmAgencies)
	require.Equal(t, []int{2, 3, 3, 2, 0}, officialWinners, "the official dataset's winners")

	for _, tt := range []struct {
		name  string
		fault bool
	}{
		{"clean round", false},
		{"central restarted while agencies send", true},
	} {
		t.Run(tt.name, func(t *testing.T) {
			start := time.Now()
			round := swarmRound{data: data, certs: certs, dir: t.TempDir()}
			want, winners := official, officialWinners
			if tt.fault {
				round.batch, round.data = faultBatch, faultData
				want, winners = agencyFiles(t, faultData, swarmAgencies)
			}
			total := 0
			for _, n := range want {
				total += n
			}
			events := round.deploy(t)
			ctx, cancel := context.WithTimeout(t.Context(), roundBound)
			defer cancel()

			if tt.fault {
				// docker logs --follow ends at once on a container not started yet.
				require.NoError(t, events.Await(ctx, 1, "start "+swarmStack+"_server "), "%s", events)
				first := centralLogs(t, events)
				require.NoError(t, first.Await(ctx, faultAfter, vocab.ApuestaRecibida.Line(logfmt.Success)), "%s", first)
				docker(t, "service", "update", "--detach", "--force", swarmStack+"_server")
				t.Logf("central restart asked for after %d stored batches", faultAfter)
			}

			logs := awaitAgencies(t, ctx, events)
			central := centralLogs(t, events)
			for i, log := range logs {
				m := winnersLine.FindAllStringSubmatch(log, -1)
				require.Len(t, m, 1, "agency %d's winners line:\n%s", i+1, log)
				assert.Equal(t, strconv.Itoa(winners[i]), m[0][1], "agency %d", i+1)
			}
			// Every agency got its winners, so the draw ran; the central's
			// lines may still be on their way.
			require.NoError(t, central.Await(ctx, swarmAgencies, vocab.EnvioGanadores.Line(logfmt.Success)), "%s", central)
			assert.Equal(t, 1, central.Count(vocab.Sorteo.Line(logfmt.Success)), "draws:\n%s", central)

			if tt.fault {
				// The restart happened before the draw, while bets were coming:
				// the second central recovered part of them and ran the draw.
				assert.Equal(t, 2, central.Count(vocab.Escuchar.Line(logfmt.Success)), "centrals that listened:\n%s", central)
				var rec []string
				for _, l := range central.Texts() {
					if m := recovered.FindStringSubmatch(l); m != nil {
						rec = m
					}
				}
				require.NotNil(t, rec, "the restarted central's recovery line:\n%s", central)
				bets, _ := strconv.Atoi(rec[1])
				finished, _ := strconv.Atoi(rec[2])
				t.Logf("the restarted central recovered %d of %d bets, %d agencies finished", bets, total, finished)
				assert.Less(t, bets, total, "the restart came after every bet was stored")
				assert.Less(t, finished, swarmAgencies, "the restart came after the draw")
				reconnected := 0
				for _, log := range logs {
					if strings.Count(log, agencyConnected) > 1 {
						reconnected++
					}
				}
				t.Logf("%d agencies reconnected to the new central", reconnected)
			}

			assert.Equal(t, want, storedBets(t, round.dir), "the central's bets file vs the agencies' files")
			t.Logf("round: %s from deploy to the bets compared", time.Since(start).Round(time.Millisecond))
		})
	}
}
