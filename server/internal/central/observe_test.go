package central

import (
	"encoding/json"
	"net/http"
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
	"lotterycentral.example/protocol"
	"lotterycentral.example/server/internal/admin"
	"lotterycentral.example/server/internal/vocab"
)

// officialDataset is the course's dataset, committed in the repository.
const officialDataset = "../../../.data/dataset.zip"

// The official dataset: each agency's bets and winners.
var (
	officialBets    = map[int]int{1: 26936, 2: 25518, 3: 16014, 4: 9238, 5: 991}
	officialWinners = map[int]int{1: 2, 2: 3, 3: 3, 4: 2, 5: 0}
)

// officialFiles extracts the official dataset into a fresh directory and
// checks it holds the counts the tests compare against.
func officialFiles(t testing.TB) (string, map[int][]lottery.Bet) {
	t.Helper()
	dir := t.TempDir()
	_, err := lottery.ExtractDataset(officialDataset, dir)
	require.NoError(t, err)
	bets := agencyBetsIn(t, dir, 5)
	for id := 1; id <= 5; id++ {
		require.Len(t, bets[id], officialBets[id], "agency %d's file", id)
	}
	return dir, bets
}

// holdOfficialDraw starts the official draw on oc and holds it: agencies 1–4
// run the real client on dir's files and park; agency 5 is driven by hand,
// identified, with its first sent bets stored. It returns the four clients'
// results to come and agency 5's connection.
func holdOfficialDraw(t *testing.T, oc *observedCentral, dir string, bets map[int][]lottery.Bet, sent int) ([]<-chan agencyResult, *rawConn) {
	t.Helper()
	var runs []<-chan agencyResult
	for id := 1; id <= 4; id++ {
		runs = append(runs, runAgency(t.Context(), agencyConfig(oc.testCentral, dir, id)))
	}
	oc.logs.AwaitT(t, 4, vocab.EsperaSorteo.Line(logfmt.InProgress))
	c := dialRaw(t, oc.addr)
	c.hello(5)
	c.sendBets(bets[5][:sent], 100)
	return runs, c
}

