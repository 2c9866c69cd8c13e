package config

import (
	"os"
	"path/filepath"
	"regexp"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"lotterycentral.example/lottery/envconfig"
)

func TestLoad(t *testing.T) {
	dir := t.TempDir()
	store := filepath.Join(dir, "bets.csv")
	pem := filepath.Join(dir, "x.pem")
	require.NoError(t, os.WriteFile(pem, []byte("not parsed here"), 0o600))
	missing := filepath.Join(dir, "nope", "bets.csv")
	defaults := Config{Port: 12345, Agencies: 5, StoragePath: store, LogLevel: "INFO",
		IdleTimeout: 60 * time.Second, MaxConnections: 2048,
		HelloTimeout: 5 * time.Second, MaxUnidentified: 256, MaxUnidentifiedPerSource: 32,
		AdminAddress: "127.0.0.1:9090"}
	tests := []struct {
		name     string
		env      map[string]string // SERVER_STORAGE_PATH is store unless set
		want     func(*Config)
		wantErr  string // the whole message
		wantKind error
	}{
		{"defaults", map[string]string{}, func(c *Config) {}, "", nil},
		{"everything set", map[string]string{"SERVER_PORT": "4000", "SERVER_AGENCIES": "10",
			"SERVER_LOG_LEVEL": "debug", "SERVER_IDLE_TIMEOUT": "5s", "SERVER_MAX_CONNECTIONS": "3",
			"SERVER_HOST": "::1", "SERVER_HELLO_TIMEOUT": "2s", "SERVER_MAX_UNIDENTIFIED": "10",
			"SERVER_MAX_UNIDENTIFIED_PER_SOURCE": "2", "SERVER_TLS_CERT": pem, "SERVER_TLS_KEY": pem,
			"SERVER_TLS_CLIENT_CA": pem, "SERVER_ADMIN_ADDRESS": "[::1]:9100"}, func(c *Config) {
			*c = Config{Host: "::1", Port: 4000, Agencies: 10, StoragePath: store, LogLevel: "debug",
				IdleTimeout: 5 * time.Second, MaxConnections: 3,
				TLSCert: pem, TLSKey: pem, TLSClientCA: pem,
				HelloTimeout: 2 * time.Second, MaxUnidentified: 10, MaxUnidentifiedPerSource: 2,
				AdminAddress: "[::1]:9100"}
		}, "", nil},
		{"admin off", map[string]string{"SERVER_ADMIN_ADDRESS": "off"}, func(c *Config) { c.AdminAddress = "off" }, "", nil},
		{"admin OFF", map[string]string{"SERVER_ADMIN_ADDRESS": "OFF"}, func(c *Config) { c.AdminAddress = "OFF" }, "", nil},
		{"admin on every interface, a free port", map[string]string{"SERVER_ADMIN_ADDRESS": ":0"},
			func(c *Config) { c.AdminAddress = ":0" }, "", nil},
		{"admin on the agencies' port of another address", map[string]string{"SERVER_HOST": "127.0.0.1",
			"SERVER_ADMIN_ADDRESS": "10.0.0.7:12345"},
			func(c *Config) { c.Host, c.AdminAddress = "127.0.0.1", "10.0.0.7:12345" }, "", nil},
		{"admin without a port", map[string]string{"SERVER_ADMIN_ADDRESS": "127.0.0.1"}, nil,
			`SERVER_ADMIN_ADDRESS: "127.0.0.1" must be host:port (e.g. 127.0.0.1:9090, [::1]:9090, :9090) or off`, envconfig.ErrInvalid},
		{"admin port out of range", map[string]string{"SERVER_ADMIN_ADDRESS": "127.0.0.1:70000"}, nil,
			`SERVER_ADMIN_ADDRESS: "127.0.0.1:70000" has a port not in 0..65535; must be host:port (e.g. 127.0.0.1:9090, [::1]:9090, :9090) or off`,
			envconfig.ErrInvalid},
		{"admin on the agencies' port", map[string]string{"SERVER_ADMIN_ADDRESS": "127.0.0.1:12345"}, nil,
			`SERVER_ADMIN_ADDRESS: "127.0.0.1:12345" is the agencies' port (SERVER_PORT): the admin listener needs a port of its own`,
			envconfig.ErrInvalid},
		{"admin on the agencies' port, both on every interface", map[string]string{"SERVER_PORT": "4000",
			"SERVER_ADMIN_ADDRESS": ":4000"}, nil,
			`SERVER_ADMIN_ADDRESS: ":4000" is the agencies' port (SERVER_PORT): the admin listener needs a port of its own`,
			envconfig.ErrInvalid},
		{"a host name", map[string]string{"SERVER_HOST": "central.example"}, func(c *Config) { c.Host = "central.example" }, "", nil},
		{"WARNING is WARN", map[string]string{"SERVER_LOG_LEVEL": "WARNING"}, func(c *Config) { c.LogLevel = "WARNING" }, "", nil},
		{"port not a number", map[string]string{"SERVER_PORT": "abc"}, nil,
			`SERVER_PORT: "abc" is not a whole number`, envconfig.ErrSyntax},
		{"port out of range", map[string]string{"SERVER_PORT": "70000"}, nil,
			`SERVER_PORT: "70000" must be between 0 and 65535 (0 picks a free port)`, envconfig.ErrInvalid},
		{"host with a port", map[string]string{"SERVER_HOST": "127.0.0.1:80"}, nil,
			`SERVER_HOST: "127.0.0.1:80" is not an IP address or host name (e.g. 0.0.0.0, ::1, localhost)`, envconfig.ErrInvalid},
		{"no agencies", map[string]string{"SERVER_AGENCIES": "0"}, nil,
			`SERVER_AGENCIES: "0" must be between 1 and 1000000`, envconfig.ErrInvalid},
		{"log level unknown", map[string]string{"SERVER_LOG_LEVEL": "LOUD"}, nil,
			`SERVER_LOG_LEVEL: "LOUD" must be one of DEBUG, INFO, WARN, ERROR`, envconfig.ErrInvalid},
		{"idle timeout not a duration", map[string]string{"SERVER_IDLE_TIMEOUT": "soon"}, nil,
			`SERVER_IDLE_TIMEOUT: "soon" is not a duration (e.g. 30s, 2m)`, envconfig.ErrSyntax},
		{"negative idle timeout", map[string]string{"SERVER_IDLE_TIMEOUT": "-1s"}, nil,
			`SERVER_IDLE_TIMEOUT: "-1s" must be a positive duration (e.g. 30s, 2m)`, envconfig.ErrInvalid},
		{"zero hello timeout", map[string]string{"SERVER_HELLO_TIMEOUT": "0s"}, nil,
			`SERVER_HELLO_TIMEOUT: "0s" must be a positive duration (e.g. 5s)`, envconfig.ErrInvalid},
		{"no unidentified connections", map[string]string{"SERVER_MAX_UNIDENTIFIED": "0"}, nil,
			`SERVER_MAX_UNIDENTIFIED: "0" must be 1 or more`, envconfig.ErrInvalid},
		{"no unidentified connections per source", map[string]string{"SERVER_MAX_UNIDENTIFIED_PER_SOURCE": "-3"}, nil,
			`SERVER_MAX_UNIDENTIFIED_PER_SOURCE: "-3" must be 1 or more`, envconfig.ErrInvalid},
		{"storage directory missing", map[string]string{"SERVER_STORAGE_PATH": missing}, nil,
			`SERVER_STORAGE_PATH: "` + missing + `" is in a directory that does not exist (` + filepath.Dir(missing) + `)`, envconfig.ErrInvalid},
		{"TLS key missing", map[string]string{"SERVER_TLS_CERT": pem, "SERVER_TLS_CLIENT_CA": pem}, nil,
			"SERVER_TLS_KEY: required when SERVER_TLS_CERT is set " +
				"(set all of SERVER_TLS_CERT, SERVER_TLS_KEY, SERVER_TLS_CLIENT_CA, or none)", envconfig.ErrRequired},
		{"TLS certificate unreadable", map[string]string{"SERVER_TLS_CERT": filepath.Join(dir, "gone.pem"),
			"SERVER_TLS_KEY": pem, "SERVER_TLS_CLIENT_CA": pem}, nil,
			`SERVER_TLS_CERT: "` + filepath.Join(dir, "gone.pem") + `" cannot be read (no such file or directory)`, envconfig.ErrInvalid},
		{"a revocation list, with mutual TLS", map[string]string{"SERVER_TLS_REVOKED": pem, "SERVER_TLS_CERT": pem,
			"SERVER_TLS_KEY": pem, "SERVER_TLS_CLIENT_CA": pem},
			func(c *Config) { c.TLSRevoked, c.TLSCert, c.TLSKey, c.TLSClientCA = pem, pem, pem, pem }, "", nil},
		{"a revocation list unreadable", map[string]string{"SERVER_TLS_REVOKED": filepath.Join(dir, "gone.pem"),
			"SERVER_TLS_CERT": pem, "SERVER_TLS_KEY": pem, "SERVER_TLS_CLIENT_CA": pem}, nil,
			`SERVER_TLS_REVOKED: "` + filepath.Join(dir, "gone.pem") + `" cannot be read (no such file or directory)`, envconfig.ErrInvalid},
		{"a revocation list, plaintext", map[string]string{"SERVER_TLS_REVOKED": pem}, nil,
			`SERVER_TLS_REVOKED: "` + pem + `" needs mutual TLS (SERVER_TLS_CERT, SERVER_TLS_KEY, SERVER_TLS_CLIENT_CA): ` +
				`without certificates there is nothing to revoke`, envconfig.ErrInvalid},
		{"profiler on, with mutual TLS", map[string]string{"SERVER_PPROF": "1", "SERVER_TLS_CERT": pem, "SERVER_TLS_KEY": pem,
			"SERVER_TLS_CLIENT_CA": pem}, func(c *Config) { c.Pprof, c.TLSCert, c.TLSKey, c.TLSClientCA = true, pem, pem, pem }, "", nil},
		{"profiler off", map[string]string{"SERVER_PPROF": "0"}, func(c *Config) {}, "", nil},
		{"profiler on, plaintext", map[string]string{"SERVER_PPROF": "1"}, nil,
			`SERVER_PPROF: "1" needs the admin listener (SERVER_ADMIN_ADDRESS) and mutual TLS (SERVER_TLS_*): ` +
				`the profiler is served to an operator's certificate over TLS only`, envconfig.ErrInvalid},
		{"profiler on, admin off", map[string]string{"SERVER_PPROF": "true", "SERVER_ADMIN_ADDRESS": "off",
			"SERVER_TLS_CERT": pem, "SERVER_TLS_KEY": pem, "SERVER_TLS_CLIENT_CA": pem}, nil,
			`SERVER_PPROF: "1" needs the admin listener (SERVER_ADMIN_ADDRESS) and mutual TLS (SERVER_TLS_*): ` +
				`the profiler is served to an operator's certificate over TLS only`, envconfig.ErrInvalid},
		{"profiler not a switch", map[string]string{"SERVER_PPROF": "yes"}, nil,
			`SERVER_PPROF: "yes" is not true or false`, envconfig.ErrSyntax},
		{"the operator's pair, which the central does not read", map[string]string{"SERVER_OPERATOR_CERT": "/nowhere.pem",
			"SERVER_OPERATOR_KEY": "/nowhere-key.pem"}, func(c *Config) { c.OperatorCert, c.OperatorKey = "/nowhere.pem", "/nowhere-key.pem" }, "", nil},
		{"every error at once, one per variable", map[string]string{"SERVER_PORT": "abc", "SERVER_AGENCIES": "0",
			"SERVER_LOG_LEVEL": "LOUD", "SERVER_MAX_CONNECTIONS": "0"}, nil,
			`SERVER_PORT: "abc" is not a whole number; SERVER_AGENCIES: "0" must be between 1 and 1000000; ` +
				`SERVER_LOG_LEVEL: "LOUD" must be one of DEBUG, INFO, WARN, ERROR; SERVER_MAX_CONNECTIONS: "0" must be 1 or more`,
			envconfig.ErrSyntax},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			env := map[string]string{"SERVER_STORAGE_PATH": store}
			for k, v := range tt.env {
				env[k] = v
			}
			got, err := Load(fromMap(env))
			if tt.wantErr != "" {
				require.EqualError(t, err, tt.wantErr)
				require.ErrorIs(t, err, tt.wantKind)
				return
			}
			require.NoError(t, err)
			want := defaults
			tt.want(&want)
			assert.Equal(t, want, got)
		})
	}
	entries, err := os.ReadDir(dir)
	require.NoError(t, err)
	assert.Len(t, entries, 1, "loading created files: %v", entries)
}

