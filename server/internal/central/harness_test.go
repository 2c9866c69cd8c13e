package central

import (
	"context"
	"io"
	"net"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/sirupsen/logrus"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"

	"lotterycentral.example/lottery/logfmt"
	"lotterycentral.example/server/internal/config"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// logHook records every log line and lets a test await one without sleeping.
type logHook struct {
	mu      sync.Mutex
	lines   []string
	changed chan struct{}
}

func newLogHook() *logHook { return &logHook{changed: make(chan struct{})} }

func (h *logHook) Levels() []logrus.Level { return logrus.AllLevels }

func (h *logHook) Fire(e *logrus.Entry) error {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.lines = append(h.lines, e.Message)
	close(h.changed)
	h.changed = make(chan struct{})
	return nil
}

// count is how many lines so far contain every one of parts.
func (h *logHook) count(parts ...string) int {
	h.mu.Lock()
	defer h.mu.Unlock()
	return countLines(h.lines, parts)
}

func countLines(lines, parts []string) int {
	n := 0
next:
	for _, l := range lines {
		for _, p := range parts {
			if !strings.Contains(l, p) {
				continue next
			}
		}
		n++
	}
	return n
}

// await blocks until at least n lines contain every one of parts. The
// deadline only turns a hung test into a failure; nothing waits on time.
func (h *logHook) await(t *testing.T, n int, parts ...string) {
	t.Helper()
	deadline := time.After(20 * time.Second)
	for {
		h.mu.Lock()
		got, changed := countLines(h.lines, parts), h.changed
		h.mu.Unlock()
		if got >= n {
			return
		}
		select {
		case <-changed:
		case <-deadline:
			t.Fatalf("waited for %d log lines with %q, saw %d:\n%s", n, parts, got, h.dump())
		}
	}
}

func (h *logHook) dump() string {
	h.mu.Lock()
	defer h.mu.Unlock()
	return strings.Join(h.lines, "\n")
}

// testCentral is an in-process central on a 127.0.0.1 port.
type testCentral struct {
	srv    *Server
	addr   string
	path   string
	logs   *logHook
	served chan error
}

func testConfig(t testing.TB) config.Config {
	return config.Config{
		Agencies:       5,
		StoragePath:    filepath.Join(t.TempDir(), "bets.csv"),
		LogLevel:       "debug",
		IdleTimeout:    20 * time.Second,
		MaxConnections: 64,
		HelloTimeout:   5 * time.Second,
		// Every test peer comes from 127.0.0.1: the per-source cap has its own test.
		MaxUnidentified:          4096,
		MaxUnidentifiedPerSource: 4096,
	}
}

func testLogger() (*logrus.Logger, *logHook) {
	log := logrus.New()
	log.SetOutput(io.Discard)
	log.SetFormatter(logfmt.Formatter{})
	log.SetLevel(logrus.DebugLevel)
	hook := newLogHook()
	log.AddHook(hook)
	return log, hook
}

// startCentral serves cfg (see testConfig) until the test ends.
func startCentral(t testing.TB, cfg config.Config) *testCentral {
	t.Helper()
	log, hook := testLogger()
	srv, err := New(cfg, log)
	require.NoError(t, err)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	tc := &testCentral{srv: srv, addr: ln.Addr().String(), path: cfg.StoragePath, logs: hook, served: make(chan error, 1)}
	go func() { tc.served <- srv.Serve(ln) }()
	t.Cleanup(tc.stop)
	return tc
}

// stop shuts the central down and waits for Serve to return; safe to call twice.
func (tc *testCentral) stop() {
	_ = tc.srv.Shutdown(context.Background())
	if tc.served != nil {
		<-tc.served
		tc.served = nil
	}
}
