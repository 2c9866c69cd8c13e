package main

import (
	"context"
	"crypto/tls"
	"errors"
	"io"
	"net"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"lotterycentral.example/client/agency"
	"lotterycentral.example/lottery"
	"lotterycentral.example/lottery/envconfig"
	"lotterycentral.example/lottery/logfmt"
	"lotterycentral.example/protocol"
	"lotterycentral.example/protocol/identity"
	"lotterycentral.example/protocol/pki"
	"lotterycentral.example/server/internal/config"
	"lotterycentral.example/server/internal/logtest"
	"lotterycentral.example/server/internal/vocab"
)

// linePrefix is the start of every log line: time, then the padded level.
const linePrefix = `^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d `

// running is run(…) in a goroutine.
type running struct {
	stdout, stderr *logtest.Recorder // what run writes, line by line
	cancel         context.CancelCauseFunc
	done           chan struct{}
	code           int // once done is closed
}

// start calls run with env (SERVER_STORAGE_PATH defaults to a file in a
// fresh directory) and returns at once.
func start(t *testing.T, env map[string]string, args ...string) *running {
	t.Helper()
	ctx, cancel := context.WithCancelCause(context.Background())
	r := &running{stdout: logtest.New(), stderr: logtest.New(), cancel: cancel, done: make(chan struct{})}
	go func() {
		defer close(r.done)
		r.code = run(ctx, args, fromMap(env), environOf(env), r.stdout, r.stderr)
		r.stdout.End()
		r.stderr.End()
	}()
	t.Cleanup(func() {
		cancel(errors.New("test over"))
		<-r.done
	})
	return r
}

// wait returns run's exit code, failing the test if it does not return.
func (r *running) wait(t *testing.T) int {
	t.Helper()
	select {
	case <-r.done:
		return r.code
	case <-time.After(30 * time.Second):
		t.Fatalf("run did not return:\n%s%s", r.stdout, r.stderr)
		return 0
	}
}

// await returns the first stdout line matching re, waiting for it; it fails
// the test when run returns first. The bound only turns a hang into a failure.
func (r *running) await(t *testing.T, re *regexp.Regexp) []string {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), logtest.DefaultBound)
	defer cancel()
	var m []string
	if _, err := r.stdout.Until(ctx, 0, func(l logtest.Line) bool {
		m = re.FindStringSubmatch(l.Text)
		return m != nil
	}); err != nil {
		t.Fatalf("no line matching %s: %v:\n%s\n%s", re, err, r.stdout, r.stderr)
	}
	return m
}

// storeEnv is a configuration whose bets file is in a fresh directory.
func storeEnv(t *testing.T, extra map[string]string) (map[string]string, string) {
	dir := t.TempDir()
	env := map[string]string{"SERVER_STORAGE_PATH": filepath.Join(dir, "bets.csv"), "SERVER_HOST": "127.0.0.1", "SERVER_PORT": "0"}
	for k, v := range extra {
		env[k] = v
	}
	return env, dir
}

// assertEmptyDir checks that nothing, no bets file nor journal, was written.
func assertEmptyDir(t *testing.T, dir string) {
	t.Helper()
	entries, err := os.ReadDir(dir)
	require.NoError(t, err)
	assert.Empty(t, entries, "files written")
}

var listeningOn = regexp.MustCompile(linePattern(vocab.Escuchar.Line(logfmt.Success, vocab.Direccion.Str(pat(`(.*)`)))) + "$")

// storeRecovered is the line of a central whose store is open and read back: it
// listens first, so a signal right after listeningOn may come before that.
var storeRecovered = regexp.MustCompile(linePattern(vocab.Recuperacion.Line(logfmt.Success)))

