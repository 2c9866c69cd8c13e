// Command certs writes the project's certificates for mutual TLS: a CA, the
// central's certificate, the operator's (for the central's admin address)
// and one per agency, following the identity rule of protocol/SPEC.md. `make certs` runs it:
//
//	go run ./server/cmd/certs -dir .certs -agencies 5 [-host name]... [-replace]
//
// It is idempotent: it keeps what exists and is valid, and adds what is
// missing (a larger -agencies, a new -host). -replace makes a new CA and
// reissues everything, which invalidates every certificate handed out before.
//
// It prints one line per certificate it made (with its key), then one line
// counting the certificates made, kept and replaced: when nothing changed,
// that line alone.
package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"

	"lotterycentral.example/lottery/logfmt"
	"lotterycentral.example/protocol/pki"
	"lotterycentral.example/server/internal/vocab"
)

func main() { os.Exit(run(os.Args[1:], os.Stdout)) }

const usage = `usage: certs [-dir .certs] [-agencies 5] [-host name]... [-replace]

Writes, into -dir (mode 0700): ca.pem and ca-key.pem (the CA), central.pem and
central-key.pem (the central: names server, localhost, 127.0.0.1, ::1 and every
-host), operator.pem and operator-key.pem (an operator, for the central's admin
address), agency-N.pem and agency-N-key.pem for N in 1..-agencies. Keys are mode
0600. What exists and is still valid is kept; what is missing is added.
-replace makes a new CA and reissues everything: give every -host again.
Prints one line per certificate made, then one counting them (alone when
nothing changed).

`

// hostList is a repeatable flag whose values may also be comma-separated.
type hostList []string

func (h *hostList) String() string { return strings.Join(*h, ",") }

func (h *hostList) Set(v string) error {
	for part := range strings.SplitSeq(v, ",") {
		if part = strings.TrimSpace(part); part != "" {
			*h = append(*h, part)
		}
	}
	return nil
}

// estados are the states of the log lines.
var estados = map[pki.State]string{
	pki.Created:  "creado",
	pki.Kept:     "existente",
	pki.Replaced: "reemplazado",
}

// run is the command; it returns the exit code: 0 done, 1 failed, 2 bad usage.
func run(args []string, stdout io.Writer) int {
	log, _ := logfmt.New(stdout, "info")

	fs := flag.NewFlagSet("certs", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	dir := fs.String("dir", ".certs", "directory of the certificates and keys")
	agencies := fs.Int("agencies", 5, "agencies 1..N to issue certificates for")
	var hosts hostList
	fs.Var(&hosts, "host", "extra DNS name or IP address of the central (repeatable, or comma-separated)")
	replace := fs.Bool("replace", false, "make a new CA and reissue every certificate")
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			fmt.Fprint(stdout, usage)
			fs.SetOutput(stdout)
			fs.PrintDefaults()
			return 0
		}
		log.Error(vocab.Certs, logfmt.Fail, vocab.Error.Any(err))
		return 2
	}
	switch {
	case fs.NArg() > 0:
		log.Error(vocab.Certs, logfmt.Fail, vocab.Error.Str(fmt.Sprintf("unexpected argument %q", fs.Arg(0))))
		return 2
	case *agencies < 0:
		log.Error(vocab.Certs, logfmt.Fail, vocab.Error.Str(fmt.Sprintf("-agencies %d: must be 0 or more", *agencies)))
		return 2
	}

	rep, err := pki.WriteDir(*dir, *agencies, hosts, *replace)
	certs := rep.Certificates()
	for _, f := range certs.Files {
		if f.State == pki.Kept {
			continue
		}
		fields := []logfmt.Field{vocab.Archivo.Str(f.Path), vocab.Estado.Str(estados[f.State])}
		if f.Reason != "" {
			fields = append(fields, vocab.Motivo.Str(f.Reason))
		}
		log.Info(vocab.Certificado, logfmt.Success, fields...)
	}
	if err != nil {
		log.Error(vocab.Certs, logfmt.Fail, vocab.Error.Any(err))
		return 1
	}
	log.Info(vocab.Certs, logfmt.Success, vocab.Directorio.Str(*dir), vocab.Agencias.Int(*agencies),
		vocab.Creados.Int(certs.Count(pki.Created)), vocab.Existentes.Int(certs.Count(pki.Kept)),
		vocab.Reemplazados.Int(certs.Count(pki.Replaced)))
	return 0
}
