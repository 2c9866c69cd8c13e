package agency

import (
	"fmt"
	"net"
	"strconv"
	"strings"
	"time"

	"lotterycentral.example/lottery/envconfig"
	"lotterycentral.example/lottery/logfmt"
	"lotterycentral.example/protocol"
)

// Config is an agency's configuration; every field comes from one variable.
type Config struct {
	ID             int           `env:"CLI_ID,required" help:"the agency number (1 or more)"`
	ServerAddress  string        `env:"CLI_SERVER_ADDRESS" envDefault:"server:12345" help:"the central, host:port ([::1]:12345 for an IPv6 address)"`
	DataPath       string        `env:"CLI_DATA_PATH" help:"the agency's bets file; default .data/agency-<CLI_ID>.csv"`
	BatchMaxAmount int           `env:"CLI_BATCH_MAXAMOUNT" envDefault:"0" help:"bets per batch at most; 0 packs as many as fit in one 8 KiB frame"`
	ConnectTimeout time.Duration `env:"CLI_CONNECT_TIMEOUT" envDefault:"30s" help:"how long to keep trying to reach the central, each time the connection is lost"`
	ReplyTimeout   time.Duration `env:"CLI_REPLY_TIMEOUT" envDefault:"30s" help:"how long to wait for each answer of the central (not for the draw)"`
	MaxRetries     int           `env:"CLI_MAX_RETRIES" envDefault:"10" help:"reconnections in a row without progress before giving up"`
	LogLevel       string        `env:"CLI_LOG_LEVEL" envDefault:"INFO" help:"DEBUG, INFO, WARN or ERROR"`
	LogPrefix      string        `env:"CLI_LOG_PREFIX" help:"text put before every log line, e.g. 'client3  | ' (make run sets it: every process writes to one output); default none"`

	// Mutual TLS: certificate, key and CA all or none (plaintext, for development).
	TLSCert       string `env:"CLI_TLS_CERT" help:"this agency's certificate (PEM); with CLI_TLS_KEY and CLI_TLS_CA turns on mutual TLS"`
	TLSKey        string `env:"CLI_TLS_KEY" help:"the private key of CLI_TLS_CERT (PEM)"`
	TLSCA         string `env:"CLI_TLS_CA" help:"the CA that signs the central's certificate (PEM)"`
	TLSServerName string `env:"CLI_TLS_SERVER_NAME" help:"the name the central's certificate must carry; default the host of CLI_SERVER_ADDRESS"`
}

// Unknown lists the CLI_ variables of environ (os.Environ) that are not the
// agency's settings, each with the setting it is most likely a typo of: the
// agency warns about each, and runs on. No other CLI_ variable is set beside
// an agency (the scripts' and Docker's are all settings).
func Unknown(environ []string) []envconfig.Unknown {
	return envconfig.UnknownVars[Config](environ, "CLI_")
}

// Load reads the configuration through getenv (os.Getenv in the binary),
// fills the defaults that depend on other fields, and validates it, the TLS
// files it names included. The error lists every mistake, each naming its
// variable (see envconfig).
func Load(getenv envconfig.Getenv) (Config, error) {
	cfg, err := envconfig.Parse[Config](getenv)
	if cfg.DataPath == "" {
		cfg.DataPath = fmt.Sprintf(".data/agency-%d.csv", cfg.ID)
	}
	errs := []error{err, cfg.Validate()}
	// 0 (the default) packs as many bets as fit in a frame; so does anything larger.
	if cfg.BatchMaxAmount == 0 || cfg.BatchMaxAmount > protocol.MaxBatchBets {
		cfg.BatchMaxAmount = protocol.MaxBatchBets
	}
	if cfg.TLSEnabled() {
		if cfg.TLSServerName == "" {
			cfg.TLSServerName, _, _ = net.SplitHostPort(cfg.ServerAddress) // checked by Validate
		}
		errs = append(errs,
			envconfig.Readable("CLI_TLS_CERT", cfg.TLSCert),
			envconfig.Readable("CLI_TLS_KEY", cfg.TLSKey),
			envconfig.Readable("CLI_TLS_CA", cfg.TLSCA))
	}
	if err := envconfig.Join(errs...); err != nil {
		return Config{}, err
	}
	return cfg, nil
}

// Validate reports every value out of range, not only the first. It does
// not look at the file system: the bets file is checked when the agency
// runs, before it connects.
func (c Config) Validate() error {
	var errs []error
	if c.ID < 1 || c.ID > 0xFFFFFFFF {
		errs = append(errs, envconfig.Invalid("CLI_ID", c.ID, "must be an agency number between 1 and 4294967295"))
	}
	errs = append(errs, checkAddress(c.ServerAddress))
	if c.BatchMaxAmount < 0 {
		errs = append(errs, envconfig.Invalid("CLI_BATCH_MAXAMOUNT", c.BatchMaxAmount,
			"must be 0 or more (0 packs as many bets as fit in one frame)"))
	}
	if c.ConnectTimeout <= 0 {
		errs = append(errs, envconfig.Invalid("CLI_CONNECT_TIMEOUT", c.ConnectTimeout, "must be a positive duration (e.g. 30s, 2m)"))
	}
	if c.ReplyTimeout <= 0 {
		errs = append(errs, envconfig.Invalid("CLI_REPLY_TIMEOUT", c.ReplyTimeout, "must be a positive duration (e.g. 30s, 2m)"))
	}
	if c.MaxRetries < 0 {
		errs = append(errs, envconfig.Invalid("CLI_MAX_RETRIES", c.MaxRetries, "must be 0 or more"))
	}
	if _, err := logfmt.ParseLevel(c.LogLevel); err != nil {
		errs = append(errs, envconfig.Invalid("CLI_LOG_LEVEL", c.LogLevel, logfmt.ErrLevel.Error()))
	}
	if strings.ContainsAny(c.LogPrefix, "\r\n") {
		errs = append(errs, envconfig.Invalid("CLI_LOG_PREFIX", c.LogPrefix, "must not hold a line break"))
	}
	errs = append(errs, envconfig.AllOrNone("CLI_TLS_CERT", c.TLSCert, "CLI_TLS_KEY", c.TLSKey, "CLI_TLS_CA", c.TLSCA))
	return envconfig.Join(errs...)
}

// checkAddress accepts host:port with a port number, the host in brackets
// when it is an IPv6 address.
func checkAddress(addr string) error {
	const want = "is not host:port (e.g. server:12345, 127.0.0.1:12345, [::1]:12345)"
	if addr == "" {
		return envconfig.Required("CLI_SERVER_ADDRESS", "the central's host:port")
	}
	host, port, err := net.SplitHostPort(addr)
	if err != nil || host == "" {
		return envconfig.Invalid("CLI_SERVER_ADDRESS", addr, want)
	}
	if n, err := strconv.Atoi(port); err != nil || n < 1 || n > 65535 {
		return envconfig.Invalid("CLI_SERVER_ADDRESS", addr, "has no port between 1 and 65535 (e.g. server:12345)")
	}
	return nil
}

// TLSEnabled reports whether the agency speaks mutual TLS (certificate, key
// and CA all set) rather than plaintext.
func (c Config) TLSEnabled() bool {
	return c.TLSCert != "" && c.TLSKey != "" && c.TLSCA != ""
}
