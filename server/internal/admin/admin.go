// Package admin is the central's admin HTTP listener, for operators and
// their tools, never on the agencies' port: /metrics (Prometheus, through
// promhttp), /healthz, and at / a status page — one table of the agencies
// with their bets, state, sending rate and share, and the draw's state — that
// refreshes itself and needs nothing beyond the central: HTML from embed,
// CSS inline, no JavaScript. /status.json is the same data for scripts.
//
// The page shows counts only, never a document: the winners' documents go
// to their own agency and nowhere else.
//
// Those read-only endpoints answer anyone who reaches the address, over
// plain HTTP or TLS (Listen serves both on one address). The operator's
// actions (/actions/exclude, /actions/reload) and Go's profiler
// (/debug/pprof/, only WithPprof) answer only over TLS to a client
// certificate that names an operator (identity.VerifyOperator); see
// operator.go. Over TLS, a client certificate that is presented must be an
// operator's on every path: an agency's key, say, has no business here.
package admin

import (
	"crypto/x509"
	"embed"
	"encoding/json"
	"html/template"
	"net/http"
	"net/http/pprof"
	"strconv"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"lotterycentral.example/lottery/logfmt"
)

// Source is what the listener reports on: the central.
type Source interface {
	// Serving reports whether the central serves agencies now.
	Serving() bool
	// Status is the central's state at this moment.
	Status() Status
}

// Status is the central's state as the page shows it.
type Status struct {
	Agencies     int      // in the draw, numbered 1..Agencies
	Rows         []Agency // the agencies listed, ascending
	Unlisted     int      // agencies left out of Rows (too many to list)
	Pending      []int    // the agencies the draw waits for, ascending
	PendingText  string   // the same, compactly ("2,5", "1-3,7")
	Excluded     []int    // the agencies the operator excluded from the draw, ascending
	ExcludedText string   // the same, compactly
	Parked       int      // agencies waiting for their winners now
	Connections  int      // connections open, identified or not
	Drawn        bool
	Closing      bool          // the central is shutting down
	DrawAt       time.Time     // when the draw ran
	DrawTook     time.Duration // how long it took
	// Digest commits the draw's input, in hex, once every agency finished
	// or was excluded: the same as bin/dataset digest of the agency files.
	Digest string
}

// Agency is one agency's row.
type Agency struct {
	ID        int
	Stored    uint64 // bets stored for good
	Connected bool   // a connection is identified as it now
	Finished  bool   // its FINISH is recorded
	Parked    bool   // waiting on its connection for the draw
	Answered  bool   // its winners were sent
	Winners   int    // after the draw; -1 before, and for an excluded agency
	// Excluded says who excluded it from the draw, when and why; nil if no one did.
	Excluded *Exclusion
	Digest   string // of its stored rows, in hex, once it finished; "" before
	// Since its connection was identified, and its bets then: its rate until
	// requests have sampled it over time.
	ConnectedAt     time.Time
	StoredAtConnect uint64
}

// Exclusion is an operator's exclusion of an agency from the draw.
type Exclusion struct {
	At       time.Time `json:"at"`
	Operator string    `json:"operator"` // the name on their certificate
	Reason   string    `json:"reason"`
}

// The states of an agency on the page, from first to last.
const (
	StateDisconnected = "disconnected" // no connection now, not finished
	StateConnected    = "connected"    // identified, not storing bets right now
	StateSending      = "sending"      // its bets count rose within the rate window
	StateFinished     = "finished"     // FINISH recorded, not waiting on a connection
	StateParked       = "parked"       // waiting for the draw
	StateAnswered     = "answered"     // got its winners
	StateExcluded     = "excluded"     // the operator excluded it: not drawn
)

// refreshEvery is how often the page reloads itself.
const refreshEvery = 2 * time.Second

// rateWindow is how far back a sending rate looks; minSpan the least time
// between two samples that gives a rate. A request's counts are kept as a
// sample only sampleEvery after the last one kept, so that a client polling
// fast does not crowd the window out of the maxSamples kept.
const (
	rateWindow  = 5 * time.Second
	minSpan     = 200 * time.Millisecond
	sampleEvery = 250 * time.Millisecond
	maxSamples  = 64
)

//go:embed status.html
var files embed.FS

var page = template.Must(template.New("status.html").ParseFS(files, "status.html"))

// Handler serves the admin endpoints.
type Handler struct {
	src Source
	mux *http.ServeMux
	now func() time.Time // time.Now; tests set it

	log   *logfmt.Logger // the refusals; nil logs nothing
	roots *x509.CertPool // verifies operators' certificates; nil: no TLS side, no operator
	op    Operator       // what the actions do; nil: every action is refused
	pprof bool           // serve /debug/pprof/ to operators

	mu      sync.Mutex
	samples []sample // the stored counts seen by recent requests, oldest first
}

// sample is every listed agency's stored bets at one moment.
type sample struct {
	at     time.Time
	stored map[int]uint64
}