func TestAddresses(t *testing.T) {
	tests := []struct {
		name         string
		host         string
		port         int
		listen       string
		healthTarget string
	}{
		{"every interface", "", 12345, ":12345", "127.0.0.1:12345"},
		{"every IPv4 interface", "0.0.0.0", 1, "0.0.0.0:1", "127.0.0.1:1"},
		{"every IPv6 interface", "::", 1, "[::]:1", "127.0.0.1:1"},
		{"IPv6 loopback", "::1", 4000, "[::1]:4000", "[::1]:4000"},
		{"one IPv4 address", "10.0.0.7", 4000, "10.0.0.7:4000", "10.0.0.7:4000"},
		{"a name", "server", 12345, "server:12345", "server:12345"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := Config{Host: tt.host, Port: tt.port}
			assert.Equal(t, tt.listen, c.Address())
			assert.Equal(t, tt.healthTarget, c.HealthAddress())
		})
	}
}

func TestAdminDialAddress(t *testing.T) {
	tests := []struct{ name, admin, want string }{
		{"loopback", "127.0.0.1:9090", "127.0.0.1:9090"},
		{"every interface", ":9090", "127.0.0.1:9090"},
		{"every IPv4 interface", "0.0.0.0:9090", "127.0.0.1:9090"},
		{"every IPv6 interface", "[::]:9090", "127.0.0.1:9090"},
		{"IPv6 loopback", "[::1]:9090", "[::1]:9090"},
		{"a name", "server:9090", "server:9090"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			assert.Equal(t, tt.want, Config{AdminAddress: tt.admin}.AdminDialAddress())
		})
	}
}

