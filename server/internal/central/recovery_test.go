package central

import (
	"context"
	"encoding/csv"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"lotterycentral.example/lottery"
	"lotterycentral.example/lottery/logfmt"
	"lotterycentral.example/lottery/logfmt/logfmttest"
	"lotterycentral.example/server/internal/ledger"
	"lotterycentral.example/server/internal/vocab"
)

// A bets file and journal on disk that the central did not write, or that a
// disk or an operator damaged, stop the start: New fails naming the file, the
// line and the reason, and leaves both files as they were. Only a torn last
// line without its newline is cut, and the cut is logged with its bytes.
func TestRecoveryValidatesEveryRow(t *testing.T) {
	const (
		row1 = "3,Ana,Pérez,11111111,1990-01-02,7574\n"
		row2 = "3,Luis,Gómez,22222222,1980-05-06,12\n"
		good = row1 + row2 // two bets of agency 3, lines 1 and 2
	)
	bet1 := lottery.Bet{Agency: 3, FirstName: "Ana", LastName: "Pérez", Document: "11111111", Birthdate: "1990-01-02", Number: 7574}
	bet2 := lottery.Bet{Agency: 3, FirstName: "Luis", LastName: "Gómez", Document: "22222222", Birthdate: "1980-05-06", Number: 12}
	// fin3 is agency 3's FINISH line for good.
	fin3 := fmt.Sprintf("3,2,%s\n", digestOf(t, []lottery.Bet{bet1, bet2}))
	tests := []struct {
		name    string
		bets    string
		journal string // "" for no journal file
		file    string // which file the error names: "bets" or "journal"
		want    string // the error's line and reason; "" when the start succeeds
		is      error
		logged  string // a part of the recuperacion line (fieldsText)
	}{
		{"agency 0", good + "0,Eva,Díaz,33333333,1970-07-08,7574\n", "", "bets",
			"line 3: invalid bet: agency: must be at least 1", lottery.ErrInvalidBet, ""},
		{"agency N+1", good + "6,Eva,Díaz,33333333,1970-07-08,7574\n", "", "bets",
			"line 3: invalid bet: agency: not in 1..5 (SERVER_AGENCIES)", lottery.ErrInvalidBet, ""},
		{"agency 7 of 5", "7,Eva,Díaz,33333333,1970-07-08,7574\n" + good, "", "bets",
			"line 1: invalid bet: agency: not in 1..5", lottery.ErrInvalidBet, ""},
		{"document with letters", good + "2,Eva,Díaz,3333A333,1970-07-08,1\n", "", "bets",
			"line 3: invalid bet: document: not only digits", lottery.ErrInvalidBet, ""},
		{"future birthdate", good + "2,Eva,Díaz,33333333,2999-01-01,1\n", "", "bets",
			"line 3: invalid bet: birthdate: in the future", lottery.ErrInvalidBet, ""},
		{"day that does not exist", good + "2,Eva,Díaz,33333333,2023-02-30,1\n", "", "bets",
			"line 3: invalid bet: birthdate: not a date in YYYY-MM-DD", lottery.ErrInvalidBet, ""},
		{"number 10000", good + "2,Eva,Díaz,33333333,1970-07-08,10000\n", "", "bets",
			"line 3: invalid bet: number: out of range 0..9999", lottery.ErrInvalidBet, ""},
		{"agency +3", good + "+3,Eva,Díaz,33333333,1970-07-08,7574\n", "", "bets",
			`line 3: agency: "+3": invalid syntax`, strconv.ErrSyntax, ""},
		{"agency 03", good + "03,Eva,Díaz,33333333,1970-07-08,7574\n", "", "bets",
			`line 3: agency: "03": invalid syntax`, strconv.ErrSyntax, ""},
		{"number with a leading zero", good + "3,Eva,Díaz,33333333,1970-07-08,07574\n", "", "bets",
			`line 3: number: "07574": invalid syntax`, strconv.ErrSyntax, ""},
		{"number with a leading space", good + "3,Eva,Díaz,33333333,1970-07-08, 7574\n", "", "bets",
			`line 3: number: " 7574": invalid syntax`, strconv.ErrSyntax, ""},
		{"control character inside quotes", good + "3,\"E\x07va\",Díaz,33333333,1970-07-08,1\n", "", "bets",
			"line 3: invalid bet: first_name: contains a control character", lottery.ErrInvalidBet, ""},
		{"needless quotes", good + `3,"Eva",Díaz,33333333,1970-07-08,1` + "\n", "", "bets",
			"line 3: first_name: " + lottery.ErrNotCanonical.Error(), lottery.ErrNotCanonical, ""},
		{"too many columns", good + "3,Eva,Díaz,33333333,1970-07-08,1,1\n", "", "bets",
			"line 3: wrong number of fields: got 7, want 6", csv.ErrFieldCount, ""},
		{"too few columns", row1 + "3,Eva,Díaz,33333333,1970-07-08\n" + row2, "", "bets",
			"line 2: wrong number of fields: got 5, want 6", csv.ErrFieldCount, ""},
		{"torn last line is cut", good + "3,Eva,Dí", "", "", "", nil,
			logfmttest.Fields(vocab.Apuestas.Int(2), vocab.AgenciasConApuestas.Int(1), vocab.AgenciasFinalizadas.Int(0),
				vocab.BytesRecortadosApuestas.Int(9), vocab.BytesRecortadosDiario.Int(0))},
		{"journal line that is not agency,total", good, "3;2\n", "journal",
			`line 1: "3;2" is not agency,total,digest`, nil, ""},
		{"journal agency with a sign", good, "+3,2\n", "journal",
			`line 1: "+3,2" is not agency,total,digest`, nil, ""},
		{"journal agency outside 1..N", good, fin3 + "6,0," + strings.Repeat("0", 64) + "\n", "journal",
			"line 2: agency 6 not in 1..5 (SERVER_AGENCIES)", nil, ""},
		{"journal agency 0", good, "0,0," + strings.Repeat("0", 64) + "\n", "journal",
			"line 1: agency 0 not in 1..5", nil, ""},
		{"journal total not the stored bets", good, strings.Replace(fin3, "3,2,", "3,5,", 1), "journal",
			"line 1: agency 3 finished with 5 bets but", nil, ""},
		{"journal agency again with another total", good, fin3 + strings.Replace(fin3, "3,2,", "3,1,", 1), "journal",
			`line 2: agency 3 finished again as "3,1,`, nil, ""},
		{"journal digest of the rows in another order", good, fmt.Sprintf("3,2,%s\n", digestOf(t, []lottery.Bet{bet2, bet1})), "journal",
			"line 1: agency 3 finished with digest", nil, ""},
		{"journal digest in upper case", good, strings.ToUpper(fin3), "journal",
			"line 1: agency 3: digest", nil, ""},
		{"journal agency again with its total", good, fin3 + fin3, "", "", nil,
			logfmttest.Fields(vocab.Apuestas.Int(2), vocab.AgenciasConApuestas.Int(1), vocab.AgenciasFinalizadas.Int(1),
				vocab.BytesRecortadosApuestas.Int(0))},
		{"torn last journal line is cut", good, fin3 + "4,", "", "", nil,
			logfmttest.Fields(vocab.AgenciasFinalizadas.Int(1), vocab.BytesRecortadosApuestas.Int(0), vocab.BytesRecortadosDiario.Int(2))},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := testConfig(t)
			paths := map[string]string{"bets": cfg.StoragePath, "journal": ledger.JournalPath(cfg.StoragePath)}
			require.NoError(t, os.WriteFile(cfg.StoragePath, []byte(tt.bets), 0o644))
			if tt.journal != "" {
				require.NoError(t, os.WriteFile(paths["journal"], []byte(tt.journal), 0o644))
			}
			log, logs := testLogger()
			srv, err := openServer(cfg, log)
			if tt.want == "" {
				require.NoError(t, err)
				require.NoError(t, srv.Shutdown(context.Background()))
				assert.Equal(t, 1, logs.Count(vocab.Recuperacion.Line(logfmt.Success), tt.logged), logs.String())
				return
			}
			require.Error(t, err)
			assert.Nil(t, srv)
			if tt.is != nil {
				assert.ErrorIs(t, err, tt.is)
			}
			verb := map[string]string{"bets": "recover bets", "journal": "recover journal"}[tt.file]
			assert.ErrorContains(t, err, fmt.Sprintf("%s %q: %s", verb, paths[tt.file], tt.want))

			got, err := os.ReadFile(cfg.StoragePath)
			require.NoError(t, err)
			assert.Equal(t, tt.bets, string(got), "a refused start changes nothing on disk")
		})
	}
}

