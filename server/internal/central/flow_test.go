package central

import (
	"context"
	"io"
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"lotterycentral.example/client/agency"
	"lotterycentral.example/lottery"
	"lotterycentral.example/lottery/logfmt"
	"lotterycentral.example/lottery/logfmt/logfmttest"
	"lotterycentral.example/protocol"
	"lotterycentral.example/server/internal/vocab"
)

// expectedWinners reads an agency file on its own and keeps its winners' documents.
func expectedWinners(t *testing.T, path string, id int) []string {
	t.Helper()
	var docs []string
	for bet, err := range lottery.ReadAgencyFile(path, id) {
		require.NoError(t, err)
		if lottery.HasWon(bet) {
			docs = append(docs, bet.Document)
		}
	}
	return docs
}

func agencyConfig(tc *testCentral, dir string, id int) agency.Config {
	return agency.Config{
		ID:             id,
		ServerAddress:  tc.addr,
		DataPath:       filepath.Join(dir, lottery.AgencyFileName(id)),
		BatchMaxAmount: protocol.MaxBatchBets,
		ConnectTimeout: 5 * time.Second,
		ReplyTimeout:   20 * time.Second,
	}
}

func quietLogger() *logfmt.Logger {
	log, _ := logfmt.New(io.Discard, "info")
	return log
}

type agencyResult struct {
	id   int
	docs []string
	err  error
}

func runAgency(ctx context.Context, cfg agency.Config) <-chan agencyResult {
	out := make(chan agencyResult, 1)
	go func() {
		docs, err := agency.New(cfg, quietLogger()).Run(ctx)
		out <- agencyResult{cfg.ID, docs, err}
	}()
	return out
}

func TestEveryAgencyGetsExactlyItsOwnWinners(t *testing.T) {
	tests := []struct {
		name      string
		agencies  int
		bets      int
		batchSize int
	}{
		{"one agency", 1, 3000, 0},
		{"five agencies full frames", 5, 20000, 0},
		{"five agencies small batches", 5, 2000, 7},
		{"twenty agencies", 20, 1500, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			_, err := lottery.GenerateAgencyFiles(dir, tt.agencies, tt.bets, 42)
			require.NoError(t, err)
			cfg := testConfig(t)
			cfg.Agencies = tt.agencies
			tc := startCentral(t, cfg)

			var results []<-chan agencyResult
			for id := 1; id <= tt.agencies; id++ {
				acfg := agencyConfig(tc, dir, id)
				if tt.batchSize > 0 {
					acfg.BatchMaxAmount = tt.batchSize
				}
				results = append(results, runAgency(t.Context(), acfg))
			}
			for _, ch := range results {
				r := <-ch
				require.NoError(t, r.err, "agency %d", r.id)
				want := expectedWinners(t, filepath.Join(dir, lottery.AgencyFileName(r.id)), r.id)
				assert.ElementsMatch(t, want, r.docs, "agency %d", r.id)
			}
			assert.Equal(t, 1, tc.logs.Count(vocab.Sorteo.Line(logfmt.Success)))

			// The bets file holds every bet of every agency, exactly once.
			tc.stop()
			stored := make(map[int]int)
			for bet, err := range lottery.LoadBets(tc.path) {
				require.NoError(t, err)
				stored[bet.Agency]++
			}
			for id := 1; id <= tt.agencies; id++ {
				assert.Equal(t, tt.bets, stored[id], "agency %d", id)
			}
		})
	}
}

// The barrier: four agencies finished and parked get nothing, and the draw has
// not run, until the fifth finishes; then all five are answered by one draw.
func TestNoAnswerBeforeTheLastAgencyFinishes(t *testing.T) {
	dir := t.TempDir()
	_, err := lottery.GenerateAgencyFiles(dir, 5, 2000, 7)
	require.NoError(t, err)
	tc := startCentral(t, testConfig(t))

	var early []<-chan agencyResult
	for id := 1; id <= 4; id++ {
		early = append(early, runAgency(t.Context(), agencyConfig(tc, dir, id)))
	}
	for id := 1; id <= 4; id++ {
		tc.logs.AwaitT(t, 1, vocab.EsperaSorteo.Line(logfmt.InProgress), vocab.Agencia.Int(id).String())
	}
	for _, ch := range early {
		select {
		case r := <-ch:
			t.Fatalf("agency %d answered before the draw: %+v", r.id, r)
		default:
		}
	}
	require.Zero(t, tc.logs.Count(logfmttest.AnyLine(vocab.Sorteo)), "the draw ran before the last FINISH")

	last := <-runAgency(t.Context(), agencyConfig(tc, dir, 5))
	require.NoError(t, last.err)
	for _, ch := range early {
		r := <-ch
		require.NoError(t, r.err)
		assert.ElementsMatch(t, expectedWinners(t, filepath.Join(dir, lottery.AgencyFileName(r.id)), r.id), r.docs)
	}
	assert.Equal(t, 1, tc.logs.Count(vocab.Sorteo.Line(logfmt.Success)))
}

