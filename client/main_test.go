package main

import (
	"bytes"
	"context"
	"errors"
	"net"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"

	"lotterycentral.example/lottery"
	"lotterycentral.example/lottery/envconfig"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// linePrefix is the start of every log line: time, then the padded level.
const linePrefix = `^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d `

// silentCentral accepts connections, counts them and never answers.
type silentCentral struct {
	addr     string
	accepted atomic.Int32
	first    chan struct{} // closed at the first connection
}

func startSilentCentral(t *testing.T) *silentCentral {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	c := &silentCentral{addr: ln.Addr().String(), first: make(chan struct{})}
	done := make(chan struct{})
	go func() {
		defer close(done)
		var conns []net.Conn
		defer func() {
			for _, conn := range conns {
				conn.Close()
			}
		}()
		for {
			conn, err := ln.Accept()
			if err != nil {
				return
			}
			conns = append(conns, conn)
			if c.accepted.Add(1) == 1 {
				close(c.first)
			}
		}
	}()
	t.Cleanup(func() {
		ln.Close()
		<-done
	})
	return c
}

type result struct {
	code           int
	stdout, stderr string
}

func runWith(ctx context.Context, args []string, env map[string]string) result {
	var stdout, stderr bytes.Buffer
	code := run(ctx, args, envconfig.FromMap(env), &stdout, &stderr)
	return result{code, stdout.String(), stderr.String()}
}

// Arguments: help and usage, and never an exchange with the central.
func TestArguments(t *testing.T) {
	tests := []struct {
		name       string
		args       []string
		wantCode   int
		wantStdout string // a regexp; "" for nothing
		wantStderr string
	}{
		{"-h", []string{"-h"}, 0, `(?s)^Usage: client\n.*CLI_ID +\(required\) +the agency number`, ""},
		{"--help", []string{"--help"}, 0, `(?s)^Usage: client\n.*CLI_TLS_SERVER_NAME`, ""},
		{"help", []string{"help"}, 0, `^Usage: client\n`, ""},
		{"an unknown argument", []string{"start"}, 2, "", `(?s)^client: unexpected argument "start"\n\nUsage: client\n.*CLI_SERVER_ADDRESS`},
		{"help and more", []string{"-h", "x"}, 2, "", `^client: unexpected argument "-h"`},
		{"an unknown flag", []string{"--verbose"}, 2, "", `^client: unexpected argument "--verbose"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			central := startSilentCentral(t)
			dir := t.TempDir()
			_, err := lottery.GenerateAgencyFiles(dir, 1, 10, 1)
			require.NoError(t, err)
			got := runWith(t.Context(), tt.args, map[string]string{"CLI_ID": "1", "CLI_SERVER_ADDRESS": central.addr,
				"CLI_DATA_PATH": filepath.Join(dir, lottery.AgencyFileName(1))})
			assert.Equal(t, tt.wantCode, got.code)
			for _, out := range []struct{ name, got, want string }{{"stdout", got.stdout, tt.wantStdout}, {"stderr", got.stderr, tt.wantStderr}} {
				if out.want == "" {
					assert.Empty(t, out.got, out.name)
				} else {
					assert.Regexp(t, out.want, out.got, out.name)
				}
			}
			assert.Zero(t, central.accepted.Load(), "the agency connected")
		})
	}
}

// A configuration mistake is one ERROR line naming the variable, and exit 2.
func TestConfigErrors(t *testing.T) {
	tests := []struct {
		name string
		env  map[string]string
		want string // the error, exactly
	}{
		{"no agency number", map[string]string{}, `CLI_ID: required, the agency number (1 or more)`},
		{"empty agency number", map[string]string{"CLI_ID": ""}, `CLI_ID: required, the agency number (1 or more)`},
		{"agency number not a number", map[string]string{"CLI_ID": "x"}, `CLI_ID: "x" is not a whole number`},
		{"log level", map[string]string{"CLI_ID": "1", "CLI_LOG_LEVEL": "LOUD"}, `CLI_LOG_LEVEL: "LOUD" must be one of DEBUG, INFO, WARN, ERROR`},
		{"negative batch", map[string]string{"CLI_ID": "1", "CLI_BATCH_MAXAMOUNT": "-1"},
			`CLI_BATCH_MAXAMOUNT: "-1" must be 0 or more (0 packs as many bets as fit in one frame)`},
		{"two mistakes", map[string]string{"CLI_ID": "1", "CLI_CONNECT_TIMEOUT": "soon", "CLI_SERVER_ADDRESS": "server"},
			`CLI_CONNECT_TIMEOUT: "soon" is not a duration (e.g. 30s, 2m); ` +
				`CLI_SERVER_ADDRESS: "server" is not host:port (e.g. server:12345, 127.0.0.1:12345, [::1]:12345)`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := runWith(t.Context(), nil, tt.env)
			assert.Equal(t, 2, got.code)
			assert.Empty(t, got.stdout)
			assert.Regexp(t, linePrefix+`ERROR    action: config \| result: fail \| error: `+regexp.QuoteMeta(tt.want)+"\n$", got.stderr)
		})
	}
}

// The bets file is checked before the agency connects: a missing or
// unreadable one fails at once, with no retry, naming the path.
func TestBadDataFileFailsBeforeConnecting(t *testing.T) {
	dir := t.TempDir()
	locked := filepath.Join(dir, "locked.csv")
	require.NoError(t, os.WriteFile(locked, []byte("A,B,1,2000-01-01,1\n"), 0o000))
	tests := []struct {
		name     string
		path     string
		wantErr  string // in the fail line, after "error: "
		needUser bool   // root reads any file
	}{
		{"missing", filepath.Join(dir, "agency-9.csv"), "bets file: open " + filepath.Join(dir, "agency-9.csv") + ": no such file or directory", false},
		{"a directory", dir, "bets file: " + dir + " is a directory, not a file", false},
		{"no permission", locked, "bets file: open " + locked + ": permission denied", true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if tt.needUser && os.Geteuid() == 0 {
				t.Skip("root reads any file")
			}
			central := startSilentCentral(t)
			start := time.Now()
			got := runWith(t.Context(), nil, map[string]string{"CLI_ID": "9", "CLI_SERVER_ADDRESS": central.addr,
				"CLI_DATA_PATH": tt.path, "CLI_MAX_RETRIES": "5"})
			assert.Equal(t, 1, got.code, got.stdout)
			assert.Less(t, time.Since(start), time.Second, "it did not fail at once")
			assert.Regexp(t, `(?m)`+strings.TrimPrefix(linePrefix, "^")+`ERROR    action: leer_archivo \| result: fail \| error: `+
				regexp.QuoteMeta(tt.wantErr)+`$`, got.stdout)
			assert.Zero(t, central.accepted.Load(), "the agency connected")
			for _, never := range []string{"action: conectar", "action: conexion", "cerrar_archivo", "consulta_ganadores"} {
				assert.NotContains(t, got.stdout, never)
			}
		})
	}
}

// A central whose name does not resolve is a connect failure, not a failed
// winners query.
func TestUnresolvableCentral(t *testing.T) {
	dir := t.TempDir()
	_, err := lottery.GenerateAgencyFiles(dir, 1, 10, 1)
	require.NoError(t, err)
	got := runWith(t.Context(), nil, map[string]string{"CLI_ID": "1", "CLI_SERVER_ADDRESS": "central.invalid:12345",
		"CLI_DATA_PATH": filepath.Join(dir, lottery.AgencyFileName(1)), "CLI_CONNECT_TIMEOUT": "300ms"})
	assert.Equal(t, 1, got.code, got.stdout)
	lines := strings.Split(strings.TrimSpace(got.stdout), "\n")
	assert.Regexp(t, linePrefix+`ERROR    action: conectar \| result: fail \| error: connect to central.invalid:12345: .*central.invalid`,
		lines[len(lines)-1])
	assert.NotContains(t, got.stdout, "consulta_ganadores")
	assert.NotContains(t, got.stdout, "cerrar_archivo", "the file was never opened")
}

// A signal (ctx cancelled) stops the agency, which says so and exits 0.
func TestSignalStopsTheAgency(t *testing.T) {
	dir := t.TempDir()
	_, err := lottery.GenerateAgencyFiles(dir, 1, 10, 1)
	require.NoError(t, err)
	central := startSilentCentral(t)
	ctx, cancel := context.WithCancelCause(t.Context())
	go func() {
		<-central.first // the agency waits for HELLO_ACK
		cancel(errors.New("terminated signal received"))
	}()
	got := runWith(ctx, nil, map[string]string{"CLI_ID": "1", "CLI_SERVER_ADDRESS": central.addr,
		"CLI_DATA_PATH": filepath.Join(dir, lottery.AgencyFileName(1))})
	assert.Equal(t, 0, got.code, got.stdout)
	assert.Empty(t, got.stderr)
	assert.Regexp(t, linePrefix+`INFO     action: config \| result: success \| id: 1 \| server_address: `+
		regexp.QuoteMeta(central.addr)+` \| .* \| tls: off\n`, got.stdout)
	assert.Regexp(t, `(?m)INFO     action: shutdown \| result: success \| motivo: signal \| signal: terminated$`, got.stdout)
	assert.NotContains(t, got.stdout, "result: fail")
}
