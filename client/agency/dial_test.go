package agency

import (
	"context"
	"errors"
	"net"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"lotterycentral.example/client/internal/vocab"
	"lotterycentral.example/lottery/logfmt"
)

// hintLine is the line that says what to do about an address that does not resolve.
func hintLine(addr, set string) string {
	return vocab.Conectar.Line(logfmt.InProgress, vocab.Servidor.Str(addr),
		vocab.Aviso.Str(addr+" does not resolve here; outside Docker set CLI_SERVER_ADDRESS="+set))
}

// A central whose name never resolves (.invalid never does) says what to set,
// once, and fails the run as a connect failure.
func TestUnresolvableHintedOnce(t *testing.T) {
	dir := t.TempDir()
	data := filepath.Join(dir, "agency-3.csv")
	writeBets(t, data, generated(t, dir, 5))
	cfg := failureConfig("nonexistent.invalid:12345", data)
	cfg.ConnectTimeout = time.Second
	log, lines := testLog()
	_, took, err := runBounded(t, New(cfg, log), 10*time.Second)
	require.ErrorIs(t, err, errGaveUp)
	assert.Equal(t, vocab.Conectar, FailedAction(err))
	assert.Equal(t, 1, countLines(lines, hintLine("nonexistent.invalid:12345", "127.0.0.1:12345")), "%s", lines)
	assert.Equal(t, 1, countWith(lines, "| "+vocab.Aviso.Str("").String()), "one hint in all:\n%s", lines)
	var dnsErr *net.DNSError
	require.ErrorAs(t, err, &dnsErr)
	if dnsErr.IsNotFound && !dockerDNS(dnsErr.Server) {
		// This machine's resolver is not Docker's: no retry at all.
		assert.Zero(t, countWith(lines, retried...), "retried:\n%s", lines)
		assert.Less(t, took, cfg.ConnectTimeout/2)
	}
}

// lookup is the error of a dial whose lookup of server:12345 failed.
func lookup(resolver string, notFound bool) error {
	e := &net.DNSError{Err: "server misbehaving", Name: "server", Server: resolver, IsTemporary: true}
	if notFound {
		e = &net.DNSError{Err: "no such host", Name: "server", Server: resolver, IsNotFound: true}
	}
	return &net.OpError{Op: "dial", Net: "tcp", Err: e}
}

// refused is the error of a dial that resolved the name and found no listener.
var refused = &net.OpError{Op: "dial", Net: "tcp", Addr: &net.TCPAddr{IP: net.IPv4(172, 18, 0, 2), Port: 12345},
	Err: os.NewSyscallError("connect", syscall.ECONNREFUSED)}

// When a name that does not resolve is worth retrying and when it is not:
// Docker's DNS, an unknown resolver, a temporary failure and a name that
// resolved before are retried; a definite "no such host" from another
// resolver, before the name ever resolved, is not. Every case says what to
// set once.
func TestDialLookupFailures(t *testing.T) {
	const docker, other = "127.0.0.11:53", "10.255.255.53:53"
	tests := []struct {
		name    string
		earlier []error // dials before this one: nil connects
		errs    []error // this dial's attempts, then it connects
		gaveUp  bool    // at its first attempt
	}{
		{"Docker's DNS, while the central's container starts", nil,
			[]error{lookup(docker, true), lookup(docker, true), refused}, false},
		{"another resolver: no such host", nil, []error{lookup(other, true)}, true},
		{"the system's resolver (cgo): not known", nil, []error{lookup("", true), lookup("", true)}, false},
		{"a temporary failure", nil, []error{lookup(other, false), lookup(other, false)}, false},
		{"refused first, then no such host", nil, []error{refused, lookup(other, true)}, false},
		{"resolved in an earlier connection", []error{nil}, []error{lookup(other, true), lookup(other, true)}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			log, lines := testLog()
			a := New(failureConfig("server:12345", "unused.csv"), log)
			a.cfg.ConnectTimeout = 5 * time.Second
			var script []error
			a.dialContext = func(ctx context.Context, _, _ string) (net.Conn, error) {
				if len(script) > 0 {
					err := script[0]
					script = script[1:]
					if err != nil {
						return nil, err
					}
				}
				c, s := net.Pipe()
				s.Close()
				return c, nil
			}
			for range tt.earlier {
				script = []error{nil}
				conn, err := a.dial(t.Context())
				require.NoError(t, err)
				conn.Close()
			}
			script = tt.errs
			conn, err := a.dial(t.Context())
			hint := countLines(lines, hintLine("server:12345", "127.0.0.1:12345"))
			if tt.gaveUp {
				require.ErrorIs(t, err, errGaveUp)
				assert.EqualError(t, err, "connect to server:12345: gave up connecting: dial tcp: lookup server on "+other+": no such host")
				assert.Len(t, script, 0, "all attempts made")
				assert.Zero(t, countWith(lines, retried...), "retried:\n%s", lines)
				assert.Equal(t, 1, hint, "%s", lines)
				return
			}
			require.NoError(t, err, "%s", lines)
			conn.Close()
			assert.Empty(t, script, "every failure retried")
			lookups := 0
			for _, e := range tt.errs {
				var dnsErr *net.DNSError
				if errors.As(e, &dnsErr) {
					lookups++
				}
			}
			assert.Equal(t, min(lookups, 1), hint, "the hint, once if any lookup failed:\n%s", lines)
			assert.Equal(t, len(tt.errs), countWith(lines, retried...), "one retry per failure:\n%s", lines)
		})
	}
}

// The hint names the central on this machine at the configured port.
func TestUnresolvedHint(t *testing.T) {
	assert.Equal(t, "server:12345 does not resolve here; outside Docker set CLI_SERVER_ADDRESS=127.0.0.1:12345",
		unresolvedHint("server:12345"))
	assert.Equal(t, "central.lan:7000 does not resolve here; outside Docker set CLI_SERVER_ADDRESS=127.0.0.1:7000",
		unresolvedHint("central.lan:7000"))
	for server, want := range map[string]bool{"127.0.0.11:53": true, "": true, "10.0.0.2:53": false, "127.0.0.53:53": false,
		"[::1]:53": false} {
		assert.Equal(t, want, dockerDNS(server), "%q", server)
	}
}

// retried is in every line of a connect attempt that failed and is retried.
var retried = []string{vocab.Conectar.Line(logfmt.InProgress) + " |", "| " + vocab.Intento.Str("").String()}

// countWith counts the lines that contain every one of parts.
func countWith(h *lineHook, parts ...string) int {
	h.mu.Lock()
	defer h.mu.Unlock()
	n := 0
	for _, l := range h.lines {
		all := true
		for _, p := range parts {
			all = all && strings.Contains(l, p)
		}
		if all {
			n++
		}
	}
	return n
}
