package agency

import (
	"errors"
	"fmt"
	"time"

	"github.com/caarlos0/env/v11"

	"lotterycentral.example/protocol"
)

// Config is an agency's configuration; every field comes from one variable.
type Config struct {
	ID             int           `env:"CLI_ID,required"`
	ServerAddress  string        `env:"CLI_SERVER_ADDRESS" envDefault:"server:12345"`
	DataPath       string        `env:"CLI_DATA_PATH"` // default .data/agency-<ID>.csv
	BatchMaxAmount int           `env:"CLI_BATCH_MAXAMOUNT" envDefault:"0"`
	ConnectTimeout time.Duration `env:"CLI_CONNECT_TIMEOUT" envDefault:"30s"`
	ReplyTimeout   time.Duration `env:"CLI_REPLY_TIMEOUT" envDefault:"30s"`
	MaxRetries     int           `env:"CLI_MAX_RETRIES" envDefault:"10"`
	LogLevel       string        `env:"CLI_LOG_LEVEL" envDefault:"INFO"`
}

// Load parses the configuration from environ (nil means the process
// environment), fills the defaults that depend on other fields, and validates it.
func Load(environ map[string]string) (Config, error) {
	cfg, err := env.ParseAsWithOptions[Config](env.Options{Environment: environ})
	if err != nil {
		return Config{}, fmt.Errorf("load config: %w", err)
	}
	if cfg.DataPath == "" {
		cfg.DataPath = fmt.Sprintf(".data/agency-%d.csv", cfg.ID)
	}
	// 0 (the default) packs as many bets as fit in a frame; so does anything larger.
	if cfg.BatchMaxAmount <= 0 || cfg.BatchMaxAmount > protocol.MaxBatchBets {
		cfg.BatchMaxAmount = protocol.MaxBatchBets
	}
	if err := cfg.Validate(); err != nil {
		return Config{}, fmt.Errorf("load config: %w", err)
	}
	return cfg, nil
}

// Validate reports every value out of range, not only the first.
func (c Config) Validate() error {
	var errs []error
	if c.ID < 1 || c.ID > 0xFFFFFFFF {
		errs = append(errs, fmt.Errorf("CLI_ID=%d: want a positive agency number", c.ID))
	}
	if c.ServerAddress == "" {
		errs = append(errs, errors.New("CLI_SERVER_ADDRESS is empty"))
	}
	if c.ConnectTimeout <= 0 {
		errs = append(errs, fmt.Errorf("CLI_CONNECT_TIMEOUT=%s: want a positive duration", c.ConnectTimeout))
	}
	if c.ReplyTimeout <= 0 {
		errs = append(errs, fmt.Errorf("CLI_REPLY_TIMEOUT=%s: want a positive duration", c.ReplyTimeout))
	}
	if c.MaxRetries < 0 {
		errs = append(errs, fmt.Errorf("CLI_MAX_RETRIES=%d: want 0 or more", c.MaxRetries))
	}
	return errors.Join(errs...)
}
