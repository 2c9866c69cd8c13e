package admin

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// fakeSource is a central whose status the test sets.
type fakeSource struct {
	mu      sync.Mutex
	serving bool
	status  Status
}

func (f *fakeSource) Serving() bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.serving
}

func (f *fakeSource) Status() Status {
	f.mu.Lock()
	defer f.mu.Unlock()
	st := f.status
	st.Rows = append([]Agency(nil), f.status.Rows...)
	return st
}

func (f *fakeSource) set(st Status) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.status = st
}

// clock is a time the test moves.
type clock struct{ t time.Time }

func (c *clock) now() time.Time          { return c.t }
func (c *clock) advance(d time.Duration) { c.t = c.t.Add(d) }
func newClock() *clock                   { return &clock{t: time.Date(2024, 5, 1, 12, 0, 0, 0, time.UTC)} }
func serve(h http.Handler, path string) *httptest.ResponseRecorder {
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, path, nil))
	return rec
}

func TestHealthz(t *testing.T) {
	src := &fakeSource{}
	h := New(src, nil)
	rec := serve(h, "/healthz")
	assert.Equal(t, http.StatusServiceUnavailable, rec.Code)
	assert.Equal(t, "not serving\n", rec.Body.String())
	src.serving = true
	rec = serve(h, "/healthz")
	assert.Equal(t, http.StatusOK, rec.Code)
	assert.Equal(t, "ok\n", rec.Body.String())
	assert.Equal(t, "no-store", rec.Header().Get("Cache-Control"))
}

func TestMetricsEndpoint(t *testing.T) {
	reg := prometheus.NewRegistry()
	c := prometheus.NewCounter(prometheus.CounterOpts{Name: "lottery_test_total", Help: "A test counter."})
	reg.MustRegister(c)
	c.Add(3)
	rec := serve(New(&fakeSource{}, reg), "/metrics")
	require.Equal(t, http.StatusOK, rec.Code)
	assert.Contains(t, rec.Body.String(), "lottery_test_total 3\n")

	assert.Equal(t, http.StatusNotFound, serve(New(&fakeSource{}, nil), "/metrics").Code, "no gatherer, no /metrics")
	assert.Equal(t, http.StatusNotFound, serve(New(&fakeSource{}, nil), "/favicon.ico").Code)
	rec = httptest.NewRecorder()
	New(&fakeSource{}, reg).ServeHTTP(rec, httptest.NewRequest(http.MethodPost, "/metrics", nil))
	assert.Equal(t, http.StatusMethodNotAllowed, rec.Code)
}

// Rates are measured between requests, over the last rateWindow; an agency
// whose count rose is sending; the states follow the latest stage reached.
func TestViewRatesAndStates(t *testing.T) {
	src := &fakeSource{}
	clk := newClock()
	h := New(src, nil)
	h.now = clk.now
	rows := func(stored ...uint64) []Agency {
		out := make([]Agency, len(stored))
		for i, n := range stored {
			out[i] = Agency{ID: i + 1, Stored: n, Connected: true, Winners: -1}
		}
		return out
	}
	src.set(Status{Agencies: 3, Rows: rows(0, 100, 0), Pending: []int{1, 2, 3}, PendingText: "1-3"})
	v := h.view()
	assert.Nil(t, v.Rate, "one sample: no rate yet")
	assert.Nil(t, v.Rows[0].Rate)
	assert.Equal(t, StateConnected, v.Rows[1].State, "no rate: not known to be sending")
	assert.Equal(t, "–", v.RateText())

	clk.advance(2 * time.Second)
	src.set(Status{Agencies: 3, Rows: rows(4000, 100, 1000), Pending: []int{1, 2, 3}, PendingText: "1-3"})
	v = h.view()
	require.NotNil(t, v.Rate)
	assert.InDelta(t, 2500, *v.Rate, 1e-9)
	assert.InDelta(t, 2000, *v.Rows[0].Rate, 1e-9)
	assert.InDelta(t, 0, *v.Rows[1].Rate, 1e-9)
	assert.InDelta(t, 500, *v.Rows[2].Rate, 1e-9)
	assert.Equal(t, []string{StateSending, StateConnected, StateSending},
		[]string{v.Rows[0].State, v.Rows[1].State, v.Rows[2].State})
	assert.Equal(t, uint64(5100), v.Bets)
	assert.InDelta(t, 100*4000.0/5100, v.Rows[0].Share, 1e-9)
	assert.Equal(t, "2000", v.Rows[0].RateText())

	// Past the window the old samples are dropped: the rate is over the last 5 s.
	clk.advance(4 * time.Second)
	src.set(Status{Agencies: 3, Rows: rows(4000, 100, 1000)})
	v = h.view()
	assert.InDelta(t, 0, *v.Rows[0].Rate, 1e-9, "measured from the sample 4 s ago")

	st := Status{Agencies: 6, Rows: []Agency{
		{ID: 1, Winners: -1},
		{ID: 2, Connected: true, Winners: -1},
		{ID: 3, Connected: true, Finished: true, Winners: -1},
		{ID: 4, Finished: true, Winners: 2},
		{ID: 5, Connected: true, Finished: true, Parked: true, Winners: -1},
		{ID: 6, Finished: true, Answered: true, Winners: 0},
	}}
	src.set(st)
	v = h.view()
	var states []string
	for _, r := range v.Rows {
		states = append(states, r.State)
	}
	assert.Equal(t, []string{StateDisconnected, StateConnected, StateFinished, StateFinished, StateParked, StateAnswered}, states)
	assert.Nil(t, v.Rows[0].Winners)
	require.NotNil(t, v.Rows[5].Winners)
	assert.Equal(t, 0, *v.Rows[5].Winners)
	assert.Equal(t, 2, v.Draw.WinnersTotal)
	assert.Zero(t, v.Rows[0].Share, "no bets at all: no share, no division by zero")
}

