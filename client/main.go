// Command client is a betting agency: it sends its bets to the central and
// prints how many of its bettors won. It is configured by environment
// variables only; `client -h` lists them.
package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strings"
	"syscall"

	"lotterycentral.example/client/agency"
	"lotterycentral.example/client/internal/vocab"
	"lotterycentral.example/lottery/envconfig"
	"lotterycentral.example/lottery/logfmt"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	code := run(ctx, os.Args[1:], os.Getenv, os.Environ(), os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}

const usage = `Usage: client

A betting agency: sends the bets of its file to the central in batches, says
it has finished, waits for the draw and prints how many of its bettors won.
It takes no arguments; it is configured by these environment variables:

`

// Exit codes.
const (
	exitOK     = 0
	exitFailed = 1 // the exchange failed: see the last log line
)

// run is the whole program: it returns the exit code. getenv reads the
// configuration; environ (os.Environ) is every variable set, for a warning
// about each CLI_ one that is not a setting. Cancelling ctx (SIGTERM or SIGINT
// in main) stops the agency, which then exits 0.
func run(ctx context.Context, args []string, getenv envconfig.Getenv, environ []string, stdout, stderr io.Writer) int {
	if len(args) > 0 {
		if isHelp(args[0]) && len(args) == 1 {
			fmt.Fprint(stdout, usage+envconfig.Usage[agency.Config]())
			return exitOK
		}
		fmt.Fprintf(stderr, "client: unexpected argument %q\n\n%s%s", args[0], usage, envconfig.Usage[agency.Config]())
		return envconfig.ExitCode
	}
	cfg, err := agency.Load(getenv)
	if err != nil {
		return envconfig.Fail(stderr, vocab.Config.Line(logfmt.Fail, vocab.Error.Any(err)))
	}
	log, err := logfmt.New(stdout, cfg.LogLevel, logfmt.Prefix(cfg.LogPrefix))
	if err != nil {
		return envconfig.Fail(stderr, vocab.Config.Line(logfmt.Fail, vocab.Error.Any(err)))
	}
	for _, u := range agency.Unknown(environ) {
		log.Warn(vocab.Config, logfmt.InProgress, vocab.Aviso.Str(u.Text("client -h")))
	}
	logConfig(log, cfg)

	winners, err := agency.New(cfg, log).Run(ctx)
	switch {
	case ctx.Err() != nil:
		log.Info(vocab.Shutdown, logfmt.Success, vocab.Motivo.Str("signal"), vocab.Senal.Str(signalName(ctx)))
		return exitOK
	case err != nil:
		log.Error(agency.FailedAction(err), logfmt.Fail, vocab.Error.Any(err))
		return exitFailed
	}
	log.Info(vocab.ConsultaGanadores, logfmt.Success, vocab.CantGanadores.Int(len(winners)))
	return exitOK
}

// logConfig logs the configuration read, and warns when it is plaintext.
func logConfig(log *logfmt.Logger, cfg agency.Config) {
	settings := []logfmt.Field{vocab.ID.Int(cfg.ID), vocab.Servidor.Str(cfg.ServerAddress),
		vocab.Archivo.Str(cfg.DataPath), vocab.LoteMax.Int(cfg.BatchMaxAmount),
		vocab.EsperaConexion.Any(cfg.ConnectTimeout), vocab.EsperaRespuesta.Any(cfg.ReplyTimeout),
		vocab.MaxReintentos.Int(cfg.MaxRetries), vocab.NivelLog.Str(cfg.LogLevel)}
	if !cfg.TLSEnabled() {
		log.Info(vocab.Config, logfmt.Success, append(settings, vocab.TLSKey.Str("off"))...)
		log.Warn(vocab.TLS, logfmt.Success, vocab.Modo.Str("plaintext"), vocab.Aviso.Str(
			"bets and winners travel unauthenticated and the central is not verified; set CLI_TLS_CERT, CLI_TLS_KEY and CLI_TLS_CA"))
		return
	}
	log.Info(vocab.Config, logfmt.Success, append(settings, vocab.TLSKey.Str("on"),
		vocab.NombreServidorTLS.Str(cfg.TLSServerName))...)
}

func isHelp(arg string) bool {
	return arg == "-h" || arg == "--help" || arg == "help" || arg == "-help"
}

// signalName says why ctx ended: for main's context, the signal received
// ("terminated", "interrupt").
func signalName(ctx context.Context) string {
	return strings.TrimSuffix(context.Cause(ctx).Error(), " signal received")
}
