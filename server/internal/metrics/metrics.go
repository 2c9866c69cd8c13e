// Package metrics holds the central's Prometheus collectors, on a private
// registry that the admin listener serves at /metrics.
//
// The ingest path only adds to counters. The round's facts (each agency's
// bets, batches and winners, who finished, who is parked, the draw) are
// not counted here at all: a scrape reads them from the central (Watch),
// which reads them from their one owner, the ledger or the draw barrier.
//
// A nil *Metrics is the central without metrics (no admin listener): every
// method does nothing.
//
// Names follow Prometheus conventions: the lottery_ prefix, _total on
// counters, base units (_seconds, _bytes). The agency number is a label, and
// so are bounded enumerations (a protocol code, a refusal reason); nothing
// unbounded (a peer's address, a document) ever is.
package metrics

import (
	"net"
	"strconv"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"

	"lotterycentral.example/protocol"
	"lotterycentral.example/protocol/identity"
)

// The reasons a connection is refused before it gets a session
// (lottery_connections_refused_total's reason label).
const (
	RefusedMaxConnections  = "max_connections"             // SERVER_MAX_CONNECTIONS served already
	RefusedMaxUnidentified = "max_unidentified"            // SERVER_MAX_UNIDENTIFIED waiting to identify
	RefusedMaxPerSource    = "max_unidentified_per_source" // SERVER_MAX_UNIDENTIFIED_PER_SOURCE from its address
	RefusedShuttingDown    = "shutting_down"               // accepted while the central stops
)

// HandshakeNetworkFailure is the reason of a TLS handshake that failed for
// no TLS reason (a timeout, a reset): the central's tls_handshake line says
// "network" too.
const HandshakeNetworkFailure = "network"

// batchCodes are the codes a batch can be refused with: their series exist,
// at zero, from the start.
var batchCodes = []protocol.Code{
	protocol.CodeMalformed, protocol.CodeFrameTooLarge, protocol.CodeInvalidBet, protocol.CodeEmptyBatch,
	protocol.CodeBadSequence, protocol.CodeAfterFinish, protocol.CodeDrawDone, protocol.CodeStorage,
	protocol.CodeExcluded,
}

// handshakeReasons are the reasons identity.DescribeServerHandshakeError
// gives, and HandshakeNetworkFailure.
var handshakeReasons = []string{
	identity.ReasonUnknownAuthority, identity.ReasonNameMismatch, identity.ReasonExpired,
	identity.ReasonInvalidCertificate, identity.ReasonNoCertificate, identity.ReasonRefusedByCentral,
	identity.ReasonRefusedByAgency, identity.ReasonNotTLS, identity.ReasonHandshakeFailed, identity.ReasonRevoked,
	HandshakeNetworkFailure,
}

// Metrics is every collector of one central.
type Metrics struct {
	reg *prometheus.Registry

	batchesRefused   *prometheus.CounterVec
	protocolErrors   *prometheus.CounterVec
	receivedBytes    prometheus.Counter
	fsync            prometheus.Histogram
	connsOpen        prometheus.Gauge
	connsAccepted    prometheus.Counter
	connsRefused     *prometheus.CounterVec
	handshakeFailed  *prometheus.CounterVec
	recoveryDuration prometheus.Gauge
	recoveredBets    prometheus.Gauge

	round atomic.Pointer[func() Round]
}

// Round is what a scrape reads of the central: every agency's facts and the
// draw's state.
type Round struct {
	Agencies []Agency // agency i+1 at index i
	Finished int      // agencies whose FINISH is recorded
	Excluded int      // agencies the operator excluded from the draw
	Parked   int      // agencies waiting on their connection for the draw now
	Drawn    bool
	DrawAt   time.Time     // when the draw ran
	DrawTook time.Duration // how long it took
}

// Agency is one agency's facts.
type Agency struct {
	Stored   uint64 // bets stored for good, those read back at start included
	Batches  uint64 // batches stored since the central started
	Winners  int    // its winners; shown once drawn
	Excluded bool   // the operator excluded it: its winners are not drawn
}

