// Package config reads the central's configuration from the environment.
package config

import (
	"errors"
	"fmt"
	"time"

	"github.com/caarlos0/env/v11"
)

// Config is the central's configuration; every field comes from one variable.
type Config struct {
	Host           string        `env:"SERVER_HOST"`
	Port           int           `env:"SERVER_PORT" envDefault:"12345"`
	Agencies       int           `env:"SERVER_AGENCIES" envDefault:"5"`
	StoragePath    string        `env:"SERVER_STORAGE_PATH" envDefault:"./bets.csv"`
	LogLevel       string        `env:"SERVER_LOG_LEVEL" envDefault:"INFO"`
	IdleTimeout    time.Duration `env:"SERVER_IDLE_TIMEOUT" envDefault:"60s"`
	MaxConnections int           `env:"SERVER_MAX_CONNECTIONS" envDefault:"2048"`
}

// Load parses the configuration from environ (nil means the process
// environment) and validates it.
func Load(environ map[string]string) (Config, error) {
	opts := env.Options{Environment: environ}
	cfg, err := env.ParseAsWithOptions[Config](opts)
	if err != nil {
		return Config{}, fmt.Errorf("load config: %w", err)
	}
	if err := cfg.Validate(); err != nil {
		return Config{}, fmt.Errorf("load config: %w", err)
	}
	return cfg, nil
}

// Validate reports every value out of range, not only the first.
func (c Config) Validate() error {
	var errs []error
	if c.Port < 0 || c.Port > 65535 {
		errs = append(errs, fmt.Errorf("SERVER_PORT=%d: want 0..65535 (0 picks a free port)", c.Port))
	}
	if c.Agencies < 1 || c.Agencies > 1_000_000 {
		errs = append(errs, fmt.Errorf("SERVER_AGENCIES=%d: want 1..1000000", c.Agencies))
	}
	if c.StoragePath == "" {
		errs = append(errs, errors.New("SERVER_STORAGE_PATH is empty"))
	}
	if c.IdleTimeout <= 0 {
		errs = append(errs, fmt.Errorf("SERVER_IDLE_TIMEOUT=%s: want a positive duration", c.IdleTimeout))
	}
	if c.MaxConnections < 1 {
		errs = append(errs, fmt.Errorf("SERVER_MAX_CONNECTIONS=%d: want at least 1", c.MaxConnections))
	}
	return errors.Join(errs...)
}

// Address is where the central listens.
func (c Config) Address() string { return fmt.Sprintf("%s:%d", c.Host, c.Port) }
