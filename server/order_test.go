package main

import (
	"errors"
	"net/http"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"lotterycentral.example/lottery/logfmt"
	"lotterycentral.example/lottery/logfmt/logfmttest"
	"lotterycentral.example/protocol/identity"
	"lotterycentral.example/protocol/pki"
	"lotterycentral.example/server/internal/vocab"
)

// tlsCentral is a central run by run() with mutual TLS, its admin address
// on a free port, and the certificates `make certs` writes.
type tlsCentral struct {
	r     *running
	admin string // its admin address
	certs string // the certificates' directory
}

func startTLSCentral(t *testing.T, extra map[string]string) *tlsCentral {
	t.Helper()
	certs := t.TempDir()
	_, err := pki.WriteDir(certs, 5, nil, false)
	require.NoError(t, err)
	env := map[string]string{"SERVER_ADMIN_ADDRESS": "127.0.0.1:0", "SERVER_AGENCIES": "5",
		"SERVER_TLS_CERT": filepath.Join(certs, pki.CentralFile), "SERVER_TLS_KEY": filepath.Join(certs, pki.CentralKeyFile),
		"SERVER_TLS_CLIENT_CA": filepath.Join(certs, pki.CAFile), "SERVER_TLS_REVOKED": filepath.Join(certs, pki.RevokedFile)}
	for k, v := range extra {
		env[k] = v
	}
	env, _ = storeEnv(t, env)
	r := start(t, env)
	admin := r.await(t, adminOn)[1]
	r.await(t, storeRecovered) // an exclusion waits for the round to be read back
	t.Cleanup(func() {
		r.cancel(errors.New("terminated signal received"))
		assert.Equal(t, 0, r.wait(t), "%s", r.stdout)
	})
	return &tlsCentral{r: r, admin: admin, certs: certs}
}

// operatorEnv is the operator's configuration for c: its admin address, the
// operator's pair and the CA; nothing else.
func (c *tlsCentral) operatorEnv(cert, key string) map[string]string {
	return map[string]string{"SERVER_ADMIN_ADDRESS": c.admin,
		"SERVER_OPERATOR_CERT": filepath.Join(c.certs, cert), "SERVER_OPERATOR_KEY": filepath.Join(c.certs, key),
		"SERVER_TLS_CLIENT_CA": filepath.Join(c.certs, pki.CAFile)}
}

// order runs `server args...` with env and returns its exit code and its one line.
func order(t *testing.T, env map[string]string, args ...string) (int, string) {
	t.Helper()
	r := start(t, env, args...)
	code := r.wait(t)
	assert.Empty(t, r.stderr.String())
	lines := r.stdout.Texts()
	require.Len(t, lines, 1, "one line:\n%s", r.stdout)
	return code, lines[0]
}

