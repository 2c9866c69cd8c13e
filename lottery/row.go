package lottery

import (
	"encoding/binary"
	"fmt"
	"math/bits"
	"strings"
	"time"
	"unicode/utf8"
	"unsafe"
)

// A row is one bet as the agency sends it and the central stores it after
// its agency column: first_name,last_name,document,birthdate,number and LF,
// each field exactly as encoding/csv's Writer writes it (quoted only when it
// must be, its quotes doubled), the number as strconv.Itoa writes it. One
// format from the agency's file to the central's: the agency sends its lines
// as they are, the central checks them in place and appends them.

// rowColumns are a row's columns: the store's without the agency.
var rowColumns = storeColumns[1:]

// AppendRow appends b's row (b.Agency is not in it).
func AppendRow(dst []byte, b Bet) []byte {
	var quotes uint8
	for i, f := range b.textFields() {
		quotes |= quoteBit(f, classesOf(f), i)
	}
	return appendFields(dst, b, quotes)
}

// AddBatch checks each row of rows (LF-terminated, as BATCH carries them; a
// missing last LF is added) as a bet of agency and, if every one is a valid
// bet written exactly as AppendRow writes it, appends them all as the store
// writes them and returns the documents of the winning bets (copies).
// Otherwise it appends nothing and returns the index of the first bad row
// and why (wrapping ErrInvalidBet).
func (r *Rows) AddBatch(agency int, rows []byte, now time.Time) (winners []string, bad int, err error) {
	start, n, date := len(r.buf), r.n, today(now)
	prefix := append(appendInt(r.prefix[:0], agency), ',')
	r.prefix = prefix
	// The rows outlive every string made from s but the winners, which are copies.
	s := unsafe.String(unsafe.SliceData(rows), len(rows))
	for i := 0; s != ""; i++ {
		end, comma, commas, quote, ctl, high := splitRow(s)
		line := s[:end]
		var b Bet
		var err error
		if quote || commas != len(comma) {
			b, err = r.checkRow(agency, line, date) // says what is wrong, or reads the quotes
		} else {
			b, err = plainBet(agency, line, &comma, plainLine(line, ctl, high), date)
		}
		if err != nil {
			r.buf, r.n = r.buf[:start], n
			return nil, i, err
		}
		r.buf = append(append(append(r.buf, prefix...), line...), '\n')
		r.n++
		if HasWon(b) {
			winners = append(winners, strings.Clone(b.Document))
		}
		s = s[min(end+1, len(s)):]
	}
	return winners, 0, nil
}

// splitRow finds the first line of s: its end (its LF, or len(s)), its first
// commas, how many it has, whether it holds a quote, a control byte (below
// 0x20, or 0x7f) or a byte past ASCII. Eight bytes at a time, as splitLine:
// a call per field costs more than the field.
func splitRow(s string) (end int, comma [4]int, commas int, quote, ctl, high bool) {
	const ones, low7 = 0x0101010101010101, 0x7f7f7f7f7f7f7f7f
	// zero sets the top bit of each zero byte of x, exactly.
	zero := func(x uint64) uint64 { return ^((x&low7 + low7) | x | low7) }
	var ctlBits, highBits uint64
	i := 0
	for ; i+8 <= len(s); i += 8 {
		w := uint64(s[i]) | uint64(s[i+1])<<8 | uint64(s[i+2])<<16 | uint64(s[i+3])<<24 |
			uint64(s[i+4])<<32 | uint64(s[i+5])<<40 | uint64(s[i+6])<<48 | uint64(s[i+7])<<56
		c := zero(w^(','*ones)) | zero(w^('"'*ones)) | zero(w^('\n'*ones))
		wc, wh := zero(w&(0xe0*ones))|zero(w^(0x7f*ones)), w&(0x80*ones)
		for ; c != 0; c &= c - 1 {
			k := bits.TrailingZeros64(c) >> 3
			switch j := i + k; s[j] {
			case '\n':
				before := uint64(1)<<(8*k) - 1 // the line's bytes of this word
				return j, comma, commas, quote, ctlBits|wc&before != 0, highBits|wh&before != 0
			case '"':
				quote = true
			default:
				if commas < len(comma) {
					comma[commas] = j
				}
				commas++
			}
		}
		ctlBits, highBits = ctlBits|wc, highBits|wh
	}
	ctl, high = ctlBits != 0, highBits != 0
	for ; i < len(s); i++ {
		switch c := s[i]; {
		case c == '\n':
			return i, comma, commas, quote, ctl, high
		case c == '"':
			quote = true
		case c == ',':
			if commas < len(comma) {
				comma[commas] = i
			}
			commas++
		case c < 0x20 || c == 0x7f:
			ctl = true
		case c >= utf8.RuneSelf:
			high = true
		}
	}
	return len(s), comma, commas, quote, ctl, high
}