// Arguments other than none or `health [host:port]` never start a central.
func TestArguments(t *testing.T) {
	tests := []struct {
		name       string
		args       []string
		wantCode   int
		wantStdout string // a regexp; "" for nothing
		wantStderr string
	}{
		{"-h", []string{"-h"}, 0, `(?s)^Usage:\n  server  .*server health \[host:port\].*SERVER_PORT +12345 +TCP port`, ""},
		{"--help", []string{"--help"}, 0, `(?s)^Usage:\n.*SERVER_MAX_UNIDENTIFIED_PER_SOURCE +32`, ""},
		{"help", []string{"help"}, 0, `^Usage:\n`, ""},
		{"health -h", []string{"health", "-h"}, 0, `^Usage:\n`, ""},
		{"an unknown command", []string{"serve"}, 2, "", `(?s)^server: unexpected argument "serve"\n\nUsage:\n.*SERVER_STORAGE_PATH`},
		{"an unknown flag", []string{"--port=1"}, 2, "", `^server: unexpected argument "--port=1"\n`},
		{"help and more", []string{"-h", "health"}, 2, "", `^server: unexpected argument "-h"\n`},
		{"health with two addresses", []string{"health", "127.0.0.1:1", "127.0.0.1:2"}, 2, "",
			`^server: health: unexpected argument "127.0.0.1:2"\n`},
		{"health with an address without port", []string{"health", "localhost"}, 2, "",
			`^server: health: "localhost" is not host:port \(e.g. 127.0.0.1:12345, \[::1\]:12345\)\n`},
		{"health with nothing listening", []string{"health", "127.0.0.1:1"}, 1,
			linePrefix + `ERROR    ` + linePattern(vocab.TestServer.Line(logfmt.Fail, vocab.Direccion.Str("127.0.0.1:1"),
				vocab.Error.Str(pat(`ping: .*connection refused`)))) + "\n$", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			env, dir := storeEnv(t, nil)
			r := start(t, env, tt.args...)
			assert.Equal(t, tt.wantCode, r.wait(t))
			for _, out := range []struct {
				name string
				got  *logtest.Recorder
				want string
			}{{"stdout", r.stdout, tt.wantStdout}, {"stderr", r.stderr, tt.wantStderr}} {
				if out.want == "" {
					assert.Empty(t, out.got.String(), out.name)
				} else {
					assert.Regexp(t, out.want, out.got.String(), out.name)
				}
			}
			assertEmptyDir(t, dir)
		})
	}
}

// A configuration mistake is one ERROR line naming the variable, exit 2,
// for the central and its health probe alike, and no file is written.
func TestConfigErrors(t *testing.T) {
	tests := []struct {
		name string
		env  map[string]string
		want string // the error, exactly
	}{
		{"port not a number", map[string]string{"SERVER_PORT": "abc"}, `SERVER_PORT: "abc" is not a whole number`},
		{"log level", map[string]string{"SERVER_LOG_LEVEL": "LOUD"}, `SERVER_LOG_LEVEL: "LOUD" must be one of DEBUG, INFO, WARN, ERROR`},
		{"idle timeout", map[string]string{"SERVER_IDLE_TIMEOUT": "soon"}, `SERVER_IDLE_TIMEOUT: "soon" is not a duration (e.g. 30s, 2m)`},
		{"partial TLS", map[string]string{"SERVER_TLS_CERT": "central.pem", "SERVER_TLS_CLIENT_CA": "ca.pem"},
			"SERVER_TLS_KEY: required when SERVER_TLS_CERT is set (set all of SERVER_TLS_CERT, SERVER_TLS_KEY, SERVER_TLS_CLIENT_CA, or none)"},
		{"several at once", map[string]string{"SERVER_PORT": "abc", "SERVER_AGENCIES": "0"},
			`SERVER_PORT: "abc" is not a whole number; SERVER_AGENCIES: "0" must be between 1 and 1000000`},
	}
	for _, tt := range tests {
		for _, args := range [][]string{nil, {"health"}} {
			t.Run(strings.Join(append([]string{tt.name}, args...), " "), func(t *testing.T) {
				env, dir := storeEnv(t, tt.env)
				r := start(t, env, args...)
				assert.Equal(t, 2, r.wait(t))
				assert.Empty(t, r.stdout.String())
				assert.Regexp(t, linePrefix+`ERROR    `+linePattern(vocab.Config.Line(logfmt.Fail, vocab.Error.Str(tt.want)))+"\n$", r.stderr.String())
				assertEmptyDir(t, dir)
			})
		}
	}
}

