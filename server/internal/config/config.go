// Package config reads the central's configuration from the environment.
// `server` and `server health` both load it here: one place for the defaults.
package config

import (
	"net"
	"net/netip"
	"strconv"
	"strings"
	"time"

	"lotterycentral.example/lottery/envconfig"
	"lotterycentral.example/lottery/logfmt"
)

// Config is the central's configuration; every field comes from one variable.
type Config struct {
	Host           string        `env:"SERVER_HOST" help:"address to listen on; empty listens on every interface"`
	Port           int           `env:"SERVER_PORT" envDefault:"12345" help:"TCP port to listen on; 0 picks a free one"`
	Agencies       int           `env:"SERVER_AGENCIES" envDefault:"5" help:"agencies in the draw, numbered 1..N; the draw runs when all have finished"`
	StoragePath    string        `env:"SERVER_STORAGE_PATH" envDefault:"./bets.csv" help:"the bets file; its directory must exist and be writable (the FINISH journal lives beside it)"`
	LogLevel       string        `env:"SERVER_LOG_LEVEL" envDefault:"INFO" help:"DEBUG, INFO, WARN or ERROR"`
	LogPrefix      string        `env:"SERVER_LOG_PREFIX" help:"text put before every log line, e.g. 'server   | ' (make run sets it: every process writes to one output); default none"`
	IdleTimeout    time.Duration `env:"SERVER_IDLE_TIMEOUT" envDefault:"60s" help:"a connection that sends no complete message for this long is closed (not an agency waiting for the draw)"`
	MaxConnections int           `env:"SERVER_MAX_CONNECTIONS" envDefault:"2048" help:"connections served at once; more are refused with too_many_connections"`

	// Mutual TLS: all three or none (plaintext, for development).
	TLSCert     string `env:"SERVER_TLS_CERT" help:"the central's certificate (PEM); with SERVER_TLS_KEY and SERVER_TLS_CLIENT_CA turns on mutual TLS"`
	TLSKey      string `env:"SERVER_TLS_KEY" help:"the private key of SERVER_TLS_CERT (PEM)"`
	TLSClientCA string `env:"SERVER_TLS_CLIENT_CA" help:"the CA that signs the agencies' and the operators' certificates (PEM); server exclude and server reload verify the central with it"`
	// Optional beside them: the certificates that no longer name anyone.
	TLSRevoked string `env:"SERVER_TLS_REVOKED" help:"the revocation list (an X.509 CRL signed by SERVER_TLS_CLIENT_CA's CA; make certs writes .certs/revoked.pem): its certificates are refused, read at start and again on SIGHUP or server reload; needs mutual TLS; default none"`

	// Connections that have not yet said who they are.
	HelloTimeout             time.Duration `env:"SERVER_HELLO_TIMEOUT" envDefault:"5s" help:"deadline for the TLS handshake and then for the HELLO, each"`
	MaxUnidentified          int           `env:"SERVER_MAX_UNIDENTIFIED" envDefault:"256" help:"connections that have not completed HELLO, in total"`
	MaxUnidentifiedPerSource int           `env:"SERVER_MAX_UNIDENTIFIED_PER_SOURCE" envDefault:"32" help:"connections that have not completed HELLO, per source IP address"`

	// The operators' listener: /metrics, /healthz and the status page to
	// anyone who reaches it; the actions and the profiler to an operator's
	// certificate over TLS.
	AdminAddress string `env:"SERVER_ADMIN_ADDRESS" envDefault:"127.0.0.1:9090" help:"host:port of the admin listener, never the agencies' port: Prometheus /metrics, /healthz, the status page at / over HTTP or TLS; the actions (/actions/exclude, /actions/reload) over TLS to an operator's certificate only; empty or off turns it and the metrics off"`
	Pprof        bool   `env:"SERVER_PPROF" envDefault:"0" help:"1 serves Go's profiler at /debug/pprof/ on the admin address, to an operator's certificate over TLS only (needs mutual TLS); 0 or unset: off"`

	// The operator's commands (server exclude, server reload) present these
	// to the admin address and verify the central with SERVER_TLS_CLIENT_CA.
	OperatorCert string `env:"SERVER_OPERATOR_CERT" help:"server exclude and server reload: the operator's certificate (PEM; make certs writes .certs/operator.pem); the central itself does not read it"`
	OperatorKey  string `env:"SERVER_OPERATOR_KEY" help:"server exclude and server reload: the private key of SERVER_OPERATOR_CERT (PEM)"`
}