// plainBet reads line, five fields split at comma and no quote, as agency's
// bet and checks it as checkRow does. plain says the line holds no control
// byte and is valid UTF-8 without C1 controls: then names that start with a
// letter need no closer look.
func plainBet(agency int, line string, comma *[4]int, plain bool, date int) (Bet, error) {
	number, ok := decimal(line[comma[3]+1:])
	if !ok {
		return Bet{}, &FieldError{"number", notDecimal}
	}
	b := Bet{Agency: agency, FirstName: line[:comma[0]], LastName: line[comma[0]+1 : comma[1]],
		Document: line[comma[1]+1 : comma[2]], Birthdate: line[comma[2]+1 : comma[3]], Number: number}
	if err := b.checkPlain(plain, date); err != nil {
		return Bet{}, err
	}
	return b, nil
}

// checkPlain checks b, read from a row without quotes, as checkRow does;
// plain as plainBet's. Ingest and recovery both check rows with it.
func (b Bet) checkPlain(plain bool, date int) error {
	if plain && b.Agency >= 1 && plainName(b.FirstName) && plainName(b.LastName) && checkDocument(b.Document) == "" &&
		checkBirthdate(b.Birthdate, date) == "" && b.Number <= 9999 {
		return nil
	}
	// Anything else, valid or not, as Validate checks it: its reasons, in its order.
	quotes, err := b.check(date)
	if err != nil {
		return err
	}
	if quotes != 0 {
		// A name csv quotes (one starting with a space) came without quotes.
		return &FieldError{rowColumns[bits.TrailingZeros8(quotes)], mustQuote}
	}
	return nil
}

// plainLine says whether line (a row without quotes, split by splitRow,
// which found ctl and high) may have its names trusted at a glance: no
// control byte, and valid UTF-8 without C1 controls.
func plainLine(line string, ctl, high bool) bool {
	return !ctl && (!high || utf8.ValidString(line) && strings.IndexByte(line, 0xc2) < 0)
}

// plainName reports whether name, from a line plainBet may trust (no control
// byte, valid UTF-8, no C1 control, no quote or comma), is a valid name csv
// writes as it is: not too long, and starting with a printable ASCII byte that
// is no space (nor the backslash of `\.`) or with a two-byte rune from U+00C0
// on (the accented letters; no space among them). Anything else gets the
// full check.
func plainName(name string) bool {
	if name == "" || len(name) > MaxNameLen {
		return false
	}
	c := name[0]
	return ' ' < c && c < 0x7f && c != '\\' || 0xc3 <= c && c < 0xe0
}

// The reasons a row is not written as AppendRow writes it.
const (
	notDecimal = "not written as a decimal number 0..9999 without sign or leading zero"
	mustQuote  = "must be quoted, as csv writes it"
)