// A storage path the central could not write is a configuration error
// naming it, found before anything is created.
func TestStoragePathChecked(t *testing.T) {
	dir := t.TempDir()
	missing := filepath.Join(dir, "nope", "bets.csv")
	r := start(t, map[string]string{"SERVER_STORAGE_PATH": missing})
	assert.Equal(t, 2, r.wait(t))
	assert.Regexp(t, linePrefix+`ERROR    `+linePattern(vocab.Config.Line(logfmt.Fail, vocab.Error.Str(
		`SERVER_STORAGE_PATH: "`+missing+`" is in a directory that does not exist (`+filepath.Dir(missing)+`)`)))+"\n$",
		r.stderr.String())
	assertEmptyDir(t, dir)
}

// The central serves until ctx ends (a signal in main), then shuts down,
// logs why and exits 0; `server health` finds it through the same
// configuration.
func TestServeUntilSignal(t *testing.T) {
	env, dir := storeEnv(t, nil)
	r := start(t, env)
	addr := r.await(t, listeningOn)[1]
	_, port, err := net.SplitHostPort(addr)
	require.NoError(t, err)
	r.await(t, storeRecovered) // the store is open: the shutdown closes it

	healthEnv := map[string]string{"SERVER_PORT": port, "SERVER_STORAGE_PATH": env["SERVER_STORAGE_PATH"]}
	h := start(t, healthEnv, "health")
	require.Equal(t, 0, h.wait(t), "%s%s", h.stdout, h.stderr)
	assert.Regexp(t, linePrefix+`INFO     `+regexp.QuoteMeta(vocab.TestServer.Line(logfmt.Success, vocab.Direccion.Str("127.0.0.1:"+port)))+"\n$",
		h.stdout.String())

	r.cancel(errors.New("terminated signal received"))
	require.Equal(t, 0, r.wait(t), r.stdout.String())
	out := r.stdout.String()
	assert.Regexp(t, linePrefix+`INFO     `+regexp.QuoteMeta(vocab.Config.Line(logfmt.Success, vocab.Host.Str("127.0.0.1"), vocab.Puerto.Int(0)))+
		` \| .* \| `+regexp.QuoteMeta(vocab.TLSKey.Str("off").String())+"\n", out)
	for _, want := range []string{vocab.Signal.Line(logfmt.Success, vocab.Senal.Str("terminated")) + "\n",
		vocab.CerrarArchivoApuestas.Line(logfmt.Success), vocab.Shutdown.Line(logfmt.Success)} {
		assert.Contains(t, out, want)
	}
	assert.Empty(t, r.stderr.String())
	assert.FileExists(t, filepath.Join(dir, "bets.csv"))
}

// A port already in use fails the central at once, exit 1, naming it.
func TestPortInUse(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	defer ln.Close()
	_, port, err := net.SplitHostPort(ln.Addr().String())
	require.NoError(t, err)
	env, _ := storeEnv(t, map[string]string{"SERVER_PORT": port})
	r := start(t, env)
	assert.Equal(t, 1, r.wait(t))
	assert.Regexp(t, `(?m)ERROR    `+linePattern(vocab.Escuchar.Line(logfmt.Fail,
		vocab.Error.Str("listen on 127.0.0.1:"+port+pat(`: .*address already in use`))))+"$", r.stdout.String())
}