// The operator's commands against a real central: an exclusion and a reload
// delivered over TLS with the operator's certificate from `make certs`, and
// what the operator reads when the central refuses, cannot be reached, or
// refuses the certificate.
func TestOperatorCommands(t *testing.T) {
	c := startTLSCentral(t, nil)
	bare := startTLSCentral(t, map[string]string{"SERVER_TLS_REVOKED": ""}) // no revocation list
	operator := c.operatorEnv(pki.OperatorFile, pki.OperatorKeyFile)
	with := func(env map[string]string, k, v string) map[string]string {
		out := map[string]string{k: v}
		for key, val := range env {
			if key != k {
				out[key] = val
			}
		}
		return out
	}
	exclude := func(n int) []logfmt.Field {
		return []logfmt.Field{vocab.Orden.Str("exclude"), vocab.Agencia.Int(n), vocab.Direccion.Str(c.admin)}
	}
	reload := []logfmt.Field{vocab.Orden.Str("reload"), vocab.Direccion.Str(c.admin)}
	join := func(a []logfmt.Field, b ...logfmt.Field) []logfmt.Field {
		return append(append([]logfmt.Field(nil), a...), b...)
	}

	tests := []struct {
		name    string
		env     map[string]string
		args    []string
		code    int
		line    string   // the command's line, its values pat()-marked where they vary
		central []string // the parts of a line the central logs for it; none asserted when empty
	}{
		{"an exclusion", operator, []string{"exclude", "3", "-reason", "the host died for good"}, 0,
			`INFO     ` + vocab.OrdenAdmin.Line(logfmt.Success, join(exclude(3),
				vocab.Detalle.Str("agency 3 excluded by operator: the host died for good"))...),
			[]string{vocab.ExcluirAgencia.Line(logfmt.Success, vocab.Agencia.Int(3), vocab.Motivo.Str("the host died for good"),
				vocab.Operador.Str(identity.OperatorName))}},
		{"the flag first", operator, []string{"exclude", "-reason=audit", "4"}, 0,
			`INFO     ` + vocab.OrdenAdmin.Line(logfmt.Success, join(exclude(4),
				vocab.Detalle.Str("agency 4 excluded by operator: audit"))...),
			[]string{vocab.ExcluirAgencia.Line(logfmt.Success, vocab.Agencia.Int(4))}},
		{"an exclusion the central refuses", operator, []string{"exclude", "3", "-reason", "again"}, 1,
			`ERROR    ` + vocab.OrdenAdmin.Line(logfmt.Fail, join(exclude(3), vocab.CodigoHTTP.Int(409),
				vocab.Detalle.Str(pat(`.*agency 3.*`)))...),
			[]string{vocab.ExcluirAgencia.Line(logfmt.Fail, vocab.Agencia.Int(3))}},
		{"an agency not in the round", operator, []string{"exclude", "9", "-reason", "typo"}, 1,
			`ERROR    ` + vocab.OrdenAdmin.Line(logfmt.Fail, join(exclude(9), vocab.CodigoHTTP.Int(409),
				vocab.Detalle.Str(pat(`.*1\.\.5.*`)))...), nil},
		{"a reload", operator, []string{"reload"}, 0,
			`INFO     ` + vocab.OrdenAdmin.Line(logfmt.Success, join(reload, vocab.Detalle.Str(
				"revocation list reloaded by operator: 0 revoked, list number 1; live connections closed: none"))...),
			[]string{vocab.Revocaciones.Line(logfmt.Success, vocab.Operador.Str(identity.OperatorName),
				vocab.Archivo.Str(filepath.Join(c.certs, pki.RevokedFile)), vocab.Revocados.Int(0), vocab.NumeroLista.Int(1),
				vocab.Cortadas.Str("none"))}},
		{"a reload of a central without a list", bare.operatorEnv(pki.OperatorFile, pki.OperatorKeyFile), []string{"reload"}, 1,
			`ERROR    ` + vocab.OrdenAdmin.Line(logfmt.Fail, vocab.Orden.Str("reload"), vocab.Direccion.Str(bare.admin),
				vocab.CodigoHTTP.Int(409), vocab.Detalle.Str(pat(`.*this central has no revocation list: set SERVER_TLS_REVOKED.*`))), nil},
		{"an agency's certificate", c.operatorEnv(pki.AgencyFile(2), pki.AgencyKeyFile(2)), []string{"reload"}, 1,
			`ERROR    ` + vocab.OrdenAdmin.Line(logfmt.Fail, join(reload, vocab.CodigoHTTP.Int(403),
				vocab.Detalle.Str(pat(`this address takes an operator's certificate or none: .*names agency 2.*`)))...),
			[]string{vocab.RechazoAdmin.Line(logfmt.Fail), logfmttest.Fields(vocab.Metodo.Str("POST"),
				vocab.Ruta.Str("/actions/reload"), vocab.Motivo.Str(identity.ReasonAgencyCertificate))}},
		{"the central's certificate", c.operatorEnv(pki.CentralFile, pki.CentralKeyFile), []string{"exclude", "5", "-reason", "x"}, 1,
			`ERROR    ` + vocab.OrdenAdmin.Line(logfmt.Fail, join(exclude(5), vocab.CodigoHTTP.Int(403),
				vocab.Detalle.Str(pat(`.*common name "central" is not operator.*`)))...),
			[]string{vocab.RechazoAdmin.Line(logfmt.Fail), vocab.Motivo.Str(identity.ReasonNotOperator).String()}},
		{"a central its CA does not vouch for", with(operator, "SERVER_TLS_CLIENT_CA", otherCA(t)), []string{"reload"}, 1,
			`ERROR    ` + vocab.OrdenAdmin.Line(logfmt.Fail, join(reload, vocab.Motivo.Str(identity.ReasonUnknownAuthority),
				vocab.Error.Str(pat(`reload: Post "https://`+regexp.QuoteMeta(c.admin)+`/actions/reload": .*certificate signed by unknown authority.*`)))...), nil},
		{"the central unreachable", with(operator, "SERVER_ADMIN_ADDRESS", "127.0.0.1:1"), []string{"exclude", "2", "-reason", "x"}, 1,
			`ERROR    ` + vocab.OrdenAdmin.Line(logfmt.Fail, vocab.Orden.Str("exclude"), vocab.Agencia.Int(2),
				vocab.Direccion.Str("127.0.0.1:1"), vocab.Error.Str(pat(`exclude: Post "https://127.0.0.1:1/actions/exclude": .*connection refused`))), nil},
		{"every interface means loopback", with(operator, "SERVER_ADMIN_ADDRESS", strings.Replace(c.admin, "127.0.0.1", "0.0.0.0", 1)),
			[]string{"reload"}, 0,
			`INFO     ` + vocab.OrdenAdmin.Line(logfmt.Success, join(reload, vocab.Detalle.Str(pat(`revocation list reloaded by operator: .*`)))...),
			nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			code, line := order(t, tt.env, tt.args...)
			assert.Equal(t, tt.code, code)
			assert.Regexp(t, `^`+linePrefix[1:]+linePattern(tt.line)+`$`, line)
			if len(tt.central) > 0 {
				c.r.stdout.AwaitT(t, 1, tt.central...)
			}
		})
	}
}

