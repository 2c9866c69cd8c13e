package admin

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/sirupsen/logrus"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"

	"lotterycentral.example/lottery/logfmt"
	"lotterycentral.example/protocol/identity"
	"lotterycentral.example/protocol/pki"
	"lotterycentral.example/server/internal/logtest"
	"lotterycentral.example/server/internal/vocab"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// ioWait only turns a hung request into a failure.
const ioWait = 10 * time.Second

// fakeOperator is the central as the actions see it: it records each call
// and refuses with the error the test sets.
type fakeOperator struct {
	mu         sync.Mutex
	calls      []string
	excludeErr error
	reloadErr  error
	revoked    *x509.Certificate // the one certificate on its revocation list
}

func (f *fakeOperator) Exclude(agency int, reason, operator string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls = append(f.calls, "exclude "+identity.AgencyName(agency)+" "+operator+": "+reason)
	return f.excludeErr
}

func (f *fakeOperator) ReloadRevocations(operator string) (string, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls = append(f.calls, "reload "+operator)
	if f.reloadErr != nil {
		return "", f.reloadErr
	}
	return "revocation list reloaded by " + operator + ": 1 revoked", nil
}

func (f *fakeOperator) CheckRevoked(cert *x509.Certificate) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.revoked != nil && cert.Equal(f.revoked) {
		return fmt.Errorf("certificate %q: %w", cert.Subject.CommonName, identity.ErrRevoked)
	}
	return nil
}

func (f *fakeOperator) called() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]string(nil), f.calls...)
}

// adminPKI is every certificate a client of the admin address may bring.
type adminPKI struct {
	server   *tls.Config // the admin address's TLS side (identity.AdminConfig)
	operator *tls.Certificate
	named    *tls.Certificate // operator-ana
	agency   *tls.Certificate // agency-3
	central  *tls.Certificate // the central's own
	foreign  *tls.Certificate // "operator", from another CA
	expired  *tls.Certificate // "operator", expired yesterday
	roots    *tls.Config      // verifies the central: a client's base
}

func newAdminPKI(t *testing.T) *adminPKI {
	t.Helper()
	must := func(c *pki.Cert, err error) *pki.Cert {
		t.Helper()
		require.NoError(t, err)
		return c
	}
	pair := func(c *pki.Cert) *tls.Certificate {
		return &tls.Certificate{Certificate: [][]byte{c.Cert.Raw}, PrivateKey: c.Key, Leaf: c.Cert}
	}
	ca, err := pki.NewCA("admin test CA", time.Time{}, time.Time{})
	require.NoError(t, err)
	other, err := pki.NewCA("other CA", time.Time{}, time.Time{})
	require.NoError(t, err)
	dir := t.TempDir()
	central := must(ca.IssueCentral(nil, time.Time{}, time.Time{}))
	files := map[string]string{"cert": filepath.Join(dir, "central.pem"), "key": filepath.Join(dir, "central-key.pem"),
		"ca": filepath.Join(dir, "ca.pem"), "ca-key": filepath.Join(dir, "ca-key.pem")}
	require.NoError(t, central.WriteFiles(files["cert"], files["key"]))
	require.NoError(t, ca.WriteFiles(files["ca"], files["ca-key"]))
	agencies, err := identity.ServerConfig(files["cert"], files["key"], files["ca"])
	require.NoError(t, err)
	yesterday := time.Now().Add(-24 * time.Hour)
	return &adminPKI{
		server:   identity.AdminConfig(agencies),
		operator: pair(must(ca.IssueOperator("", time.Time{}, time.Time{}))),
		named:    pair(must(ca.IssueOperator("ana", time.Time{}, time.Time{}))),
		agency:   pair(must(ca.IssueAgency(3, time.Time{}, time.Time{}))),
		central:  pair(central),
		foreign:  pair(must(other.IssueOperator("", time.Time{}, time.Time{}))),
		expired:  pair(must(ca.IssueOperator("", yesterday.Add(-24*time.Hour), yesterday))),
		roots:    &tls.Config{MinVersion: tls.VersionTLS13, RootCAs: ca.Pool()},
	}
}

// adminServer is an admin listener on 127.0.0.1 serving plain HTTP and TLS,
// as ServeAdmin runs it, with a fake central.
type adminServer struct {
	url  string // host:port
	op   *fakeOperator
	logs *logtest.Recorder
}

