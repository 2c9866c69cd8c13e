package ledger

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"
)

// The operator journal lives beside the bets file: one JSON line per
// operator action, written and fsynced before the action takes effect, so a
// restarted central knows whom the operator excluded, and every action
// leaves a record of who did it, when and why:
//
//	{"at":"2026-12-05T09:41:13.5Z","operator":"operator-ana","action":"exclude","agency":3,"reason":"host burned"}
//	{"at":"2026-12-05T09:52:01.1Z","operator":"operator-ana","action":"reload","detail":"revocation list: 2 entries"}
//
// Open reads it back as strictly as Exclude and Record check what they
// journal: an action the ledger would not write now stops the start.

// OperatorPath is where the operator journal of a bets file lives.
func OperatorPath(betsPath string) string { return betsPath + ".operator" }

// The operator journal's actions.
const (
	// ActionExclude is an agency excluded from the draw (Exclude).
	ActionExclude = "exclude"
	// ActionReload is a configuration the central reloaded (Record), such as
	// its certificate revocation list.
	ActionReload = "reload"
)

// Bounds of an operator's text, in bytes.
const (
	maxOperator = 64   // a certificate's Common Name (RFC 5280's ub-common-name)
	maxText     = 1024 // a reason or a detail: what an ERROR's text holds
)

// opLine is one line of the operator journal.
type opLine struct {
	At       time.Time `json:"at"`
	Operator string    `json:"operator"`
	Action   string    `json:"action"`
	Agency   int       `json:"agency,omitempty"`
	Reason   string    `json:"reason,omitempty"`
	Detail   string    `json:"detail,omitempty"`
}

// Exclude excludes agency a from the draw for reason, on operator's word,
// and returns how many agencies neither finished nor were excluded: 0 means
// the draw may run. The exclusion is journaled and fsynced before it takes
// effect; a failed attempt leaves no line behind and changes nothing. A
// batch of the agency still on its way is settled first (counted, or lost
// to a failed fsync), so its facts are final once it is excluded; its
// batches and FINISH are refused from then on (ErrExcluded). Its rows stay
// in the bets file, undrawn.
//
// Errors: ErrNoAgency, ErrInvalid (an empty or unprintable reason or
// operator), ErrFinished (an agency that finished cannot be excluded),
// ErrExcluded (already), ErrLastAgency (no agency would be left to draw),
// or the journal's failure.
func (l *Ledger) Exclude(a int, reason, operator string) (pending int, err error) {
	e := opLine{At: time.Now().UTC(), Operator: operator, Action: ActionExclude, Agency: a, Reason: reason}
	line, err := e.encode(len(l.agencies))
	if err != nil {
		return 0, fmt.Errorf("exclude agency %d: %w", a, err)
	}
	l.jmu.Lock()
	defer l.jmu.Unlock()
	f := &l.agencies[a-1]
	if err := l.closeExcluded(f); err != nil {
		return 0, fmt.Errorf("exclude agency %d: %w", a, err)
	}
	err = l.appendJournal(&l.operator, line)
	l.mu.Lock()
	defer l.mu.Unlock()
	if err != nil {
		f.closed = nil
		return 0, fmt.Errorf("exclude agency %d: journal: %w", a, err)
	}
	f.excluded.Store(&Exclusion{At: e.At, Operator: operator, Reason: reason})
	l.excluded++
	return l.pendingLocked(), nil
}

