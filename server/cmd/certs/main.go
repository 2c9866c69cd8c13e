// Command certs writes the project's certificates for mutual TLS: a CA, its
// revocation list, the central's certificate, the operator's (for the
// central's admin address) and one per agency, following the identity rule
// of protocol/SPEC.md. `make certs` runs it:
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
//
// An operator whose agency's key was stolen revokes its certificate, and
// gives the agency a new one (`make revoke`, `make reissue`):
//
//	go run ./server/cmd/certs -dir .certs -revoke N|operator ... -reissue N|operator ...
//
// The certificate's serial number goes onto revoked.pem, an X.509 CRL signed
// by the CA, which the central reads at start and again on `server reload`
// or SIGHUP.
package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"math/big"
	"os"
	"strconv"
	"strings"

	"lotterycentral.example/lottery/logfmt"
	"lotterycentral.example/protocol/identity"
	"lotterycentral.example/protocol/pki"
	"lotterycentral.example/server/internal/vocab"
)

func main() { os.Exit(run(os.Args[1:], os.Stdout)) }

const usage = `usage: certs [-dir .certs] [-agencies 5] [-host name]... [-replace]
       certs [-dir .certs] [-revoke N|operator]... [-reissue N|operator]...

Writes, into -dir (mode 0700): ca.pem and ca-key.pem (the CA), revoked.pem (its
revocation list, empty at first), central.pem and central-key.pem (the central:
names server, localhost, 127.0.0.1, ::1 and every -host), operator.pem and
operator-key.pem (an operator, for the central's admin address), agency-N.pem
and agency-N-key.pem for N in 1..-agencies. Keys are mode 0600. What exists and
is still valid (and not revoked) is kept; what is missing is added. -replace
makes a new CA and reissues everything: give every -host again. Prints one line
per certificate made, then one counting them (alone when nothing changed).

-revoke N puts agency N's current certificate (operator: the operator's) onto
revoked.pem; -reissue N does too, then gives it a new certificate and key in
place of its files. Then have the central read the list: server reload, or
SIGHUP. Prints one line per certificate revoked, one for the list, and one per
certificate reissued.

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

// holderList is a repeatable flag naming whose certificate to revoke: an
// agency's number, or "operator".
type holderList []pki.Holder

func (h *holderList) String() string { return fmt.Sprint(len(*h)) }

func (h *holderList) Set(v string) error {
	if v == identity.OperatorName {
		*h = append(*h, pki.Holder{})
		return nil
	}
	n, err := strconv.ParseUint(v, 10, 32)
	if err != nil || n == 0 || v[0] == '0' || v[0] == '+' {
		return fmt.Errorf("%q: want an agency's number (1 or more) or %s", v, identity.OperatorName)
	}
	*h = append(*h, pki.Holder{Agency: int(n)})
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
	var revoke, reissue holderList
	fs.Var(&revoke, "revoke", "put agency N's certificate (or the operator's: operator) on revoked.pem (repeatable)")
	fs.Var(&reissue, "reissue", "revoke agency N's certificate (or the operator's) and issue it a new one (repeatable)")
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
	if len(revoke)+len(reissue) > 0 {
		var other []string
		fs.Visit(func(f *flag.Flag) {
			if f.Name != "dir" && f.Name != "revoke" && f.Name != "reissue" {
				other = append(other, "-"+f.Name)
			}
		})
		if len(other) > 0 {
			log.Error(vocab.Certs, logfmt.Fail, vocab.Error.Str(fmt.Sprintf(
				"-revoke and -reissue take only -dir, not %s: run make certs apart", strings.Join(other, " "))))
			return 2
		}
		for i := range reissue {
			reissue[i].Reissue = true
		}
		return revokeIn(log, *dir, append(revoke, reissue...))
	}

	rep, err := pki.WriteDir(*dir, *agencies, hosts, *replace)
	certs := rep.Certificates()
	for _, f := range rep.Files {
		switch {
		case f.Key, f.State == pki.Kept:
			continue
		case f.List:
			listLine(log, f, rep.Listed, rep.ListNumber, "")
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

// listLine logs the revocation list written (or kept), with how many
// certificates it names and its number (the central's revocaciones line
// says which it enforces), and aviso if not empty.
func listLine(log *logfmt.Logger, f pki.FileResult, listed int, number *big.Int, aviso string) {
	fields := []logfmt.Field{vocab.Archivo.Str(f.Path), vocab.Estado.Str(estados[f.State])}
	if f.Reason != "" {
		fields = append(fields, vocab.Motivo.Str(f.Reason))
	}
	fields = append(fields, vocab.Revocados.Int(listed), vocab.NumeroLista.Any(number))
	if aviso != "" {
		fields = append(fields, vocab.Aviso.Str(aviso))
	}
	log.Info(vocab.ListaRevocacion, logfmt.Success, fields...)
}

// revokeIn revokes, and reissues, the holders' certificates in dir.
func revokeIn(log *logfmt.Logger, dir string, holders []pki.Holder) int {
	rep, err := pki.RevokeDir(dir, holders)
	// The report holds what was done before a failure: each step is logged.
	for _, r := range rep.Revoked {
		estado := "revocado"
		if r.Already {
			estado = "ya_revocado"
		}
		log.Info(vocab.Revocar, logfmt.Success, vocab.Archivo.Str(r.Path), vocab.Serie.Str(identity.SerialText(r.Serial)),
			vocab.Estado.Str(estado))
	}
	if rep.List.Path != "" {
		aviso := ""
		if rep.List.State != pki.Kept {
			aviso = "a running central enforces it once told: server reload, or SIGHUP"
		}
		listLine(log, rep.List, rep.Listed, rep.Number, aviso)
	}
	for _, r := range rep.Revoked {
		if r.Reissued != nil {
			log.Info(vocab.Certificado, logfmt.Success, vocab.Archivo.Str(r.Path), vocab.Estado.Str(estados[pki.Replaced]),
				vocab.Motivo.Str("revoked, reissued"), vocab.Serie.Str(identity.SerialText(r.Reissued.Cert.SerialNumber)))
		}
	}
	if err != nil {
		log.Error(vocab.Certs, logfmt.Fail, vocab.Error.Any(err))
		return 1
	}
	return 0
}