// LoadOperator asks for what the operator's commands use, and only that:
// no bets file, no central's key.
func TestLoadOperator(t *testing.T) {
	dir := t.TempDir()
	pem := filepath.Join(dir, "x.pem")
	require.NoError(t, os.WriteFile(pem, []byte("not parsed here"), 0o600))
	gone := filepath.Join(dir, "gone.pem")
	full := map[string]string{"SERVER_OPERATOR_CERT": pem, "SERVER_OPERATOR_KEY": pem, "SERVER_TLS_CLIENT_CA": pem,
		"SERVER_STORAGE_PATH": filepath.Join(dir, "nope", "bets.csv")}
	tests := []struct {
		name    string
		change  map[string]string
		wantErr string // the whole message; "" loads
	}{
		{"the three files, whatever the rest", nil, ""},
		{"a central's TLS variable alone", map[string]string{"SERVER_TLS_CERT": gone}, ""},
		{"nothing set", map[string]string{"SERVER_OPERATOR_CERT": "", "SERVER_OPERATOR_KEY": "", "SERVER_TLS_CLIENT_CA": ""},
			"SERVER_OPERATOR_CERT: required, the operator's certificate (make certs: .certs/operator.pem); " +
				"SERVER_OPERATOR_KEY: required, the operator's key (make certs: .certs/operator-key.pem); " +
				"SERVER_TLS_CLIENT_CA: required, the CA that signed the central's certificate (make certs: .certs/ca.pem)"},
		{"a key that cannot be read", map[string]string{"SERVER_OPERATOR_KEY": gone},
			`SERVER_OPERATOR_KEY: "` + gone + `" cannot be read (no such file or directory)`},
		{"admin off", map[string]string{"SERVER_ADMIN_ADDRESS": "off"},
			`SERVER_ADMIN_ADDRESS: "off" is off: the operator's commands reach the central on its admin address (host:port)`},
		{"admin without a port", map[string]string{"SERVER_ADMIN_ADDRESS": "central"},
			`SERVER_ADMIN_ADDRESS: "central" must be host:port (e.g. 127.0.0.1:9090, [::1]:9090, :9090) or off`},
		{"a variable that does not read", map[string]string{"SERVER_PORT": "abc"}, `SERVER_PORT: "abc" is not a whole number`},
		{"log level", map[string]string{"SERVER_LOG_LEVEL": "LOUD"}, `SERVER_LOG_LEVEL: "LOUD" must be one of DEBUG, INFO, WARN, ERROR`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			env := map[string]string{}
			for k, v := range full {
				env[k] = v
			}
			for k, v := range tt.change {
				env[k] = v
			}
			cfg, err := LoadOperator(fromMap(env))
			if tt.wantErr != "" {
				require.EqualError(t, err, tt.wantErr)
				return
			}
			require.NoError(t, err)
			assert.Equal(t, pem, cfg.OperatorCert)
			assert.Equal(t, "127.0.0.1:9090", cfg.AdminDialAddress())
		})
	}
}