// SERVER_HOST=::1 listens on the IPv6 loopback, where an agency configured
// with CLI_SERVER_ADDRESS=[::1]:PORT sends its bets and gets its winners,
// and `server health` finds the central at [::1]:PORT.
func TestIPv6Loopback(t *testing.T) {
	probe, err := net.Listen("tcp", "[::1]:0")
	if err != nil {
		t.Skipf("this machine has no IPv6 loopback: %v", err)
	}
	probe.Close()

	dir := t.TempDir()
	_, err = lottery.GenerateAgencyFiles(dir, 1, 300, 11)
	require.NoError(t, err)
	store := filepath.Join(dir, "bets.csv")
	r := start(t, map[string]string{"SERVER_HOST": "::1", "SERVER_PORT": "0", "SERVER_AGENCIES": "1", "SERVER_STORAGE_PATH": store})
	addr := r.await(t, listeningOn)[1]
	host, port, err := net.SplitHostPort(addr)
	require.NoError(t, err)
	require.Equal(t, "::1", host)

	h := start(t, map[string]string{"SERVER_HOST": "::1", "SERVER_PORT": port, "SERVER_STORAGE_PATH": store}, "health")
	require.Equal(t, 0, h.wait(t), "%s%s", h.stdout, h.stderr)
	assert.Contains(t, h.stdout.String(), vocab.Direccion.Str("[::1]:"+port).String())

	data := filepath.Join(dir, lottery.AgencyFileName(1))
	cfg, err := agency.Load(fromMap(map[string]string{"CLI_ID": "1",
		"CLI_SERVER_ADDRESS": "[::1]:" + port, "CLI_DATA_PATH": data, "CLI_CONNECT_TIMEOUT": "5s"}))
	require.NoError(t, err)
	log, err := logfmt.New(io.Discard, "info")
	require.NoError(t, err)
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	winners, err := agency.New(cfg, log).Run(ctx)
	require.NoError(t, err)
	want := 0
	for b, err := range lottery.ReadAgencyFile(data, 1) {
		require.NoError(t, err)
		if lottery.HasWon(b) {
			want++
		}
	}
	assert.Len(t, winners, want)
	assert.Contains(t, r.stdout.String(), vocab.Sorteo.Line(logfmt.Success))

	r.cancel(errors.New("terminated signal received"))
	require.Equal(t, 0, r.wait(t), r.stdout.String())
	stored := 0
	for _, err := range lottery.LoadBets(store) {
		require.NoError(t, err)
		stored++
	}
	assert.Equal(t, 300, stored, "every bet stored")
}

// SERVER_ADMIN_ADDRESS set and empty turns the admin listener off; unset, it
// is the default; any other variable set and empty means its default.
func TestEnvironmentEmptyAdminAddress(t *testing.T) {
	tests := []struct {
		name, key, value string
		set              bool
		want             string
	}{
		{"admin address empty", "SERVER_ADMIN_ADDRESS", "", true, config.AdminOff},
		{"admin address unset", "SERVER_ADMIN_ADDRESS", "", false, ""},
		{"admin address given", "SERVER_ADMIN_ADDRESS", "127.0.0.1:9191", true, "127.0.0.1:9191"},
		{"another variable empty", "SERVER_PORT", "", true, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if tt.set {
				t.Setenv(tt.key, tt.value)
			} else {
				t.Setenv(tt.key, "x") // restored after the test
				require.NoError(t, os.Unsetenv(tt.key))
			}
			assert.Equal(t, tt.want, environment(tt.key))
		})
	}
}

// A SERVER_ variable that is not a setting gets one warning, naming the
// setting it is most likely a typo of, and the central runs without it.
func TestUnknownVariableWarned(t *testing.T) {
	env, _ := storeEnv(t, map[string]string{"SERVER_AGENCY": "3", "GOGC": "100"})
	r := start(t, env)
	r.await(t, listeningOn)
	r.await(t, storeRecovered)
	r.cancel(errors.New("terminated signal received"))
	require.Equal(t, 0, r.wait(t), "%s%s", r.stdout, r.stderr)
	out := r.stdout.String()
	warning := vocab.Config.Line(logfmt.InProgress, vocab.Aviso.Str("SERVER_AGENCY is not a setting; did you mean SERVER_AGENCIES?"))
	assert.Regexp(t, `(?m)`+linePrefix+`WARNING  `+regexp.QuoteMeta(warning)+"$", out)
	assert.Equal(t, 1, strings.Count(out, vocab.Config.Line(logfmt.InProgress)), "one warning:\n%s", out)
	assert.Contains(t, out, vocab.Config.Line(logfmt.Success, vocab.Host.Str("127.0.0.1"), vocab.Puerto.Int(0),
		vocab.Agencias.Int(5)), "the default, not the typo's 3")
	assert.Empty(t, r.stderr.String())
}

// fromMap reads variables from m.
func fromMap(m map[string]string) envconfig.Getenv {
	return func(name string) string { return m[name] }
}

// environOf is m as os.Environ lists it.
func environOf(m map[string]string) []string {
	environ := make([]string, 0, len(m))
	for k, v := range m {
		environ = append(environ, k+"="+v)
	}
	return environ
}

