package central

import (
	"encoding/json"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"

	"github.com/sirupsen/logrus"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"lotterycentral.example/lottery"
	"lotterycentral.example/lottery/logfmt"
	"lotterycentral.example/lottery/logfmt/logfmttest"
	"lotterycentral.example/protocol"
	"lotterycentral.example/server/internal/admin"
	"lotterycentral.example/server/internal/config"
	"lotterycentral.example/server/internal/ledger"
	"lotterycentral.example/server/internal/vocab"
)

// restartCentral shuts tc down and serves a new central on the same files
// and the same address, as an operator restarting it does: agencies that
// lost the old one reconnect to the new one.
func restartCentral(t *testing.T, tc *testCentral, cfg config.Config) *testCentral {
	t.Helper()
	tc.stop()
	log, hook := testLogger()
	srv, err := openServer(cfg, log)
	require.NoError(t, err)
	ln, err := net.Listen("tcp", tc.addr)
	require.NoError(t, err)
	again := &testCentral{srv: srv, addr: tc.addr, path: cfg.StoragePath, logs: hook, served: make(chan error, 1)}
	go func() { again.served <- srv.Serve(ln) }()
	t.Cleanup(again.stop)
	return again
}

// excludedLine is the excluir_agencia line of a successful exclusion.
func excludedLine(agency int, reason, operator string, pending int) string {
	return vocab.ExcluirAgencia.Line(logfmt.Success, vocab.Agencia.Int(agency), vocab.Motivo.Str(reason),
		vocab.Operador.Str(operator), vocab.AgenciasPendientes.Int(pending))
}