func TestAdminEnabled(t *testing.T) {
	assert.True(t, Config{AdminAddress: "127.0.0.1:9090"}.AdminEnabled())
	assert.False(t, Config{AdminAddress: "off"}.AdminEnabled())
	assert.False(t, Config{AdminAddress: "Off"}.AdminEnabled())
}

func TestTLSEnabled(t *testing.T) {
	tests := []struct {
		name string
		cfg  Config
		want bool
	}{
		{"none", Config{}, false},
		{"partial", Config{TLSCert: "c", TLSKey: "k"}, false},
		{"all three", Config{TLSCert: "c", TLSKey: "k", TLSClientCA: "ca"}, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			assert.Equal(t, tt.want, tt.cfg.TLSEnabled())
		})
	}
}

// Unknown warns about SERVER_ variables that are not settings, and about no
// other variable.
func TestUnknown(t *testing.T) {
	tests := []struct {
		name    string
		environ []string
		want    []envconfig.Unknown
	}{
		{"the issue's typo", []string{"SERVER_AGENCY=3"}, []envconfig.Unknown{{Var: "SERVER_AGENCY", Nearest: "SERVER_AGENCIES"}}},
		{"a word short", []string{"SERVER_UNIDENTIFIED_PER_SOURCE=2"},
			[]envconfig.Unknown{{Var: "SERVER_UNIDENTIFIED_PER_SOURCE", Nearest: "SERVER_MAX_UNIDENTIFIED_PER_SOURCE"}}},
		{"the agency's name for the CA", []string{"SERVER_TLS_CA=ca.pem"}, []envconfig.Unknown{{Var: "SERVER_TLS_CA"}}},
		{"the scripts' variables and the log prefix", []string{"SERVER_ADDRESS=server:12345", "SERVER_IMAGE=x",
			"SERVER_LOG_PREFIX=central"}, nil},
		{"the runtime's and the agencies'", []string{"GOGC=50", "GOMEMLIMIT=1GiB", "CLI_ID=1", "CLI_SERVER_ADDRESS=x:1"}, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			assert.Equal(t, tt.want, Unknown(tt.environ))
		})
	}
}

