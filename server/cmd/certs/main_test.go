package main

import (
	"bytes"
	"crypto/x509"
	"net"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"lotterycentral.example/lottery/logfmt"
	"lotterycentral.example/protocol/identity"
	"lotterycentral.example/protocol/pki"
	"lotterycentral.example/server/internal/vocab"
)

// lineRE is one log line: timestamp, padded level, message.
var lineRE = regexp.MustCompile(`^\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2} (INFO |ERROR) +(action: .*)$`)

// messages runs the command and returns its exit code and the message of each log line.
func messages(t *testing.T, args ...string) (int, []string) {
	t.Helper()
	var out bytes.Buffer
	code := run(args, &out)
	var msgs []string
	for line := range strings.Lines(out.String()) {
		m := lineRE.FindStringSubmatch(strings.TrimSuffix(line, "\n"))
		require.NotNil(t, m, "log line %q", line)
		msgs = append(msgs, m[2])
	}
	return code, msgs
}

// fileLine is the line of one certificate made or replaced; extra fields follow.
func fileLine(dir, name, estado string, extra ...logfmt.Field) string {
	return vocab.Certificado.Line(logfmt.Success,
		append([]logfmt.Field{vocab.Archivo.Str(filepath.Join(dir, name)), vocab.Estado.Str(estado)}, extra...)...)
}

// listLine is the line of the revocation list written or kept; extra fields follow.
func listFileLine(dir, estado string, revocados, numero int, extra ...logfmt.Field) string {
	return vocab.ListaRevocacion.Line(logfmt.Success, append([]logfmt.Field{vocab.Archivo.Str(filepath.Join(dir, pki.RevokedFile)),
		vocab.Estado.Str(estado), vocab.Revocados.Int(revocados), vocab.NumeroLista.Int(numero)}, extra...)...)
}

// runLine is the line of a run that succeeded.
func runLine(dir string, agencias, creados, existentes, reemplazados int) string {
	return vocab.Certs.Line(logfmt.Success, vocab.Directorio.Str(dir), vocab.Agencias.Int(agencias),
		vocab.Creados.Int(creados), vocab.Existentes.Int(existentes), vocab.Reemplazados.Int(reemplazados))
}

func TestRun(t *testing.T) {
	dir := filepath.Join(t.TempDir(), ".certs")
	tests := []struct {
		name  string
		args  []string
		code  int
		want  []string // lines expected among the output, in this order
		lines int      // how many lines the output has
	}{
		{
			name: "first run creates everything",
			args: []string{"-dir", dir, "-agencies", "3", "-host", "lottery.example,192.0.2.1", "-host", "central.example"},
			// One line per certificate, the key beside it unmentioned.
			want: []string{
				fileLine(dir, "ca.pem", "creado"), listFileLine(dir, "creado", 0, 1), fileLine(dir, "central.pem", "creado"),
				fileLine(dir, "operator.pem", "creado"),
				fileLine(dir, "agency-1.pem", "creado"), fileLine(dir, "agency-2.pem", "creado"),
				fileLine(dir, "agency-3.pem", "creado"),
				runLine(dir, 3, 6, 0, 0),
			},
			lines: 8,
		},
		{
			// Nothing changed: one line.
			name:  "second run keeps everything",
			args:  []string{"-dir", dir, "-agencies", "3"},
			want:  []string{runLine(dir, 3, 0, 6, 0)},
			lines: 1,
		},
		{
			name:  "more agencies adds theirs",
			args:  []string{"-dir", dir, "-agencies", "4"},
			want:  []string{fileLine(dir, "agency-4.pem", "creado"), runLine(dir, 4, 1, 6, 0)},
			lines: 2,
		},
		{
			name: "replace reissues everything",
			args: []string{"-dir", dir, "-agencies", "4", "-replace", "-host", "lottery.example,192.0.2.1,central.example"},
			want: []string{
				fileLine(dir, "ca.pem", "reemplazado", vocab.Motivo.Str("replace requested")),
				vocab.ListaRevocacion.Line(logfmt.Success, vocab.Archivo.Str(filepath.Join(dir, pki.RevokedFile)),
					vocab.Estado.Str("reemplazado"), vocab.Motivo.Str("replace requested"), vocab.Revocados.Int(0), vocab.NumeroLista.Int(1)),
				fileLine(dir, "operator.pem", "reemplazado", vocab.Motivo.Str("replace requested")),
				fileLine(dir, "agency-4.pem", "reemplazado", vocab.Motivo.Str("replace requested")),
				runLine(dir, 4, 0, 0, 7),
			},
			lines: 9,
		},
		{
			name:  "unknown flag",
			args:  []string{"-dir", dir, "-bogus"},
			code:  2,
			want:  []string{vocab.Certs.Line(logfmt.Fail, vocab.Error.Str("flag provided but not defined: -bogus"))},
			lines: 1,
		},
		{
			name:  "negative agencies",
			args:  []string{"-dir", dir, "-agencies", "-1"},
			code:  2,
			want:  []string{vocab.Certs.Line(logfmt.Fail, vocab.Error.Str("-agencies -1: must be 0 or more"))},
			lines: 1,
		},
		{
			name:  "stray argument",
			args:  []string{"-dir", dir, "extra"},
			code:  2,
			want:  []string{vocab.Certs.Line(logfmt.Fail, vocab.Error.Str(`unexpected argument "extra"`))},
			lines: 1,
		},
		{
			name:  "bad host",
			args:  []string{"-dir", dir, "-host", "not a host"},
			code:  1,
			want:  []string{vocab.Certs.Line(logfmt.Fail, vocab.Error.Str(`write certificates: host "not a host" is neither an IP address nor a DNS name`))},
			lines: 1,
		},
		{
			name:  "directory that is a file",
			args:  []string{"-dir", filepath.Join(dir, "ca.pem")},
			code:  1,
			want:  []string{vocab.Certs.Line(logfmt.Fail, vocab.Error.Str("create certificate directory: "))},
			lines: 1,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			code, msgs := messages(t, tt.args...)
			assert.Equal(t, tt.code, code)
			assert.Len(t, msgs, tt.lines, "%s", strings.Join(msgs, "\n"))
			i := 0
			for _, m := range msgs {
				if i < len(tt.want) && strings.HasPrefix(m, tt.want[i]) {
					i++
				}
			}
			assert.Equal(t, len(tt.want), i, "missing %q in:\n%s", tt.want[min(i, len(tt.want)-1)], strings.Join(msgs, "\n"))
		})
	}

	// The -host values, split on commas, are in the central's certificate.
	// (-replace forgets the names not given again.)
	central, err := pki.LoadCert(filepath.Join(dir, pki.CentralFile), filepath.Join(dir, pki.CentralKeyFile))
	require.NoError(t, err)
	for _, host := range []string{"server", "lottery.example", "central.example", "192.0.2.1"} {
		_, err := central.Cert.Verify(x509.VerifyOptions{Roots: mustCA(t, dir).Pool(), DNSName: host,
			KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}})
		assert.NoError(t, err, host)
	}
	assert.True(t, central.Cert.IPAddresses[len(central.Cert.IPAddresses)-1].Equal(net.ParseIP("192.0.2.1")))
}