// The attack played through: after a finished round, a valid but invented
// winning row for agency 2 is appended to the bets file. The next start
// refuses it loudly, so no fake winner is ever sent.
func TestRecoveryRefusesARowAddedAfterTheDraw(t *testing.T) {
	const agencies = 3
	dir := t.TempDir()
	_, err := lottery.GenerateAgencyFiles(dir, agencies, 300, 11)
	require.NoError(t, err)
	cfg := testConfig(t)
	cfg.Agencies = agencies
	tc := startCentral(t, cfg)
	var results []<-chan agencyResult
	for id := 1; id <= agencies; id++ {
		results = append(results, runAgency(t.Context(), agencyConfig(tc, dir, id)))
	}
	for _, ch := range results {
		r := <-ch
		require.NoError(t, r.err, "agency %d", r.id)
		assert.ElementsMatch(t, expectedWinners(t, filepath.Join(dir, lottery.AgencyFileName(r.id)), r.id), r.docs)
	}
	tc.stop()

	// The untouched round restarts and draws the same winners.
	again := startCentral(t, cfg)
	again.logs.AwaitT(t, 1, vocab.Sorteo.Line(logfmt.Success))
	again.stop()

	f, err := os.OpenFile(cfg.StoragePath, os.O_WRONLY|os.O_APPEND, 0)
	require.NoError(t, err)
	_, err = f.WriteString("2,Intruso,Hostil,99999999,1990-01-01,7574\n")
	require.NoError(t, err)
	require.NoError(t, f.Close())

	log, logs := testLogger()
	srv, err := openServer(cfg, log)
	require.Error(t, err)
	assert.Nil(t, srv)
	assert.ErrorContains(t, err, fmt.Sprintf("recover journal %q: line ", ledger.JournalPath(cfg.StoragePath)))
	assert.ErrorContains(t, err, fmt.Sprintf("agency 2 finished with 300 bets but %q holds 301 of its bets", cfg.StoragePath))
	assert.Zero(t, logs.Count(logfmttest.AnyLine(vocab.Sorteo)), "no draw ran on the forged file")
}

