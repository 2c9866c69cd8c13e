package agency

import (
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"lotterycentral.example/lottery/envconfig"
	"lotterycentral.example/protocol"
)

func TestLoad(t *testing.T) {
	dir := t.TempDir()
	pem := filepath.Join(dir, "x.pem")
	require.NoError(t, os.WriteFile(pem, []byte("not parsed here"), 0o600))
	gone := filepath.Join(dir, "gone.pem")
	defaults := func(id int) Config {
		return Config{ID: id, ServerAddress: "server:12345", DataPath: fmt.Sprintf(".data/agency-%d.csv", id),
			BatchMaxAmount: protocol.MaxBatchBets, ConnectTimeout: 30 * time.Second,
			ReplyTimeout: 30 * time.Second, MaxRetries: 10, LogLevel: "INFO"}
	}
	tests := []struct {
		name     string
		env      map[string]string
		want     func(c *Config) // applied to defaults(3)
		wantErr  string          // the whole message
		wantKind error
	}{
		{"defaults", map[string]string{"CLI_ID": "3"}, func(c *Config) {}, "", nil},
		{"batch amount kept when it fits", map[string]string{"CLI_ID": "3", "CLI_BATCH_MAXAMOUNT": "50",
			"CLI_DATA_PATH": "x.csv", "CLI_SERVER_ADDRESS": "h:1", "CLI_CONNECT_TIMEOUT": "1s", "CLI_LOG_LEVEL": "debug"},
			func(c *Config) {
				c.BatchMaxAmount, c.DataPath, c.ServerAddress, c.ConnectTimeout, c.LogLevel = 50, "x.csv", "h:1", time.Second, "debug"
			}, "", nil},
		{"batch amount over the frame limit is clamped", map[string]string{"CLI_ID": "3", "CLI_BATCH_MAXAMOUNT": "100000"},
			func(c *Config) {}, "", nil},
		{"an IPv6 central", map[string]string{"CLI_ID": "3", "CLI_SERVER_ADDRESS": "[::1]:12345"},
			func(c *Config) { c.ServerAddress = "[::1]:12345" }, "", nil},
		{"TLS, server name from the address", map[string]string{"CLI_ID": "3", "CLI_SERVER_ADDRESS": "[::1]:12345",
			"CLI_TLS_CERT": pem, "CLI_TLS_KEY": pem, "CLI_TLS_CA": pem}, func(c *Config) {
			c.ServerAddress, c.TLSCert, c.TLSKey, c.TLSCA, c.TLSServerName = "[::1]:12345", pem, pem, pem, "::1"
		}, "", nil},
		{"TLS, server name given", map[string]string{"CLI_ID": "3", "CLI_TLS_CERT": pem, "CLI_TLS_KEY": pem,
			"CLI_TLS_CA": pem, "CLI_TLS_SERVER_NAME": "central.example"}, func(c *Config) {
			c.TLSCert, c.TLSKey, c.TLSCA, c.TLSServerName = pem, pem, pem, "central.example"
		}, "", nil},
		{"plaintext leaves the server name alone", map[string]string{"CLI_ID": "3"}, func(c *Config) {}, "", nil},

		{"id unset", map[string]string{}, nil, "CLI_ID: required, the agency number (1 or more)", envconfig.ErrRequired},
		{"id empty", map[string]string{"CLI_ID": ""}, nil, "CLI_ID: required, the agency number (1 or more)", envconfig.ErrRequired},
		{"id not a number", map[string]string{"CLI_ID": "uno"}, nil, `CLI_ID: "uno" is not a whole number`, envconfig.ErrSyntax},
		{"id zero", map[string]string{"CLI_ID": "0"}, nil,
			`CLI_ID: "0" must be an agency number between 1 and 4294967295`, envconfig.ErrInvalid},
		{"negative batch amount", map[string]string{"CLI_ID": "3", "CLI_BATCH_MAXAMOUNT": "-1"}, nil,
			`CLI_BATCH_MAXAMOUNT: "-1" must be 0 or more (0 packs as many bets as fit in one frame)`, envconfig.ErrInvalid},
		{"zero connect timeout", map[string]string{"CLI_ID": "3", "CLI_CONNECT_TIMEOUT": "0s"}, nil,
			`CLI_CONNECT_TIMEOUT: "0s" must be a positive duration (e.g. 30s, 2m)`, envconfig.ErrInvalid},
		{"reply timeout not a duration", map[string]string{"CLI_ID": "3", "CLI_REPLY_TIMEOUT": "soon"}, nil,
			`CLI_REPLY_TIMEOUT: "soon" is not a duration (e.g. 30s, 2m)`, envconfig.ErrSyntax},
		{"negative retries", map[string]string{"CLI_ID": "3", "CLI_MAX_RETRIES": "-1"}, nil,
			`CLI_MAX_RETRIES: "-1" must be 0 or more`, envconfig.ErrInvalid},
		{"log level unknown", map[string]string{"CLI_ID": "3", "CLI_LOG_LEVEL": "LOUD"}, nil,
			`CLI_LOG_LEVEL: "LOUD" must be one of DEBUG, INFO, WARN, ERROR`, envconfig.ErrInvalid},
		{"address without a port", map[string]string{"CLI_ID": "3", "CLI_SERVER_ADDRESS": "server"}, nil,
			`CLI_SERVER_ADDRESS: "server" is not host:port (e.g. server:12345, 127.0.0.1:12345, [::1]:12345)`, envconfig.ErrInvalid},
		{"IPv6 address without brackets", map[string]string{"CLI_ID": "3", "CLI_SERVER_ADDRESS": "::1:12345"}, nil,
			`CLI_SERVER_ADDRESS: "::1:12345" is not host:port (e.g. server:12345, 127.0.0.1:12345, [::1]:12345)`, envconfig.ErrInvalid},
		{"port not a number", map[string]string{"CLI_ID": "3", "CLI_SERVER_ADDRESS": "server:http"}, nil,
			`CLI_SERVER_ADDRESS: "server:http" has no port between 1 and 65535 (e.g. server:12345)`, envconfig.ErrInvalid},
		{"TLS key and CA missing", map[string]string{"CLI_ID": "3", "CLI_TLS_CERT": pem}, nil,
			"CLI_TLS_KEY: required when CLI_TLS_CERT is set (set all of CLI_TLS_CERT, CLI_TLS_KEY, CLI_TLS_CA, or none); " +
				"CLI_TLS_CA: required when CLI_TLS_CERT is set (set all of CLI_TLS_CERT, CLI_TLS_KEY, CLI_TLS_CA, or none)",
			envconfig.ErrRequired},
		{"TLS CA unreadable", map[string]string{"CLI_ID": "3", "CLI_TLS_CERT": pem, "CLI_TLS_KEY": pem, "CLI_TLS_CA": gone}, nil,
			`CLI_TLS_CA: "` + gone + `" cannot be read (no such file or directory)`, envconfig.ErrInvalid},
		{"every mistake on one line", map[string]string{"CLI_ID": "x", "CLI_BATCH_MAXAMOUNT": "-5", "CLI_LOG_LEVEL": "LOUD"}, nil,
			`CLI_ID: "x" is not a whole number; CLI_BATCH_MAXAMOUNT: "-5" must be 0 or more (0 packs as many bets as fit in one frame); ` +
				`CLI_LOG_LEVEL: "LOUD" must be one of DEBUG, INFO, WARN, ERROR`, envconfig.ErrSyntax},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			getenv := func(name string) string { return tt.env[name] }
			got, err := Load(getenv)
			if tt.wantErr != "" {
				require.EqualError(t, err, tt.wantErr)
				require.ErrorIs(t, err, tt.wantKind)
				return
			}
			require.NoError(t, err)
			want := defaults(3)
			tt.want(&want)
			assert.Equal(t, want, got)
		})
	}
}