// notSettings are SERVER_ variables set beside the central that are not its
// settings, never warned about: the scripts' own (SERVER_ADDRESS and
// SERVER_IMAGE of scripts/validar-servidor.sh and generar-stack.sh), which a
// shell may have exported.
var notSettings = []string{"SERVER_ADDRESS", "SERVER_IMAGE"}

// Unknown lists the SERVER_ variables of environ (os.Environ) that are not
// the central's settings, each with the setting it is most likely a typo of:
// the central warns about each, and runs on.
func Unknown(environ []string) []envconfig.Unknown {
	return envconfig.UnknownVars[Config](environ, "SERVER_", notSettings...)
}

// AdminOff is the SERVER_ADMIN_ADDRESS that turns the admin listener off. An
// empty variable cannot: like every variable's, it means the default.
const AdminOff = "off"

// Load reads the configuration through getenv (os.Getenv in the binary) and
// validates it, the files it names included. The error lists every mistake,
// each naming its variable (see envconfig).
func Load(getenv envconfig.Getenv) (Config, error) {
	cfg, err := envconfig.Parse[Config](getenv)
	errs := []error{err, cfg.Validate()}
	if cfg.StoragePath != "" {
		errs = append(errs, envconfig.Writable("SERVER_STORAGE_PATH", cfg.StoragePath))
	}
	if cfg.TLSEnabled() {
		errs = append(errs,
			envconfig.Readable("SERVER_TLS_CERT", cfg.TLSCert),
			envconfig.Readable("SERVER_TLS_KEY", cfg.TLSKey),
			envconfig.Readable("SERVER_TLS_CLIENT_CA", cfg.TLSClientCA))
		if cfg.TLSRevoked != "" {
			errs = append(errs, envconfig.Readable("SERVER_TLS_REVOKED", cfg.TLSRevoked))
		}
	}
	if err := envconfig.Join(errs...); err != nil {
		return Config{}, err
	}
	return cfg, nil
}

// LoadOperator reads the configuration of the operator's commands (server
// exclude, server reload): the admin address to reach, the operator's
// certificate and key, and SERVER_TLS_CLIENT_CA to verify the central with;
// all required. Every other variable must still read, but is not checked:
// the operator's machine need not hold the bets file or the central's key.
func LoadOperator(getenv envconfig.Getenv) (Config, error) {
	cfg, err := envconfig.Parse[Config](getenv)
	errs := []error{err}
	if _, err := logfmt.ParseLevel(cfg.LogLevel); err != nil {
		errs = append(errs, envconfig.Invalid("SERVER_LOG_LEVEL", cfg.LogLevel, logfmt.ErrLevel.Error()))
	}
	if strings.ContainsAny(cfg.LogPrefix, "\r\n") {
		errs = append(errs, envconfig.Invalid("SERVER_LOG_PREFIX", cfg.LogPrefix, "must not hold a line break"))
	}
	if cfg.AdminEnabled() {
		errs = append(errs, cfg.validateAdmin())
	} else {
		errs = append(errs, envconfig.Invalid("SERVER_ADMIN_ADDRESS", cfg.AdminAddress,
			"is off: the operator's commands reach the central on its admin address (host:port)"))
	}
	for _, f := range []struct{ name, value, what string }{
		{"SERVER_OPERATOR_CERT", cfg.OperatorCert, "the operator's certificate (make certs: .certs/operator.pem)"},
		{"SERVER_OPERATOR_KEY", cfg.OperatorKey, "the operator's key (make certs: .certs/operator-key.pem)"},
		{"SERVER_TLS_CLIENT_CA", cfg.TLSClientCA, "the CA that signed the central's certificate (make certs: .certs/ca.pem)"},
	} {
		if f.value == "" {
			errs = append(errs, envconfig.Required(f.name, f.what))
		} else {
			errs = append(errs, envconfig.Readable(f.name, f.value))
		}
	}
	if err := envconfig.Join(errs...); err != nil {
		return Config{}, err
	}
	return cfg, nil
}