// Option configures a Handler.
type Option func(*Handler)

// WithOperators turns the actions on: op does them, for a client whose
// certificate verifies against roots and names an operator; log records each
// request the admin layer refuses.
func WithOperators(op Operator, roots *x509.CertPool, log *logfmt.Logger) Option {
	return func(h *Handler) { h.op, h.roots, h.log = op, roots, log }
}

// WithPprof serves Go's profiler at /debug/pprof/, to operators only
// (SERVER_PPROF=1); without it the profiler answers 404.
func WithPprof(on bool) Option {
	return func(h *Handler) { h.pprof = on }
}

// New returns the handler for src; metrics is served at /metrics (no
// /metrics if nil).
func New(src Source, metrics prometheus.Gatherer, opts ...Option) *Handler {
	h := &Handler{src: src, mux: http.NewServeMux(), now: time.Now}
	for _, o := range opts {
		o(h)
	}
	if metrics != nil {
		h.mux.Handle("GET /metrics", promhttp.HandlerFor(metrics, promhttp.HandlerOpts{}))
	}
	h.mux.HandleFunc("GET /healthz", h.healthz)
	h.mux.HandleFunc("GET /status.json", h.statusJSON)
	h.mux.HandleFunc("GET /{$}", h.statusPage)
	// The operator's side (operator.go): every method reaches these, so that
	// a refusal is answered and logged by the admin layer, never by the mux.
	h.mux.HandleFunc("/actions/{action}", h.action)
	h.mux.HandleFunc("/debug/pprof/", h.profiler(pprof.Index))
	h.mux.HandleFunc("/debug/pprof/profile", h.profiler(pprof.Profile))
	return h
}

func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	r, ok := h.identify(w, r)
	if !ok {
		return
	}
	h.mux.ServeHTTP(w, r)
}

// healthz is 200 while the central serves agencies, 503 before and while it stops.
func (h *Handler) healthz(w http.ResponseWriter, _ *http.Request) {
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	if !h.src.Serving() {
		w.WriteHeader(http.StatusServiceUnavailable)
		_, _ = w.Write([]byte("not serving\n"))
		return
	}
	_, _ = w.Write([]byte("ok\n"))
}

// View is the page's data, and /status.json's.
type View struct {
	Time        time.Time `json:"time"`
	Agencies    int       `json:"agencies"`
	Rows        []Row     `json:"rows"`
	Unlisted    int       `json:"unlisted"`
	Bets        uint64    `json:"bets"`
	Rate        *float64  `json:"rate"` // bets/s over the rate window; null until two samples
	Connections int       `json:"connections"`
	Draw        DrawView  `json:"draw"`

	RefreshSeconds int `json:"-"`
}

// DrawView is the draw's state.
type DrawView struct {
	State        string    `json:"state"`   // waiting, drawn, shutting_down
	Pending      []int     `json:"pending"` // the agencies it waits for, ascending
	PendingN     int       `json:"pending_count"`
	PendingText  string    `json:"-"`        // the same, compactly ("2,5", "1-3,7"), for the page
	Excluded     []int     `json:"excluded"` // the agencies the operator excluded: not drawn
	ExcludedN    int       `json:"excluded_count"`
	ExcludedText string    `json:"-"` // the same, compactly, for the page
	Parked       int       `json:"parked"`
	At           time.Time `json:"at,omitzero"`
	TookSeconds  float64   `json:"took_seconds,omitempty"`
	WinnersTotal int       `json:"winners_total"`
	Finished     int       `json:"finished"`
	// Digest commits the round's bets before the first winner is sent; absent before.
	Digest string `json:"digest,omitempty"`
}

// Row is one agency on the page.
type Row struct {
	Agency  int      `json:"agency"`
	State   string   `json:"state"`
	Bets    uint64   `json:"bets"`
	Rate    *float64 `json:"rate"`    // bets/s; null until two samples
	Share   float64  `json:"share"`   // percent of every bet stored
	Winners *int     `json:"winners"` // null before the draw, and for an excluded agency
	// Excluded says who excluded it, when and why; absent if no one did.
	Excluded *Exclusion `json:"excluded,omitempty"`
	Digest   string     `json:"digest,omitempty"` // of its stored rows, once it finished
}

// RateText is the rate for the page: bets/s, or a dash before it is known.
func (r Row) RateText() string { return rateText(r.Rate) }

// ShareText is the share with one decimal.
func (r Row) ShareText() string { return strconv.FormatFloat(r.Share, 'f', 1, 64) }

// ShareWidth is the bar's CSS width, in percent.
func (r Row) ShareWidth() string { return strconv.FormatFloat(r.Share, 'f', 2, 64) }

// RateText is the total rate for the page.
func (v View) RateText() string { return rateText(v.Rate) }

func rateText(r *float64) string {
	if r == nil {
		return "–"
	}
	return strconv.FormatFloat(*r, 'f', 0, 64)
}