// A client polling many times a second still gets a rate over the window.
func TestRateUnderFastPolling(t *testing.T) {
	src := &fakeSource{}
	clk := newClock()
	h := New(src, nil)
	h.now = clk.now
	var stored uint64
	var v View
	for range 2000 { // 10 s of requests every 5 ms, 100 bets between two
		src.set(Status{Agencies: 1, Rows: []Agency{{ID: 1, Stored: stored, Connected: true, Winners: -1}}})
		v = h.view()
		clk.advance(5 * time.Millisecond)
		stored += 100
	}
	require.NotNil(t, v.Rows[0].Rate)
	assert.InDelta(t, 20000, *v.Rows[0].Rate, 1e-6)
	assert.Equal(t, StateSending, v.Rows[0].State)
	assert.LessOrEqual(t, len(h.samples), int(rateWindow/sampleEvery)+1)
}

func TestDrawStates(t *testing.T) {
	at := time.Date(2024, 5, 1, 12, 0, 0, 0, time.UTC)
	tests := []struct {
		name   string
		status Status
		want   string
		text   string
	}{
		{"waiting", Status{Agencies: 5, Pending: []int{2, 5}, PendingText: "2,5", Parked: 3}, "waiting",
			"Draw waiting</strong> for 2 of 5 agencies: <span id=\"pending\">2,5</span>"},
		{"drawn", Status{Agencies: 5, Drawn: true, DrawAt: at, DrawTook: 1500 * time.Millisecond}, "drawn",
			"Draw ran</strong> at 2024-05-01 12:00:00 in 1.500 s"},
		{"shutting down", Status{Agencies: 5, Closing: true, Pending: []int{3}, PendingText: "3"}, "shutting_down", "shutting down"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := New(&fakeSource{status: tt.status}, nil)
			assert.Equal(t, tt.want, h.view().Draw.State)
			rec := serve(h, "/")
			require.Equal(t, http.StatusOK, rec.Code)
			assert.Contains(t, rec.Body.String(), tt.text)
			assert.Contains(t, rec.Body.String(), `data-state="`+tt.want+`"`)
		})
	}
}

// The page is html/template's: whatever the central hands it is escaped, and
// it carries no script and no outside resource.
func TestPageEscapesAndStandsAlone(t *testing.T) {
	src := &fakeSource{status: Status{Agencies: 2, Pending: []int{2}, PendingText: `<script>alert("x")</script>`,
		Rows: []Agency{{ID: 1, Stored: 3, Connected: true, Winners: -1}, {ID: 2, Stored: 1, Winners: -1}}}}
	rec := serve(New(src, nil), "/")
	require.Equal(t, http.StatusOK, rec.Code)
	body := rec.Body.String()
	assert.Equal(t, "text/html; charset=utf-8", rec.Header().Get("Content-Type"))
	assert.NotContains(t, body, "<script")
	assert.Contains(t, body, "&lt;script&gt;alert(&#34;x&#34;)&lt;/script&gt;")
	assert.NotContains(t, body, "http://")
	assert.NotContains(t, body, "https://")
	assert.Contains(t, body, `<meta http-equiv="refresh" content="2">`)
	assert.Contains(t, body, `style="width: 75.00%"`)
	assert.Contains(t, body, `style="width: 25.00%"`)
	assert.Equal(t, 2, strings.Count(body, "<tr data-agency="))
}

