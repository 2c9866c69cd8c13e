package metrics

import (
	"io"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"lotterycentral.example/protocol"
)

// A nil *Metrics is the central without metrics: every call is a no-op.
func TestNilMetricsDoNothing(t *testing.T) {
	var m *Metrics
	assert.Nil(t, m.Gatherer())
	m.Watch(func() Round { return Round{} })
	m.Recovered(time.Second, 5)
	m.BatchRefused(protocol.CodeInvalidBet)
	m.ProtocolError(protocol.CodeMalformed)
	m.ObserveFsync(time.Millisecond)
	m.ConnectionAccepted()
	m.ConnectionClosed()
	m.ConnectionRefused(RefusedMaxConnections)
	m.HandshakeFailed(HandshakeNetworkFailure)
	c, _ := net.Pipe()
	defer c.Close()
	assert.Same(t, c, m.CountReads(c), "no wrapper without metrics")
}

// The round's facts are read from the central at each scrape, never counted here.
func TestRoundAtScrape(t *testing.T) {
	m := New()
	m.Recovered(250*time.Millisecond, 12)
	// Not watching yet: nothing to report.
	assert.Zero(t, testutil.CollectAndCount(roundCollector{m}))
	calls := 0
	round := Round{Agencies: []Agency{{Stored: 120, Batches: 2}, {Stored: 15, Batches: 1, Winners: 3}}, Finished: 1, Parked: 1}
	m.Watch(func() Round {
		calls++
		return round
	})
	want := `
# HELP lottery_agencies Agencies in the draw (SERVER_AGENCIES).
# TYPE lottery_agencies gauge
lottery_agencies 2
# HELP lottery_agencies_finished Agencies whose FINISH the central recorded.
# TYPE lottery_agencies_finished gauge
lottery_agencies_finished 1
# HELP lottery_agencies_parked Agencies waiting on their connection for the draw's answer now.
# TYPE lottery_agencies_parked gauge
lottery_agencies_parked 1
# HELP lottery_agencies_pending Agencies the draw still waits for: neither finished nor excluded.
# TYPE lottery_agencies_pending gauge
lottery_agencies_pending 1
# HELP lottery_batches_accepted_total Batches stored and acknowledged per agency since the central started.
# TYPE lottery_batches_accepted_total counter
lottery_batches_accepted_total{agency="1"} 2
lottery_batches_accepted_total{agency="2"} 1
# HELP lottery_bets_stored_total Bets stored for good (synced, then acknowledged) per agency, those read back at start included.
# TYPE lottery_bets_stored_total counter
lottery_bets_stored_total{agency="1"} 120
lottery_bets_stored_total{agency="2"} 15
# HELP lottery_draw_duration_seconds How long the draw took; 0 until it ran.
# TYPE lottery_draw_duration_seconds gauge
lottery_draw_duration_seconds 0
# HELP lottery_recovered_bets Rows of the bets file read back and checked at start.
# TYPE lottery_recovered_bets gauge
lottery_recovered_bets 12
# HELP lottery_recovery_duration_seconds How long reading back and checking the bets file and its journal took at start.
# TYPE lottery_recovery_duration_seconds gauge
lottery_recovery_duration_seconds 0.25
`
	names := []string{"lottery_agencies", "lottery_agencies_finished", "lottery_agencies_parked", "lottery_agencies_pending",
		"lottery_bets_stored_total", "lottery_batches_accepted_total", "lottery_recovered_bets",
		"lottery_recovery_duration_seconds", "lottery_winners", "lottery_draw_duration_seconds"}
	require.NoError(t, testutil.GatherAndCompare(m.Gatherer(), strings.NewReader(want), names...))
	assert.Equal(t, 1, calls, "one look at the central per scrape")

	round.Drawn, round.DrawAt, round.DrawTook = true, time.Unix(1700000000, 500_000_000), 1500*time.Millisecond
	want = `
# HELP lottery_draw_duration_seconds How long the draw took; 0 until it ran.
# TYPE lottery_draw_duration_seconds gauge
lottery_draw_duration_seconds 1.5
# HELP lottery_draw_timestamp_seconds When the draw ran, in seconds since the Unix epoch; 0 until it ran.
# TYPE lottery_draw_timestamp_seconds gauge
lottery_draw_timestamp_seconds 1.7000000005e+09
# HELP lottery_winners Winners of each agency drawn; present once the draw ran, never for an excluded agency.
# TYPE lottery_winners gauge
lottery_winners{agency="1"} 0
lottery_winners{agency="2"} 3
`
	require.NoError(t, testutil.GatherAndCompare(m.Gatherer(), strings.NewReader(want),
		"lottery_winners", "lottery_draw_duration_seconds", "lottery_draw_timestamp_seconds"))
}

