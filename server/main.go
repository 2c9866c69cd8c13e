// Command server is the lottery central. `server health` is its health probe:
// it pings a running central and exits 0 when it answers.
package main

import (
	"errors"
	"fmt"
	"net"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/sirupsen/logrus"

	"lotterycentral.example/lottery/logfmt"
	"lotterycentral.example/protocol"
	"lotterycentral.example/server/internal/central"
	"lotterycentral.example/server/internal/config"
)

func main() {
	if len(os.Args) > 1 && os.Args[1] == "health" {
		os.Exit(health(os.Args[2:]))
	}
	os.Exit(serve())
}

func serve() int {
	cfg, err := config.Load(nil)
	if err != nil {
		fmt.Fprintln(os.Stderr, logfmt.Line("config", logfmt.Fail, "error", err))
		return 2
	}
	log, err := logfmt.New(cfg.LogLevel)
	if err != nil {
		fmt.Fprintln(os.Stderr, logfmt.Line("config", logfmt.Fail, "error", err))
		return 2
	}
	log.Info(logfmt.Line("config", logfmt.Success, "port", cfg.Port, "agencies", cfg.Agencies,
		"storage_path", cfg.StoragePath, "log_level", cfg.LogLevel, "idle_timeout", cfg.IdleTimeout,
		"max_connections", cfg.MaxConnections))

	srv, err := central.New(cfg, log)
	if err != nil {
		log.Error(logfmt.Line("iniciar", logfmt.Fail, "error", err))
		return 1
	}
	signals := make(chan os.Signal, 1)
	signal.Notify(signals, syscall.SIGTERM, syscall.SIGINT)
	served := make(chan error, 1)
	go func() { served <- srv.ListenAndServe() }()

	select {
	case sig := <-signals:
		log.Info(logfmt.Line("signal", logfmt.Success, "signal", sig))
	case err := <-served:
		// Listening failed: nothing is served, but the bets file is still closed cleanly.
		log.Error(logfmt.Line("escuchar", logfmt.Fail, "error", err))
		_ = srv.Shutdown()
		return 1
	}
	if err := srv.Shutdown(); err != nil {
		return 1
	}
	if err := <-served; err != nil && !errors.Is(err, central.ErrServerClosed) {
		log.Error(logfmt.Line("escuchar", logfmt.Fail, "error", err))
		return 1
	}
	return 0
}

// health pings the central at the given address (default: this container's
// configured port on loopback) and reports in the usual line format.
func health(args []string) int {
	log := logrus.New()
	log.SetFormatter(logfmt.Formatter{})
	log.SetOutput(os.Stdout)
	// The central listens on SERVER_HOST when it names one address; on all
	// interfaces, loopback answers.
	host := envOr("SERVER_HOST", "127.0.0.1")
	if ip := net.ParseIP(host); ip != nil && ip.IsUnspecified() {
		host = "127.0.0.1"
	}
	addr := net.JoinHostPort(host, envOr("SERVER_PORT", "12345"))
	if len(args) > 0 {
		addr = args[0]
	}
	if err := ping(addr, 3*time.Second); err != nil {
		log.Error(logfmt.Line("test_server", logfmt.Fail, "direccion", addr, "error", err))
		return 1
	}
	log.Info(logfmt.Line("test_server", logfmt.Success, "direccion", addr))
	return 0
}

func ping(addr string, timeout time.Duration) error {
	conn, err := net.DialTimeout("tcp", addr, timeout)
	if err != nil {
		return fmt.Errorf("ping: %w", err)
	}
	defer conn.Close()
	if err := conn.SetDeadline(time.Now().Add(timeout)); err != nil {
		return fmt.Errorf("ping: %w", err)
	}
	if err := protocol.WriteMessage(conn, protocol.Ping{}); err != nil {
		return fmt.Errorf("ping: %w", err)
	}
	m, err := protocol.ReadMessage(conn, protocol.MaxServerFrame)
	if err != nil {
		return fmt.Errorf("ping: read answer: %w", err)
	}
	if _, ok := m.(*protocol.Pong); !ok {
		return fmt.Errorf("ping: answered %s instead of PONG", m.Type())
	}
	return nil
}

func envOr(key, def string) string {
	if v, ok := os.LookupEnv(key); ok && v != "" {
		return v
	}
	return def
}
