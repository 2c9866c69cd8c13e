package lottery

import (
	"encoding/binary"
	"math/bits"
	"strings"
	"unsafe"
)

// fastRow reads the first line of s (up to its LF, or all of it) as the
// central meets almost every row, and says whether it is a valid bet written
// exactly as AppendRow writes it, in one pass: eight bytes at a time, the
// commas, the bytes that are no digit and those past ASCII gathered as bits
// of the line's positions, then every field checked against them. ok is
// true only for a row AddBatch's field-by-field path (splitRow, plainBet)
// accepts with the same document and number; false says nothing, and that
// path then reads the row and says what is wrong with it, if anything.
// Rows it leaves to that path: shorter than a word or longer than 64 bytes,
// with a quote or a control byte, a name starting with anything but a
// printable ASCII byte or a two-byte letter, and every invalid one.
func fastRow(s string, date int) (end int, document string, number int, ok bool) {
	const ones, low7 = 0x0101010101010101, 0x7f7f7f7f7f7f7f7f
	end = strings.IndexByte(s, '\n')
	if end < 0 {
		end = len(s)
	}
	n := end
	if n < 8 || n > 64 {
		return end, "", 0, false
	}
	// Every word read is within the line: i+8 <= n, and n-8 >= 0.
	p := unsafe.Pointer(unsafe.StringData(s))
	// Bit k of each mask is byte k of the line: a comma, no digit, past ASCII.
	var at, other, high, odd uint64
	add := func(i int) {
		w := binary.LittleEndian.Uint64((*[8]byte)(unsafe.Add(p, i))[:])
		commas, o := rowWord(w)
		d := w ^ '0'*ones
		notDigit := (d&low7 + (0x80-10)*ones) | d // top bit: the byte is no digit
		at |= commas << (i & 63)                  // i < 64: the mask spares the shift a check
		other |= topBits(notDigit) << (i & 63)
		high |= topBits(w) << (i & 63)
		odd |= o
	}
	i := 0
	for ; i+8 <= n; i += 8 {
		add(i)
	}
	if i < n {
		add(n - 8) // the line's last word: the bytes it shares with the one before set the same bits
	}
	if odd != 0 || bits.OnesCount64(at) != 4 {
		return end, "", 0, false
	}
	c1 := bits.TrailingZeros64(at)
	at &= at - 1
	c2 := bits.TrailingZeros64(at)
	at &= at - 1
	c3 := bits.TrailingZeros64(at)
	c4 := bits.TrailingZeros64(at & (at - 1))
	// The names: each starts as plainName wants, and their bytes past
	// ASCII, if any, are two-byte letters (plainUTF8).
	if !plainName(s[:c1]) || !plainName(s[c1+1:c2]) || high&bitSpan(0, c2) != 0 && !plainUTF8(s[:c2]) {
		return end, "", 0, false
	}
	// The document: 1 to MaxDocumentLen digits.
	if k := c3 - c2 - 1; k < 1 || k > MaxDocumentLen || other&bitSpan(c2+1, c3) != 0 {
		return end, "", 0, false
	}
	// The birthdate: YYYY-MM-DD, digits but for the two dashes, a real day
	// from 1900 on and not after date.
	b := c3 + 1
	if c4-b != 10 || other&bitSpan(b, c4) != 1<<(b+4)|1<<(b+7) || s[b+4] != '-' || s[b+7] != '-' {
		return end, "", 0, false
	}
	digit := func(i int) int { return int(s[i] - '0') }
	y := digit(b)*1000 + digit(b+1)*100 + digit(b+2)*10 + digit(b+3)
	m, d := digit(b+5)*10+digit(b+6), digit(b+8)*10+digit(b+9)
	if y < 1900 || m < 1 || m > 12 || d < 1 || d > 28 && d > daysIn(y, m) || y*10000+m*100+d > date {
		return end, "", 0, false
	}
	// The number: 1 to 4 digits, no leading zero but for 0 itself.
	k := n - c4 - 1
	if k < 1 || k > 4 || other&bitSpan(c4+1, n) != 0 || k > 1 && s[c4+1] == '0' {
		return end, "", 0, false
	}
	for j := c4 + 1; j < n; j++ {
		number = number*10 + digit(j)
	}
	return end, s[c2+1 : c3], number, true
}

// rowWord returns the commas of w, eight bytes of a line, as bits (bit k:
// byte k), exactly, and odd, whose top bits mark its quotes and ASCII
// control bytes (0x7f among them).
func rowWord(w uint64) (commas, odd uint64) {
	const ones, low7, top = 0x0101010101010101, 0x7f7f7f7f7f7f7f7f, 0x8080808080808080
	commas, odd = plainWord(w)
	x := w & low7
	del := (x ^ 0x7f*ones) + low7 // top bit clear: the byte is 0x7f
	return commas, (odd | ^(del | w)) & top
}

// topBits gathers the top bit of each byte of x: bit k of the result is
// the top bit of byte k.
func topBits(x uint64) uint64 {
	const top = 0x8080808080808080
	return (x & top >> 7) * 0x0102040810204080 >> 56
}

// bitSpan is the bits from..to-1 (to <= 64).
func bitSpan(from, to int) uint64 {
	return 1<<to - 1<<from
}