// New returns the collectors, registered on a registry of their own together
// with the Go runtime's and the process's.
func New() *Metrics {
	m := &Metrics{
		reg: prometheus.NewRegistry(),
		batchesRefused: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "lottery_batches_refused_total",
			Help: "Batches refused whole, nothing of them stored, by the protocol code the agency was told.",
		}, []string{"code"}),
		protocolErrors: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "lottery_protocol_errors_total",
			Help: "Connections the central ended with an ERROR, by its protocol code.",
		}, []string{"code"}),
		receivedBytes: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "lottery_received_bytes_total",
			Help: "Bytes read from the agencies' connections, TLS records included.",
		}),
		fsync: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name: "lottery_fsync_duration_seconds",
			Help: "Time one fsync of the bets file took (each covers every batch written before it started).",
			// 50 µs to about 3.3 s.
			Buckets: prometheus.ExponentialBuckets(50e-6, 2, 17),
		}),
		connsOpen: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "lottery_connections_open",
			Help: "Connections served now, identified or not.",
		}),
		connsAccepted: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "lottery_connections_accepted_total",
			Help: "Connections given a session.",
		}),
		connsRefused: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "lottery_connections_refused_total",
			Help: "Connections closed at accept, by reason (a connection cap, or the central stopping).",
		}, []string{"reason"}),
		handshakeFailed: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "lottery_tls_handshake_failures_total",
			Help: "TLS handshakes that failed, by reason (the motivo of the tls_handshake log line).",
		}, []string{"reason"}),
		recoveryDuration: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "lottery_recovery_duration_seconds",
			Help: "How long reading back and checking the bets file and its journal took at start.",
		}),
		recoveredBets: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "lottery_recovered_bets",
			Help: "Rows of the bets file read back and checked at start.",
		}),
	}
	for _, c := range batchCodes {
		m.batchesRefused.WithLabelValues(c.String())
	}
	for c := protocol.CodeMalformed; c <= protocol.CodeRevoked; c++ {
		m.protocolErrors.WithLabelValues(c.String())
	}
	for _, r := range []string{RefusedMaxConnections, RefusedMaxUnidentified, RefusedMaxPerSource, RefusedShuttingDown} {
		m.connsRefused.WithLabelValues(r)
	}
	for _, r := range handshakeReasons {
		m.handshakeFailed.WithLabelValues(r)
	}
	m.reg.MustRegister(
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
		m.batchesRefused, m.protocolErrors, m.receivedBytes, m.fsync,
		m.connsOpen, m.connsAccepted, m.connsRefused, m.handshakeFailed,
		m.recoveryDuration, m.recoveredBets, roundCollector{m},
	)
	return m
}

// Gatherer is what /metrics serves; nil for a nil m.
func (m *Metrics) Gatherer() prometheus.Gatherer {
	if m == nil {
		return nil
	}
	return m.reg
}

// Watch makes every scrape ask round for the round's facts.
func (m *Metrics) Watch(round func() Round) {
	if m != nil {
		m.round.Store(&round)
	}
}

// Recovered records the start: how long recovery took and how many rows it
// read back.
func (m *Metrics) Recovered(took time.Duration, rows uint64) {
	if m == nil {
		return
	}
	m.recoveryDuration.Set(took.Seconds())
	m.recoveredBets.Set(float64(rows))
}

// BatchRefused counts a batch refused with code.
func (m *Metrics) BatchRefused(code protocol.Code) {
	if m != nil {
		m.batchesRefused.WithLabelValues(code.String()).Inc()
	}
}

// ProtocolError counts a connection ended with an ERROR of code.
func (m *Metrics) ProtocolError(code protocol.Code) {
	if m != nil {
		m.protocolErrors.WithLabelValues(code.String()).Inc()
	}
}

// CountReads returns c counting every byte read from it into
// lottery_received_bytes_total (c itself for a nil m). Wrapped under TLS, it
// counts the records as they come off the wire: one atomic add per read
// from the socket, not per message.
func (m *Metrics) CountReads(c net.Conn) net.Conn {
	if m == nil {
		return c
	}
	return &countedConn{Conn: c, bytes: m.receivedBytes}
}

type countedConn struct {
	net.Conn
	bytes prometheus.Counter
}

func (c *countedConn) Read(p []byte) (int, error) {
	n, err := c.Conn.Read(p)
	if n > 0 {
		c.bytes.Add(float64(n))
	}
	return n, err
}

// ObserveFsync records one fsync of the bets file.
func (m *Metrics) ObserveFsync(took time.Duration) {
	if m != nil {
		m.fsync.Observe(took.Seconds())
	}
}