func TestTLSEnabled(t *testing.T) {
	tests := []struct {
		name string
		cfg  Config
		want bool
	}{
		{"none", Config{}, false},
		{"server name alone", Config{TLSServerName: "central"}, false},
		{"partial", Config{TLSCert: "c", TLSCA: "ca"}, false},
		{"all three", Config{TLSCert: "c", TLSKey: "k", TLSCA: "ca"}, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			assert.Equal(t, tt.want, tt.cfg.TLSEnabled())
		})
	}
}

// Unknown warns about CLI_ variables that are not settings, and about no
// other variable.
func TestUnknown(t *testing.T) {
	tests := []struct {
		name    string
		environ []string
		want    []envconfig.Unknown
	}{
		{"a typo", []string{"CLI_SERVER_ADRESS=127.0.0.1:12345"},
			[]envconfig.Unknown{{Var: "CLI_SERVER_ADRESS", Nearest: "CLI_SERVER_ADDRESS"}}},
		{"the course's spelling", []string{"CLI_BATCH_MAX_AMOUNT=10"},
			[]envconfig.Unknown{{Var: "CLI_BATCH_MAX_AMOUNT", Nearest: "CLI_BATCH_MAXAMOUNT"}}},
		{"a short name one letter off", []string{"CLI_IP=1"}, []envconfig.Unknown{{Var: "CLI_IP", Nearest: "CLI_ID"}}},
		{"nothing near", []string{"CLI_SERVER=x:1"}, []envconfig.Unknown{{Var: "CLI_SERVER"}}},
		{"the log prefix", []string{"CLI_LOG_PREFIX=agency"}, nil},
		{"the central's and others'", []string{"SERVER_PORT=1", "CLIENT_IMAGE=x", "GOGC=50"}, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			assert.Equal(t, tt.want, Unknown(tt.environ))
		})
	}
}

// Every CLI_ variable the deployment files and scripts set, or tell an
// operator to set, is a setting (or one of notSettings): none of them makes
// an agency warn.
func TestDeploymentsNameSettings(t *testing.T) {
	root := filepath.Join("..", "..")
	var files []string
	for _, glob := range []string{"deployments/*", "scripts/*"} {
		matches, err := filepath.Glob(filepath.Join(root, glob))
		require.NoError(t, err)
		files = append(files, matches...)
	}
	require.NotEmpty(t, files)
	// A whole word: not CLI_TLS of a family in prose, CLI_TLS_*.
	word := regexp.MustCompile(`\bCLI_[A-Z0-9_]*[A-Z0-9]\b`)
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
	assert.Greater(t, len(seen), 8, "the files name few variables: %v", seen)
}

// CLI_LOG_PREFIX is taken as it is (make run sets "client3  | "); a line break
// in it would split every line in two.
func TestLogPrefix(t *testing.T) {
	env := map[string]string{"CLI_ID": "3", "CLI_LOG_PREFIX": "client3  | "}
	getenv := func(name string) string { return env[name] }
	cfg, err := Load(getenv)
	require.NoError(t, err)
	assert.Equal(t, "client3  | ", cfg.LogPrefix)

	env["CLI_LOG_PREFIX"] = "a\r\nb"
	_, err = Load(getenv)
	assert.EqualError(t, err, `CLI_LOG_PREFIX: "a\r\nb" must not hold a line break`)
	assert.ErrorIs(t, err, envconfig.ErrInvalid)
}
