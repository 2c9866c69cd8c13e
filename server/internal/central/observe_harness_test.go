package central

import (
	"encoding/xml"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
	"github.com/stretchr/testify/require"

	"lotterycentral.example/server/internal/config"
	"lotterycentral.example/server/internal/metrics"
)

// observedCentral is a testCentral with metrics and its admin listener, as
// the binary runs it when SERVER_ADMIN_ADDRESS is set: both on 127.0.0.1
// ports of their own.
type observedCentral struct {
	*testCentral
	metrics *metrics.Metrics
	url     string // the admin listener, "http://127.0.0.1:port"
}

// startObserved serves cfg with metrics and the admin listener until the test
// ends. ticks, if not nil, drives the watcher that logs the agencies the draw
// waits for, in place of its 5 s ticker.
func startObserved(t testing.TB, cfg config.Config, ticks <-chan time.Time) *observedCentral {
	t.Helper()
	log, hook := testLogger()
	m := metrics.New()
	srv, err := openServer(cfg, log, WithMetrics(m))
	require.NoError(t, err)
	if ticks != nil {
		srv.pending.ticks = func() (<-chan time.Time, func()) { return ticks, func() {} }
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	aln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	tc := &testCentral{srv: srv, addr: ln.Addr().String(), path: cfg.StoragePath, logs: hook, served: make(chan error, 1)}
	adminDone := make(chan error, 1)
	go func() { adminDone <- srv.ServeAdmin(aln) }()
	go func() { tc.served <- srv.Serve(ln) }()
	// Cleanups run last first: the central stops, then its admin listener is awaited.
	t.Cleanup(func() { require.NoError(t, <-adminDone) })
	t.Cleanup(tc.stop)
	return &observedCentral{testCentral: tc, metrics: m, url: "http://" + aln.Addr().String()}
}

// get fetches path from the admin listener: its status and body.
func (oc *observedCentral) get(t testing.TB, path string) (int, string) {
	t.Helper()
	client := &http.Client{Timeout: replyWait}
	resp, err := client.Get(oc.url + path)
	require.NoError(t, err)
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	return resp.StatusCode, string(body)
}

// scraped is one scrape of /metrics.
type scraped map[string]*dto.MetricFamily

// scrape reads /metrics as Prometheus does, in the text format.
func (oc *observedCentral) scrape(t testing.TB) scraped {
	t.Helper()
	code, body := oc.get(t, "/metrics")
	require.Equal(t, http.StatusOK, code, body)
	p := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := p.TextToMetricFamilies(strings.NewReader(body))
	require.NoError(t, err)
	return fams
}

// value is the value of the series of name with labels (name, value pairs);
// the test fails if there is no such series. A histogram's value is its count.
func (s scraped) value(t testing.TB, name string, labels ...string) float64 {
	t.Helper()
	v, err := s.lookup(name, labels...)
	require.NoError(t, err)
	return v
}

func (s scraped) lookup(name string, labels ...string) (float64, error) {
	fam, ok := s[name]
	if !ok {
		return 0, fmt.Errorf("no metric %s", name)
	}
next:
	for _, m := range fam.Metric {
		have := make(map[string]string)
		for _, l := range m.Label {
			have[l.GetName()] = l.GetValue()
		}
		for i := 0; i+1 < len(labels); i += 2 {
			if have[labels[i]] != labels[i+1] {
				continue next
			}
		}
		switch {
		case m.Counter != nil:
			return m.Counter.GetValue(), nil
		case m.Gauge != nil:
			return m.Gauge.GetValue(), nil
		case m.Histogram != nil:
			return float64(m.Histogram.GetSampleCount()), nil
		}
	}
	return 0, fmt.Errorf("no series %s%v", name, labels)
}

// pageRow is one agency's row of the status page, as its HTML says it.
type pageRow struct {
	agency, state, bets, rate, winners, width string
}

// pageView is what a test reads of the status page.
type pageView struct {
	drawState string
	pending   string
	excluded  string // the draw box's excluded agencies
	rows      []pageRow
}

// parseStatusPage parses the status page's HTML (encoding/xml in its HTML
// mode: the page is well-formed, void elements closed) into its rows.
func parseStatusPage(t testing.TB, body string) pageView {
	t.Helper()
	d := xml.NewDecoder(strings.NewReader(body))
	d.Strict, d.AutoClose, d.Entity = false, xml.HTMLAutoClose, xml.HTMLEntity
	var v pageView
	var row *pageRow
	var cell, text string // the class of the cell being read, and its text
	var inList *string    // the draw box's list being read: pending or excluded
	attr := func(e xml.StartElement, name string) string {
		for _, a := range e.Attr {
			if a.Name.Local == name {
				return a.Value
			}
		}
		return ""
	}
	for {
		tok, err := d.Token()
		if errors.Is(err, io.EOF) {
			break
		}
		require.NoError(t, err, body)
		switch e := tok.(type) {
		case xml.StartElement:
			switch {
			case e.Name.Local == "div" && attr(e, "id") == "draw":
				v.drawState = attr(e, "data-state")
			case e.Name.Local == "span" && attr(e, "id") == "pending":
				inList = &v.pending
			case e.Name.Local == "span" && attr(e, "id") == "excluded":
				inList = &v.excluded
			case e.Name.Local == "tr" && attr(e, "data-agency") != "":
				row = &pageRow{agency: attr(e, "data-agency"), state: attr(e, "data-state")}
			case row != nil && e.Name.Local == "td":
				cell, text = attr(e, "class"), ""
			case row != nil && e.Name.Local == "span" && attr(e, "style") != "":
				row.width = strings.TrimSpace(strings.TrimSuffix(strings.TrimPrefix(attr(e, "style"), "width:"), "%"))
			}
		case xml.CharData:
			text += string(e)
			if inList != nil {
				*inList += string(e)
			}
		case xml.EndElement:
			switch {
			case e.Name.Local == "span" && inList != nil:
				inList = nil
			case row != nil && e.Name.Local == "td":
				switch strings.TrimSpace(strings.TrimPrefix(cell, "num")) {
				case "bets":
					row.bets = strings.TrimSpace(text)
				case "rate":
					row.rate = strings.TrimSpace(text)
				case "winners":
					row.winners = strings.TrimSpace(text)
				}
				cell = ""
			case row != nil && e.Name.Local == "tr":
				v.rows = append(v.rows, *row)
				row = nil
			}
		}
	}
	return v
}