// An agency shows as sending, with a rate, from its first batch: before two
// requests have sampled it, its rate is measured since its connection.
func TestSendingFromTheFirstBatch(t *testing.T) {
	clk := newClock()
	connected := clk.now().Add(-2 * time.Second)
	tests := []struct {
		name      string
		agency    Agency
		wantState string
		wantRate  *float64
	}{
		{"a batch since it connected", Agency{ID: 1, Stored: 150, Connected: true, Winners: -1, ConnectedAt: connected,
			StoredAtConnect: 50}, StateSending, ptr(50.0)},
		{"nothing since it connected", Agency{ID: 1, Stored: 50, Connected: true, Winners: -1, ConnectedAt: connected,
			StoredAtConnect: 50}, StateConnected, ptr(0.0)},
		{"not connected", Agency{ID: 1, Stored: 50, Winners: -1}, StateDisconnected, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := New(&fakeSource{status: Status{Agencies: 1, Rows: []Agency{tt.agency}}}, nil)
			h.now = clk.now
			v := h.view()
			assert.Equal(t, tt.wantState, v.Rows[0].State)
			if tt.wantRate == nil {
				assert.Nil(t, v.Rows[0].Rate)
				return
			}
			require.NotNil(t, v.Rows[0].Rate)
			assert.InDelta(t, *tt.wantRate, *v.Rows[0].Rate, 1e-9)
		})
	}
}

func ptr[T any](v T) *T { return &v }

func TestStatusJSON(t *testing.T) {
	src := &fakeSource{status: Status{Agencies: 2, Drawn: true, Connections: 1,
		Rows: []Agency{{ID: 1, Stored: 30, Answered: true, Finished: true, Winners: 2}, {ID: 2, Stored: 10, Finished: true, Winners: 0}}}}
	rec := serve(New(src, nil), "/status.json")
	require.Equal(t, http.StatusOK, rec.Code)
	assert.Equal(t, "application/json", rec.Header().Get("Content-Type"))
	var got map[string]any
	require.NoError(t, json.Unmarshal(rec.Body.Bytes(), &got))
	assert.EqualValues(t, 40, got["bets"])
	assert.Nil(t, got["rate"])
	draw := got["draw"].(map[string]any)
	assert.Equal(t, "drawn", draw["state"])
	assert.Equal(t, []any{}, draw["pending"], "a list of agency numbers, empty once all finished")
	assert.EqualValues(t, 2, draw["winners_total"])
	rows := got["rows"].([]any)
	require.Len(t, rows, 2)
	first := rows[0].(map[string]any)
	assert.EqualValues(t, 1, first["agency"])
	assert.Equal(t, StateAnswered, first["state"])
	assert.EqualValues(t, 75, first["share"])
	assert.EqualValues(t, 2, first["winners"])
	assert.Len(t, first, 6, "agency, state, bets, rate, share, winners: counts only")
}

// The profiler is on the admin address for an operator chasing CPU or
// memory, over TLS (TestAdminAddress); off by default, and never over plain HTTP.
func TestProfilerEndpoints(t *testing.T) {
	for _, path := range []string{"/debug/pprof/", "/debug/pprof/heap", "/debug/pprof/goroutine?debug=1", "/debug/pprof/profile"} {
		t.Run(path, func(t *testing.T) {
			rec := serve(New(&fakeSource{}, nil), path)
			assert.Equal(t, http.StatusNotFound, rec.Code, rec.Body.String())
			rec = serve(New(&fakeSource{}, nil, WithPprof(true)), path)
			assert.Equal(t, http.StatusForbidden, rec.Code, rec.Body.String())
		})
	}
}

// In /status.json numbers are numbers: the agencies the draw waits for are a
// list of them, not the page's compact text.
func TestStatusJSONPendingIsNumbers(t *testing.T) {
	src := &fakeSource{status: Status{Agencies: 5, Pending: []int{2, 5}, PendingText: "2,5",
		Rows: []Agency{{ID: 1, Stored: 3, Finished: true, Winners: -1}}}}
	rec := serve(New(src, nil), "/status.json")
	require.Equal(t, http.StatusOK, rec.Code)
	var got struct {
		Draw struct {
			Pending      []int `json:"pending"`
			PendingCount int   `json:"pending_count"`
			Finished     int   `json:"finished"`
		} `json:"draw"`
	}
	require.NoError(t, json.Unmarshal(rec.Body.Bytes(), &got), rec.Body.String())
	assert.Equal(t, []int{2, 5}, got.Draw.Pending)
	assert.Equal(t, 2, got.Draw.PendingCount)
	assert.Equal(t, 3, got.Draw.Finished)
}
