package envconfig

import (
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
)

// central is a configuration shaped like the central's.
type central struct {
	Host         string        `env:"SERVER_HOST"`
	Port         int           `env:"SERVER_PORT" envDefault:"12345"`
	Agencies     int           `env:"SERVER_AGENCIES" envDefault:"5"`
	LogLevel     string        `env:"SERVER_LOG_LEVEL" envDefault:"INFO"`
	IdleTimeout  time.Duration `env:"SERVER_IDLE_TIMEOUT" envDefault:"60s"`
	HelloTimeout time.Duration `env:"SERVER_HELLO_TIMEOUT" envDefault:"5s"`
	TLSCert      string        `env:"SERVER_TLS_CERT"`
	TLSKey       string        `env:"SERVER_TLS_KEY"`
	TLSClientCA  string        `env:"SERVER_TLS_CLIENT_CA"`
	MaxConns     int           `env:"SERVER_MAX_CONNECTIONS" envDefault:"2048"`
	AdminAddress string        `env:"SERVER_ADMIN_ADDRESS"`
}

func TestUnknownVars(t *testing.T) {
	tests := []struct {
		name    string
		environ []string
		others  []string
		want    []Unknown
	}{
		{"every setting is known", []string{"SERVER_HOST=", "SERVER_PORT=1", "SERVER_AGENCIES=3", "SERVER_LOG_LEVEL=debug",
			"SERVER_IDLE_TIMEOUT=1s", "SERVER_HELLO_TIMEOUT=1s", "SERVER_TLS_CERT=c", "SERVER_TLS_KEY=k",
			"SERVER_TLS_CLIENT_CA=ca", "SERVER_MAX_CONNECTIONS=9", "SERVER_ADMIN_ADDRESS=off"}, nil, nil},
		{"other prefixes are not looked at", []string{"PATH=/bin", "GOGC=50", "CLI_ID=1", "SERVERX=1", "MY_SERVER_PORT=1",
			"SERVE_PORT=1", "SERVER=1"}, nil, nil},
		{"others are not warned about", []string{"SERVER_LOG_PREFIX=x", "SERVER_IMAGE=i"},
			[]string{"SERVER_LOG_PREFIX", "SERVER_IMAGE"}, nil},
		{"others are matched exactly", []string{"server_log_prefix=x"}, []string{"SERVER_LOG_PREFIX"},
			[]Unknown{{"server_log_prefix", ""}}},
		{"the issue's typo", []string{"SERVER_AGENCY=3"}, nil, []Unknown{{"SERVER_AGENCY", "SERVER_AGENCIES"}}},
		{"one letter off", []string{"SERVER_PORTS=1"}, nil, []Unknown{{"SERVER_PORTS", "SERVER_PORT"}}},
		{"a swap is one edit", []string{"SERVER_PROT=1"}, nil, []Unknown{{"SERVER_PROT", "SERVER_PORT"}}},
		{"a missing underscore", []string{"SERVER_LOGLEVEL=debug"}, nil, []Unknown{{"SERVER_LOGLEVEL", "SERVER_LOG_LEVEL"}}},
		{"a missing word", []string{"SERVER_CONNECTIONS=9"}, nil, []Unknown{{"SERVER_CONNECTIONS", "SERVER_MAX_CONNECTIONS"}}},
		{"the wrong case", []string{"server_port=1", "Server_Agencies=2"}, nil,
			[]Unknown{{"Server_Agencies", "SERVER_AGENCIES"}, {"server_port", "SERVER_PORT"}}},
		{"nothing near", []string{"SERVER_FOO=1", "SERVER_LOG=debug", "SERVER_=1"}, nil,
			[]Unknown{{"SERVER_", ""}, {"SERVER_FOO", ""}, {"SERVER_LOG", ""}}},
		// TLS_CA is 3 edits from both TLS_CERT and TLS_KEY: no guess.
		{"two equally near", []string{"SERVER_TLS_CA=ca"}, nil, []Unknown{{"SERVER_TLS_CA", ""}}},
		{"once each, sorted", []string{"SERVER_PORTS=1", "SERVER_AGENCY=3", "SERVER_PORTS=2", "SERVER_PORT=1"}, nil,
			[]Unknown{{"SERVER_AGENCY", "SERVER_AGENCIES"}, {"SERVER_PORTS", "SERVER_PORT"}}},
		{"a name without a value", []string{"SERVER_AGENCY"}, nil, []Unknown{{"SERVER_AGENCY", "SERVER_AGENCIES"}}},
		{"an empty value is still set", []string{"SERVER_AGENCY="}, nil, []Unknown{{"SERVER_AGENCY", "SERVER_AGENCIES"}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			assert.Equal(t, tt.want, UnknownVars[central](tt.environ, "SERVER_", tt.others...))
		})
	}
}

func TestUnknownText(t *testing.T) {
	assert.Equal(t, "SERVER_AGENCY is not a setting; did you mean SERVER_AGENCIES?",
		Unknown{"SERVER_AGENCY", "SERVER_AGENCIES"}.Text("server -h"))
	assert.Equal(t, "CLI_FOO is not a setting; client -h lists them", Unknown{"CLI_FOO", ""}.Text("client -h"))
}

// The threshold: at most one edit per three characters of the longer name
// (without the prefix), rounded up.
func TestNear(t *testing.T) {
	tests := []struct {
		typed, setting string
		d              int
		near           bool
	}{
		{"ID", "ID", 0, true},
		{"IP", "ID", 1, true},  // 1 in 2
		{"DI", "ID", 1, true},  // a swap
		{"X", "ID", 2, false},  // 2 in 2
		{"IDS", "ID", 1, true}, // 1 in 3
		{"PORTS", "PORT", 1, true},
		{"PROT", "PORT", 1, true},
		{"POTR", "PORT", 1, true},
		{"PRTO", "PORT", 2, true}, // 2 in 4
		{"FOO", "HOST", 3, false}, // 3 in 4
		{"AGENCY", "AGENCIES", 3, true},
		{"AGENTS", "AGENCIES", 3, true},
		{"AGENT", "AGENCIES", 4, false},
		{"LOG", "LOG_LEVEL", 6, false},
		{"LOGLEVEL", "LOG_LEVEL", 1, true},
		{"CONNECTIONS", "MAX_CONNECTIONS", 4, true},
		{"TIMEOUT", "IDLE_TIMEOUT", 5, false},
		{"SERVER", "SERVER_ADDRESS", 8, false},
		{"", "ID", 2, false},
		{"ÅGENCIES", "AGENCIES", 1, true}, // runes, not bytes
	}
	for _, tt := range tests {
		t.Run(tt.typed+"/"+tt.setting, func(t *testing.T) {
			assert.Equal(t, tt.d, distance(tt.typed, tt.setting), "distance")
			assert.Equal(t, tt.d, distance(tt.setting, tt.typed), "distance is symmetric")
			assert.Equal(t, tt.near, near(tt.d, tt.typed, tt.setting), "near")
		})
	}
}

func TestDistance(t *testing.T) {
	tests := []struct {
		a, b string
		want int
	}{
		{"", "", 0},
		{"", "abc", 3},
		{"kitten", "sitting", 3},
		{"flaw", "lawn", 2},
		{"ab", "ba", 1},
		{"abc", "ca", 3}, // a swap is not also edited again (optimal string alignment)
		{"SERVER_AGENCY", "SERVER_AGENCIES", 3},
	}
	for _, tt := range tests {
		assert.Equal(t, tt.want, distance(tt.a, tt.b), "%q %q", tt.a, tt.b)
	}
}