// The metrics and the status page tell what was sent, during the official
// draw and after it, and after a restart that recovers it: agencies 1–4 run
// the real client and park; agency 5 is driven by hand and holds the draw
// with part of its bets sent.
func TestObservingTheOfficialDraw(t *testing.T) {
	dir, bets := officialFiles(t)
	cfg := testConfig(t)
	oc := startObserved(t, cfg, nil)
	code, body := oc.get(t, "/healthz")
	require.Equal(t, http.StatusOK, code, body)

	runs, c := holdOfficialDraw(t, oc, dir, bets, 500)

	// During: four parked with all their bets, agency 5 connected with 500.
	m := oc.scrape(t)
	for id := 1; id <= 4; id++ {
		assert.Equal(t, float64(officialBets[id]), m.value(t, "lottery_bets_stored_total", "agency", strconv.Itoa(id)), "agency %d", id)
	}
	assert.Equal(t, 500.0, m.value(t, "lottery_bets_stored_total", "agency", "5"))
	assert.Equal(t, 5.0, m.value(t, "lottery_batches_accepted_total", "agency", "5"))
	assert.Equal(t, 5.0, m.value(t, "lottery_agencies"))
	assert.Equal(t, 4.0, m.value(t, "lottery_agencies_finished"))
	assert.Equal(t, 1.0, m.value(t, "lottery_agencies_pending"))
	assert.Equal(t, 4.0, m.value(t, "lottery_agencies_parked"))
	assert.Equal(t, 5.0, m.value(t, "lottery_connections_open"))
	assert.Equal(t, 0.0, m.value(t, "lottery_draw_timestamp_seconds"))
	_, err := m.lookup("lottery_winners")
	assert.Error(t, err, "winners before the draw")
	assert.Positive(t, m.value(t, "lottery_fsync_duration_seconds"), "fsyncs observed")
	assert.Positive(t, m.value(t, "lottery_received_bytes_total"))

	page := parseStatusPage(t, oc.getOK(t, "/"))
	assert.Equal(t, "waiting", page.drawState)
	assert.Equal(t, "5", page.pending)
	require.Len(t, page.rows, 5)
	for i, r := range page.rows {
		id := i + 1
		assert.Equal(t, strconv.Itoa(id), r.agency)
		if id <= 4 {
			assert.Equal(t, admin.StateParked, r.state, "agency %d", id)
			assert.Equal(t, strconv.Itoa(officialBets[id]), r.bets, "agency %d", id)
		} else {
			assert.Contains(t, []string{admin.StateConnected, admin.StateSending}, r.state)
			assert.Equal(t, "500", r.bets)
		}
		assert.Equal(t, "–", r.winners, "no winners before the draw")
	}

	// After: agency 5 sends the rest and everyone gets its winners.
	c.sendBets(bets[5][500:], 100)
	c.finish(len(bets[5]))
	assert.Empty(t, c.consult())
	for _, ch := range runs {
		r := <-ch
		require.NoError(t, r.err, "agency %d", r.id)
		assert.Len(t, r.docs, officialWinners[r.id], "agency %d", r.id)
	}
	oc.logs.AwaitT(t, 5, vocab.EnvioGanadores.Line(logfmt.Success))

	m = oc.scrape(t)
	var batches float64
	for id := 1; id <= 5; id++ {
		label := strconv.Itoa(id)
		assert.Equal(t, float64(officialBets[id]), m.value(t, "lottery_bets_stored_total", "agency", label), "agency %d", id)
		assert.Equal(t, float64(officialWinners[id]), m.value(t, "lottery_winners", "agency", label), "agency %d", id)
		batches += m.value(t, "lottery_batches_accepted_total", "agency", label)
	}
	assert.Equal(t, float64(oc.logs.Count(vocab.ApuestaRecibida.Line(logfmt.Success))), batches,
		"one accepted batch per apuesta_recibida line")
	for _, code := range []protocol.Code{protocol.CodeInvalidBet, protocol.CodeBadSequence, protocol.CodeStorage} {
		assert.Zero(t, m.value(t, "lottery_batches_refused_total", "code", code.String()), "%s", code)
	}
	assert.Equal(t, 5.0, m.value(t, "lottery_agencies_finished"))
	assert.Zero(t, m.value(t, "lottery_agencies_pending"))
	assert.Zero(t, m.value(t, "lottery_agencies_parked"))
	drawnAt := m.value(t, "lottery_draw_timestamp_seconds")
	assert.InDelta(t, float64(time.Now().Unix()), drawnAt, 60)
	assert.Positive(t, m.value(t, "lottery_draw_duration_seconds"))
	assert.GreaterOrEqual(t, m.value(t, "lottery_connections_accepted_total"), 5.0)
	assert.Zero(t, m.value(t, "lottery_recovered_bets"), "a fresh bets file")
	_, err = m.lookup("go_goroutines")
	assert.NoError(t, err, "the Go collector")
	_, err = m.lookup("process_open_fds")
	assert.NoError(t, err, "the process collector")

	page = parseStatusPage(t, oc.getOK(t, "/"))
	assert.Equal(t, "drawn", page.drawState)
	require.Len(t, page.rows, 5)
	var widths float64
	for i, r := range page.rows {
		id := i + 1
		assert.Equal(t, admin.StateAnswered, r.state, "agency %d", id)
		assert.Equal(t, strconv.Itoa(officialBets[id]), r.bets, "agency %d", id)
		assert.Equal(t, strconv.Itoa(officialWinners[id]), r.winners, "agency %d", id)
		w, err := strconv.ParseFloat(r.width, 64)
		require.NoError(t, err, "bar width %q", r.width)
		assert.InDelta(t, 100*float64(officialBets[id])/78697, w, 0.01, "agency %d's share", id)
		widths += w
	}
	assert.InDelta(t, 100, widths, 0.05)

	var js admin.View
	require.NoError(t, json.Unmarshal([]byte(oc.getOK(t, "/status.json")), &js))
	assert.Equal(t, uint64(78697), js.Bets)
	assert.Equal(t, "drawn", js.Draw.State)
	assert.Equal(t, 10, js.Draw.WinnersTotal)

	// A restart recovers the bets and the FINISHes, and draws again.
	oc.stop()
	oc.logs.AwaitT(t, 1, vocab.CerrarAdmin.Line(logfmt.Success))
	again := startObserved(t, cfg, nil)
	m = again.scrape(t)
	assert.Equal(t, 78697.0, m.value(t, "lottery_recovered_bets"))
	assert.Positive(t, m.value(t, "lottery_recovery_duration_seconds"))
	for id := 1; id <= 5; id++ {
		label := strconv.Itoa(id)
		assert.Equal(t, float64(officialBets[id]), m.value(t, "lottery_bets_stored_total", "agency", label), "agency %d", id)
		assert.Zero(t, m.value(t, "lottery_batches_accepted_total", "agency", label), "agency %d", id)
		assert.Equal(t, float64(officialWinners[id]), m.value(t, "lottery_winners", "agency", label), "agency %d", id)
	}
	assert.Equal(t, 5.0, m.value(t, "lottery_agencies_finished"))
}