// A winner's document that appears in several agencies is reported to each of
// them as theirs, and to nobody else.
func TestAgenciesNeverSeeEachOthersWinners(t *testing.T) {
	dir := t.TempDir()
	bets := map[int][]lottery.Bet{
		1: {{FirstName: "Ana", LastName: "Pérez", Document: "11111111", Birthdate: "1990-01-02", Number: lottery.WinningNumber},
			{FirstName: "Luis", LastName: "Gómez", Document: "22222222", Birthdate: "1980-05-06", Number: 1}},
		2: {{FirstName: "Eva", LastName: "Díaz", Document: "33333333", Birthdate: "1970-07-08", Number: lottery.WinningNumber},
			{FirstName: "Ana", LastName: "Pérez", Document: "11111111", Birthdate: "1990-01-02", Number: 2}},
		3: {{FirstName: "Sol", LastName: "Ruiz", Document: "44444444", Birthdate: "2000-12-31", Number: 7575}},
	}
	for id, bs := range bets {
		writeAgencyFile(t, dir, id, bs)
	}
	cfg := testConfig(t)
	cfg.Agencies = 3
	tc := startCentral(t, cfg)
	var chans []<-chan agencyResult
	for id := 1; id <= 3; id++ {
		chans = append(chans, runAgency(t.Context(), agencyConfig(tc, dir, id)))
	}
	want := map[int][]string{1: {"11111111"}, 2: {"33333333"}, 3: {}}
	for _, ch := range chans {
		r := <-ch
		require.NoError(t, r.err)
		assert.Equal(t, want[r.id], r.docs, "agency %d", r.id)
	}
}

func writeAgencyFile(t *testing.T, dir string, id int, bets []lottery.Bet) {
	t.Helper()
	path := filepath.Join(dir, lottery.AgencyFileName(id))
	f, err := os.Create(path)
	require.NoError(t, err)
	defer f.Close()
	require.NoError(t, lottery.WriteAgencyFile(f, slices.Values(bets)))
}

// A bad bet in an agency's file stops that agency with the bet's number in
// its file and the field at fault: the agency sends its rows as they are,
// the central refuses the batch naming the bet, and nothing of it is stored.
func TestBadBetInAgencyFile(t *testing.T) {
	good := lottery.Bet{FirstName: "Ana", LastName: "Pérez", Document: "11111111", Birthdate: "1990-01-02", Number: 7}
	tests := []struct {
		name    string
		bad     func(b *lottery.Bet)
		wantErr string
	}{
		{"refused by the central", func(b *lottery.Bet) { b.Birthdate = "1990-02-30" }, "bet 4 of"},
		{"future birthdate", func(b *lottery.Bet) { b.Birthdate = "2999-01-01" }, "birthdate"},
		{"number past 9999", func(b *lottery.Bet) { b.Number = 70000 }, "number: out of range"},
		{"NUL byte in a name", func(b *lottery.Bet) { b.LastName = "P\x00rez" }, "last_name: contains a control character"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			bets := []lottery.Bet{good, good, good, good, good}
			tt.bad(&bets[3])
			writeAgencyFile(t, dir, 1, bets)
			cfg := testConfig(t)
			cfg.Agencies = 1
			tc := startCentral(t, cfg)
			r := <-runAgency(t.Context(), agencyConfig(tc, dir, 1))
			require.Error(t, r.err)
			assert.ErrorContains(t, r.err, tt.wantErr)
			assert.ErrorContains(t, r.err, "bet 4 of")
			tc.stop()
			for _, err := range lottery.LoadBets(tc.path) {
				require.NoError(t, err)
				t.Fatal("a bet of the refused batch was stored")
			}
		})
	}
}
