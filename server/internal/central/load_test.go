package central

import (
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"

	"lotterycentral.example/lottery"
	"lotterycentral.example/lottery/logfmt"
	"lotterycentral.example/server/internal/vocab"
)

// A thousand agencies at once: each gets exactly its winners, the draw runs
// once, the bets file holds every bet, and once they have left the central is
// back to the goroutines it had before they came.
func TestThousandAgencies(t *testing.T) {
	if testing.Short() {
		t.Skip("load test")
	}
	tests := []struct {
		name     string
		agencies int
		bets     int
		batch    int
	}{
		{"1000 agencies, 20 bets each, two batches each", 1000, 20, 10},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			_, err := lottery.GenerateAgencyFiles(dir, tt.agencies, tt.bets, 77)
			require.NoError(t, err)
			cfg := testConfig(t)
			cfg.Agencies = tt.agencies
			cfg.MaxConnections = tt.agencies + 16
			tc := startCentral(t, cfg)
			idle := goleak.IgnoreCurrent() // the test and the central idle, before any agency

			results := make([]<-chan agencyResult, 0, tt.agencies)
			for id := 1; id <= tt.agencies; id++ {
				acfg := agencyConfig(tc, dir, id)
				acfg.BatchMaxAmount = tt.batch
				acfg.ConnectTimeout = 30 * time.Second
				acfg.ReplyTimeout = 60 * time.Second
				results = append(results, runAgency(t.Context(), acfg))
			}
			for _, ch := range results {
				r := <-ch
				require.NoError(t, r.err, "agency %d", r.id)
				want := expectedWinners(t, filepath.Join(dir, lottery.AgencyFileName(r.id)), r.id)
				assert.ElementsMatch(t, want, r.docs, "agency %d", r.id)
			}
			assert.Equal(t, 1, tc.logs.Count(vocab.Sorteo.Line(logfmt.Success)))
			assert.Equal(t, tt.agencies, tc.logs.Count(vocab.EnvioGanadores.Line(logfmt.Success)))

			// Every session has ended: its goroutine (and its park watcher) is gone.
			tc.logs.AwaitT(t, tt.agencies, vocab.CerrarConexion.Line(logfmt.Success))
			goleak.VerifyNone(t, idle)

			tc.stop()
			stored := make(map[int]int)
			for bet, err := range lottery.LoadBets(tc.path) {
				require.NoError(t, err)
				stored[bet.Agency]++
			}
			require.Len(t, stored, tt.agencies)
			for id := 1; id <= tt.agencies; id++ {
				assert.Equal(t, tt.bets, stored[id], "agency %d", id)
			}
		})
	}
}
