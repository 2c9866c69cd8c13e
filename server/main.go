// Command server is the lottery central. `server health` is its health probe:
// it pings a running central and exits 0 when it answers. `server exclude N
// -reason TEXT` and `server reload` are an operator's commands: they ask a
// running central, on its admin address, over TLS with the operator's
// certificate. All are configured by environment variables only; `server -h`
// lists them. SIGHUP has a running central read its revocation list again,
// as `server reload` does.
package main

import (
	"context"
	"crypto/tls"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"os"
	"os/signal"
	"runtime/debug"
	"strings"
	"syscall"
	"time"

	"lotterycentral.example/lottery/envconfig"
	"lotterycentral.example/lottery/logfmt"
	"lotterycentral.example/protocol"
	"lotterycentral.example/protocol/identity"
	"lotterycentral.example/server/internal/admin"
	"lotterycentral.example/server/internal/central"
	"lotterycentral.example/server/internal/config"
	"lotterycentral.example/server/internal/metrics"
	"lotterycentral.example/server/internal/vocab"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	code := run(ctx, os.Args[1:], environment, os.Environ(), os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}

// environment is os.Getenv, but for SERVER_ADMIN_ADDRESS set and empty: that
// turns the admin listener off, as "off" does, where any other empty variable
// means its default.
func environment(name string) string {
	v, set := os.LookupEnv(name)
	if name == "SERVER_ADMIN_ADDRESS" && set && v == "" {
		return config.AdminOff
	}
	return v
}

const usage = `Usage:
  server                    run the central until SIGTERM or SIGINT; SIGHUP
                            reads its revocation list (SERVER_TLS_REVOKED)
                            again, as server reload does
  server health [host:port] ping a running central; exit 0 when it answers
                            (default: this configuration's address, loopback
                            when SERVER_HOST listens on every interface)
  server exclude N -reason TEXT
                            an operator's command: the running central takes
                            agency N out of the round, for TEXT; exit 0 done,
                            1 refused (the central's reason printed) or not
                            reached, 2 bad usage
  server reload             an operator's command: the running central reads
                            its revocation list (SERVER_TLS_REVOKED) again and
                            closes the connections of the certificates it
                            names; exits as exclude does
  server -h | --help        print this help

The operator's commands reach the central at SERVER_ADMIN_ADDRESS (loopback
when it names every interface) over TLS, presenting SERVER_OPERATOR_CERT and
SERVER_OPERATOR_KEY and verifying the central with SERVER_TLS_CLIENT_CA.

Each reads the configuration from these environment variables:

`

// Exit codes; a bad command line or configuration is envconfig.ExitCode (2).
const (
	exitOK     = 0
	exitFailed = 1 // the central could not start or stop cleanly, health got no answer, an order was refused or not delivered
)

// healthTimeout bounds the health probe's connect and its answer.
const healthTimeout = 3 * time.Second

// shutdownTimeout bounds a graceful shutdown (Docker's own stop timeout):
// past it, the central cuts the connections that remain and still closes the
// bets file.
const shutdownTimeout = 10 * time.Second

// command is what the arguments ask for.
type command int

const (
	cmdServe command = iota
	cmdHealth
	cmdHelp
	cmdExclude
	cmdReload
)

// invocation is what the command line asks for.
type invocation struct {
	cmd        command
	healthAddr string // health: the address given, if any
	agency     int    // exclude
	reason     string // exclude
}

// parseArgs reads the command line: nothing, `health [host:port]`,
// `exclude N -reason TEXT`, `reload` or help.
func parseArgs(args []string) (invocation, error) {
	switch {
	case len(args) == 0:
		return invocation{cmd: cmdServe}, nil
	case len(args) == 1 && isHelp(args[0]):
		return invocation{cmd: cmdHelp}, nil
	case args[0] == "health" && len(args) == 1:
		return invocation{cmd: cmdHealth}, nil
	case args[0] == "health" && len(args) == 2 && isHelp(args[1]):
		return invocation{cmd: cmdHelp}, nil
	case args[0] == "health" && len(args) == 2:
		if _, _, err := net.SplitHostPort(args[1]); err != nil {
			return invocation{}, fmt.Errorf("health: %q is not host:port (e.g. 127.0.0.1:12345, [::1]:12345)", args[1])
		}
		return invocation{cmd: cmdHealth, healthAddr: args[1]}, nil
	case args[0] == "health":
		return invocation{}, fmt.Errorf("health: unexpected argument %q", args[2])
	case args[0] == admin.ActionExclude:
		return parseExclude(args[1:])
	case args[0] == admin.ActionReload && len(args) == 1:
		return invocation{cmd: cmdReload}, nil
	case args[0] == admin.ActionReload && len(args) == 2 && isHelp(args[1]):
		return invocation{cmd: cmdHelp}, nil
	case args[0] == admin.ActionReload:
		return invocation{}, fmt.Errorf("reload: unexpected argument %q", args[1])
	}
	return invocation{}, fmt.Errorf("unexpected argument %q", args[0])
}

// parseExclude reads `exclude N -reason TEXT`; the flag may come first.
func parseExclude(args []string) (invocation, error) {
	fs := flag.NewFlagSet(admin.ActionExclude, flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	reason := fs.String("reason", "", "why the agency is excluded")
	parse := func(args []string) error {
		if err := fs.Parse(args); err != nil {
			if errors.Is(err, flag.ErrHelp) {
				return err
			}
			return fmt.Errorf("exclude: %w", err)
		}
		return nil
	}
	if err := parse(args); err != nil {
		return invocation{}, err
	}
	if fs.NArg() == 0 {
		return invocation{}, errors.New("exclude: which agency? (server exclude N -reason TEXT)")
	}
	n := fs.Arg(0)
	if err := parse(fs.Args()[1:]); err != nil {
		return invocation{}, err
	}
	if fs.NArg() > 0 {
		return invocation{}, fmt.Errorf("exclude: unexpected argument %q", fs.Arg(0))
	}
	agency, err := admin.ParseAgency(n)
	if err != nil {
		return invocation{}, fmt.Errorf("exclude: %w", err)
	}
	if strings.TrimSpace(*reason) == "" {
		return invocation{}, errors.New("exclude: -reason is required: why the agency is excluded")
	}
	text, err := admin.CheckReason(*reason)
	if err != nil {
		return invocation{}, fmt.Errorf("exclude: -%w", err)
	}
	return invocation{cmd: cmdExclude, agency: agency, reason: text}, nil
}

func isHelp(arg string) bool {
	return arg == "-h" || arg == "--help" || arg == "help" || arg == "-help"
}

// run is the whole program: it returns the exit code. getenv reads the
// configuration; environ (os.Environ) is every variable set, for a warning
// about each SERVER_ one that is not a setting. Cancelling ctx (SIGTERM or
// SIGINT in main) shuts the central down.
func run(ctx context.Context, args []string, getenv envconfig.Getenv, environ []string, stdout, stderr io.Writer) int {
	inv, err := parseArgs(args)
	switch {
	case errors.Is(err, flag.ErrHelp), inv.cmd == cmdHelp:
		fmt.Fprint(stdout, usage+envconfig.Usage[config.Config]())
		return exitOK
	case err != nil:
		fmt.Fprintf(stderr, "server: %v\n\n%s%s", err, usage, envconfig.Usage[config.Config]())
		return envconfig.ExitCode
	case inv.cmd == cmdExclude || inv.cmd == cmdReload:
		return operatorCommand(ctx, getenv, inv, stdout, stderr)
	}
	cfg, err := config.Load(getenv)
	if err != nil {
		return configFailed(stderr, err)
	}
	log, err := logfmt.New(stdout, cfg.LogLevel, logfmt.Prefix(cfg.LogPrefix))
	if err != nil {
		return configFailed(stderr, err)
	}
	if inv.cmd == cmdHealth {
		healthAddr := inv.healthAddr
		if healthAddr == "" {
			healthAddr = cfg.HealthAddress()
		}
		var tlsConf *tls.Config
		if cfg.TLSEnabled() {
			// The probe presents the central's own certificate: it names no
			// agency, so the central lets it PING and nothing else.
			host, _, _ := net.SplitHostPort(healthAddr)
			if tlsConf, err = identity.ClientConfig(cfg.TLSCert, cfg.TLSKey, cfg.TLSClientCA, host); err != nil {
				log.Error(vocab.TestServer, logfmt.Fail, vocab.Direccion.Str(healthAddr), vocab.Error.Any(err))
				return exitFailed
			}
		}
		return health(ctx, log, healthAddr, tlsConf)
	}
	if getenv("GOGC") == "" {
		// The central's live heap is mostly per-connection buffers without
		// pointers, cheap to scan, and a batch leaves little garbage:
		// collecting at a quarter of the default growth keeps its peak close
		// to what it holds, however long the round, for little CPU (a
		// 10M-bet round: 30 collections against 18 at 50, 38 against 43 MiB).
		// GOGC, if set, still rules.
		debug.SetGCPercent(gcPercent)
	}
	for _, u := range config.Unknown(environ) {
		log.Warn(vocab.Config, logfmt.InProgress, vocab.Aviso.Str(u.Text("server -h")))
	}
	return serve(ctx, log, cfg)
}

// gcPercent is the central's GOGC unless the environment sets one.
const gcPercent = 25

// configFailed reports a configuration that cannot be used, on stderr.
func configFailed(stderr io.Writer, err error) int {
	return envconfig.Fail(stderr, vocab.Config.Line(logfmt.Fail, vocab.Error.Any(err)))
}

// serve runs the central until ctx ends, then shuts it down.
func serve(ctx context.Context, log *logfmt.Logger, cfg config.Config) int {
	tlsState, pprofState := "off", "off"
	if cfg.TLSEnabled() {
		tlsState = "on"
	}
	if cfg.Pprof {
		pprofState = "on"
	}
	log.Info(vocab.Config, logfmt.Success, vocab.Host.Str(cfg.Host), vocab.Puerto.Int(cfg.Port), vocab.Agencias.Int(cfg.Agencies),
		vocab.ArchivoApuestas.Str(cfg.StoragePath), vocab.NivelLog.Str(cfg.LogLevel), vocab.EsperaInactividad.Any(cfg.IdleTimeout),
		vocab.MaxConexiones.Int(cfg.MaxConnections), vocab.EsperaHello.Any(cfg.HelloTimeout),
		vocab.MaxSinIdentificar.Int(cfg.MaxUnidentified), vocab.MaxSinIdentificarPorOrigen.Int(cfg.MaxUnidentifiedPerSource),
		vocab.Pprof.Str(pprofState), vocab.TLSKey.Str(tlsState))

	var m *metrics.Metrics
	if cfg.AdminEnabled() {
		m = metrics.New()
	}
	srv, err := central.New(cfg, log, central.WithMetrics(m))
	if err != nil {
		log.Error(vocab.Iniciar, logfmt.Fail, vocab.Error.Any(err))
		return exitFailed
	}
	defer reloadOnHangup(srv)()
	adminDone := serveAdmin(log, cfg, srv)
	defer func() { <-adminDone }()
	// Listen first, then recover: an agency that connects meanwhile waits
	// for its HELLO_ACK instead of retrying into a refused port.
	ln, err := net.Listen("tcp", cfg.Address())
	if err != nil {
		log.Error(vocab.Escuchar, logfmt.Fail, vocab.Error.Any(fmt.Errorf("listen on %s: %w", cfg.Address(), err)))
		_ = shutdown(srv)
		return exitFailed
	}
	served := make(chan error, 1)
	go func() { served <- srv.Serve(ln) }()
	recovered := make(chan error, 1)
	go func() { recovered <- srv.Recover() }()

	for waiting := true; waiting; {
		select {
		case <-ctx.Done():
			log.Info(vocab.Signal, logfmt.Success, vocab.Senal.Str(signalName(ctx)))
			waiting = false
		case err := <-recovered:
			recovered = nil // a nil channel never answers: recovered once
			if err != nil {
				log.Error(vocab.Iniciar, logfmt.Fail, vocab.Error.Any(err))
				_ = shutdown(srv)
				<-served
				return exitFailed
			}
		case err := <-served:
			log.Error(vocab.Escuchar, logfmt.Fail, vocab.Error.Any(err))
			_ = shutdown(srv)
			if recovered != nil {
				<-recovered
			}
			return exitFailed
		}
	}
	err = shutdown(srv)
	if recovered != nil {
		// Shutdown waited for a running Recover; this one may not have begun.
		<-recovered
	}
	if err != nil {
		return exitFailed
	}
	if err := <-served; err != nil && !errors.Is(err, central.ErrServerClosed) {
		log.Error(vocab.Escuchar, logfmt.Fail, vocab.Error.Any(err))
		return exitFailed
	}
	return exitOK
}

// reloadOnHangup has srv read its revocation list again at each SIGHUP, as
// `server reload` does (the journal names the signal, SIGHUP, as the
// operator), until the function it returns is called, which waits for a
// reload under way. Without a list configured a SIGHUP is logged and
// refused: it never stops the central, as Go's default would.
func reloadOnHangup(srv *central.Server) (stop func()) {
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	quit, done := make(chan struct{}), make(chan struct{})
	go func() {
		defer close(done)
		for {
			select {
			case <-quit:
				return
			case <-hup:
				_, _ = srv.ReloadRevocations(central.SignalOperator) // it logs what it did, or why not
			}
		}
	}()
	return func() {
		signal.Stop(hup)
		close(quit)
		<-done
	}
}

// serveAdmin starts the admin listener (metrics, health, status page) when
// the configuration has one; the returned channel is closed once it has
// stopped, after srv's Shutdown. An admin address that cannot be bound is
// logged and the central serves on without it: the draw matters more than
// its dashboard.
func serveAdmin(log *logfmt.Logger, cfg config.Config, srv *central.Server) <-chan struct{} {
	done := make(chan struct{})
	if !cfg.AdminEnabled() {
		close(done)
		return done
	}
	ln, err := net.Listen("tcp", cfg.AdminAddress)
	if err != nil {
		log.Error(vocab.EscucharAdmin, logfmt.Fail, vocab.Direccion.Str(cfg.AdminAddress), vocab.Error.Any(err))
		close(done)
		return done
	}
	go func() {
		defer close(done)
		if err := srv.ServeAdmin(ln); err != nil {
			log.Error(vocab.EscucharAdmin, logfmt.Fail, vocab.Direccion.Str(cfg.AdminAddress), vocab.Error.Any(err))
		}
	}()
	return done
}

// shutdown stops srv within shutdownTimeout.
func shutdown(srv *central.Server) error {
	ctx, cancel := context.WithTimeout(context.Background(), shutdownTimeout)
	defer cancel()
	return srv.Shutdown(ctx)
}

// signalName says why ctx ended: for main's context, the signal received
// ("terminated", "interrupt").
func signalName(ctx context.Context) string {
	return strings.TrimSuffix(context.Cause(ctx).Error(), " signal received")
}

// health pings the central at addr and reports in the usual line format.
func health(ctx context.Context, log *logfmt.Logger, addr string, tlsConf *tls.Config) int {
	if err := ping(ctx, addr, tlsConf, healthTimeout); err != nil {
		log.Error(vocab.TestServer, logfmt.Fail, vocab.Direccion.Str(addr), vocab.Error.Any(err))
		return exitFailed
	}
	log.Info(vocab.TestServer, logfmt.Success, vocab.Direccion.Str(addr))
	return exitOK
}

// ping sends PING to the central at addr and waits for PONG, within timeout.
// tlsConf nil speaks plaintext; otherwise the ping runs over TLS with it
// (with the client certificate a mutual-TLS central requires).
func ping(ctx context.Context, addr string, tlsConf *tls.Config, timeout time.Duration) error {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	var conn net.Conn
	var err error
	if tlsConf != nil {
		conn, err = (&tls.Dialer{Config: tlsConf}).DialContext(ctx, "tcp", addr)
	} else {
		conn, err = (&net.Dialer{}).DialContext(ctx, "tcp", addr)
	}
	if err != nil {
		return fmt.Errorf("ping: %w", err)
	}
	defer conn.Close()
	deadline, _ := ctx.Deadline()
	if err := conn.SetDeadline(deadline); err != nil {
		return fmt.Errorf("ping: %w", err)
	}
	stop := context.AfterFunc(ctx, func() { conn.Close() })
	defer stop()
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
