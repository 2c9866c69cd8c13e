package lottery

import (
	"bytes"
	"encoding/binary"
	"math/bits"
	"os"
	"strings"
	"testing"
	"unicode"
	"unicode/utf8"
	"unsafe"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// plainAgencyRowReference is plainAgencyRow as it was before its words were
// checked branch-free: what the new one must answer, for any line.
func plainAgencyRowReference(content []byte) bool {
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

// plainRowLines are lines plainAgencyRow must get right: each field start
// csv quotes or may, the ways a line is no row, and commas on either side of
// a word's edge.
var plainRowLines = []struct {
	line string
	want bool
}{
	{"Ana,Paz,1,2000-01-01,5", true},
	{",,,,0", true}, // empty fields: csv writes them bare
	{",,,,", false},
	{"a,b,c,d,", false},
	{"Ana,Paz,1,2000-01-01,5,", false},
	{"Ana,Paz,1,2000-01-01", false},     // 4 fields
	{"Ana,Paz,1,2000-01-01,5,6", false}, // 6 fields
	{"Ana,Paz,1,2000,01-01,5,6,7,8,9,10", false},
	{"", false},
	{"5", false},
	{" Ana,Paz,1,2000-01-01,5", false},   // a leading space
	{"Ana, Paz,1,2000-01-01,5", false},   // one after a comma
	{"Ana,Paz, 1,2000-01-01,5", false},   // in the document
	{"Ana,Paz,1, 2000-01-01,5", false},   // in the birthdate
	{"Ana,Paz,1,2000-01-01, 5", false},   // in the number
	{"Ana Luz,Paz,1,2000-01-01,5", true}, // a space inside
	{"\tAna,Paz,1,2000-01-01,5", false},
	{"Ana,\vPaz,1,2000-01-01,5", false},
	{"Ana,\fPaz,1,2000-01-01,5", false},
	{"Ana,\nPaz,1,2000-01-01,5", false},
	{"\x00Ana,Paz,1,2000-01-01,5", true}, // csv quotes no other control byte
	{"Ana,\x1fPaz,1,2000-01-01,5", true},
	{"Ana,\x7fPaz,1,2000-01-01,5", true},
	{`\.,Paz,1,2000-01-01,5`, false},
	{`Ana,\.,1,2000-01-01,5`, false},
	{`Ana,Paz,1,\.,5`, false},
	{`\x,Paz,1,2000-01-01,5`, true},
	{`\.x,Paz,1,2000-01-01,5`, true},
	{`\,Paz,1,2000-01-01,5`, true},
	{`Ana,Paz,1,2000-01-01,\.`, false},
	{"Ávila,Paz,1,2000-01-01,5", true},
	{"Ana,Ávila,1,2000-01-01,5", true},
	{"Óscar,Álvarez,1,2000-01-01,5", true},
	{"Ana,Paz,1,Ñ,5", true},
	{"\u00a0Ana,Paz,1,2000-01-01,5", false}, // C2 A0
	{"Ana,\u00a0Paz,1,2000-01-01,5", false},
	{"\u0085Ana,Paz,1,2000-01-01,5", false}, // C2 85
	{"\u00a1Ana,Paz,1,2000-01-01,5", true},  // C2 A1: no space
	{"Ana,\u1680,1,2000-01-01,5", false},
	{"Ana,\u2000Paz,1,2000-01-01,5", false},
	{"Ana,\u2028,1,2000-01-01,5", false},
	{"Ana,\u205f,1,2000-01-01,5", false},
	{"Ana,\u3000Paz,1,2000-01-01,5", false},
	{"Ana,\u3001Paz,1,2000-01-01,5", true},
	{"Ana,\ufeffPaz,1,2000-01-01,5", true},
	{"\u4e2d\u6587,Paz,1,2000-01-01,5", true},
	{"\U0001F600,Paz,1,2000-01-01,5", true},
	{"\xc3,Paz,1,2000-01-01,5", true}, // invalid UTF-8 decodes to U+FFFD: no space
	{"\xe2\x80,Paz,1,2000-01-01,5", true},
	{"\xe2,Paz,1,2000-01-01,5", true},
	{"\x80,Paz,1,2000-01-01,5", true},
	{"\xff,Paz,1,2000-01-01,5", true},
	{"Ana,Paz,1,2000-01-01\r,5", false}, // CR inside
	{"Ana\r,Paz,1,2000-01-01,5", false},
	{"Ana,Paz,1,2000-01-01,5\r", false},
	{"\rAna,Paz,1,2000-01-01,5", false},
	{`"Ana",Paz,1,2000-01-01,5`, false}, // quotes
	{`Ana,Paz,1,2000-01-01,"5"`, false},
	{`An"a,Paz,1,2000-01-01,5`, false},
	{"Ana,Paz,1,2000-01-01,0", true}, // numbers
	{"Ana,Paz,1,2000-01-01,07", false},
	{"Ana,Paz,1,2000-01-01,00", false},
	{"Ana,Paz,1,2000-01-01,+1", false},
	{"Ana,Paz,1,2000-01-01,-1", false},
	{"Ana,Paz,1,2000-01-01,10000", true},
	{"Ana,Paz,1,2000-01-01,999999999", true},
	{"Ana,Paz,1,2000-01-01,1000000000", false},
	{"Ana,Paz,1,2000-01-01,12a", false},
	{"Ana,Paz,1,2000-01-01,1 ", false},
	{"Ana,Paz,1,2000-01-01,1.5", false},
	{"Abcdefg,Paz,1,2000-01-01,5", true},           // a comma at 7
	{"Abcdefgh,Paz,1,2000-01-01,5", true},          // at 8
	{"Abcdefg, Paz,1,2000-01-01,5", false},         // at 7, a space at 8
	{"Abcdefgh, Paz,1,2000-01-01,5", false},        // at 8, a space at 9
	{"Abcdefg,\u00a0,1,2000-01-01,5", false},       // at 7, C2 at 8
	{"Abcdefg,Pqrstuv,1,2000-01-01,5", true},       // at 7 and 15
	{"Abcdefg,Pqrstuvw,1,2000-01-01,5", true},      // at 7 and 16
	{"Abcdefg,Pqrstuv, 1,2000-01-01,5", false},     // at 15, a space at 16
	{"Abcdefg,Pqrstuvw,\t1,2000-01-01,5", false},   // at 16, a tab at 17
	{"Abcdefg,Pqrstuv,\\.,2000-01-01,5", false},    // at 15, `\.` at 16
	{"Abcdefg,Pqrstuv,1234567,,5", true},           // at 23 and 24
	{"Abcdefg,Pqrstuv,1234567,2000-01-01,", false}, // the last one at 35
	{"Abcdefg,Pqrstuv,1234567,2000-01-0,", false},  // at 34, the line's last byte
	{"Abcdefg,Pqrstuv,1234567,2000-01-01,1", true},
	{"Abcdefg,Pqrstuv,1234567,200-01-01,12", true}, // the number after a word's edge
	{"Abcdefg,Pqrstuv,1234567,2000-01-01,1234567", true},
	{"Abcdefg,Pqrstuv,1234567,20000-01-01,12345678", true},
	{"Ana,Paz,1,2000-01-01,12345678", true}, // numbers past the last word
	{"Ana,Paz,12,2000-01-01,12345678", true},
	{"Ana,Paz,12,2000-01-01,012345678", false},
	{"Ana,Paz,12,2000-01-01,1234567a", false},
	{"Ana,Paz,12,2000-01-01,a1234567", false},
	{strings.Repeat("A", 45) + ",Paz,1,2000-01-01,1", true},          // 64 bytes
	{strings.Repeat("A", 46) + ",Paz,1,2000-01-01,1", true},          // 65
	{strings.Repeat("A", 45) + ", Paz,1,2000-01-01,", false},         // 64
	{strings.Repeat("A", 47) + ",Paz,1,2000-01-01,1", true},          // 66, the last comma at 64
	{strings.Repeat("A", 50) + ",Paz,1,2000-01-01,12", true},         // 70, the last at 67
	{strings.Repeat("A", 38) + ",Paz,1,2000-01-01,1234567,8", false}, // 65
	{strings.Repeat("A", 53) + ",Paz,1,2000-01-01,5", true},          // 72: nine words
	{strings.Repeat("A", 100) + ",Paz,1,2000-01-01,5", true},         // long lines
	{strings.Repeat("A", 100) + ", Paz,1,2000-01-01,5", false},
	{strings.Repeat("A,", 100) + "5", false},
	{"Ana,Paz,1,2000-01-01," + strings.Repeat("1", 100), false},
	{strings.Repeat("Ávila ", 1000) + ",Paz,1,2000-01-01,5", true},
	{strings.Repeat("Ávila ", 1000) + ",\u3000Paz,1,2000-01-01,5", false},
}

func TestPlainAgencyRow(t *testing.T) {
	for _, tt := range plainRowLines {
		assert.Equal(t, tt.want, plainAgencyRowReference([]byte(tt.line)), "reference(%q)", tt.line)
		assert.Equal(t, tt.want, plainAgencyRow([]byte(tt.line)), "plainAgencyRow(%q)", tt.line)
	}
}

// Every byte, inserted and in place of each of lines whose commas fall on
// either side of a word's edge, and every rune up to past the last space
// (some after it) at each field's start: plainAgencyRow and its slow path
// answer as the reference does.
func TestPlainAgencyRowEveryByte(t *testing.T) {
	bases := []string{
		"Ana,Paz,1,2000-01-01,5",
		"Abcdefg,Pqrstuv,1234567,2000-01-01,1234",
		"Abcdefgh,Pqrstuvw,12345678,2000-01-01,1",
		"Abcdef,Pqrstu,123456,2000-01-0,12",
		",,,,0",
		"a,b,c,d,1",
		"Ana,Paz,1,2000-01-01,1234567",
		strings.Repeat("A", 44) + ",Paz,1,2000-01-01,1",       // 63 bytes: 64 with one more
		strings.Repeat("A", 45) + ",Paz,1,2000-01-01,1",       // 64: the longest read by words
		strings.Repeat("A", 39) + ",Paz,1,2000-01-01,1234567", // 64
	}
	check := func(line []byte) {
		t.Helper()
		want := plainAgencyRowReference(line)
		if got := plainAgencyRow(line); got != want {
			t.Errorf("plainAgencyRow(%q) = %v, want %v", line, got, want)
		}
		if got := plainAgencyRowSlow(line); got != want {
			t.Errorf("plainAgencyRowSlow(%q) = %v, want %v", line, got, want)
		}
	}
	for _, base := range bases {
		for i := 0; i <= len(base); i++ {
			for c := range 256 {
				b := string([]byte{byte(c)})           // the byte, not its rune
				check([]byte(base[:i] + b + base[i:])) // inserted
				if i < len(base) {
					check([]byte(base[:i] + b + base[i+1:])) // replaced
				}
			}
		}
		starts := []int{0}
		for i := range len(base) {
			if base[i] == ',' {
				starts = append(starts, i+1)
			}
		}
		for r := rune(0x80); r <= utf8.MaxRune; r++ {
			if r > 0x3100 && r%97 != 0 {
				continue // no space past U+3000
			}
			for _, at := range starts {
				check([]byte(base[:at] + string(r) + base[at:]))
				check([]byte(base[:at] + string(r)))
			}
		}
	}
}

// quotableStart marks the first byte of every rune unicode.IsSpace holds,
// and the backslash of `\.`: a field starting with any other byte is one
// csv writes as it is.
func TestQuotableStart(t *testing.T) {
	for r := rune(0); r <= utf8.MaxRune; r++ {
		if unicode.IsSpace(r) {
			assert.Equal(t, uint8(1), quotableStart[string(r)[0]], "%U", r)
		}
	}
	assert.Equal(t, uint8(1), quotableStart['\\'])
	for c := range 256 {
		if quotableStart[c] == 0 {
			b := string([]byte{byte(c)}) // the byte, not its rune
			for _, field := range []string{b, b + ".", b + "\xa0", b + "\x80\x80"} {
				assert.False(t, quotedStart(field), "%q", field)
			}
		}
	}
}

// FuzzPlainAgencyRow: plainAgencyRow answers as the reference does, for any
// line.
func FuzzPlainAgencyRow(f *testing.F) {
	for _, tt := range plainRowLines {
		f.Add([]byte(tt.line))
	}
	f.Fuzz(func(t *testing.T, line []byte) {
		want := plainAgencyRowReference(line)
		if got := plainAgencyRow(line); got != want {
			t.Fatalf("plainAgencyRow(%q) = %v, want %v", line, got, want)
		}
		if got := plainAgencyRowSlow(line); got != want {
			t.Fatalf("plainAgencyRowSlow(%q) = %v, want %v", line, got, want)
		}
	})
}

// generatedLines are the lines of a generated agency file, without their
// line ending.
func generatedLines(tb testing.TB, agencies, n int, seed uint64) [][]byte {
	tb.Helper()
	paths, err := GenerateAgencyFiles(tb.TempDir(), agencies, n, seed)
	require.NoError(tb, err)
	var lines [][]byte
	for _, path := range paths {
		data, err := os.ReadFile(path)
		require.NoError(tb, err)
		for line := range bytes.Lines(data) {
			lines = append(lines, bytes.TrimRight(line, "\r\n"))
		}
	}
	return lines
}

// Generated lines are all rows as they are.
func TestPlainAgencyRowGenerated(t *testing.T) {
	for _, line := range generatedLines(t, 4, 5000, 3) {
		require.True(t, plainAgencyRow(line), "%q", line)
	}
}

// BenchmarkPlainAgencyRow checks a generated file's lines, one per op: more
// of them than a branch predictor learns by heart.
func BenchmarkPlainAgencyRow(b *testing.B) {
	lines := generatedLines(b, 1, 20_000, 1)
	for _, bm := range []struct {
		name  string
		plain func([]byte) bool
	}{
		{"new", plainAgencyRow},
		{"reference", plainAgencyRowReference},
	} {
		b.Run(bm.name, func(b *testing.B) {
			i := 0
			for b.Loop() {
				if !bm.plain(lines[i]) {
					b.Fatalf("%q", lines[i])
				}
				if i++; i == len(lines) {
					i = 0
				}
			}
		})
	}
}