func startAdmin(t *testing.T, p *adminPKI, pprof bool) *adminServer {
	t.Helper()
	base := logrus.New()
	base.SetOutput(io.Discard)
	base.SetFormatter(logfmt.Formatter{})
	logs := logtest.New()
	base.AddHook(logs)
	reg := prometheus.NewRegistry()
	reg.MustRegister(prometheus.NewCounter(prometheus.CounterOpts{Name: "lottery_admin_test_total", Help: "A test counter."}))
	a := &adminServer{op: &fakeOperator{}, logs: logs}
	var opts []Option
	var tlsConf *tls.Config
	if p != nil {
		tlsConf = p.server
		opts = append(opts, WithOperators(a.op, p.server.ClientCAs, logfmt.Wrap(base)))
	}
	opts = append(opts, WithPprof(pprof))
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	a.url = ln.Addr().String()
	if tlsConf != nil {
		ln = Listen(ln, tlsConf)
	}
	srv := &http.Server{Handler: New(&fakeSource{serving: true}, reg, opts...), ReadHeaderTimeout: ioWait,
		ErrorLog: nil}
	served := make(chan error, 1)
	go func() { served <- srv.Serve(ln) }()
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), ioWait)
		defer cancel()
		assert.NoError(t, srv.Shutdown(ctx))
		assert.ErrorIs(t, <-served, http.ErrServerClosed)
	})
	return a
}

// client is how a request reaches the admin address: plain HTTP, or TLS
// presenting cert (none when nil) whatever CA the central asks for.
type client struct {
	tls  bool
	cert *tls.Certificate
}

// answer is what a request got, and the address it came from (the
// central's remoto).
type answer struct {
	code  int
	body  string
	allow string
	local string
}

func (a *adminServer) do(t *testing.T, p *adminPKI, c client, method, path string, form url.Values) answer {
	t.Helper()
	var local string
	tr := &http.Transport{DisableKeepAlives: true,
		DialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
			conn, err := (&net.Dialer{}).DialContext(ctx, network, addr)
			if err == nil {
				local = conn.LocalAddr().String()
			}
			return conn, err
		}}
	defer tr.CloseIdleConnections()
	scheme := "http"
	if c.tls {
		scheme = "https"
		tr.TLSClientConfig = p.roots.Clone()
		tr.TLSClientConfig.GetClientCertificate = func(*tls.CertificateRequestInfo) (*tls.Certificate, error) {
			if c.cert == nil {
				return &tls.Certificate{}, nil
			}
			return c.cert, nil
		}
	}
	var body io.Reader
	if form != nil {
		body = strings.NewReader(form.Encode())
	}
	ctx, cancel := context.WithTimeout(t.Context(), ioWait)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, method, scheme+"://"+a.url+path, body)
	require.NoError(t, err)
	if form != nil {
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	}
	resp, err := (&http.Client{Transport: tr}).Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	return answer{code: resp.StatusCode, body: string(b), allow: resp.Header.Get("Allow"), local: local}
}

// exclusion is an exclusion's form.
func exclusion(agency, reason string) url.Values {
	return url.Values{FieldAgency: {agency}, FieldReason: {reason}}
}

