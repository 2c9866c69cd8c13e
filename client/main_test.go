package main

import (
	"bytes"
	"context"
	"errors"
	"maps"
	"net"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"

	"lotterycentral.example/client/internal/vocab"
	"lotterycentral.example/lottery"
	"lotterycentral.example/lottery/logfmt"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// linePrefix is the start of every log line: time, then the padded level.
const linePrefix = `^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d `

// anyResult is how every line of action a starts, whatever its result.
func anyResult(a logfmt.Action) string { return a.Line("") }

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
	getenv := func(name string) string { return env[name] }
	environ := make([]string, 0, len(env))
	for k, v := range env {
		environ = append(environ, k+"="+v)
	}
	code := run(ctx, args, getenv, environ, &stdout, &stderr)
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
			assert.Regexp(t, linePrefix+`ERROR    `+regexp.QuoteMeta(vocab.Config.Line(logfmt.Fail, vocab.Error.Str(tt.want)))+"\n$", got.stderr)
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
			assert.Regexp(t, `(?m)`+strings.TrimPrefix(linePrefix, "^")+`ERROR    `+
				regexp.QuoteMeta(vocab.LeerArchivo.Line(logfmt.Fail, vocab.Error.Str(tt.wantErr)))+`$`, got.stdout)
			assert.Zero(t, central.accepted.Load(), "the agency connected")
			for _, never := range []logfmt.Action{vocab.Conectar, vocab.Conexion, vocab.CerrarArchivo, vocab.ConsultaGanadores} {
				assert.NotContains(t, got.stdout, anyResult(never))
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
	assert.Regexp(t, linePrefix+`ERROR    `+regexp.QuoteMeta(vocab.Conectar.Line(logfmt.Fail,
		vocab.Error.Str("connect to central.invalid:12345: ")))+`.*central.invalid`, lines[len(lines)-1])
	assert.NotContains(t, got.stdout, anyResult(vocab.ConsultaGanadores))
	assert.NotContains(t, got.stdout, anyResult(vocab.CerrarArchivo), "the file was never opened")
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
	assert.Regexp(t, linePrefix+`INFO     `+regexp.QuoteMeta(vocab.Config.Line(logfmt.Success, vocab.ID.Int(1),
		vocab.Servidor.Str(central.addr)))+` \| .* \| `+regexp.QuoteMeta(vocab.TLSKey.Str("off").String())+`\n`, got.stdout)
	assert.Regexp(t, `(?m)INFO     `+regexp.QuoteMeta(vocab.Shutdown.Line(logfmt.Success, vocab.Motivo.Str("signal"),
		vocab.Senal.Str("terminated")))+`$`, got.stdout)
	assert.NotContains(t, got.stdout, "result: "+string(logfmt.Fail))
}

// A CLI_ variable that is not a setting gets one warning, naming the setting
// it is most likely a typo of, and the agency runs without it: it connects.
func TestUnknownVariableWarned(t *testing.T) {
	dir := t.TempDir()
	_, err := lottery.GenerateAgencyFiles(dir, 1, 10, 1)
	require.NoError(t, err)
	central := startSilentCentral(t)
	ctx, cancel := context.WithCancelCause(t.Context())
	go func() {
		<-central.first
		cancel(errors.New("terminated signal received"))
	}()
	got := runWith(ctx, nil, map[string]string{"CLI_ID": "1", "CLI_SERVER_ADDRESS": central.addr,
		"CLI_DATA_PATH": filepath.Join(dir, lottery.AgencyFileName(1)), "CLI_MAX_RETRIE": "3", "GOGC": "50"})
	assert.Equal(t, 0, got.code, got.stdout)
	warning := vocab.Config.Line(logfmt.InProgress, vocab.Aviso.Str("CLI_MAX_RETRIE is not a setting; did you mean CLI_MAX_RETRIES?"))
	assert.Regexp(t, linePrefix+`WARNING  `+regexp.QuoteMeta(warning)+`\n`, got.stdout, "the first line")
	assert.Equal(t, 1, strings.Count(got.stdout, vocab.Config.Line(logfmt.InProgress)), "one warning:\n%s", got.stdout)
	assert.Contains(t, got.stdout, vocab.MaxReintentos.Int(10).String(), "the default, not the typo's 3")
	assert.Positive(t, central.accepted.Load(), "the agency ran on and connected")
	assert.Empty(t, got.stderr)
}

// The configuration read is one INFO line with every setting; plaintext adds
// a warning. A missing bets file then ends the run before any connection.
func TestConfigLine(t *testing.T) {
	dir := t.TempDir()
	pem := filepath.Join(dir, "x.pem")
	require.NoError(t, os.WriteFile(pem, []byte("not parsed before the config line"), 0o600))
	data := filepath.Join(dir, "agency-4.csv")
	settings := []logfmt.Field{vocab.ID.Int(4), vocab.Servidor.Str("central:7000"), vocab.Archivo.Str(data),
		vocab.LoteMax.Int(50), vocab.EsperaConexion.Any(300 * time.Millisecond), vocab.EsperaRespuesta.Any(2 * time.Second),
		vocab.MaxReintentos.Int(3), vocab.NivelLog.Str("debug")}
	plaintext := vocab.TLS.Line(logfmt.Success, vocab.Modo.Str("plaintext"), vocab.Aviso.Str("bets and winners travel "+
		"unauthenticated and the central is not verified; set CLI_TLS_CERT, CLI_TLS_KEY and CLI_TLS_CA"))
	tests := []struct {
		name      string
		env       map[string]string // besides the settings above
		want      []logfmt.Field    // after the settings above
		plaintext bool
	}{
		{"plaintext", nil, []logfmt.Field{vocab.TLSKey.Str("off")}, true},
		{"mutual TLS", map[string]string{"CLI_TLS_CERT": pem, "CLI_TLS_KEY": pem, "CLI_TLS_CA": pem},
			[]logfmt.Field{vocab.TLSKey.Str("on"), vocab.NombreServidorTLS.Str("central")}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			env := map[string]string{"CLI_ID": "4", "CLI_SERVER_ADDRESS": "central:7000", "CLI_DATA_PATH": data,
				"CLI_BATCH_MAXAMOUNT": "50", "CLI_CONNECT_TIMEOUT": "300ms", "CLI_REPLY_TIMEOUT": "2s",
				"CLI_MAX_RETRIES": "3", "CLI_LOG_LEVEL": "debug"}
			maps.Copy(env, tt.env)
			got := runWith(t.Context(), nil, env)
			assert.Equal(t, 1, got.code, got.stdout)
			want := vocab.Config.Line(logfmt.Success, append(slices.Clone(settings), tt.want...)...)
			assert.Regexp(t, linePrefix+`INFO     `+regexp.QuoteMeta(want)+"\n", got.stdout)
			assert.Equal(t, tt.plaintext, strings.Contains(got.stdout, "WARNING  "+plaintext+"\n"), got.stdout)
			assert.Contains(t, got.stdout, anyResult(vocab.LeerArchivo))
		})
	}
}
