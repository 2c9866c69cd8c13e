package admin

import (
	"context"
	"crypto/x509"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"unicode"
	"unicode/utf8"

	"lotterycentral.example/lottery/logfmt"
	"lotterycentral.example/protocol/identity"
	"lotterycentral.example/server/internal/vocab"
)

// Operator is what the operator's actions do; the central implements it,
// and logs each action it takes or refuses. An error is a refusal: its text
// is told to the operator (409).
type Operator interface {
	// Exclude takes agency out of the round, for reason, on operator's word.
	Exclude(agency int, reason, operator string) error
	// ReloadRevocations reads the revocation list again and enforces it; it
	// returns what it did, for the operator.
	ReloadRevocations(operator string) (string, error)
	// CheckRevoked is an error wrapping identity.ErrRevoked when the
	// revocation list in force names cert: a revoked operator's certificate
	// is refused here as an agency's is on the agencies' port.
	CheckRevoked(cert *x509.Certificate) error
}

// The reasons (motivo) the admin layer refuses a request for, beside those of
// identity.DescribeOperatorError (no_certificate, agency_certificate,
// not_operator, unknown_authority, expired, invalid_certificate).
const (
	ReasonNotTLS        = identity.ReasonNotTLS // an action or the profiler over plain HTTP
	ReasonMethod        = "method_not_allowed"  // an action is a POST
	ReasonBadRequest    = "bad_request"         // an action's form is missing or wrong
	ReasonUnknownAction = "unknown_action"
	ReasonPprofOff      = "pprof_off" // the profiler without SERVER_PPROF=1
)

// The actions, as /actions/<name> and the operator's commands name them.
const (
	ActionExclude = "exclude"
	ActionReload  = "reload"
)

// An action's form: the agency and the reason of an exclusion.
const (
	FieldAgency = "agency"
	FieldReason = "reason"
)

// maxForm bounds an action's body; MaxReason an exclusion's reason, in
// bytes: what an ERROR's text, and the operator journal, hold.
const (
	maxForm   = 4 << 10
	MaxReason = 1024
)

// operatorKey holds, in a request's context, the operator its certificate names.
type operatorKey struct{}

// identify checks the client certificate of a request over TLS, if it
// brought one: an operator's that is not revoked passes, its name in the
// request's context; any other certificate is refused (403) whatever the path.
func (h *Handler) identify(w http.ResponseWriter, r *http.Request) (*http.Request, bool) {
	if r.TLS == nil || len(r.TLS.PeerCertificates) == 0 {
		return r, true
	}
	name, err := identity.VerifyOperator(*r.TLS, h.roots)
	if err == nil && h.op != nil {
		err = h.op.CheckRevoked(r.TLS.PeerCertificates[0])
	}
	if err != nil {
		h.refuse(w, r, http.StatusForbidden, identity.DescribeOperatorError(err), name,
			"this address takes an operator's certificate or none: "+err.Error())
		return nil, false
	}
	return r.WithContext(context.WithValue(r.Context(), operatorKey{}, name)), true
}

// operatorOf is the operator r comes from, or refuses r (403): it came over
// plain HTTP, or over TLS without a certificate.
func (h *Handler) operatorOf(w http.ResponseWriter, r *http.Request) (string, bool) {
	if name, ok := r.Context().Value(operatorKey{}).(string); ok {
		return name, true
	}
	switch {
	case h.roots == nil:
		h.refuse(w, r, http.StatusForbidden, ReasonNotTLS, "",
			"this central runs without TLS (SERVER_TLS_*): no operator can act on it")
	case r.TLS == nil:
		h.refuse(w, r, http.StatusForbidden, ReasonNotTLS, "",
			"operators only: connect over TLS with an operator's certificate (this request came over plain HTTP)")
	default:
		h.refuse(w, r, http.StatusForbidden, identity.ReasonNoCertificate, "",
			"operators only: present an operator's client certificate (this request came without one)")
	}
	return "", false
}

// action serves /actions/{action}: POST, by an operator.
func (h *Handler) action(w http.ResponseWriter, r *http.Request) {
	operator, ok := h.operatorOf(w, r)
	if !ok {
		return
	}
	if r.Method != http.MethodPost {
		w.Header().Set("Allow", http.MethodPost)
		h.refuse(w, r, http.StatusMethodNotAllowed, ReasonMethod, operator, r.Method+": an action is a POST")
		return
	}
	switch name := r.PathValue("action"); name {
	case ActionExclude:
		h.exclude(w, r, operator)
	case ActionReload:
		h.reload(w, r, operator)
	default:
		h.refuse(w, r, http.StatusNotFound, ReasonUnknownAction, operator,
			fmt.Sprintf("no action %q: %s or %s", name, ActionExclude, ActionReload))
	}
}