// TestAdminAddress drives a real admin listener, plain HTTP and TLS on one
// address, with real certificates: what answers whom, what reaches the
// central, and the line each refusal leaves.
func TestAdminAddress(t *testing.T) {
	p := newAdminPKI(t)
	plain := client{}
	anonymous := client{tls: true}
	operator := client{tls: true, cert: p.operator}
	tests := []struct {
		name     string
		pprof    bool
		set      func(*fakeOperator)
		client   client
		method   string
		path     string
		form     url.Values
		code     int
		body     string // part of the answer
		call     string // what reached the central; "" nothing
		reason   string // the refusal logged; "" none
		operator string // the refusal's operador, if any
	}{
		// Read-only, as before, to anyone.
		{name: "plain HTTP /metrics", client: plain, method: "GET", path: "/metrics", code: 200, body: "lottery_admin_test_total 0"},
		{name: "plain HTTP /healthz", client: plain, method: "GET", path: "/healthz", code: 200, body: "ok"},
		{name: "plain HTTP status page", client: plain, method: "GET", path: "/", code: 200, body: "<html"},
		{name: "TLS without a certificate reads /status.json", client: anonymous, method: "GET", path: "/status.json",
			code: 200, body: `"agencies"`},
		{name: "an operator reads /healthz", client: operator, method: "GET", path: "/healthz", code: 200, body: "ok"},

		// The actions, for an operator.
		{name: "an operator excludes an agency", client: operator, method: "POST", path: "/actions/exclude",
			form: exclusion("3", "  stolen key "), code: 200, body: "agency 3 excluded by operator: stolen key",
			call: "exclude agency-3 operator: stolen key"},
		{name: "a named operator excludes an agency", client: client{tls: true, cert: p.named}, method: "POST",
			path: "/actions/exclude", form: exclusion("5", "audit"), code: 200,
			body: "agency 5 excluded by operator-ana: audit", call: "exclude agency-5 operator-ana: audit"},
		{name: "the central refuses an exclusion", set: func(f *fakeOperator) {
			f.excludeErr = errors.New("agency 9 is not in this round (1..5)")
		}, client: operator, method: "POST", path: "/actions/exclude", form: exclusion("9", "typo"),
			code: 409, body: "agency 9 is not in this round (1..5)\n", call: "exclude agency-9 operator: typo"},
		{name: "an operator reloads the revocation list", client: operator, method: "POST", path: "/actions/reload",
			code: 200, body: "revocation list reloaded by operator: 1 revoked\n", call: "reload operator"},
		{name: "the central refuses a reload", set: func(f *fakeOperator) {
			f.reloadErr = errors.New("this central has no revocation list")
		}, client: operator, method: "POST", path: "/actions/reload", code: 409,
			body: "this central has no revocation list", call: "reload operator"},

		// The profiler.
		{name: "pprof on, an operator", pprof: true, client: operator, method: "GET", path: "/debug/pprof/",
			code: 200, body: "Types of profiles available"},
		{name: "pprof on, a named profile", pprof: true, client: operator, method: "GET", path: "/debug/pprof/goroutine?debug=1",
			code: 200, body: "goroutine profile"},
		{name: "pprof on, plain HTTP", pprof: true, client: plain, method: "GET", path: "/debug/pprof/",
			code: 403, body: "over TLS", reason: ReasonNotTLS},
		{name: "pprof on, TLS without a certificate", pprof: true, client: anonymous, method: "GET", path: "/debug/pprof/",
			code: 403, body: "operator's client certificate", reason: identity.ReasonNoCertificate},
		{name: "pprof off, an operator", client: operator, method: "GET", path: "/debug/pprof/", code: 404,
			body: "the profiler is off: SERVER_PPROF=1", reason: ReasonPprofOff, operator: "operator"},
		{name: "pprof off, plain HTTP", client: plain, method: "GET", path: "/debug/pprof/profile", code: 404,
			body: "the profiler is off", reason: ReasonPprofOff},

		// Every other refusal.
		{name: "no client certificate", client: anonymous, method: "POST", path: "/actions/exclude",
			form: exclusion("3", "x"), code: 403, body: "present an operator's client certificate",
			reason: identity.ReasonNoCertificate},
		{name: "an agency's certificate", client: client{tls: true, cert: p.agency}, method: "POST",
			path: "/actions/exclude", form: exclusion("3", "x"), code: 403, body: `"agency-3" names agency 3`,
			reason: identity.ReasonAgencyCertificate},
		{name: "an agency's certificate, even for /healthz", client: client{tls: true, cert: p.agency}, method: "GET",
			path: "/healthz", code: 403, body: "an agency may not act as an operator", reason: identity.ReasonAgencyCertificate},
		{name: "the central's own certificate", client: client{tls: true, cert: p.central}, method: "POST",
			path: "/actions/reload", code: 403, body: `common name "central" is not operator`, reason: identity.ReasonNotOperator},
		{name: "a certificate from another CA", client: client{tls: true, cert: p.foreign}, method: "POST",
			path: "/actions/reload", code: 403, body: "certificate signed by unknown authority",
			reason: identity.ReasonUnknownAuthority},
		{name: "an expired operator certificate", client: client{tls: true, cert: p.expired}, method: "POST",
			path: "/actions/reload", code: 403, body: "certificate has expired", reason: identity.ReasonExpired},
		{name: "a revoked operator certificate", set: func(f *fakeOperator) { f.revoked = p.named.Leaf },
			client: client{tls: true, cert: p.named}, method: "POST", path: "/actions/reload", code: 403,
			body: `certificate "operator-ana": certificate revoked`, reason: identity.ReasonRevoked, operator: "operator-ana"},
		{name: "a revoked operator certificate, even for /healthz", set: func(f *fakeOperator) { f.revoked = p.named.Leaf },
			client: client{tls: true, cert: p.named}, method: "GET", path: "/healthz", code: 403,
			body: "certificate revoked", reason: identity.ReasonRevoked, operator: "operator-ana"},
		{name: "another operator's certificate revoked", set: func(f *fakeOperator) { f.revoked = p.named.Leaf },
			client: operator, method: "POST", path: "/actions/reload", code: 200, body: "reloaded by operator",
			call: "reload operator"},
		{name: "plain HTTP to an action", client: plain, method: "POST", path: "/actions/exclude",
			form: exclusion("3", "x"), code: 403, body: "came over plain HTTP", reason: ReasonNotTLS},
		{name: "GET to an action", client: operator, method: "GET", path: "/actions/exclude", code: 405,
			body: "GET: an action is a POST", reason: ReasonMethod, operator: "operator"},
		{name: "an unknown action", client: operator, method: "POST", path: "/actions/draw", code: 404,
			body: `no action "draw": exclude or reload`, reason: ReasonUnknownAction, operator: "operator"},
		{name: "an exclusion without a reason", client: operator, method: "POST", path: "/actions/exclude",
			form: url.Values{FieldAgency: {"3"}}, code: 400, body: "reason: required", reason: ReasonBadRequest,
			operator: "operator"},
		{name: "an exclusion of agency 0", client: operator, method: "POST", path: "/actions/exclude",
			form: exclusion("0", "x"), code: 400, body: `agency "0": want a whole number from 1`, reason: ReasonBadRequest,
			operator: "operator"},
		{name: "an exclusion with a line break in its reason", client: operator, method: "POST", path: "/actions/exclude",
			form: exclusion("3", "a\nb"), code: 400, body: "no control character or '|'", reason: ReasonBadRequest,
			operator: "operator"},
		{name: "an exclusion not as a form", client: operator, method: "POST", path: "/actions/exclude?agency=3&reason=x",
			code: 400, body: "agency: required (a form field", reason: ReasonBadRequest, operator: "operator"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			a := startAdmin(t, p, tt.pprof)
			if tt.set != nil {
				tt.set(a.op)
			}
			got := a.do(t, p, tt.client, tt.method, tt.path, tt.form)
			assert.Equal(t, tt.code, got.code, got.body)
			assert.Contains(t, got.body, tt.body)
			if tt.call != "" {
				assert.Equal(t, []string{tt.call}, a.op.called())
			} else {
				assert.Empty(t, a.op.called(), "nothing reaches the central")
			}
			if tt.code == http.StatusMethodNotAllowed {
				assert.Equal(t, "POST", got.allow)
			}
			if tt.reason == "" {
				assert.Zero(t, a.logs.Count(vocab.RechazoAdmin.Line(logfmt.Fail)), "%s", a.logs)
				return
			}
			fields := []logfmt.Field{vocab.Remoto.Str(got.local), vocab.Metodo.Str(tt.method),
				vocab.Ruta.Str(strings.SplitN(tt.path, "?", 2)[0])}
			if tt.operator != "" {
				fields = append(fields, vocab.Operador.Str(tt.operator))
			}
			fields = append(fields, vocab.Motivo.Str(tt.reason), vocab.Detalle.Str(strings.TrimSuffix(got.body, "\n")))
			assert.Equal(t, []string{vocab.RechazoAdmin.Line(logfmt.Fail, fields...)}, a.logs.Texts())
			level, ok := a.logs.LevelOf(vocab.RechazoAdmin.Line(logfmt.Fail))
			assert.True(t, ok)
			assert.Equal(t, logrus.WarnLevel, level)
		})
	}
}

