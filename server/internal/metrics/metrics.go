// Package metrics holds the central's Prometheus collectors, on a private
// registry that the admin listener serves at /metrics.
//
// The ingest path only adds to counters: a session resolves its agency's
// counters once, at HELLO (Metrics.Agency), and from then on a stored batch
// costs two atomic adds on that agency's own counters, with no lock and no
// map lookup. Everything derived (agencies pending or parked, the
// connections open) is read when Prometheus scrapes, not on the way in.
//
// A nil *Metrics is the central without metrics (no admin listener): every
// method does nothing, and Agency returns a nil *Agency, whose methods do
// nothing either.
//
// Names follow Prometheus conventions: the lottery_ prefix, _total on
// counters, base units (_seconds, _bytes). The agency number is a label, and
// so are bounded enumerations (a protocol code, a refusal reason); nothing
// unbounded (a peer's address, a document) ever is.
package metrics

import (
	"net"
	"slices"
	"strconv"
	"sync"
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
	protocol.CodeBadSequence, protocol.CodeAfterFinish, protocol.CodeDrawDone, protocol.CodeWrongAgency,
	protocol.CodeStorage,
}

// handshakeReasons are the reasons identity.DescribeServerHandshakeError
// gives, and HandshakeNetworkFailure.
var handshakeReasons = []string{
	identity.ReasonUnknownAuthority, identity.ReasonNameMismatch, identity.ReasonExpired,
	identity.ReasonInvalidCertificate, identity.ReasonNoCertificate, identity.ReasonRefusedByCentral,
	identity.ReasonRefusedByAgency, identity.ReasonNotTLS, identity.ReasonHandshakeFailed, HandshakeNetworkFailure,
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
	drawDuration     prometheus.Gauge
	drawTime         prometheus.Gauge
	recoveryDuration prometheus.Gauge
	recoveredBets    prometheus.Gauge

	mu       sync.RWMutex
	agencies map[int]*Agency // every agency seen: at HELLO, or with bets at start
	barrier  atomic.Pointer[func() BarrierCounts]
}

// BarrierCounts is what the barrier says when scraped.
type BarrierCounts struct {
	Agencies, Finished, Pending, Parked int
}