// getOK fetches path and requires 200.
func (oc *observedCentral) getOK(t testing.TB, path string) string {
	t.Helper()
	code, body := oc.get(t, path)
	require.Equal(t, http.StatusOK, code, body)
	return body
}

// Every refused batch is counted under the code its agency was told, and the
// count matches the apuesta_recibida fail lines; the frame over 8 KiB also
// ends the connection, counted as a protocol error.
func TestRefusedBatchesCountedByCode(t *testing.T) {
	dir := t.TempDir()
	_, err := lottery.GenerateAgencyFiles(dir, 2, 50, 7)
	require.NoError(t, err)
	cfg := testConfig(t)
	cfg.Agencies = 2
	oc := startObserved(t, cfg, nil)

	c := dialRaw(t, oc.addr)
	c.hello(1)
	c.send(withBadBet(1, func(b *lottery.Bet) { b.Document = "12a" }))
	c.expectReject(1, protocol.CodeInvalidBet, 2)
	c.send(withBadBet(1, func(b *lottery.Bet) { b.Number = 10000 }))
	c.expectReject(1, protocol.CodeInvalidBet, 2)
	c.send(withBadRow(1, `"Intruso",Hostil,99999999,1990-01-01,7574`)) // quoted where csv would not
	c.expectReject(1, protocol.CodeInvalidBet, 2)
	c.send(protocol.Batch{Seq: 1, Count: 2, Rows: rowsOf(intruder())}) // one row, count 2
	c.expectReject(1, protocol.CodeMalformed, protocol.NoIndex)
	c.send(batchOf(7, intruder()))
	c.expectReject(7, protocol.CodeBadSequence, protocol.NoIndex)
	c.send(protocol.Batch{Seq: 1})
	c.expectReject(1, protocol.CodeEmptyBatch, protocol.NoIndex)
	c.write(batchFrame(t, 1, protocol.MaxClientPayload+1))
	c.expectError(protocol.CodeFrameTooLarge)
	oc.logs.AwaitT(t, 1, vocab.Protocolo.Line(logfmt.Fail), vocab.Motivo.Str("frame_too_large").String()+" |")

	m := oc.scrape(t)
	want := map[protocol.Code]float64{protocol.CodeInvalidBet: 3, protocol.CodeBadSequence: 1,
		protocol.CodeEmptyBatch: 1, protocol.CodeFrameTooLarge: 1, protocol.CodeMalformed: 1, protocol.CodeDrawDone: 0,
		protocol.CodeAfterFinish: 0, protocol.CodeStorage: 0}
	var refused float64
	for code, n := range want {
		assert.Equal(t, n, m.value(t, "lottery_batches_refused_total", "code", code.String()), "%s", code)
		refused += n
	}
	assert.Equal(t, float64(oc.logs.Count(vocab.ApuestaRecibida.Line(logfmt.Fail))), refused)
	assert.Equal(t, 1.0, m.value(t, "lottery_protocol_errors_total", "code", protocol.CodeFrameTooLarge.String()))
	assert.Zero(t, m.value(t, "lottery_bets_stored_total", "agency", "1"))
	assert.Zero(t, m.value(t, "lottery_batches_accepted_total", "agency", "1"))
}

