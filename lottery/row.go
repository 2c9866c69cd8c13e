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
	fast := agency >= 1 // else the first row says why not, as Validate does
	for i := 0; s != ""; i++ {
		if end, document, number, ok := fastRow(s, date); ok && fast {
			r.buf = append(append(append(r.buf, prefix...), s[:end]...), '\n')
			r.n++
			if number == WinningNumber {
				winners = append(winners, strings.Clone(document))
			}
			s = s[min(end+1, len(s)):]
			continue
		}
		end, comma, commas, quote, ctl, high := splitRow(s)
		line := s[:end]
		var b Bet
		var err error
		if quote || commas != len(comma) {
			b, err = checkRow(agency, line, date) // says what is wrong, or reads the quotes
		} else {
			b, err = plainBet(agency, line, &comma, plainLine(line[:comma[1]], ctl, high), date)
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
// a call per field costs more than the field. It reads the rows fastRow
// leaves, and says what is wrong with them.
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

// plainLine says whether a row without quotes, split by splitRow, which
// found ctl and high in it, may have its names trusted at a glance: no
// control byte, and names (names: the row up to its second comma) of valid
// UTF-8 without C1 controls. The other fields are checked byte by byte.
func plainLine(names string, ctl, high bool) bool {
	return !ctl && (!high || plainUTF8(names))
}

// plainUTF8 says whether s is valid UTF-8 without a C2 byte (the C1
// controls, among other runes below U+00C0). Most runes past ASCII in names
// are two-byte letters (lead byte C3 to DF), so eight bytes at a time it
// checks that each such lead is followed by a continuation byte and each
// continuation follows one, without a branch per rune; a string with any
// other rune goes to utf8.ValidString.
func plainUTF8(s string) bool {
	const ones, low5, top = 0x0101010101010101, 0x1f1f1f1f1f1f1f1f, 0x8080808080808080
	var pending uint64 // the top bit of byte 0: the word before ended with a lead
	for i := 0; i < len(s); i += 8 {
		var w uint64
		if i+8 <= len(s) {
			w = binary.LittleEndian.Uint64((*[8]byte)(unsafe.Add(unsafe.Pointer(unsafe.StringData(s)), i))[:])
		} else {
			var tail [8]byte // zeros after the end: a lead there lacks its continuation
			copy(tail[:], s[i:])
			w = binary.LittleEndian.Uint64(tail[:])
		}
		// Top bits: a byte from C0 (lead), from 80 to BF (cont), and a lead
		// from E0 or below C3 (bad).
		lead := w & (w << 1) & top
		cont := w & top &^ lead
		bad := lead & (w<<2 | ^(w&low5 + (0x80-3)*ones))
		if bad != 0 || lead<<8|pending != cont {
			return utf8.ValidString(s) && strings.IndexByte(s, 0xc2) < 0
		}
		pending = lead >> 56
	}
	return pending == 0
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
func checkRow(agency int, line string, date int) (Bet, error) {
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
// written again. This runs for every line an agency sends, so it reads eight
// bytes at a time and has no branch per comma (a mispredicted one costs more
// than a word): the commas' places gathered as bits, then the four field
// starts and the number looked at once. The lines it cannot tell at a glance
// (shorter than a word or longer than 64 bytes, with a quote or a control
// byte, or a field starting with a byte quotableStart marks) go to
// plainAgencyRowSlow.
func plainAgencyRow(content []byte) bool {
	const ones, low7, top = 0x0101010101010101, 0x7f7f7f7f7f7f7f7f, 0x8080808080808080
	n := len(content)
	if n < 8 || n > 64 {
		return plainAgencyRowSlow(content) // no word to read, or more bytes than at holds
	}
	// Every word read is within content: i+8 <= n, and n-8 >= 0.
	p := unsafe.Pointer(unsafe.SliceData(content))
	word := func(i int) uint64 { return binary.LittleEndian.Uint64((*[8]byte)(unsafe.Add(p, i))[:]) }
	var at, odd uint64 // bit i of at: content[i] is a comma; odd as plainWord's
	i := 0
	for ; i+8 <= n; i += 8 {
		commas, o := plainWord(word(i))
		at, odd = at|commas<<(i&63), odd|o // i < 64: the mask spares the shift a check
	}
	last := word(n - 8)
	if i < n {
		// The bytes left, in the line's last word: those it shares with
		// the word before set the same bits again.
		commas, o := plainWord(last)
		at, odd = at|commas<<((n-8)&63), odd|o
	}
	if odd&top != 0 {
		return plainAgencyRowSlow(content)
	}
	// The fields start at 0 and after each comma.
	c1 := bits.TrailingZeros64(at)
	at &= at - 1
	c2 := bits.TrailingZeros64(at)
	at &= at - 1
	c3 := bits.TrailingZeros64(at)
	at &= at - 1
	if at == 0 || at&(at-1) != 0 {
		return false // not four commas
	}
	c4 := bits.TrailingZeros64(at)
	s := unsafe.String(unsafe.SliceData(content), n)
	if quotableStart[s[0]]|quotableStart[s[c1+1]]|quotableStart[s[c2+1]]|quotableStart[s[c3+1]] != 0 {
		return plainAgencyRowSlow(content)
	}
	// The number, decimal's rules on the top k bytes of the last word.
	k := n - 1 - c4
	if uint(k-1) >= 8 {
		_, ok := decimal(s[c4+1:]) // empty, or longer than the word
		return ok
	}
	d := last ^ '0'*ones
	notDigit := (d&low7 + (0x80-10)*ones) | d // top bit: d >= 10, no digit
	return notDigit&(top<<(64-8*k)) == 0 && (k == 1 || s[c4+1] != '0')
}

// plainWord returns the commas of w, eight bytes of a line, as bits (bit k:
// byte k), exactly (a false one would change the answer), and odd, whose top
// bits mark the quotes and ASCII control bytes (CR among them) of w.
func plainWord(w uint64) (commas, odd uint64) {
	const ones, low7 = 0x0101010101010101, 0x7f7f7f7f7f7f7f7f
	x := w & low7
	// The top bit of each byte of x^b + low7 says that byte of x is not b;
	// no carry crosses bytes. Or-ing w leaves out the bytes past ASCII.
	c, q := (x^','*ones)+low7, (x^'"'*ones)+low7
	return topBits(^(c | w)), ^(q&(x+(0x80-' ')*ones) | w)
}

// quotableStart marks the bytes a field csv quotes for how it starts
// (quotedStart) may start with: ASCII spaces and control bytes, the
// backslash of `\.`, and the lead bytes of the runes past ASCII that
// unicode.IsSpace holds (C2, E1, E2 and E3). A field starting with any other
// byte, "Ávila" (C3) among them, is not.
var quotableStart = func() (t [256]uint8) {
	for c := range t {
		if c <= ' ' || c == '\\' || c == 0xc2 || 0xe1 <= c && c <= 0xe3 {
			t[c] = 1
		}
	}
	return t
}()

// plainAgencyRowSlow is plainAgencyRow field by field, for the lines it
// cannot tell at a glance.
func plainAgencyRowSlow(content []byte) bool {
	s := unsafe.String(unsafe.SliceData(content), len(content))
	if strings.IndexByte(s, '"') >= 0 || strings.IndexByte(s, '\r') >= 0 {
		return false
	}
	for range 4 {
		i := strings.IndexByte(s, ',')
		if i < 0 || quotedStart(s[:i]) {
			return false
		}
		s = s[i+1:]
	}
	_, ok := decimal(s) // a fifth comma is no digit
	return ok
}