// SIGHUP has the running central (the real binary, its own signal) read its
// revocation list again, as server reload does: the live connection of a
// certificate the new list names is closed and its handshakes are refused
// with ERROR revoked; a bad list is refused, the old one kept, and the
// central runs on; the journal names the signal as the operator.
func TestSighupReloadsTheRevocationList(t *testing.T) {
	certs := t.TempDir()
	_, err := pki.WriteDir(certs, 2, nil, false)
	require.NoError(t, err)
	file := func(name string) string { return filepath.Join(certs, name) }
	revoked := file(pki.RevokedFile)
	store := filepath.Join(t.TempDir(), "bets.csv")
	srv, port := startServer(t, 2, store, "SERVER_TLS_CERT="+file(pki.CentralFile), "SERVER_TLS_KEY="+file(pki.CentralKeyFile),
		"SERVER_TLS_CLIENT_CA="+file(pki.CAFile), "SERVER_TLS_REVOKED="+revoked)
	srv.awaitLines(t, 1, vocab.Revocaciones.Line(logfmt.Success, vocab.Archivo.Str(revoked), vocab.Revocados.Int(0),
		vocab.NumeroLista.Int(1)))
	srv.await(t, storeRecovered) // a reload journals: it waits for the round to be read back

	// hello connects as agency 2 with its pair as it is now, says HELLO, and
	// returns the connection and the central's answer.
	cert, key := file(pki.AgencyFile(2)), file(pki.AgencyKeyFile(2))
	hello := func() (net.Conn, protocol.Message, error) {
		t.Helper()
		cfg, err := identity.ClientConfig(cert, key, file(pki.CAFile), "127.0.0.1")
		require.NoError(t, err)
		conn, err := tls.Dial("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(port)), cfg)
		require.NoError(t, err)
		t.Cleanup(func() { conn.Close() })
		require.NoError(t, conn.SetDeadline(time.Now().Add(logtest.DefaultBound)))
		require.NoError(t, protocol.WriteMessage(conn, protocol.Hello{Version: protocol.Version, Agency: 2}))
		m, err := protocol.ReadMessage(conn, protocol.MaxServerFrame)
		return conn, m, err
	}
	requireRevoked := func() {
		t.Helper()
		_, m, err := hello()
		require.NoError(t, err)
		e, ok := m.(*protocol.ErrorMessage)
		require.True(t, ok, "%+v", m)
		assert.Equal(t, protocol.CodeRevoked, e.Code, e.Text)
	}
	held, m, err := hello()
	require.NoError(t, err)
	require.IsType(t, &protocol.HelloAck{}, m)

	rep, err := pki.RevokeDir(certs, []pki.Holder{{Agency: 2}})
	require.NoError(t, err)
	require.NoError(t, srv.cmd.Process.Signal(syscall.SIGHUP))
	srv.awaitLines(t, 1, vocab.Revocaciones.Line(logfmt.Success, vocab.Operador.Str("SIGHUP"), vocab.Archivo.Str(revoked),
		vocab.Revocados.Int(1), vocab.NumeroLista.Int(2), vocab.Cortadas.Str("2")))
	_, err = protocol.ReadMessage(held, protocol.MaxServerFrame)
	assert.True(t, errors.Is(err, io.EOF) || errors.Is(err, syscall.ECONNRESET), "the live connection is closed: %v", err)
	requireRevoked()
	srv.awaitLines(t, 1, vocab.TLSHandshake.Line(logfmt.Fail), vocab.Motivo.Str("revoked").String(),
		"serial "+identity.SerialText(rep.Revoked[0].Serial))

	// A list that does not verify is refused; the central keeps the one in force.
	require.NoError(t, os.WriteFile(revoked, []byte("not a list"), 0o644))
	require.NoError(t, srv.cmd.Process.Signal(syscall.SIGHUP))
	srv.awaitLines(t, 1, vocab.Revocaciones.Line(logfmt.Fail, vocab.Operador.Str("SIGHUP"), vocab.Archivo.Str(revoked)),
		"no PEM block: want one X509 CRL; the list in force stays (1 revoked, list number 2)")
	requireRevoked()

	code, _ := terminate(t, srv)
	require.Equal(t, 0, code, srv.output())
	journal, err := os.ReadFile(store + ".operator")
	require.NoError(t, err)
	assert.Equal(t, 1, strings.Count(string(journal), "\n"), "one reload journaled:\n%s", journal)
	assert.Contains(t, string(journal), `"operator":"SIGHUP","action":"reload","detail":"revocation list: 1 revoked, list number 2"`)
}