// Connections refused at accept are counted by reason, and so are TLS
// handshakes that fail, by the reason the central's log gives.
func TestConnectionsCountedByReason(t *testing.T) {
	t.Run("cap", func(t *testing.T) {
		cfg := testConfig(t)
		cfg.MaxConnections = 2
		oc := startObserved(t, cfg, nil)
		a, b := dialRaw(t, oc.addr), dialRaw(t, oc.addr)
		a.hello(1)
		b.hello(2)
		third := dialRaw(t, oc.addr)
		third.expectError(protocol.CodeTooManyConns)
		oc.logs.AwaitT(t, 1, vocab.AceptarConexion.Line(logfmt.Fail), vocab.Motivo.Str("too_many_connections").String()+" |")
		m := oc.scrape(t)
		assert.Equal(t, 1.0, m.value(t, "lottery_connections_refused_total", "reason", "max_connections"))
		assert.Zero(t, m.value(t, "lottery_connections_refused_total", "reason", "max_unidentified"))
		assert.Equal(t, 2.0, m.value(t, "lottery_connections_accepted_total"))
		assert.Equal(t, 2.0, m.value(t, "lottery_connections_open"))
	})
	t.Run("TLS handshakes", func(t *testing.T) {
		p := newTrustPKI(t, 3)
		cfg := testConfig(t)
		p.serveTLS(&cfg)
		oc := startObserved(t, cfg, nil)

		plain := dialRaw(t, oc.addr)
		plain.send(protocol.Hello{Version: protocol.Version, Agency: 3})
		oc.logs.AwaitT(t, 1, vocab.TLSHandshake.Line(logfmt.Fail), vocab.Motivo.Str("not_tls").String()+" |")
		foreign, _ := dialPeer(t, oc.addr, nil, p.clientTLS(p.foreign3.Cert))
		if foreign != nil {
			_, _ = foreign.tryRead()
		}
		oc.logs.AwaitT(t, 1, vocab.TLSHandshake.Line(logfmt.Fail), vocab.Motivo.Str("unknown_authority").String()+" |")

		m := oc.scrape(t)
		assert.Equal(t, 1.0, m.value(t, "lottery_tls_handshake_failures_total", "reason", "not_tls"))
		assert.Equal(t, 1.0, m.value(t, "lottery_tls_handshake_failures_total", "reason", "unknown_authority"))
		assert.Zero(t, m.value(t, "lottery_tls_handshake_failures_total", "reason", "expired"))
	})
}