// A central without TLS has no TLS side: the read-only endpoints answer as
// before, and an action says why no operator can act.
func TestAdminWithoutTLS(t *testing.T) {
	a := startAdmin(t, nil, false)
	got := a.do(t, nil, client{}, "GET", "/healthz", nil)
	assert.Equal(t, 200, got.code)
	got = a.do(t, nil, client{}, "POST", "/actions/exclude", exclusion("3", "x"))
	assert.Equal(t, 403, got.code)
	assert.Equal(t, "this central runs without TLS (SERVER_TLS_*): no operator can act on it\n", got.body)
}

// A connection that sends nothing holds up no other, and closing the
// listener ends the wait for its first byte at once (goleak checks the
// goroutines are gone).
func TestListenerSilentPeer(t *testing.T) {
	p := newAdminPKI(t)
	inner, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	ln := Listen(inner, p.server)
	silent, err := net.Dial("tcp", inner.Addr().String())
	require.NoError(t, err)
	defer silent.Close()

	talker, err := net.Dial("tcp", inner.Addr().String())
	require.NoError(t, err)
	defer talker.Close()
	_, err = talker.Write([]byte("GET / HTTP/1.1\r\n"))
	require.NoError(t, err)
	conn, err := ln.Accept()
	require.NoError(t, err, "the talker is handed over while the silent peer waits")
	assert.Equal(t, talker.LocalAddr().String(), conn.RemoteAddr().String())
	line := make([]byte, len("GET / HTTP/1.1\r\n"))
	_, err = io.ReadFull(conn, line)
	require.NoError(t, err)
	assert.Equal(t, "GET / HTTP/1.1\r\n", string(line), "the first byte is read again")
	require.NoError(t, conn.Close())

	require.NoError(t, ln.Close())
	_, err = ln.Accept()
	assert.ErrorIs(t, err, net.ErrClosed)
	require.NoError(t, silent.SetReadDeadline(time.Now().Add(ioWait)))
	_, err = silent.Read(make([]byte, 1))
	assert.Error(t, err, "the silent peer's connection is closed with the listener")
	assert.NoError(t, ln.Close(), "a second Close is harmless")
}
