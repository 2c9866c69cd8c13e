package central

import (
	"context"
	"io"
	"net"
	"path/filepath"
	"testing"
	"time"

	"github.com/sirupsen/logrus"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"

	"lotterycentral.example/lottery/logfmt"
	"lotterycentral.example/server/internal/config"
	"lotterycentral.example/server/internal/logtest"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// testCentral is an in-process central on a 127.0.0.1 port.
type testCentral struct {
	srv    *Server
	addr   string
	path   string
	logs   *logtest.Recorder
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

// testLogger is a logger whose lines a test can await.
func testLogger() (*logfmt.Logger, *logtest.Recorder) {
	log := logrus.New()
	log.SetOutput(io.Discard)
	log.SetFormatter(logfmt.Formatter{})
	log.SetLevel(logrus.DebugLevel)
	lines := logtest.New()
	log.AddHook(lines)
	return logfmt.Wrap(log), lines
}

// startCentral serves cfg (see testConfig) until the test ends; opts apply
// before recovery.
func startCentral(t testing.TB, cfg config.Config, opts ...Option) *testCentral {
	t.Helper()
	log, hook := testLogger()
	srv, err := openServer(cfg, log, opts...)
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

// openServer is New then Recover: for a test with nothing to serve before
// the bets are recovered.
func openServer(cfg config.Config, log *logfmt.Logger, opts ...Option) (*Server, error) {
	s, err := New(cfg, log, opts...)
	if err != nil {
		return nil, err
	}
	if err := s.Recover(); err != nil {
		return nil, err
	}
	return s, nil
}