// Every SERVER_ variable the deployment files and scripts set, or tell an
// operator to set, is a setting (or one of notSettings): none of them makes
// the central warn.
func TestDeploymentsNameSettings(t *testing.T) {
	root := filepath.Join("..", "..", "..")
	var files []string
	for _, glob := range []string{"deployments/*", "scripts/*"} {
		matches, err := filepath.Glob(filepath.Join(root, glob))
		require.NoError(t, err)
		files = append(files, matches...)
	}
	require.NotEmpty(t, files)
	// A whole word: not SERVER_TLS of a family in prose, SERVER_TLS_*.
	word := regexp.MustCompile(`\bSERVER_[A-Z0-9_]*[A-Z0-9]\b`)
	seen := map[string]bool{}
	for _, f := range files {
		if fi, err := os.Stat(f); err != nil || fi.IsDir() {
			continue
		}
		b, err := os.ReadFile(f)
		require.NoError(t, err)
		for _, name := range word.FindAllString(string(b), -1) {
			seen[name] = true
			assert.Empty(t, Unknown([]string{name}), "%s names %s", f, name)
		}
	}
	assert.Greater(t, len(seen), 10, "the files name few variables: %v", seen)
}

// fromMap reads variables from m.
func fromMap(m map[string]string) envconfig.Getenv {
	return func(name string) string { return m[name] }
}

// SERVER_LOG_PREFIX is taken as it is (make run sets "server   | "); a line
// break in it would split every line in two.
func TestLogPrefix(t *testing.T) {
	env := map[string]string{"SERVER_STORAGE_PATH": filepath.Join(t.TempDir(), "bets.csv"), "SERVER_LOG_PREFIX": "server   | "}
	cfg, err := Load(fromMap(env))
	require.NoError(t, err)
	assert.Equal(t, "server   | ", cfg.LogPrefix)

	env["SERVER_LOG_PREFIX"] = "a\nb"
	_, err = Load(fromMap(env))
	assert.EqualError(t, err, `SERVER_LOG_PREFIX: "a\nb" must not hold a line break`)
	assert.ErrorIs(t, err, envconfig.ErrInvalid)
}