// While the draw waits, the central names the agencies it waits for, once
// per change: changes between two looks come out as one line.
func TestPendingAgenciesLogged(t *testing.T) {
	line := vocab.EsperandoAgencias.Line(logfmt.InProgress, vocab.Pendientes.Str(""))
	cfg := testConfig(t)
	cfg.Agencies = 7
	// The watcher's ticker never ticks: the test takes each look itself.
	oc := startObserved(t, cfg, make(chan time.Time))
	finish := func(id int) {
		t.Helper()
		c := dialRaw(t, oc.addr)
		c.hello(id)
		c.finish(0)
	}
	look := func() bool { return oc.srv.pending.look(oc.srv, oc.srv.recovery.opened()) }

	require.True(t, look())
	assert.Zero(t, oc.logs.Count(logfmttest.AnyLine(vocab.EsperandoAgencias)), "nobody finished: the draw is not waiting yet")
	finish(4)
	require.True(t, look())
	assert.Equal(t, 1, oc.logs.Count(line+"1-3,5-7"), oc.logs.String())
	require.True(t, look())
	require.True(t, look())
	assert.Equal(t, 1, oc.logs.Count(logfmttest.AnyLine(vocab.EsperandoAgencias)), "unchanged: not logged again")
	finish(1)
	finish(3)
	finish(6)
	require.True(t, look())
	assert.Equal(t, 1, oc.logs.Count(line+"2,5,7"), oc.logs.String())
	finish(7)
	finish(2)
	require.True(t, look())
	assert.Equal(t, 1, oc.logs.Count(line+"5"), oc.logs.String())
	finish(5)
	oc.logs.AwaitT(t, 1, vocab.Sorteo.Line(logfmt.Success))
	assert.False(t, look(), "the draw ran: nothing to wait for")
	assert.Equal(t, 3, oc.logs.Count(logfmttest.AnyLine(vocab.EsperandoAgencias)), oc.logs.String())
}

// The watcher looks on each tick of its ticker, and stops once the draw ran.
func TestPendingWatcherTicks(t *testing.T) {
	ticks := make(chan time.Time)
	cfg := testConfig(t)
	cfg.Agencies = 2
	oc := startObserved(t, cfg, ticks)
	one := dialRaw(t, oc.addr)
	one.hello(1)
	one.finish(0)
	ticks <- time.Now()
	oc.logs.AwaitT(t, 1, vocab.EsperandoAgencias.Line(logfmt.InProgress, vocab.Pendientes.Str("2")))
	two := dialRaw(t, oc.addr)
	two.hello(2)
	two.finish(0)
	oc.logs.AwaitT(t, 1, vocab.Sorteo.Line(logfmt.Success))
	oc.srv.pending.wait() // the draw ends the watcher: no tick needed
	select {
	case ticks <- time.Now():
		t.Fatal("the watcher still takes ticks after the draw")
	default:
	}
	assert.Equal(t, 1, oc.logs.Count(logfmttest.AnyLine(vocab.EsperandoAgencias)), oc.logs.String())
}

// /healthz answers 200 while the central serves agencies, and the admin
// listener closes with the central, logging it.
func TestHealthzAndAdminShutdown(t *testing.T) {
	oc := startObserved(t, testConfig(t), nil)
	// Serve may not have taken its listener yet: the first answer is 503 or 200.
	oc.logs.AwaitT(t, 1, vocab.Escuchar.Line(logfmt.Success))
	code, body := oc.get(t, "/healthz")
	assert.Equal(t, http.StatusOK, code)
	assert.Equal(t, "ok\n", body)
	assert.True(t, oc.srv.Serving())
	code, _ = oc.get(t, "/nothing-here")
	assert.Equal(t, http.StatusNotFound, code)

	oc.stop()
	assert.False(t, oc.srv.Serving())
	oc.logs.AwaitT(t, 1, vocab.CerrarAdmin.Line(logfmt.Success))
	_, err := (&http.Client{Timeout: replyWait}).Get(oc.url + "/healthz")
	assert.Error(t, err, "the admin listener is closed")
	lines := oc.logs.Texts()
	at := func(part string) int {
		return slices.IndexFunc(lines, func(l string) bool { return strings.Contains(l, part) })
	}
	assert.Less(t, at(vocab.CerrarListener.Line(logfmt.Success)), at(vocab.CerrarAdmin.Line(logfmt.Success)))
	assert.Less(t, at(vocab.CerrarAdmin.Line(logfmt.Success)), at(vocab.Shutdown.Line(logfmt.Success)))
}