// New returns the collectors, registered on a registry of their own together
// with the Go runtime's and the process's.
func New() *Metrics {
	m := &Metrics{
		reg:      prometheus.NewRegistry(),
		agencies: make(map[int]*Agency),
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
		drawDuration: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "lottery_draw_duration_seconds",
			Help: "How long the draw's pass over the stored bets took; 0 until it ran.",
		}),
		drawTime: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "lottery_draw_timestamp_seconds",
			Help: "When the draw ran, in seconds since the Unix epoch; 0 until it ran.",
		}),
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
	for c := protocol.CodeMalformed; c <= protocol.CodeUnauthorized; c++ {
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
		m.drawDuration, m.drawTime, m.recoveryDuration, m.recoveredBets,
		agencyCollector{m}, barrierCollector{m},
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

// WatchBarrier makes every scrape ask counts for the agencies finished,
// pending and parked.
func (m *Metrics) WatchBarrier(counts func() BarrierCounts) {
	if m != nil {
		m.barrier.Store(&counts)
	}
}

// Agency is one agency's counters. A session resolves it once, at HELLO, and
// keeps it: a stored batch then costs two atomic adds and nothing else.
type Agency struct {
	id      int
	label   string
	bets    atomic.Uint64
	batches atomic.Uint64
	winners atomic.Int64 // -1 until the draw
	// Sessions of different agencies add at once: keep two agencies'
	// counters off one cache line.
	_ [64]byte
}

// Stored counts one batch of n bets stored for good: after its fsync, as
// the ledger counts it.
func (a *Agency) Stored(n int) {
	if a == nil {
		return
	}
	a.bets.Add(uint64(n))
	a.batches.Add(1)
}

// Agency returns agency id's counters, made the first time it is asked for;
// nil for a nil m.
func (m *Metrics) Agency(id int) *Agency {
	if m == nil {
		return nil
	}
	m.mu.RLock()
	a := m.agencies[id]
	m.mu.RUnlock()
	if a != nil {
		return a
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if a = m.agencies[id]; a == nil {
		a = &Agency{id: id, label: strconv.Itoa(id)}
		a.winners.Store(-1)
		m.agencies[id] = a
	}
	return a
}

// AgencyCount is one agency's stored bets.
type AgencyCount struct {
	ID   int
	Bets uint64
}

// StoredBets returns the bets stored of every agency seen so far, by
// ascending agency: the status page's numbers, read without the ledger's lock.
func (m *Metrics) StoredBets() []AgencyCount {
	if m == nil {
		return nil
	}
	m.mu.RLock()
	out := make([]AgencyCount, 0, len(m.agencies))
	for id, a := range m.agencies {
		out = append(out, AgencyCount{ID: id, Bets: a.bets.Load()})
	}
	m.mu.RUnlock()
	slices.SortFunc(out, func(a, b AgencyCount) int { return a.ID - b.ID })
	return out
}

// Recovered records the start: how long recovery took, how many rows it
// read back, and each agency's bets among them, which its bets counter
// starts from (so the counter is the agency's bets in the file, and goes on
// rising across a restart).
func (m *Metrics) Recovered(took time.Duration, rows uint64, byAgency map[int]uint64) {
	if m == nil {
		return
	}
	m.recoveryDuration.Set(took.Seconds())
	m.recoveredBets.Set(float64(rows))
	for id, n := range byAgency {
		m.Agency(id).bets.Store(n)
	}
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

// Drawn records the draw: when it ended, how long it took, and each
// agency's winners (an agency absent from winners has none).
func (m *Metrics) Drawn(at time.Time, took time.Duration, winners map[int]int) {
	if m == nil {
		return
	}
	m.drawDuration.Set(took.Seconds())
	m.drawTime.Set(float64(at.UnixNano()) / 1e9)
	for id := range winners {
		m.Agency(id)
	}
	m.mu.RLock()
	defer m.mu.RUnlock()
	for id, a := range m.agencies {
		a.winners.Store(int64(winners[id]))
	}
}

// agencyCollector reads the agencies' counters when scraped.
type agencyCollector struct{ m *Metrics }

var (
	betsDesc = prometheus.NewDesc("lottery_bets_stored_total",
		"Bets stored for good (synced, then acknowledged) per agency, those read back at start included.",
		[]string{"agency"}, nil)
	batchesDesc = prometheus.NewDesc("lottery_batches_accepted_total",
		"Batches stored and acknowledged per agency since the central started.",
		[]string{"agency"}, nil)
	winnersDesc = prometheus.NewDesc("lottery_winners",
		"Winners of each agency; present once the draw ran.",
		[]string{"agency"}, nil)
)

func (c agencyCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- betsDesc
	ch <- batchesDesc
	ch <- winnersDesc
}

func (c agencyCollector) Collect(ch chan<- prometheus.Metric) {
	c.m.mu.RLock()
	defer c.m.mu.RUnlock()
	for _, a := range c.m.agencies {
		ch <- prometheus.MustNewConstMetric(betsDesc, prometheus.CounterValue, float64(a.bets.Load()), a.label)
		ch <- prometheus.MustNewConstMetric(batchesDesc, prometheus.CounterValue, float64(a.batches.Load()), a.label)
		if w := a.winners.Load(); w >= 0 {
			ch <- prometheus.MustNewConstMetric(winnersDesc, prometheus.GaugeValue, float64(w), a.label)
		}
	}
}

// barrierCollector asks the barrier once per scrape.
type barrierCollector struct{ m *Metrics }

var (
	agenciesDesc = prometheus.NewDesc("lottery_agencies", "Agencies in the draw (SERVER_AGENCIES).", nil, nil)
	finishedDesc = prometheus.NewDesc("lottery_agencies_finished", "Agencies whose FINISH the central recorded.", nil, nil)
	pendingDesc  = prometheus.NewDesc("lottery_agencies_pending", "Agencies the draw still waits for.", nil, nil)
	parkedDesc   = prometheus.NewDesc("lottery_agencies_parked",
		"Agencies waiting on their connection for the draw's answer now.", nil, nil)
)

func (c barrierCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- agenciesDesc
	ch <- finishedDesc
	ch <- pendingDesc
	ch <- parkedDesc
}

func (c barrierCollector) Collect(ch chan<- prometheus.Metric) {
	f := c.m.barrier.Load()
	if f == nil {
		return
	}
	b := (*f)()
	ch <- prometheus.MustNewConstMetric(agenciesDesc, prometheus.GaugeValue, float64(b.Agencies))
	ch <- prometheus.MustNewConstMetric(finishedDesc, prometheus.GaugeValue, float64(b.Finished))
	ch <- prometheus.MustNewConstMetric(pendingDesc, prometheus.GaugeValue, float64(b.Pending))
	ch <- prometheus.MustNewConstMetric(parkedDesc, prometheus.GaugeValue, float64(b.Parked))
}