// The case: five agencies on the official dataset, agency 3's host
// dies for good halfway through its bets, and the draw would wait for it
// forever. The operator excludes it: the other four get exactly their
// winners, the draw counts only their bets and names agency 3, and agency 3
// coming back is refused for good. Its connection may be gone, or open but
// silent (the central ends it); or the central may restart between the
// exclusion and the last FINISH, and recover the exclusion.
func TestExcludeAnAgencyThatDied(t *testing.T) {
	const (
		reason   = "host burned"
		operator = "operator-ana"
		sent     = 1000 // agency 3's bets stored before its host died
	)
	tests := []struct {
		name    string
		silent  bool // agency 3's connection stays open, silent
		restart bool // the central restarts after the exclusion
	}{
		{"its connection gone", false, false},
		{"its connection open but silent", true, false},
		{"a restart between the exclusion and the last FINISH", false, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir, bets := officialFiles(t)
			cfg := testConfig(t)
			oc := startObserved(t, cfg, nil)
			tc := oc.testCentral
			run := func(id int) <-chan agencyResult {
				acfg := agencyConfig(tc, dir, id)
				acfg.MaxRetries = 10 // through a restart
				return runAgency(t.Context(), acfg)
			}

			dead := dialRaw(t, tc.addr)
			dead.hello(3)
			dead.sendBets(bets[3][:sent], 100)
			if !tt.silent {
				require.NoError(t, dead.raw.Close())
				tc.logs.AwaitT(t, 1, vocab.CerrarConexion.Line(logfmt.Success, vocab.Agencia.Int(3)))
			}
			runs := map[int]<-chan agencyResult{1: run(1), 2: run(2), 4: run(4)}
			tc.logs.AwaitT(t, 3, vocab.EsperaSorteo.Line(logfmt.InProgress))

			require.NoError(t, tc.srv.Exclude(3, reason, operator))
			assert.Equal(t, 1, tc.logs.Count(excludedLine(3, reason, operator, 1)), tc.logs.String())
			if tt.silent {
				dead.expectClosed()
			}
			assert.Zero(t, tc.logs.Count(logfmttest.AnyLine(vocab.Sorteo)), "agency 5 is still to finish")

			// The operator sees it: agency 3 excluded, the draw waiting for agency 5 only.
			m := oc.scrape(t)
			assert.Equal(t, 1.0, m.value(t, "lottery_agencies_excluded"))
			assert.Equal(t, 1.0, m.value(t, "lottery_agencies_pending"))
			assert.Equal(t, float64(sent), m.value(t, "lottery_bets_stored_total", "agency", "3"), "its bets stay stored")
			page := parseStatusPage(t, oc.getOK(t, "/"))
			assert.Equal(t, "waiting", page.drawState)
			assert.Equal(t, "5", page.pending)
			assert.Equal(t, "3", page.excluded)
			require.Len(t, page.rows, 5)
			assert.Equal(t, admin.StateExcluded, page.rows[2].state)
			var js admin.View
			require.NoError(t, json.Unmarshal([]byte(oc.getOK(t, "/status.json")), &js))
			assert.Equal(t, []int{3}, js.Draw.Excluded)
			assert.Equal(t, []int{5}, js.Draw.Pending)
			assert.Equal(t, 3, js.Draw.Finished)
			require.NotNil(t, js.Rows[2].Excluded)
			assert.Equal(t, operator, js.Rows[2].Excluded.Operator)
			assert.Equal(t, reason, js.Rows[2].Excluded.Reason)

			if tt.restart {
				tc = restartCentral(t, tc, cfg)
				tc.logs.AwaitT(t, 1, vocab.Recuperacion.Line(logfmt.Success), vocab.AgenciasFinalizadas.Int(3).String(),
					vocab.AgenciasExcluidas.Int(1).String()+" |")
			}

			runs[5] = run(5)
			for id, ch := range runs {
				r := <-ch
				require.NoError(t, r.err, "agency %d", id)
				assert.ElementsMatch(t, expectedWinners(t, filepath.Join(dir, lottery.AgencyFileName(id)), id), r.docs, "agency %d", id)
				assert.Len(t, r.docs, officialWinners[id], "agency %d", id)
			}
			drawn := officialBets[1] + officialBets[2] + officialBets[4] + officialBets[5]
			assert.Equal(t, 1, tc.logs.Count(vocab.Sorteo.Line(logfmt.Success, vocab.Apuestas.Int(drawn), vocab.Ganadores.Int(7),
				vocab.Excluidas.Str("3"))), "one draw, of the four agencies' bets only:\n%s", tc.logs)

			// Agency 3 comes back: refused at HELLO, for good.
			back := <-run(3)
			var re *protocol.RemoteError
			require.ErrorAs(t, back.err, &re)
			assert.Equal(t, protocol.CodeExcluded, re.Code)
			assert.ErrorContains(t, back.err, "operator excluded this agency")
			raw := dialRaw(t, tc.addr)
			_, err := raw.tryHello(3)
			require.ErrorAs(t, err, &re)
			assert.Equal(t, protocol.CodeExcluded, re.Code)
			tc.logs.AwaitT(t, 2, vocab.Protocolo.Line(logfmt.Fail, vocab.Agencia.Int(0)), vocab.Motivo.Any(protocol.CodeExcluded).String())

			tc.stop()
			stored := storedBets(t, cfg.StoragePath)
			assert.Equal(t, bets[3][:sent], stored[3], "agency 3's bets stay in the bets file")
			for _, id := range []int{1, 2, 4, 5} {
				assert.Len(t, stored[id], officialBets[id], "agency %d", id)
			}
		})
	}
}

// The status page and /metrics of a drawn round with an exclusion: no
// winners for the excluded agency, which is not drawn.
func TestExcludedAgencyAfterTheDraw(t *testing.T) {
	cfg := testConfig(t)
	cfg.Agencies = 2
	oc := startObserved(t, cfg, nil)
	one := dialRaw(t, oc.addr)
	one.hello(1)
	one.finish(0)
	require.NoError(t, oc.srv.Exclude(2, "never connected", "operator-ana"))
	oc.logs.AwaitT(t, 1, vocab.Sorteo.Line(logfmt.Success, vocab.Apuestas.Int(0), vocab.Ganadores.Int(0), vocab.Excluidas.Str("2")))
	assert.Empty(t, one.consult())

	m := oc.scrape(t)
	assert.Zero(t, m.value(t, "lottery_winners", "agency", "1"))
	_, err := m.lookup("lottery_winners", "agency", "2")
	assert.Error(t, err, "an excluded agency is not drawn")
	page := parseStatusPage(t, oc.getOK(t, "/"))
	assert.Equal(t, "drawn", page.drawState)
	assert.Equal(t, "2", page.excluded)
	require.Len(t, page.rows, 2)
	assert.Equal(t, admin.StateExcluded, page.rows[1].state)
	assert.Equal(t, "–", page.rows[1].winners)
	assert.Equal(t, "0", page.rows[0].winners)
}