// Validate reports every value out of range, not only the first. It does
// not look at the file system (Load does).
func (c Config) Validate() error {
	var errs []error
	if _, err := netip.ParseAddr(c.Host); c.Host != "" && err != nil && !validHostname(c.Host) {
		errs = append(errs, envconfig.Invalid("SERVER_HOST", c.Host, "is not an IP address or host name (e.g. 0.0.0.0, ::1, localhost)"))
	}
	if c.Port < 0 || c.Port > 65535 {
		errs = append(errs, envconfig.Invalid("SERVER_PORT", c.Port, "must be between 0 and 65535 (0 picks a free port)"))
	}
	if c.Agencies < 1 || c.Agencies > 1_000_000 {
		errs = append(errs, envconfig.Invalid("SERVER_AGENCIES", c.Agencies, "must be between 1 and 1000000"))
	}
	if c.StoragePath == "" {
		errs = append(errs, envconfig.Required("SERVER_STORAGE_PATH", "the path of the bets file"))
	}
	if _, err := logfmt.ParseLevel(c.LogLevel); err != nil {
		errs = append(errs, envconfig.Invalid("SERVER_LOG_LEVEL", c.LogLevel, logfmt.ErrLevel.Error()))
	}
	if strings.ContainsAny(c.LogPrefix, "\r\n") {
		errs = append(errs, envconfig.Invalid("SERVER_LOG_PREFIX", c.LogPrefix, "must not hold a line break"))
	}
	if c.IdleTimeout <= 0 {
		errs = append(errs, envconfig.Invalid("SERVER_IDLE_TIMEOUT", c.IdleTimeout, "must be a positive duration (e.g. 30s, 2m)"))
	}
	if c.MaxConnections < 1 {
		errs = append(errs, envconfig.Invalid("SERVER_MAX_CONNECTIONS", c.MaxConnections, "must be 1 or more"))
	}
	errs = append(errs, envconfig.AllOrNone("SERVER_TLS_CERT", c.TLSCert, "SERVER_TLS_KEY", c.TLSKey,
		"SERVER_TLS_CLIENT_CA", c.TLSClientCA))
	if c.TLSRevoked != "" && !c.TLSEnabled() {
		errs = append(errs, envconfig.Invalid("SERVER_TLS_REVOKED", c.TLSRevoked,
			"needs mutual TLS (SERVER_TLS_CERT, SERVER_TLS_KEY, SERVER_TLS_CLIENT_CA): without certificates there is nothing to revoke"))
	}
	if c.HelloTimeout <= 0 {
		errs = append(errs, envconfig.Invalid("SERVER_HELLO_TIMEOUT", c.HelloTimeout, "must be a positive duration (e.g. 5s)"))
	}
	if c.MaxUnidentified < 1 {
		errs = append(errs, envconfig.Invalid("SERVER_MAX_UNIDENTIFIED", c.MaxUnidentified, "must be 1 or more"))
	}
	if c.MaxUnidentifiedPerSource < 1 {
		errs = append(errs, envconfig.Invalid("SERVER_MAX_UNIDENTIFIED_PER_SOURCE", c.MaxUnidentifiedPerSource, "must be 1 or more"))
	}
	errs = append(errs, c.validateAdmin())
	if c.Pprof && (!c.AdminEnabled() || !c.TLSEnabled()) {
		errs = append(errs, envconfig.Invalid("SERVER_PPROF", "1",
			"needs the admin listener (SERVER_ADMIN_ADDRESS) and mutual TLS (SERVER_TLS_*): the profiler is served to an operator's certificate over TLS only"))
	}
	return envconfig.Join(errs...)
}