// The operator's pair is written once, by the first run, and kept byte for
// byte by the next ones (a run that changes nothing says so in one line).
func TestOperatorKept(t *testing.T) {
	dir := filepath.Join(t.TempDir(), ".certs")
	read := func() (cert, key []byte) {
		t.Helper()
		cert, err := os.ReadFile(filepath.Join(dir, pki.OperatorFile))
		require.NoError(t, err)
		key, err = os.ReadFile(filepath.Join(dir, pki.OperatorKeyFile))
		require.NoError(t, err)
		return cert, key
	}
	code, msgs := messages(t, "-dir", dir, "-agencies", "1")
	require.Equal(t, 0, code, "%s", strings.Join(msgs, "\n"))
	assert.Contains(t, msgs, fileLine(dir, pki.OperatorFile, "creado"))
	cert, key := read()
	op, err := pki.LoadCert(filepath.Join(dir, pki.OperatorFile), filepath.Join(dir, pki.OperatorKeyFile))
	require.NoError(t, err)
	name, err := identity.OperatorOf(op.Cert)
	require.NoError(t, err)
	assert.Equal(t, identity.OperatorName, name)

	for run := range 2 {
		code, msgs = messages(t, "-dir", dir, "-agencies", "1")
		require.Equal(t, 0, code)
		assert.Equal(t, []string{runLine(dir, 1, 0, 4, 0)}, msgs, "run %d", run+2)
		c, k := read()
		assert.Equal(t, cert, c, "operator.pem kept")
		assert.Equal(t, key, k, "operator-key.pem kept")
	}
}

func mustCA(t *testing.T, dir string) *pki.CA {
	t.Helper()
	ca, err := pki.LoadCA(filepath.Join(dir, pki.CAFile), filepath.Join(dir, pki.CAKeyFile))
	require.NoError(t, err)
	return ca
}

func TestHelp(t *testing.T) {
	for _, arg := range []string{"-h", "-help", "--help"} {
		t.Run(arg, func(t *testing.T) {
			var out bytes.Buffer
			assert.Equal(t, 0, run([]string{arg}, &out))
			assert.Contains(t, out.String(), "usage: certs [-dir .certs] [-agencies 5] [-host name]... [-replace]")
			assert.Contains(t, out.String(), "certs [-dir .certs] [-revoke N|operator]... [-reissue N|operator]...")
			assert.Contains(t, out.String(), "-replace")
		})
	}
}

