package central

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
	"unicode"
	"unicode/utf8"

	"lotterycentral.example/lottery/logfmt"
	"lotterycentral.example/server/internal/ledger"
	"lotterycentral.example/server/internal/vocab"
)

// Exclude takes agency out of the draw on operator's word, for reason: an
// agency whose host died for good would otherwise hold the draw forever.
// The draw then runs on the agencies that finished, once no other is
// pending; the excluded agency's bets stay in the bets file, undrawn, and
// its HELLO is refused with ERROR excluded from then on.
//
// In order: the ledger's refusals first (an agency that finished or is
// excluded already, the last agency left to draw, a reason or operator it
// could not journal), so that a refused exclusion changes nothing; then the
// agency's live connection is ended and no new one may claim it, so that
// none of its batches is acknowledged after the exclusion; then the ledger
// journals the exclusion durably, and it takes effect. It logs one
// excluir_agencia line either way; an error says why it was refused.
func (s *Server) Exclude(agency int, reason, operator string) error {
	fields := []logfmt.Field{vocab.Agencia.Int(agency), vocab.Motivo.Str(logText(reason)), vocab.Operador.Str(logText(operator))}
	l, pending, err := s.exclude(agency, reason, operator)
	if err != nil {
		log := s.log.Warn
		if !refusal(err) {
			log = s.log.Error // the disk or the central failed it, not the operator
		}
		log(vocab.ExcluirAgencia, logfmt.Fail, append(fields, vocab.Error.Any(err))...)
		return err
	}
	s.log.Info(vocab.ExcluirAgencia, logfmt.Success, append(fields, vocab.AgenciasPendientes.Int(pending))...)
	if pending == 0 {
		s.runDraw(l)
	}
	return nil
}

// refusal reports whether err refuses an exclusion (the ledger's rules,
// one under way, the central stopping), rather than says it failed.
func refusal(err error) bool {
	for _, e := range []error{ledger.ErrNoAgency, ledger.ErrInvalid, ledger.ErrFinished, ledger.ErrExcluded,
		ledger.ErrLastAgency, errExcluding, ErrServerClosed} {
		if errors.Is(err, e) {
			return true
		}
	}
	return false
}

// exclude does Exclude's work; see there.
func (s *Server) exclude(agency int, reason, operator string) (*ledger.Ledger, int, error) {
	if agency < 1 || agency > s.cfg.Agencies {
		return nil, 0, fmt.Errorf("exclude agency %d: %w: this draw has agencies 1..%d", agency, ledger.ErrNoAgency, s.cfg.Agencies)
	}
	// A central still recovering knows who finished once it is done; one
	// shutting down may have closed the ledger.
	l := s.recovery.wait(s.quit)
	if l == nil || s.stopping() {
		return nil, 0, fmt.Errorf("exclude agency %d: %w", agency, ErrServerClosed)
	}
	if err := l.CheckExclude(agency, reason, operator); err != nil {
		return nil, 0, err
	}
	s.mu.Lock()
	owner, ok := s.conns.bar(agency)
	s.mu.Unlock()
	if !ok {
		return nil, 0, fmt.Errorf("exclude agency %d: it %w already", agency, errExcluding)
	}
	defer func() {
		s.mu.Lock()
		defer s.mu.Unlock()
		s.conns.unbar(agency)
	}()
	if owner != nil {
		// Once its session has ended, every batch it handed the ledger was
		// answered or lost, and no session of the agency runs: none of its
		// batches can be acknowledged after the exclusion. A session that took
		// it over from another waited for that one to end first.
		owner.close()
		<-owner.done
	}
	pending, err := l.Exclude(agency, reason, operator)
	if err != nil {
		return nil, 0, err
	}
	return l, pending, nil
}

// logText is s as a log line may show it: quoted when it holds what would
// forge or break the line (a control character, a '|', bytes that are not
// UTF-8); the ledger refuses such a reason or operator, but the refusal is
// logged too.
func logText(s string) string {
	if !utf8.ValidString(s) || strings.ContainsFunc(s, func(c rune) bool { return unicode.IsControl(c) || c == '|' }) {
		return strconv.Quote(s)
	}
	return s
}

// excludedText is the ERROR an excluded agency is told.
func excludedText(agency int) string {
	return fmt.Sprintf("agency %d is out of this draw: its bets are not drawn", agency)
}