// validateAdmin checks SERVER_ADMIN_ADDRESS: off, or host:port with a port in
// 0..65535 (0 picks a free one) that is not the agencies' port on an address
// the agencies' listener covers.
func (c Config) validateAdmin() error {
	if !c.AdminEnabled() {
		return nil
	}
	const what = "must be host:port (e.g. 127.0.0.1:9090, [::1]:9090, :9090) or off"
	host, port, err := net.SplitHostPort(c.AdminAddress)
	if err != nil {
		return envconfig.Invalid("SERVER_ADMIN_ADDRESS", c.AdminAddress, what)
	}
	if _, err := netip.ParseAddr(host); host != "" && err != nil && !validHostname(host) {
		return envconfig.Invalid("SERVER_ADMIN_ADDRESS", c.AdminAddress, what)
	}
	p, err := strconv.Atoi(port)
	if err != nil || p < 0 || p > 65535 {
		return envconfig.Invalid("SERVER_ADMIN_ADDRESS", c.AdminAddress, "has a port not in 0..65535; "+what)
	}
	if p != 0 && p == c.Port && overlap(host, c.Host) {
		return envconfig.Invalid("SERVER_ADMIN_ADDRESS", c.AdminAddress,
			"is the agencies' port (SERVER_PORT): the admin listener needs a port of its own")
	}
	return nil
}

// overlap reports whether listeners on hosts a and b could want the same
// socket: the same host, or either one every interface.
func overlap(a, b string) bool {
	every := func(h string) bool {
		ip, err := netip.ParseAddr(h)
		return h == "" || err == nil && ip.IsUnspecified()
	}
	return a == b || every(a) || every(b)
}

// AdminEnabled reports whether the admin listener (and with it the metrics) is on.
func (c Config) AdminEnabled() bool {
	return !strings.EqualFold(c.AdminAddress, AdminOff)
}

// validHostname accepts what a listener can resolve: letters, digits, '-'
// and '.', in labels of at most 63 characters.
func validHostname(h string) bool {
	if len(h) > 253 {
		return false
	}
	label := 0
	for _, r := range h {
		switch {
		case r == '.':
			if label == 0 {
				return false
			}
			label = 0
		case r == '-', r >= '0' && r <= '9', r >= 'a' && r <= 'z', r >= 'A' && r <= 'Z':
			label++
			if label > 63 {
				return false
			}
		default:
			return false
		}
	}
	return label > 0
}

// TLSEnabled reports whether the central serves mutual TLS (all three TLS
// variables set) rather than plaintext.
func (c Config) TLSEnabled() bool {
	return c.TLSCert != "" && c.TLSKey != "" && c.TLSClientCA != ""
}

// Address is where the central listens: host and port joined for any
// address family ("[::1]:12345" for SERVER_HOST=::1).
func (c Config) Address() string {
	return net.JoinHostPort(c.Host, strconv.Itoa(c.Port))
}

// AdminDialAddress is where the operator's commands find this central's
// admin listener: its host, or loopback when it listens on every interface.
func (c Config) AdminDialAddress() string {
	host, port, err := net.SplitHostPort(c.AdminAddress)
	if err != nil {
		return c.AdminAddress
	}
	return net.JoinHostPort(dialHost(host), port)
}

// dialHost is host, or loopback for an address of every interface.
func dialHost(host string) string {
	if ip := net.ParseIP(host); host == "" || (ip != nil && ip.IsUnspecified()) {
		return "127.0.0.1"
	}
	return host
}

// HealthAddress is where `server health` finds this central: its own host,
// or loopback when it listens on every interface.
func (c Config) HealthAddress() string {
	return net.JoinHostPort(dialHost(c.Host), strconv.Itoa(c.Port))
}