// otherCA writes a CA that signed nothing of this central's, and returns its file.
func otherCA(t *testing.T) string {
	t.Helper()
	ca, err := pki.NewCA("another CA", time.Time{}, time.Time{})
	require.NoError(t, err)
	path := filepath.Join(t.TempDir(), "ca.pem")
	require.NoError(t, ca.WriteFiles(path, filepath.Join(t.TempDir(), "ca-key.pem")))
	return path
}

// A plaintext central has no TLS side on its admin address: the operator's
// command says the peer does not speak TLS.
func TestOperatorCommandPlaintextCentral(t *testing.T) {
	env, _ := storeEnv(t, map[string]string{"SERVER_ADMIN_ADDRESS": "127.0.0.1:0"})
	r := start(t, env)
	admin := r.await(t, adminOn)[1]
	certs := t.TempDir()
	_, err := pki.WriteDir(certs, 1, nil, false)
	require.NoError(t, err)
	code, line := order(t, map[string]string{"SERVER_ADMIN_ADDRESS": admin,
		"SERVER_OPERATOR_CERT": filepath.Join(certs, pki.OperatorFile), "SERVER_OPERATOR_KEY": filepath.Join(certs, pki.OperatorKeyFile),
		"SERVER_TLS_CLIENT_CA": filepath.Join(certs, pki.CAFile)}, "reload")
	assert.Equal(t, 1, code)
	assert.Regexp(t, linePattern(vocab.OrdenAdmin.Line(logfmt.Fail, vocab.Orden.Str("reload"), vocab.Direccion.Str(admin),
		vocab.Motivo.Str(identity.ReasonNotTLS), vocab.Error.Str(pat(`.*`))))+`$`, line)
	r.cancel(errors.New("terminated signal received"))
	require.Equal(t, 0, r.wait(t), "%s", r.stdout)
}

// A bad command line is exit 2 with the usage, and a configuration the
// commands cannot use is exit 2 with one line naming the variable: neither
// reaches any central.
func TestOperatorCommandUsage(t *testing.T) {
	dir := t.TempDir()
	_, err := pki.WriteDir(dir, 1, nil, false)
	require.NoError(t, err)
	good := map[string]string{"SERVER_ADMIN_ADDRESS": "127.0.0.1:1",
		"SERVER_OPERATOR_CERT": filepath.Join(dir, pki.OperatorFile), "SERVER_OPERATOR_KEY": filepath.Join(dir, pki.OperatorKeyFile),
		"SERVER_TLS_CLIENT_CA": filepath.Join(dir, pki.CAFile)}
	tests := []struct {
		name   string
		env    map[string]string
		args   []string
		code   int
		stdout string // a regexp; "" for nothing
		stderr string
	}{
		{"exclude without -reason", good, []string{"exclude", "3"}, 2, "",
			`(?s)^server: exclude: -reason is required: why the agency is excluded\n\nUsage:\n.*server exclude N -reason TEXT`},
		{"exclude with a blank -reason", good, []string{"exclude", "3", "-reason", "  "}, 2, "",
			`^server: exclude: -reason is required`},
		{"exclude with a line break in -reason", good, []string{"exclude", "3", "-reason", "a\nb"}, 2, "",
			`^server: exclude: -reason "a\\nb": no control character or '\|'\n`},
		{"exclude without an agency", good, []string{"exclude", "-reason", "x"}, 2, "",
			`^server: exclude: which agency\? \(server exclude N -reason TEXT\)\n`},
		{"exclude agency 0", good, []string{"exclude", "0", "-reason", "x"}, 2, "",
			`^server: exclude: agency "0": want a whole number from 1 to 4294967295\n`},
		{"exclude agency x", good, []string{"exclude", "x", "-reason", "x"}, 2, "", `^server: exclude: agency "x": want`},
		{"exclude two agencies", good, []string{"exclude", "3", "4", "-reason", "x"}, 2, "",
			`^server: exclude: unexpected argument "4"\n`},
		{"exclude with an unknown flag", good, []string{"exclude", "3", "-force"}, 2, "",
			`^server: exclude: flag provided but not defined: -force\n`},
		{"exclude -h", good, []string{"exclude", "-h"}, 0, `(?s)^Usage:\n.*SERVER_OPERATOR_CERT`, ""},
		{"reload with an argument", good, []string{"reload", "3"}, 2, "", `^server: reload: unexpected argument "3"\n`},
		{"reload -h", good, []string{"reload", "--help"}, 0, `^Usage:\n`, ""},
		{"no operator certificate", map[string]string{"SERVER_ADMIN_ADDRESS": "127.0.0.1:1"}, []string{"reload"}, 2, "",
			`ERROR    ` + regexp.QuoteMeta(vocab.Config.Line(logfmt.Fail, vocab.Error.Str(
				"SERVER_OPERATOR_CERT: required, the operator's certificate (make certs: .certs/operator.pem); "+
					"SERVER_OPERATOR_KEY: required, the operator's key (make certs: .certs/operator-key.pem); "+
					"SERVER_TLS_CLIENT_CA: required, the CA that signed the central's certificate (make certs: .certs/ca.pem)"))) + "\n$"},
		{"admin address off", map[string]string{"SERVER_ADMIN_ADDRESS": "off", "SERVER_OPERATOR_CERT": good["SERVER_OPERATOR_CERT"],
			"SERVER_OPERATOR_KEY": good["SERVER_OPERATOR_KEY"], "SERVER_TLS_CLIENT_CA": good["SERVER_TLS_CLIENT_CA"]},
			[]string{"exclude", "1", "-reason", "x"}, 2, "",
			regexp.QuoteMeta(`SERVER_ADMIN_ADDRESS: "off" is off: the operator's commands reach the central on its admin address (host:port)`)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := start(t, tt.env, tt.args...)
			assert.Equal(t, tt.code, r.wait(t))
			if tt.stdout == "" {
				assert.Empty(t, r.stdout.String())
			} else {
				assert.Regexp(t, tt.stdout, r.stdout.String())
			}
			if tt.stderr == "" {
				assert.Empty(t, r.stderr.String())
			} else {
				assert.Regexp(t, tt.stderr, r.stderr.String())
			}
		})
	}
}