// checkRow reads line, a row without its LF, as agency's bet and checks it
// as Validate does, and that it is written as AppendRow writes it. The
// bet's fields alias line, but for quoted ones.
func (r *Rows) checkRow(agency int, line string, date int) (Bet, error) {
	var fields [5]string
	var quoted uint8 // bit i: field i came quoted
	pos := 0
	for i := range fields {
		if pos < len(line) && line[pos] == '"' {
			v, next, reason := unquote(line, pos)
			if reason != "" {
				return Bet{}, &FieldError{rowColumns[i], reason}
			}
			fields[i], pos = v, next
			quoted |= 1 << i
		} else {
			end := len(line)
			if c := strings.IndexByte(line[pos:], ','); c >= 0 {
				end = pos + c
			}
			fields[i], pos = line[pos:end], end
			if strings.IndexByte(fields[i], '"') >= 0 {
				return Bet{}, &FieldError{rowColumns[i], `holds a '"' but is not quoted`}
			}
		}
		switch {
		case i == len(fields)-1 && pos != len(line):
			return Bet{}, &FieldError{rowColumns[i], "followed by more fields: a row has 5"}
		case i < len(fields)-1 && pos == len(line):
			return Bet{}, &FieldError{rowColumns[i+1], fmt.Sprintf("missing: a row has 5 fields, this one %d", i+1)}
		case i < len(fields)-1 && line[pos] != ',':
			return Bet{}, &FieldError{rowColumns[i], "text after its closing quote"}
		}
		pos++
	}
	number, ok := decimal(fields[4])
	if !ok {
		return Bet{}, &FieldError{"number", notDecimal}
	}
	b := Bet{Agency: agency, FirstName: fields[0], LastName: fields[1], Document: fields[2], Birthdate: fields[3], Number: number}
	quotes, err := b.check(date)
	if err != nil {
		return Bet{}, err
	}
	if diff := quotes ^ quoted; diff != 0 {
		for i := range fields {
			switch {
			case quotes&(1<<i) != 0 && quoted&(1<<i) == 0:
				return Bet{}, &FieldError{rowColumns[i], mustQuote}
			case diff&(1<<i) != 0:
				return Bet{}, &FieldError{rowColumns[i], "quoted, but csv writes it without quotes"}
			}
		}
	}
	return b, nil
}

// unquote reads the quoted field starting at line[pos] ('"'): its value,
// where the text after it starts, or why it is no quoted field. Quoted
// fields are rare (a name with a comma or a quote), so this one copies.
func unquote(line string, pos int) (v string, next int, reason string) {
	var sb strings.Builder
	i := pos + 1
	for {
		q := strings.IndexByte(line[i:], '"')
		if q < 0 {
			return "", 0, "its quote is not closed"
		}
		sb.WriteString(line[i : i+q])
		i += q + 1
		if i < len(line) && line[i] == '"' {
			sb.WriteByte('"')
			i++
			continue
		}
		return sb.String(), i, ""
	}
}

// plainAgencyRow reports whether content, an agency file's line without its
// line ending, is already a row as AppendRow writes it: five fields, no quote
// or CR, none that csv would quote, a number as strconv.Itoa writes it. Most
// lines are, and are sent as they are; the others are read with csv and
// written again. Eight bytes at a time, as splitLine: this runs for every
// line an agency sends.
func plainAgencyRow(content []byte) bool {
	const ones, low7 = 0x0101010101010101, 0x7f7f7f7f7f7f7f7f
	var start [5]int // where each field starts
	commas := 0
	i := 0
	for ; i+8 <= len(content); i += 8 {
		w := binary.LittleEndian.Uint64(content[i:])
		c, q, r := w^(','*ones), w^('"'*ones), w^('\r'*ones)
		if ^((q&low7+low7)|q|low7)|^((r&low7+low7)|r|low7) != 0 {
			return false // a quote or a CR
		}
		for m := ^((c&low7 + low7) | c | low7); m != 0; m &= m - 1 {
			if commas == 4 {
				return false
			}
			commas++
			start[commas] = i + bits.TrailingZeros64(m)>>3 + 1
		}
	}
	for ; i < len(content); i++ {
		switch content[i] {
		case ',':
			if commas == 4 {
				return false
			}
			commas++
			start[commas] = i + 1
		case '"', '\r':
			return false
		}
	}
	if commas != 4 {
		return false
	}
	s := unsafe.String(unsafe.SliceData(content), len(content))
	for k, from := range start[:4] {
		// Only a field starting with a space, a control byte, a byte past
		// ASCII or a backslash can be one csv quotes.
		if c := s[from]; c <= ' ' || c >= utf8.RuneSelf || c == '\\' {
			if quotedStart(s[from : start[k+1]-1]) {
				return false
			}
		}
	}
	_, ok := decimal(s[start[4]:])
	return ok
}
