// Command client is a betting agency: it sends its bets to the central and
// prints how many of its bettors won.
package main

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"syscall"

	"lotterycentral.example/client/agency"
	"lotterycentral.example/lottery/logfmt"
)

func main() { os.Exit(run()) }

func run() int {
	cfg, err := agency.Load(nil)
	if err != nil {
		fmt.Fprintln(os.Stderr, logfmt.Line("config", logfmt.Fail, "error", err))
		return 2
	}
	log, err := logfmt.New(cfg.LogLevel)
	if err != nil {
		fmt.Fprintln(os.Stderr, logfmt.Line("config", logfmt.Fail, "error", err))
		return 2
	}
	log.Info(logfmt.Line("config", logfmt.Success, "id", cfg.ID, "server_address", cfg.ServerAddress,
		"data_path", cfg.DataPath, "batch_maxamount", cfg.BatchMaxAmount,
		"connect_timeout", cfg.ConnectTimeout, "reply_timeout", cfg.ReplyTimeout, "max_retries", cfg.MaxRetries,
		"log_level", cfg.LogLevel))

	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer stop()
	winners, err := agency.New(cfg, log).Run(ctx)
	switch {
	case ctx.Err() != nil:
		log.Info(logfmt.Line("shutdown", logfmt.Success, "motivo", "signal"))
		return 0
	case err != nil:
		log.Error(logfmt.Line("consulta_ganadores", logfmt.Fail, "error", err))
		return 1
	}
	log.Info(logfmt.Line("consulta_ganadores", logfmt.Success, "cant_ganadores", len(winners)))
	return 0
}