// view builds the page's data from the central's status, and remembers the
// counts to measure the next request's rates against.
func (h *Handler) view() View {
	st := h.src.Status()
	now := h.now()
	cur := sample{at: now, stored: make(map[int]uint64, len(st.Rows))}
	for _, a := range st.Rows {
		cur.stored[a.ID] = a.Stored
	}
	base := h.remember(cur)

	v := View{Time: now, Agencies: st.Agencies, Unlisted: st.Unlisted, Connections: st.Connections,
		RefreshSeconds: int(refreshEvery / time.Second)}
	for _, a := range st.Rows {
		v.Bets += a.Stored
	}
	var total float64
	rated := false
	for _, a := range st.Rows {
		r := Row{Agency: a.ID, Bets: a.Stored, Rate: rateOf(a, base, now), Excluded: a.Excluded, Digest: a.Digest}
		if r.Rate != nil {
			total += *r.Rate
			rated = true
		}
		if v.Bets > 0 {
			r.Share = 100 * float64(a.Stored) / float64(v.Bets)
		}
		if a.Winners >= 0 {
			w := a.Winners
			r.Winners = &w
			v.Draw.WinnersTotal += w
		}
		r.State = state(a, r.Rate)
		v.Rows = append(v.Rows, r)
	}
	if rated {
		v.Rate = &total
	}
	v.Draw = DrawView{Pending: st.Pending, PendingN: len(st.Pending), PendingText: st.PendingText,
		Excluded: st.Excluded, ExcludedN: len(st.Excluded), ExcludedText: st.ExcludedText, Parked: st.Parked,
		WinnersTotal: v.Draw.WinnersTotal, Finished: st.Agencies - len(st.Pending) - len(st.Excluded),
		Digest: st.Digest}
	// Lists in JSON, never null.
	if v.Draw.Pending == nil {
		v.Draw.Pending = []int{}
	}
	if v.Draw.Excluded == nil {
		v.Draw.Excluded = []int{}
	}
	switch {
	case st.Drawn:
		v.Draw.State = "drawn"
		v.Draw.At, v.Draw.TookSeconds = st.DrawAt, st.DrawTook.Seconds()
	case st.Closing:
		v.Draw.State = "shutting_down"
	default:
		v.Draw.State = "waiting"
	}
	return v
}

// rateOf is agency a's bets/s: over the rate window when an earlier request
// saw it; else, while it is connected, since its connection was identified,
// so that an agency shows as sending from its first batch; else unknown (nil).
func rateOf(a Agency, base *sample, now time.Time) *float64 {
	var rate float64
	prev, seen := uint64(0), false
	if base != nil {
		prev, seen = base.stored[a.ID]
	}
	switch {
	case seen:
		if a.Stored >= prev {
			rate = float64(a.Stored-prev) / now.Sub(base.at).Seconds()
		}
	case a.Connected && !a.ConnectedAt.IsZero() && a.Stored >= a.StoredAtConnect:
		rate = float64(a.Stored-a.StoredAtConnect) / max(now.Sub(a.ConnectedAt), minSpan).Seconds()
	case base != nil:
		rate = float64(a.Stored) / now.Sub(base.at).Seconds()
	default:
		return nil
	}
	return &rate
}

// state is what an agency is doing, the latest stage it reached first; an
// excluded agency is out of the round, whatever it did before.
func state(a Agency, rate *float64) string {
	switch {
	case a.Excluded != nil:
		return StateExcluded
	case a.Answered:
		return StateAnswered
	case a.Parked:
		return StateParked
	case a.Finished:
		return StateFinished
	case a.Connected && rate != nil && *rate > 0:
		return StateSending
	case a.Connected:
		return StateConnected
	}
	return StateDisconnected
}

// remember adds cur to the samples and returns the one to measure rates
// against: the oldest within the rate window at least minSpan old, or nil.
func (h *Handler) remember(cur sample) *sample {
	h.mu.Lock()
	defer h.mu.Unlock()
	keep := h.samples[:0]
	for _, s := range h.samples {
		if cur.at.Sub(s.at) <= rateWindow && !s.at.After(cur.at) {
			keep = append(keep, s)
		}
	}
	h.samples = keep
	var base *sample
	if len(h.samples) > 0 && cur.at.Sub(h.samples[0].at) >= minSpan {
		b := h.samples[0]
		base = &b
	}
	if n := len(h.samples); n > 0 && cur.at.Sub(h.samples[n-1].at) < sampleEvery {
		return base
	}
	if len(h.samples) == maxSamples {
		h.samples = append(h.samples[:0], h.samples[1:]...)
	}
	h.samples = append(h.samples, cur)
	return base
}

func (h *Handler) statusPage(w http.ResponseWriter, _ *http.Request) {
	v := h.view()
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	if err := page.Execute(w, v); err != nil {
		http.Error(w, "status page: "+err.Error(), http.StatusInternalServerError)
	}
}

func (h *Handler) statusJSON(w http.ResponseWriter, _ *http.Request) {
	v := h.view()
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	_ = enc.Encode(v)
}
