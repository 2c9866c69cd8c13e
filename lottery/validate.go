package lottery

import (
	"errors"
	"strconv"
	"strings"
	"sync/atomic"
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
	_, err := b.check(today(now))
	return err
}

// check is Validate, and says which fields of a valid b csv.Writer quotes
// (bit i for text field i; only the names can need it): Rows.Add writes the
// row without a second pass over its fields.
//
// date is today as YYYYMMDD (today), worked out once for a batch.
func (b Bet) check(date int) (quotes uint8, err error) {
	if b.Agency < 1 {
		return 0, &FieldError{"agency", "must be at least 1"}
	}
	reason, seen := checkName(b.FirstName)
	if reason != "" {
		return 0, &FieldError{"first_name", reason}
	}
	quotes |= quoteBit(b.FirstName, seen, 0)
	if reason, seen = checkName(b.LastName); reason != "" {
		return 0, &FieldError{"last_name", reason}
	}
	quotes |= quoteBit(b.LastName, seen, 1)
	// A valid document (digits) or birthdate (YYYY-MM-DD) never needs quotes.
	if reason := checkDocument(b.Document); reason != "" {
		return 0, &FieldError{"document", reason}
	}
	if reason := checkBirthdate(b.Birthdate, date); reason != "" {
		return 0, &FieldError{"birthdate", reason}
	}
	if b.Number < 0 || b.Number > 9999 {
		return 0, &FieldError{"number", "out of range 0..9999"}
	}
	return quotes, nil
}

// checkName says why s is no valid name ("" if it is one), and which byte
// classes it holds (OR-ed), which also decide its CSV quoting.
func checkName(s string) (reason string, seen uint8) {
	// A table pass instead of TrimSpace, ValidString and IndexFunc (names are
	// checked twice per bet on the ingest path); only a name with bytes past
	// ASCII takes a second look. The reasons keep their order.
	seen = classesOf(s)
	nonSpace, invalid, control := seen&classText != 0, false, seen&classControl != 0
	if seen&classHigh != 0 {
		invalid = !utf8.ValidString(s)
		switch {
		case invalid:
			nonSpace = true // an invalid byte is no space
		case nonSpace:
			// Outside ASCII, unicode.IsControl holds only for U+0080..U+009F.
			control = control || hasC1Control(s)
		default: // only spaces in ASCII: the runes decide
			var runeControl bool
			nonSpace, runeControl = checkNameRunes(s)
			control = control || runeControl
		}
	}
	switch {
	case !nonSpace:
		return "empty", seen
	case len(s) > MaxNameLen:
		return "longer than " + strconv.Itoa(MaxNameLen) + " bytes", seen
	case invalid:
		return "not valid UTF-8", seen
	case control:
		// A CR, LF or NUL in a name would break the line-oriented files and logs.
		return "contains a control character", seen
	}
	return "", seen
}

// hasC1Control reports whether valid UTF-8 s holds a rune of U+0080..U+009F,
// written C2 80..C2 9F.
func hasC1Control(s string) bool {
	for {
		i := strings.IndexByte(s, 0xC2)
		if i < 0 || i+1 >= len(s) {
			return false
		}
		if s[i+1] < 0xA0 {
			return true
		}
		s = s[i+2:]
	}
}

// checkNameRunes reports what the runes past ASCII of valid UTF-8 s hold:
// one that is not a space, one that is a control character.
func checkNameRunes(s string) (nonSpace, control bool) {
	for _, r := range s {
		if r >= utf8.RuneSelf {
			control = control || unicode.IsControl(r)
			nonSpace = nonSpace || !unicode.IsSpace(r)
		}
	}
	return nonSpace, control
}

// The classes of a byte for the name checks and the CSV quoting rule.
const (
	classText    = 1 << iota // not an ASCII space: a name holding one is not blank
	classControl             // an ASCII control character (all ASCII spaces but ' ')
	classQuote               // makes csv.Writer quote the field: '"', ',', CR or LF
	classHigh                // 0x80 and up: part of a multi-byte rune, or invalid
)

var byteClass = func() (t [256]uint8) {
	for c := range 256 {
		switch {
		case c >= utf8.RuneSelf:
			t[c] = classHigh
		case c == ' ':
		case '\t' <= c && c <= '\r':
			t[c] = classControl
		case c < 0x20 || c == 0x7f:
			t[c] = classText | classControl
		default:
			t[c] = classText
		}
		if c == '"' || c == ',' || c == '\r' || c == '\n' {
			t[c] |= classQuote
		}
	}
	return t
}()

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

func checkBirthdate(s string, date int) string {
	// Parsed by hand: every bet the central takes comes through here, and
	// time.Parse does far more than one fixed layout needs.
	y, m, d, ok := parseDate(s)
	if !ok {
		return "not a date in YYYY-MM-DD"
	}
	if y < 1900 {
		return "before 1900"
	}
	if y*10000+m*100+d > date {
		return "in the future"
	}
	return ""
}

// today is now's date as YYYYMMDD. Callers pass one now for many bets (a
// batch, a whole recovery), so the last answer is kept rather than working
// out the calendar date again for every bet.
func today(now time.Time) int {
	sec, loc := now.Unix(), now.Location()
	if c := lastToday.Load(); c != nil && c.sec == sec && c.loc == loc {
		return c.ymd
	}
	y, m, d := now.Date()
	ymd := y*10000 + int(m)*100 + d
	lastToday.Store(&todayCache{sec: sec, loc: loc, ymd: ymd})
	return ymd
}

type todayCache struct {
	sec int64
	loc *time.Location
	ymd int
}

var lastToday atomic.Pointer[todayCache]

// parseDate reads exactly YYYY-MM-DD and checks that the day exists in that
// month and year (2023-02-30 does not).
func parseDate(s string) (y, m, d int, ok bool) {
	if len(s) != 10 || s[4] != '-' || s[7] != '-' {
		return 0, 0, 0, false
	}
	num := func(from, to int) int {
		n := 0
		for i := from; i < to; i++ {
			c := s[i]
			if c < '0' || c > '9' {
				return -1
			}
			n = n*10 + int(c-'0')
		}
		return n
	}
	y, m, d = num(0, 4), num(5, 7), num(8, 10)
	if y < 0 || m < 1 || m > 12 || d < 1 {
		return 0, 0, 0, false
	}
	if d > 28 && d > daysIn(y, m) {
		return 0, 0, 0, false
	}
	return y, m, d, true
}

// daysIn is the number of days of month m (1..12) of year y, as time.Date
// counts them, without building a time for every bet born on the 29th or
// later.
func daysIn(y, m int) int {
	switch m {
	case 2:
		if y%4 == 0 && (y%100 != 0 || y%400 == 0) {
			return 29
		}
		return 28
	case 4, 6, 9, 11:
		return 30
	}
	return 31
}