// An operator revokes agency 2's certificate, and reissues it: the old serial
// goes onto revoked.pem (verified by the CA, one number up), the new
// certificate is good, and each step is one line. What it refuses is one
// line, exit 2 for a bad command line, 1 for what it could not do.
func TestRevoke(t *testing.T) {
	dir := filepath.Join(t.TempDir(), ".certs")
	code, msgs := messages(t, "-dir", dir, "-agencies", "3")
	require.Equal(t, 0, code, "%s", strings.Join(msgs, "\n"))
	serial := func(name string) string {
		t.Helper()
		c, err := pki.LoadCert(filepath.Join(dir, name), filepath.Join(dir, strings.TrimSuffix(name, ".pem")+"-key.pem"))
		require.NoError(t, err)
		return identity.SerialText(c.Cert.SerialNumber)
	}
	revokeLine := func(name, serie, estado string) string {
		return vocab.Revocar.Line(logfmt.Success, vocab.Archivo.Str(filepath.Join(dir, name)), vocab.Serie.Str(serie),
			vocab.Estado.Str(estado))
	}
	const aviso = "a running central enforces it once told: server reload, or SIGHUP"
	agency2, agency3, operator := serial(pki.AgencyFile(2)), serial(pki.AgencyFile(3)), serial(pki.OperatorFile)

	tests := []struct {
		name string
		args []string
		code int
		want func() []string // every line, in order
	}{
		{"revoke agency 3", []string{"-revoke", "3"}, 0, func() []string {
			return []string{revokeLine(pki.AgencyFile(3), agency3, "revocado"),
				listFileLine(dir, "reemplazado", 1, 2, vocab.Aviso.Str(aviso))}
		}},
		{"revoke it again", []string{"-revoke", "3"}, 0, func() []string {
			return []string{revokeLine(pki.AgencyFile(3), agency3, "ya_revocado"), listFileLine(dir, "existente", 1, 2)}
		}},
		{"reissue agency 2", []string{"-reissue", "2"}, 0, func() []string {
			return []string{revokeLine(pki.AgencyFile(2), agency2, "revocado"),
				listFileLine(dir, "reemplazado", 2, 3, vocab.Aviso.Str(aviso)),
				fileLine(dir, pki.AgencyFile(2), "reemplazado", vocab.Motivo.Str("revoked, reissued"),
					vocab.Serie.Str(serial(pki.AgencyFile(2))))}
		}},
		{"reissue the operator", []string{"-dir", dir, "-reissue", "operator"}, 0, func() []string {
			return []string{revokeLine(pki.OperatorFile, operator, "revocado"),
				listFileLine(dir, "reemplazado", 3, 4, vocab.Aviso.Str(aviso)),
				fileLine(dir, pki.OperatorFile, "reemplazado", vocab.Motivo.Str("revoked, reissued"),
					vocab.Serie.Str(serial(pki.OperatorFile)))}
		}},
		{"an agency without a certificate", []string{"-revoke", "7"}, 1, func() []string {
			return []string{vocab.Certs.Line(logfmt.Fail, vocab.Error.Str("revoke: read certificate: open "+
				filepath.Join(dir, pki.AgencyFile(7))+": no such file or directory"))}
		}},
		{"agency 0", []string{"-revoke", "0"}, 2, func() []string {
			return []string{vocab.Certs.Line(logfmt.Fail, vocab.Error.Str(
				`invalid value "0" for flag -revoke: "0": want an agency's number (1 or more) or operator`))}
		}},
		{"a name", []string{"-reissue", "agency-2"}, 2, func() []string {
			return []string{vocab.Certs.Line(logfmt.Fail, vocab.Error.Str(
				`invalid value "agency-2" for flag -reissue: "agency-2": want an agency's number (1 or more) or operator`))}
		}},
		{"with make certs' flags", []string{"-revoke", "2", "-agencies", "3", "-replace"}, 2, func() []string {
			return []string{vocab.Certs.Line(logfmt.Fail, vocab.Error.Str(
				"-revoke and -reissue take only -dir, not -agencies -replace: run make certs apart"))}
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			args := tt.args
			if args[0] != "-dir" {
				args = append([]string{"-dir", dir}, args...)
			}
			code, msgs := messages(t, args...)
			assert.Equal(t, tt.code, code)
			assert.Equal(t, tt.want(), msgs)
		})
	}

	// What the central reads: revoked.pem, signed by the CA, names the old
	// certificates and not the new ones; make certs keeps it, and reissues
	// agency 3's revoked one.
	ca := mustCA(t, dir)
	list, err := identity.LoadRevocations(filepath.Join(dir, pki.RevokedFile), []*x509.Certificate{ca.Cert.Cert})
	require.NoError(t, err)
	assert.Equal(t, 3, list.Len())
	for _, name := range []string{pki.AgencyFile(1), pki.AgencyFile(2), pki.OperatorFile} {
		c, err := pki.LoadCert(filepath.Join(dir, name), filepath.Join(dir, strings.TrimSuffix(name, ".pem")+"-key.pem"))
		require.NoError(t, err)
		assert.False(t, list.Revoked(c.Cert), name)
	}
	code, msgs = messages(t, "-dir", dir, "-agencies", "3")
	require.Equal(t, 0, code)
	assert.Equal(t, []string{fileLine(dir, pki.AgencyFile(3), "reemplazado", vocab.Motivo.Str("revoked (revoked.pem)")),
		runLine(dir, 3, 0, 5, 1)}, msgs)
}
