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
				fileLine(dir, "ca.pem", "creado"), fileLine(dir, "central.pem", "creado"),
				fileLine(dir, "operator.pem", "creado"),
				fileLine(dir, "agency-1.pem", "creado"), fileLine(dir, "agency-2.pem", "creado"),
				fileLine(dir, "agency-3.pem", "creado"),
				runLine(dir, 3, 6, 0, 0),
			},
			lines: 7,
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
				fileLine(dir, "operator.pem", "reemplazado", vocab.Motivo.Str("replace requested")),
				fileLine(dir, "agency-4.pem", "reemplazado", vocab.Motivo.Str("replace requested")),
				runLine(dir, 4, 0, 0, 7),
			},
			lines: 8,
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
			assert.Contains(t, out.String(), "-replace")
		})
	}
}