// exclude reads the agency and the reason (a form) and asks the central.
func (h *Handler) exclude(w http.ResponseWriter, r *http.Request, operator string) {
	agency, reason, err := excludeForm(w, r)
	if err != nil {
		h.refuse(w, r, http.StatusBadRequest, ReasonBadRequest, operator, err.Error())
		return
	}
	if err := h.op.Exclude(agency, reason, operator); err != nil {
		reply(w, http.StatusConflict, err.Error())
		return
	}
	reply(w, http.StatusOK, fmt.Sprintf("agency %d excluded by %s: %s", agency, operator, reason))
}

func (h *Handler) reload(w http.ResponseWriter, r *http.Request, operator string) {
	done, err := h.op.ReloadRevocations(operator)
	if err != nil {
		reply(w, http.StatusConflict, err.Error())
		return
	}
	reply(w, http.StatusOK, done)
}

// excludeForm reads an exclusion's form (application/x-www-form-urlencoded,
// in the body): agency, a whole number 1..identity.MaxAgency (whether the
// round has it is the central's to say), and reason, required.
func excludeForm(w http.ResponseWriter, r *http.Request) (int, string, error) {
	r.Body = http.MaxBytesReader(w, r.Body, maxForm)
	if err := r.ParseForm(); err != nil {
		return 0, "", fmt.Errorf("read the form: %w", err)
	}
	text := r.PostForm.Get(FieldAgency)
	if text == "" {
		return 0, "", fmt.Errorf("%s: required (a form field, application/x-www-form-urlencoded)", FieldAgency)
	}
	agency, err := ParseAgency(text)
	if err != nil {
		return 0, "", err
	}
	reason, err := CheckReason(r.PostForm.Get(FieldReason))
	if err != nil {
		return 0, "", err
	}
	return agency, reason, nil
}

// ParseAgency reads an agency's number as an exclusion names it: decimal, no
// sign, no leading zero, 1..identity.MaxAgency.
func ParseAgency(text string) (int, error) {
	n, err := strconv.ParseUint(text, 10, 32)
	if err != nil || n == 0 || text[0] == '+' || text[0] == '0' {
		return 0, fmt.Errorf("%s %q: want a whole number from 1 to %d", FieldAgency, text, uint64(identity.MaxAgency))
	}
	return int(n), nil
}

// CheckReason returns an exclusion's reason without its outer spaces, or
// why it cannot be one: it is required, at most MaxReason bytes of UTF-8,
// and holds no control character and no '|' (they would break or forge a
// log line).
func CheckReason(reason string) (string, error) {
	reason = strings.TrimSpace(reason)
	switch {
	case reason == "":
		return "", errors.New(FieldReason + ": required: why the agency is excluded")
	case len(reason) > MaxReason:
		return "", fmt.Errorf("%s: %d bytes, at most %d", FieldReason, len(reason), MaxReason)
	case !utf8.ValidString(reason):
		return "", errors.New(FieldReason + ": not UTF-8")
	case strings.ContainsFunc(reason, func(c rune) bool { return unicode.IsControl(c) || c == '|' }):
		return "", fmt.Errorf("%s %q: no control character or '|'", FieldReason, reason)
	}
	return reason, nil
}

// profiler serves one of Go's profiler's handlers, when SERVER_PPROF=1 turned
// it on, to an operator.
func (h *Handler) profiler(next http.HandlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		operator, _ := r.Context().Value(operatorKey{}).(string)
		if !h.pprof {
			h.refuse(w, r, http.StatusNotFound, ReasonPprofOff, operator,
				"the profiler is off: SERVER_PPROF=1 turns it on, for operators over TLS")
			return
		}
		operator, ok := h.operatorOf(w, r)
		if !ok {
			return
		}
		if r.Method != http.MethodGet && r.Method != http.MethodHead {
			w.Header().Set("Allow", http.MethodGet)
			h.refuse(w, r, http.StatusMethodNotAllowed, ReasonMethod, operator, r.Method+": the profiler is read with GET")
			return
		}
		next(w, r)
	}
}

// refuse answers r with code and detail, and logs the refusal.
func (h *Handler) refuse(w http.ResponseWriter, r *http.Request, code int, reason, operator, detail string) {
	fields := []logfmt.Field{vocab.Remoto.Str(r.RemoteAddr), vocab.Metodo.Str(r.Method),
		vocab.Ruta.Str(r.URL.EscapedPath())}
	if operator != "" {
		fields = append(fields, vocab.Operador.Str(operator))
	}
	fields = append(fields, vocab.Motivo.Str(reason), vocab.Detalle.Str(oneLine(detail)))
	h.log.Warn(vocab.RechazoAdmin, logfmt.Fail, fields...)
	reply(w, code, detail)
}

// reply writes text, one line, as the answer.
func reply(w http.ResponseWriter, code int, text string) {
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(code)
	_, _ = fmt.Fprintln(w, oneLine(text))
}

// oneLine keeps text on one line: a control character becomes a space.
func oneLine(text string) string {
	return strings.Map(func(c rune) rune {
		if unicode.IsControl(c) {
			return ' '
		}
		return c
	}, text)
}