// An exclusion the central refuses changes nothing: not the journal, not
// the round, not the agency's connection. An agency that finished cannot be
// excluded (its parked connection still gets its winners), nor can every
// agency, nor one twice, nor one out of the round, nor for no reason; a
// reason that would forge a log line is logged quoted.
func TestExcludeRefused(t *testing.T) {
	tests := []struct {
		name string
		// parked: agency 1 finished and waits for its winners.
		parked bool
		// prepare sets the round up before the refused exclusion.
		prepare func(t *testing.T, tc *testCentral)
		agency  int
		reason  string
		want    error
		logged  string // the reason as the fail line shows it, if not as given
	}{
		{"an agency that finished", true, nil, 1, "host burned", ledger.ErrFinished, ""},
		{"every agency", false, func(t *testing.T, tc *testCentral) {
			require.NoError(t, tc.srv.Exclude(2, "host burned", "operator-ana"))
			require.NoError(t, tc.srv.Exclude(3, "host burned", "operator-ana"))
			require.NoError(t, tc.srv.Exclude(4, "host burned", "operator-ana"))
		}, 1, "host burned", ledger.ErrLastAgency, ""},
		{"an agency already excluded", true, func(t *testing.T, tc *testCentral) {
			require.NoError(t, tc.srv.Exclude(2, "host burned", "operator-ana"))
		}, 2, "again", ledger.ErrExcluded, ""},
		{"agency 0", true, nil, 0, "host burned", ledger.ErrNoAgency, ""},
		{"an agency out of the round", true, nil, 5, "host burned", ledger.ErrNoAgency, ""},
		{"no reason", true, nil, 2, " ", ledger.ErrInvalid, ""},
		{"a reason that would forge a log line", true, nil, 2, "x\naction: sorteo | result: success", ledger.ErrInvalid,
			`"x\naction: sorteo | result: success"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := testConfig(t)
			cfg.Agencies = 4
			tc := startCentral(t, cfg)
			var parked *rawConn
			if tt.parked {
				parked = dialRaw(t, tc.addr)
				parked.hello(1)
				parked.sendBets(agencyBets(1, 3), 3)
				parked.finish(3)
				parked.send(protocol.Consult{Agency: 1})
				tc.logs.AwaitT(t, 1, vocab.EsperaSorteo.Line(logfmt.InProgress, vocab.Agencia.Int(1)))
			}
			if tt.prepare != nil {
				tt.prepare(t, tc)
			}
			l := tc.srv.recovery.opened()
			before := l.Round()
			journal, err := os.ReadFile(ledger.OperatorPath(cfg.StoragePath))
			require.NoError(t, err)

			err = tc.srv.Exclude(tt.agency, tt.reason, "operator-ana")
			require.ErrorIs(t, err, tt.want)
			reason := tt.reason
			if tt.logged != "" {
				reason = tt.logged
			}
			assert.Equal(t, 1, tc.logs.Count(vocab.ExcluirAgencia.Line(logfmt.Fail, vocab.Agencia.Int(tt.agency),
				vocab.Motivo.Str(reason), vocab.Operador.Str("operator-ana"), vocab.Error.Any(err))), tc.logs.String())
			for _, line := range tc.logs.Texts() {
				assert.NotContains(t, line, "\n", "one event, one line")
				assert.False(t, strings.HasPrefix(line, logfmttest.AnyLine(vocab.Sorteo)), "no draw: %s", line)
			}
			assert.Equal(t, before, l.Round(), "a refused exclusion changes no fact")
			after, err := os.ReadFile(ledger.OperatorPath(cfg.StoragePath))
			require.NoError(t, err)
			assert.Equal(t, string(journal), string(after), "a refused exclusion journals nothing")

			// The round goes on: the agencies left finish, and the parked one,
			// untouched, gets its winners on the same connection.
			for _, id := range before.Pending() {
				c := dialRaw(t, tc.addr)
				c.hello(id)
				c.finish(0)
			}
			tc.logs.AwaitT(t, 1, vocab.Sorteo.Line(logfmt.Success))
			if parked != nil {
				assert.Len(t, parked.readWinners(), 1)
			}
		})
	}
}

// agencyBets are n valid bets of agency id; the first one wins.
func agencyBets(id, n int) []lottery.Bet {
	bets := make([]lottery.Bet, n)
	for i := range bets {
		bets[i] = lottery.Bet{Agency: id, FirstName: "Ana", LastName: "Pérez", Document: strconv.Itoa(30_000_000 + id*1000 + i),
			Birthdate: "1990-01-02", Number: lottery.WinningNumber + i}
	}
	return bets
}

// An exclusion ends its agency's live session before it takes effect, even
// with batches of it on their way: each of them is answered, or not, before
// the exclusion, never after it, and its connection is closed.
func TestExcludeEndsTheAgencysSessionFirst(t *testing.T) {
	cfg := testConfig(t)
	cfg.Agencies = 2
	tc := startCentral(t, cfg)
	c := dialRaw(t, tc.addr)
	c.hello(2)
	const batches, size = 8, 50
	for seq := uint32(1); seq <= batches; seq++ {
		c.send(batchOf(seq, agencyBets(2, size)...))
	}
	require.NoError(t, tc.srv.Exclude(2, "host burned", "operator-ana"))

	lines := tc.logs.Texts()
	at := func(part string) int {
		return slices.IndexFunc(lines, func(l string) bool { return strings.Contains(l, part) })
	}
	closed := at(vocab.CerrarConexion.Line(logfmt.Success, vocab.Agencia.Int(2)))
	require.NotEqual(t, -1, closed, "its session ended")
	assert.Less(t, closed, at(vocab.ExcluirAgencia.Line(logfmt.Success)), "before the exclusion took effect")
	acked := 0
	for {
		m, err := c.read()
		if err != nil {
			break // closed
		}
		require.Equal(t, protocol.MsgBatchAck, m.Type(), "%+v", m)
		acked++
		assert.EqualValues(t, acked, m.(*protocol.BatchAck).Seq)
	}
	stored := tc.srv.recovery.opened().Agency(2).Stored
	assert.LessOrEqual(t, uint64(acked*size), stored, "every batch acknowledged was stored")
	tc.stop()
	assert.Len(t, storedBets(t, cfg.StoragePath)[2], int(stored), "the facts are the file's")
}

// An exclusion the journal cannot record does not take effect, and the
// central says so at ERROR: the agency whose connection it ended reconnects
// and carries on, and an exclusion succeeds once the disk has room again.
func TestExcludeJournalFailure(t *testing.T) {
	cfg := testConfig(t)
	cfg.Agencies = 2
	tc, d := startFaulty(t, cfg)
	c := dialRaw(t, tc.addr)
	c.hello(2)
	c.sendBets(agencyBets(2, 3), 3)

	d.set(true, false)
	err := tc.srv.Exclude(2, "host burned", "operator-ana")
	require.ErrorIs(t, err, syscall.ENOSPC)
	level, ok := tc.logs.LevelOf(vocab.ExcluirAgencia.Line(logfmt.Fail, vocab.Agencia.Int(2)))
	require.True(t, ok, tc.logs.String())
	assert.Equal(t, logrus.ErrorLevel, level, "the disk failed it, not the operator")
	c.expectClosed()
	d.set(false, false)
	journal, err := os.ReadFile(ledger.OperatorPath(cfg.StoragePath))
	require.NoError(t, err)
	assert.Empty(t, journal)

	again := dialRaw(t, tc.addr)
	ack := again.hello(2)
	assert.EqualValues(t, 3, ack.Stored, "not excluded: it carries on")
	again.finish(3)
	require.NoError(t, tc.srv.Exclude(1, "host burned", "operator-ana"))
	tc.logs.AwaitT(t, 1, vocab.Sorteo.Line(logfmt.Success, vocab.Apuestas.Int(3), vocab.Ganadores.Int(1), vocab.Excluidas.Str("1")))
	assert.Len(t, again.consult(), 1)
}