// CheckExclude returns the error Exclude would return now, but for a
// failure of the journal, without journaling or changing anything: a caller
// checks before it acts on the agency (the central ends its connection).
// The facts may change before Exclude runs; Exclude checks them again.
func (l *Ledger) CheckExclude(a int, reason, operator string) error {
	e := opLine{At: time.Now(), Operator: operator, Action: ActionExclude, Agency: a, Reason: reason}
	if err := e.check(len(l.agencies)); err != nil {
		return fmt.Errorf("exclude agency %d: %w", a, err)
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if err := l.excludableLocked(&l.agencies[a-1]); err != nil {
		return fmt.Errorf("exclude agency %d: %w", a, err)
	}
	return nil
}

// excludableLocked says why f may not be excluded now, if it may not.
func (l *Ledger) excludableLocked(f *facts) error {
	switch {
	case f.finished.Load():
		return ErrFinished
	case f.excluded.Load() != nil:
		return ErrExcluded
	case l.excluded+1 == len(l.agencies):
		return ErrLastAgency
	}
	return nil
}

// closeExcluded stops f's batches while its exclusion is journaled, once it
// may be excluded, and waits for its batches on their way: a batch counted
// after the exclusion would change the facts of an agency that left.
func (l *Ledger) closeExcluded(f *facts) error {
	l.mu.Lock()
	if err := l.excludableLocked(f); err != nil {
		l.mu.Unlock()
		return err
	}
	f.closed = ErrExcluded
	var last *ticket
	for _, t := range l.pending {
		if t.agency == f {
			last = t
		}
	}
	l.mu.Unlock()
	if last != nil {
		// Batches settle in file order: its last settles the others.
		l.settle(last)
	}
	return nil
}

// Record journals an operator action that is not a fact of the round (see
// ActionReload) with its detail, durably, before the caller acts on it.
// Errors: ErrInvalid, or the journal's failure.
func (l *Ledger) Record(action, operator, detail string) error {
	if action == ActionExclude {
		return fmt.Errorf("record %s: %w: an exclusion goes through Exclude", action, ErrInvalid)
	}
	e := opLine{At: time.Now().UTC(), Operator: operator, Action: action, Detail: detail}
	line, err := e.encode(len(l.agencies))
	if err != nil {
		return fmt.Errorf("record %s: %w", action, err)
	}
	l.jmu.Lock()
	defer l.jmu.Unlock()
	if err := l.appendJournal(&l.operator, line); err != nil {
		return fmt.Errorf("record %s: journal: %w", action, err)
	}
	return nil
}

// encode checks e and returns its line.
func (e opLine) encode(agencies int) ([]byte, error) {
	if err := e.check(agencies); err != nil {
		return nil, err
	}
	line, err := json.Marshal(e)
	if err != nil {
		return nil, err
	}
	return append(line, '\n'), nil
}

// check holds e to what the ledger journals: a time, an operator, a known
// action with exactly the fields it takes.
func (e opLine) check(agencies int) error {
	if e.At.IsZero() {
		return fmt.Errorf("%w: no time (at)", ErrInvalid)
	}
	if err := checkText("operator", e.Operator, maxOperator, true); err != nil {
		return err
	}
	switch e.Action {
	case ActionExclude:
		if e.Agency < 1 || e.Agency > agencies {
			return fmt.Errorf("%w: agency %d not in 1..%d (SERVER_AGENCIES)", ErrNoAgency, e.Agency, agencies)
		}
		if e.Detail != "" {
			return fmt.Errorf("%w: an exclusion has a reason, not a detail", ErrInvalid)
		}
		return checkText("reason", e.Reason, maxText, true)
	case ActionReload:
		if e.Agency != 0 || e.Reason != "" {
			return fmt.Errorf("%w: a reload names no agency and no reason", ErrInvalid)
		}
		return checkText("detail", e.Detail, maxText, false)
	}
	return fmt.Errorf("%w: unknown action %q", ErrInvalid, e.Action)
}

// checkText refuses a text the journal and the log could not hold as one
// field of one line: too long, not UTF-8, a control character or a '|' (a
// newline would forge a log line, a '|' a field), or blank when required.
func checkText(name, s string, max int, required bool) error {
	switch {
	case required && strings.TrimSpace(s) == "":
		return fmt.Errorf("%w: %s is empty", ErrInvalid, name)
	case len(s) > max:
		return fmt.Errorf("%w: %s is %d bytes, at most %d", ErrInvalid, name, len(s), max)
	case !utf8.ValidString(s):
		return fmt.Errorf("%w: %s is not UTF-8", ErrInvalid, name)
	case strings.ContainsFunc(s, func(c rune) bool { return unicode.IsControl(c) || c == '|' }):
		return fmt.Errorf("%w: %s holds a control character or a '|'", ErrInvalid, name)
	}
	return nil
}

// parseOpLine reads one line: a JSON object of opLine's fields and nothing else.
func parseOpLine(line string) (opLine, error) {
	var e opLine
	d := json.NewDecoder(strings.NewReader(line))
	d.DisallowUnknownFields()
	if err := d.Decode(&e); err != nil {
		return e, fmt.Errorf("not an operator action in JSON: %w", err)
	}
	if _, err := d.Token(); !errors.Is(err, io.EOF) {
		return e, errors.New("not one operator action in JSON: more follows it")
	}
	return e, nil
}

// readOperator checks the operator journal and marks the agencies it
// excludes. It runs after readJournal: an agency that finished cannot have
// been excluded, nor can every agency, nor one twice.
func (l *Ledger) readOperator(path string) error {
	data, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("recover operator journal %q: %w", path, err)
	}
	excludedAt := make(map[int]int) // agency: the line that excluded it
	// RepairTail left either nothing or complete lines.
	for n, text := 1, string(data); text != ""; n++ {
		var line string
		line, text, _ = strings.Cut(text, "\n")
		e, err := parseOpLine(line)
		if err == nil {
			err = e.check(len(l.agencies))
		}
		if err == nil && e.Action == ActionExclude {
			switch first, seen := excludedAt[e.Agency]; {
			case seen:
				err = fmt.Errorf("agency %d excluded again, first on line %d", e.Agency, first)
			case l.agencies[e.Agency-1].finished.Load():
				err = fmt.Errorf("agency %d excluded, but the FINISH journal says it finished", e.Agency)
			case len(excludedAt)+1 == len(l.agencies):
				err = fmt.Errorf("agency %d excluded, and with it every agency: none is left to draw", e.Agency)
			}
		}
		if err != nil {
			return fmt.Errorf("recover operator journal %q: line %d: %w", path, n, err)
		}
		if e.Action == ActionExclude {
			excludedAt[e.Agency] = n
			f := &l.agencies[e.Agency-1]
			f.excluded.Store(&Exclusion{At: e.At, Operator: e.Operator, Reason: e.Reason})
			f.closed = ErrExcluded
			l.excluded++
		}
	}
	return nil
}
