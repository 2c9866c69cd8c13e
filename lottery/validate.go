package lottery

import (
	"errors"
	"strconv"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"
)

// ErrInvalidBet is wrapped by every validation error.
var ErrInvalidBet = errors.New("invalid bet")

// FieldError names the bad field with its CSV column name: "agency", "first_name",
// "last_name", "document", "birthdate" or "number".
type FieldError struct {
	Field  string
	Reason string
}

func (e *FieldError) Error() string {
	return ErrInvalidBet.Error() + ": " + e.Field + ": " + e.Reason
}

// Unwrap lets callers test errors.Is(err, ErrInvalidBet) without knowing the field.
func (e *FieldError) Unwrap() error { return ErrInvalidBet }

// Validate checks every field of b and returns a *FieldError for the first bad one.
// now decides what "in the future" means, so tests and servers need not agree on a clock.
func (b Bet) Validate(now time.Time) error {
	if b.Agency < 1 {
		return &FieldError{"agency", "must be at least 1"}
	}
	if reason := checkName(b.FirstName); reason != "" {
		return &FieldError{"first_name", reason}
	}
	if reason := checkName(b.LastName); reason != "" {
		return &FieldError{"last_name", reason}
	}
	if reason := checkDocument(b.Document); reason != "" {
		return &FieldError{"document", reason}
	}
	if reason := checkBirthdate(b.Birthdate, now); reason != "" {
		return &FieldError{"birthdate", reason}
	}
	if b.Number < 0 || b.Number > 9999 {
		return &FieldError{"number", "out of range 0..9999"}
	}
	return nil
}

func checkName(s string) string {
	switch {
	case strings.TrimSpace(s) == "":
		return "empty"
	case len(s) > MaxNameLen:
		return "longer than " + strconv.Itoa(MaxNameLen) + " bytes"
	case !utf8.ValidString(s):
		return "not valid UTF-8"
	case strings.IndexFunc(s, unicode.IsControl) >= 0:
		// A CR, LF or NUL in a name would break the line-oriented files and logs.
		return "contains a control character"
	}
	return ""
}

func checkDocument(s string) string {
	switch {
	case s == "":
		return "empty"
	case len(s) > MaxDocumentLen:
		return "longer than " + strconv.Itoa(MaxDocumentLen) + " digits"
	}
	for i := range len(s) {
		if s[i] < '0' || s[i] > '9' {
			return "not only digits"
		}
	}
	return ""
}

func checkBirthdate(s string, now time.Time) string {
	// time.Parse demands two-digit months and days and rejects 2023-02-30; the length
	// check also rejects anything it would tolerate around the date.
	d, err := time.Parse(time.DateOnly, s)
	if err != nil || len(s) != len(time.DateOnly) {
		return "not a date in YYYY-MM-DD"
	}
	if d.Year() < 1900 {
		return "before 1900"
	}
	y, m, day := now.Date()
	if d.After(time.Date(y, m, day, 0, 0, 0, 0, time.UTC)) {
		return "in the future"
	}
	return ""
}