// A restart on a large bets file: the central listens at once and recovers
// while agencies connect. Each agency, though it allows itself only a moment
// to reach the central, waits on its socket for HELLO_ACK, then resumes from
// its stored count: every agency gets exactly its winners and the file
// holds every bet once. Recovery logs its progress while it runs.
func TestAgenciesWaitForARecoveringCentral(t *testing.T) {
	const (
		agencies = 3
		bets     = 60_000 // per agency; two thirds of them stored before the restart
		stored   = 40_000
		// How long an agency keeps trying to connect: a central that listened
		// only after recovering would lose them all while recovery is held.
		connectTimeout = 100 * time.Millisecond
	)
	dir := t.TempDir()
	_, err := lottery.GenerateAgencyFiles(dir, agencies, bets, 17)
	require.NoError(t, err)
	all := agencyBetsIn(t, dir, agencies)
	cfg := testConfig(t)
	cfg.Agencies = agencies
	store, err := lottery.OpenStore(cfg.StoragePath)
	require.NoError(t, err)
	now := time.Now()
	for id := 1; id <= agencies; id++ {
		var rows lottery.Rows
		for _, b := range all[id][:stored] {
			require.NoError(t, rows.Add(b, now))
		}
		require.NoError(t, store.StoreRows(&rows))
	}
	require.NoError(t, store.Close())

	log, logs := testLogger()
	srv, err := New(cfg, log)
	require.NoError(t, err)
	ticks := make(chan time.Time)
	srv.recovery.ticks = func() (<-chan time.Time, func()) { return ticks, func() {} }
	hold, release := make(chan struct{}), make(chan struct{})
	var once sync.Once
	srv.recovery.hook = func(uint64) {
		once.Do(func() {
			close(hold)
			<-release
		})
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	served, recovered := make(chan error, 1), make(chan error, 1)
	go func() { served <- srv.Serve(ln) }()
	go func() { recovered <- srv.Recover() }()
	<-hold // the recovery has read part of the file and waits

	tc := &testCentral{srv: srv, addr: ln.Addr().String(), path: cfg.StoragePath, logs: logs}
	var results []<-chan agencyResult
	for id := 1; id <= agencies; id++ {
		acfg := agencyConfig(tc, dir, id)
		acfg.ConnectTimeout = connectTimeout
		results = append(results, runAgency(t.Context(), acfg))
	}
	logs.AwaitT(t, agencies, vocab.AceptarConexion.Line(logfmt.Success))
	ticks <- time.Now()
	logs.AwaitT(t, 1, vocab.Recuperacion.Line(logfmt.InProgress), string(vocab.Filas)+": ")
	// Time itself is what is tested here: hold the recovery past the
	// agencies' connect timeout.
	<-time.After(2 * connectTimeout)
	assert.Zero(t, logs.Count(vocab.Identificacion.Line(logfmt.Success)), "HELLO answered before the recovery ended")
	close(release)
	require.NoError(t, <-recovered)

	for _, ch := range results {
		r := <-ch
		require.NoError(t, r.err, "agency %d", r.id)
		assert.ElementsMatch(t, expectedWinners(t, filepath.Join(dir, lottery.AgencyFileName(r.id)), r.id), r.docs)
	}
	assert.Equal(t, all, storedBets(t, cfg.StoragePath), "every bet stored once, in order")
	require.NoError(t, srv.Shutdown(context.Background()))
	require.ErrorIs(t, <-served, ErrServerClosed)
	assert.Equal(t, 1, logs.Count(vocab.Recuperacion.Line(logfmt.Success), vocab.Apuestas.Int(agencies*stored).String()+" |"))
}