// An agency the operator excluded is counted apart, is not pending, and
// has no winners once drawn: it is not drawn. Its bets stay counted.
func TestExcludedAtScrape(t *testing.T) {
	m := New()
	round := Round{Agencies: []Agency{{Stored: 10, Winners: 1}, {Stored: 4, Winners: 2, Excluded: true}, {}},
		Finished: 1, Excluded: 1}
	m.Watch(func() Round { return round })
	want := `
# HELP lottery_agencies_excluded Agencies the operator excluded from the draw: their bets stay stored, undrawn.
# TYPE lottery_agencies_excluded gauge
lottery_agencies_excluded 1
# HELP lottery_agencies_pending Agencies the draw still waits for: neither finished nor excluded.
# TYPE lottery_agencies_pending gauge
lottery_agencies_pending 1
# HELP lottery_bets_stored_total Bets stored for good (synced, then acknowledged) per agency, those read back at start included.
# TYPE lottery_bets_stored_total counter
lottery_bets_stored_total{agency="1"} 10
lottery_bets_stored_total{agency="2"} 4
lottery_bets_stored_total{agency="3"} 0
`
	names := []string{"lottery_agencies_excluded", "lottery_agencies_pending", "lottery_bets_stored_total", "lottery_winners"}
	require.NoError(t, testutil.GatherAndCompare(m.Gatherer(), strings.NewReader(want), names...))

	round.Agencies[2].Excluded, round.Excluded, round.Drawn = true, 2, true
	want = `
# HELP lottery_agencies_excluded Agencies the operator excluded from the draw: their bets stay stored, undrawn.
# TYPE lottery_agencies_excluded gauge
lottery_agencies_excluded 2
# HELP lottery_agencies_pending Agencies the draw still waits for: neither finished nor excluded.
# TYPE lottery_agencies_pending gauge
lottery_agencies_pending 0
# HELP lottery_winners Winners of each agency drawn; present once the draw ran, never for an excluded agency.
# TYPE lottery_winners gauge
lottery_winners{agency="1"} 1
`
	require.NoError(t, testutil.GatherAndCompare(m.Gatherer(), strings.NewReader(want),
		"lottery_agencies_excluded", "lottery_agencies_pending", "lottery_winners"))
}

func TestEventCounters(t *testing.T) {
	m := New()
	m.BatchRefused(protocol.CodeInvalidBet)
	m.BatchRefused(protocol.CodeInvalidBet)
	m.BatchRefused(protocol.CodeStorage)
	m.ProtocolError(protocol.CodeIdleTimeout)
	m.ConnectionAccepted()
	m.ConnectionAccepted()
	m.ConnectionClosed()
	m.ConnectionRefused(RefusedMaxPerSource)
	m.HandshakeFailed("expired")
	m.ObserveFsync(3 * time.Millisecond)
	m.ObserveFsync(40 * time.Millisecond)

	assert.Equal(t, 2.0, testutil.ToFloat64(m.batchesRefused.WithLabelValues("invalid_bet")))
	assert.Equal(t, 1.0, testutil.ToFloat64(m.batchesRefused.WithLabelValues("storage")))
	assert.Zero(t, testutil.ToFloat64(m.batchesRefused.WithLabelValues("draw_done")))
	assert.Equal(t, 1.0, testutil.ToFloat64(m.protocolErrors.WithLabelValues("idle_timeout")))
	assert.Equal(t, 2.0, testutil.ToFloat64(m.connsAccepted))
	assert.Equal(t, 1.0, testutil.ToFloat64(m.connsOpen))
	assert.Equal(t, 1.0, testutil.ToFloat64(m.connsRefused.WithLabelValues("max_unidentified_per_source")))
	assert.Equal(t, 1.0, testutil.ToFloat64(m.handshakeFailed.WithLabelValues("expired")))

	// Every bounded label value is there from the start, at zero.
	assert.Equal(t, len(batchCodes), testutil.CollectAndCount(m.batchesRefused))
	assert.Equal(t, len(handshakeReasons), testutil.CollectAndCount(m.handshakeFailed))
	assert.Equal(t, 4, testutil.CollectAndCount(m.connsRefused))
	assert.Equal(t, int(protocol.CodeRevoked), testutil.CollectAndCount(m.protocolErrors))

	fams, err := m.Gatherer().Gather()
	require.NoError(t, err)
	seen := false
	for _, f := range fams {
		if f.GetName() == "lottery_fsync_duration_seconds" {
			seen = true
			assert.Equal(t, uint64(2), f.Metric[0].Histogram.GetSampleCount())
			assert.InDelta(t, 0.043, f.Metric[0].Histogram.GetSampleSum(), 1e-9)
		}
	}
	assert.True(t, seen, "lottery_fsync_duration_seconds")
}

func TestCountReads(t *testing.T) {
	m := New()
	client, server := net.Pipe()
	defer client.Close()
	counted := m.CountReads(server)
	defer counted.Close()
	go func() {
		_, _ = client.Write([]byte("hello, central"))
		client.Close()
	}()
	got, err := io.ReadAll(counted)
	require.NoError(t, err)
	assert.Equal(t, "hello, central", string(got))
	assert.Equal(t, 14.0, testutil.ToFloat64(m.receivedBytes))
}

// The names follow Prometheus's conventions, as its linter checks them.
func TestMetricNamesLint(t *testing.T) {
	m := New()
	m.Watch(func() Round {
		return Round{Agencies: []Agency{{Stored: 1, Batches: 1, Winners: 1}}, Drawn: true, DrawAt: time.Now()}
	})
	problems, err := testutil.GatherAndLint(m.Gatherer())
	require.NoError(t, err)
	for _, p := range problems {
		if strings.HasPrefix(p.Metric, "lottery_") {
			t.Errorf("%s: %s", p.Metric, p.Text)
		}
	}
	fams, err := m.Gatherer().Gather()
	require.NoError(t, err)
	for _, f := range fams {
		name := f.GetName()
		if strings.HasPrefix(name, "go_") || strings.HasPrefix(name, "process_") {
			continue
		}
		assert.True(t, strings.HasPrefix(name, "lottery_"), name)
	}
}