// SERVER_PPROF=1 serves the profiler to an operator over TLS, and to no one
// else; unset, it answers no one. The config line says which.
func TestProfilerSwitch(t *testing.T) {
	tests := []struct {
		name     string
		pprof    string
		config   string // the config line's pprof field
		operator int    // what an operator over TLS gets
		plain    int    // what plain HTTP gets
	}{
		{"SERVER_PPROF=1", "1", "on", http.StatusOK, http.StatusForbidden},
		{"SERVER_PPROF unset", "", "off", http.StatusNotFound, http.StatusNotFound},
		{"SERVER_PPROF=0", "0", "off", http.StatusNotFound, http.StatusNotFound},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := startTLSCentral(t, map[string]string{"SERVER_PPROF": tt.pprof})
			assert.Equal(t, 1, c.r.stdout.Count(vocab.Config.Line(logfmt.Success), "| "+vocab.Pprof.Str(tt.config).String()+" | "))
			tlsConf, err := identity.ClientConfig(filepath.Join(c.certs, pki.OperatorFile),
				filepath.Join(c.certs, pki.OperatorKeyFile), filepath.Join(c.certs, pki.CAFile), "127.0.0.1")
			require.NoError(t, err)
			for _, get := range []struct {
				url    string
				client *http.Client
				want   int
			}{
				{"https://" + c.admin + "/debug/pprof/", &http.Client{Transport: &http.Transport{TLSClientConfig: tlsConf}}, tt.operator},
				{"http://" + c.admin + "/debug/pprof/", &http.Client{Transport: &http.Transport{}}, tt.plain},
				{"https://" + c.admin + "/metrics", &http.Client{Transport: &http.Transport{TLSClientConfig: tlsConf}}, http.StatusOK},
			} {
				resp, err := get.client.Get(get.url)
				require.NoError(t, err)
				resp.Body.Close()
				get.client.CloseIdleConnections()
				assert.Equal(t, get.want, resp.StatusCode, get.url)
			}
		})
	}
}

// SERVER_PPROF=1 without mutual TLS could serve no one: a configuration mistake.
func TestProfilerNeedsTLS(t *testing.T) {
	env, dir := storeEnv(t, map[string]string{"SERVER_PPROF": "1"})
	r := start(t, env)
	assert.Equal(t, 2, r.wait(t))
	assert.Contains(t, r.stderr.String(), vocab.Config.Line(logfmt.Fail, vocab.Error.Str(`SERVER_PPROF: "1" needs the admin listener`)))
	assertEmptyDir(t, dir)
}