// ConnectionAccepted counts a connection given a session; ConnectionClosed
// its end.
func (m *Metrics) ConnectionAccepted() {
	if m != nil {
		m.connsAccepted.Inc()
		m.connsOpen.Inc()
	}
}

// ConnectionClosed counts the end of a connection ConnectionAccepted counted.
func (m *Metrics) ConnectionClosed() {
	if m != nil {
		m.connsOpen.Dec()
	}
}

// ConnectionRefused counts a connection closed at accept, for reason (one of
// the Refused constants).
func (m *Metrics) ConnectionRefused(reason string) {
	if m != nil {
		m.connsRefused.WithLabelValues(reason).Inc()
	}
}

// HandshakeFailed counts a failed TLS handshake, for reason (identity's
// Reason constants, or HandshakeNetworkFailure).
func (m *Metrics) HandshakeFailed(reason string) {
	if m != nil {
		m.handshakeFailed.WithLabelValues(reason).Inc()
	}
}

// roundCollector asks the central once per scrape.
type roundCollector struct{ m *Metrics }

var (
	betsDesc = prometheus.NewDesc("lottery_bets_stored_total",
		"Bets stored for good (synced, then acknowledged) per agency, those read back at start included.",
		[]string{"agency"}, nil)
	batchesDesc = prometheus.NewDesc("lottery_batches_accepted_total",
		"Batches stored and acknowledged per agency since the central started.",
		[]string{"agency"}, nil)
	winnersDesc = prometheus.NewDesc("lottery_winners",
		"Winners of each agency drawn; present once the draw ran, never for an excluded agency.",
		[]string{"agency"}, nil)
	agenciesDesc = prometheus.NewDesc("lottery_agencies", "Agencies in the draw (SERVER_AGENCIES).", nil, nil)
	finishedDesc = prometheus.NewDesc("lottery_agencies_finished", "Agencies whose FINISH the central recorded.", nil, nil)
	excludedDesc = prometheus.NewDesc("lottery_agencies_excluded",
		"Agencies the operator excluded from the draw: their bets stay stored, undrawn.", nil, nil)
	pendingDesc = prometheus.NewDesc("lottery_agencies_pending",
		"Agencies the draw still waits for: neither finished nor excluded.", nil, nil)
	parkedDesc = prometheus.NewDesc("lottery_agencies_parked",
		"Agencies waiting on their connection for the draw's answer now.", nil, nil)
	drawDurationDesc = prometheus.NewDesc("lottery_draw_duration_seconds",
		"How long the draw took; 0 until it ran.", nil, nil)
	drawTimeDesc = prometheus.NewDesc("lottery_draw_timestamp_seconds",
		"When the draw ran, in seconds since the Unix epoch; 0 until it ran.", nil, nil)
)

func (c roundCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{betsDesc, batchesDesc, winnersDesc, agenciesDesc, finishedDesc, excludedDesc,
		pendingDesc, parkedDesc, drawDurationDesc, drawTimeDesc} {
		ch <- d
	}
}

func (c roundCollector) Collect(ch chan<- prometheus.Metric) {
	f := c.m.round.Load()
	if f == nil {
		return
	}
	r := (*f)()
	for i, a := range r.Agencies {
		label := strconv.Itoa(i + 1)
		ch <- prometheus.MustNewConstMetric(betsDesc, prometheus.CounterValue, float64(a.Stored), label)
		ch <- prometheus.MustNewConstMetric(batchesDesc, prometheus.CounterValue, float64(a.Batches), label)
		if r.Drawn && !a.Excluded {
			ch <- prometheus.MustNewConstMetric(winnersDesc, prometheus.GaugeValue, float64(a.Winners), label)
		}
	}
	gauge := func(d *prometheus.Desc, v float64) { ch <- prometheus.MustNewConstMetric(d, prometheus.GaugeValue, v) }
	gauge(agenciesDesc, float64(len(r.Agencies)))
	gauge(finishedDesc, float64(r.Finished))
	gauge(excludedDesc, float64(r.Excluded))
	gauge(pendingDesc, float64(len(r.Agencies)-r.Finished-r.Excluded))
	gauge(parkedDesc, float64(r.Parked))
	var took, at float64
	if r.Drawn {
		took, at = r.DrawTook.Seconds(), float64(r.DrawAt.UnixNano())/1e9
	}
	gauge(drawDurationDesc, took)
	gauge(drawTimeDesc, at)
}
