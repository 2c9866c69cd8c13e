package main

import (
	"fmt"
	"math/rand/v2"
	"net"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"lotterycentral.example/lottery"
	"lotterycentral.example/lottery/logfmt"
	"lotterycentral.example/lottery/logfmt/logfmttest"
	"lotterycentral.example/server/internal/vocab"
)

// envInt reads an integer knob of the chaos test (make chaos raises them).
func envInt(t testing.TB, key string, def int) int {
	v := os.Getenv(key)
	if v == "" {
		return def
	}
	n, err := strconv.Atoi(v)
	require.NoError(t, err, key)
	return n
}

// freePort finds a port the restarted centrals can all listen on, so agencies
// reconnect to the same address.
func freePort(t *testing.T) int {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}

// awaitChaosPoint waits until the central has stored at least n batches or
// has drawn, and reports whether it is still before the draw.
func (p *proc) awaitChaosPoint(t *testing.T, n int) bool {
	t.Helper()
	drawn, stored := false, 0
	p.awaitUntil(t, fmt.Sprintf("%d stored batches or the draw", n), func(line string) bool {
		drawn = strings.Contains(line, logfmttest.AnyLine(vocab.Sorteo))
		if strings.Contains(line, vocab.ApuestaRecibida.Line(logfmt.Success)) {
			stored++
		}
		return drawn || stored >= n
	})
	return !drawn
}

// TestChaos kills the central with SIGKILL at seeded moments and restarts it,
// and kills and restarts one agency mid-stream. In the end every agency has
// its winners and the bets file holds every bet of every agency exactly once.
// CHAOS_KILLS (default 5) and CHAOS_SEED (default: from the clock, printed) tune it.
func TestChaos(t *testing.T) {
	kills := envInt(t, "CHAOS_KILLS", 5)
	seed := uint64(envInt(t, "CHAOS_SEED", int(time.Now().UnixNano()%1e9)))
	t.Logf("chaos seed %d: CHAOS_SEED=%d CHAOS_KILLS=%d replays this run", seed, seed, kills)

	tests := []struct {
		name    string
		prepare func(t *testing.T, dir string)
	}{
		{"generated", func(t *testing.T, dir string) {
			_, err := lottery.GenerateAgencyFiles(dir, 5, max(20000, kills*2000), seed)
			require.NoError(t, err)
		}},
		{"official dataset", func(t *testing.T, dir string) {
			_, err := lottery.ExtractDataset(officialDataset, dir)
			require.NoError(t, err)
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rng := rand.New(rand.NewPCG(seed, 1))
			dir := t.TempDir()
			tt.prepare(t, dir)
			want, winners := agencyFiles(t, dir, 5)
			// Spread the kills over the batches the agencies will send (about
			// 140 bets a batch), so every kill lands before the draw. Counted
			// here, before any process starts: the kills must not wait on it.
			bets := 0
			for _, n := range want {
				bets += n
			}
			window := max(2, bets/140/(kills+2))
			store := filepath.Join(dir, "bets.csv")
			port := freePort(t)
			serverEnv := []string{"SERVER_HOST=127.0.0.1", "SERVER_PORT=" + strconv.Itoa(port),
				"SERVER_AGENCIES=5", "SERVER_STORAGE_PATH=" + store}
			startCentral := func() *proc {
				srv := startProc(t, "server", serverEnv...)
				srv.await(t, listening)
				return srv
			}
			startAgency := func(id int) *proc {
				return startProc(t, "client", "CLI_ID="+strconv.Itoa(id),
					fmt.Sprintf("CLI_SERVER_ADDRESS=127.0.0.1:%d", port),
					"CLI_DATA_PATH="+filepath.Join(dir, lottery.AgencyFileName(id)),
					"CLI_CONNECT_TIMEOUT=30s", "CLI_MAX_RETRIES=20")
			}

			srv := startCentral()
			agencies := make([]*proc, 5)
			for i := range agencies {
				agencies[i] = startAgency(i + 1)
			}

			// One agency dies mid-stream and a new process takes over.
			if srv.awaitChaosPoint(t, 5+rng.IntN(10)) {
				victim := 1 + rng.IntN(5)
				require.NoError(t, agencies[victim-1].cmd.Process.Kill())
				agencies[victim-1].wait(t)
				t.Logf("killed agency %d", victim)
				agencies[victim-1] = startAgency(victim)
			}
			for k := 1; k <= kills; k++ {
				if !srv.awaitChaosPoint(t, 1+rng.IntN(window)) {
					t.Logf("the draw ran before kill %d: no more kills", k)
					break
				}
				require.NoError(t, srv.cmd.Process.Signal(syscall.SIGKILL))
				srv.wait(t)
				t.Logf("kill %d: central killed", k)
				srv = startCentral()
			}

			for i, a := range agencies {
				require.Equal(t, 0, a.wait(t), "agency %d:\n%s", i+1, a.output())
				assert.Equal(t, strconv.Itoa(winners[i]), a.await(t, winnersLine)[1], "agency %d", i+1)
			}

			// Killed after the draw, the central comes back with the same
			// winners for an agency that asks again, and takes no new bets.
			require.NoError(t, srv.cmd.Process.Signal(syscall.SIGKILL))
			srv.wait(t)
			srv = startCentral()
			srv.await(t, regexp.MustCompile(linePattern(vocab.Sorteo.Line(logfmt.Success))))
			again := startAgency(1)
			require.Equal(t, 0, again.wait(t), again.output())
			assert.Equal(t, agencies[0].await(t, winnersLine)[1], again.await(t, winnersLine)[1])
			assert.Zero(t, srv.countParts(logfmttest.AnyLine(vocab.ApuestaRecibida)), "bets stored after the draw")

			require.NoError(t, srv.cmd.Process.Signal(syscall.SIGTERM))
			require.Equal(t, 0, srv.wait(t), srv.output())
			assert.Equal(t, want, rows(t, lottery.LoadBets(store)), "bets file vs agency files, as multisets")
		})
	}
}
