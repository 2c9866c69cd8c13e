package lottery

import (
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// split is what splitRow returns, as one value to compare.
type split struct {
	end              int
	comma            [4]int
	commas           int
	quote, ctl, high bool
}

func splitOf(f func(string) (int, [4]int, int, bool, bool, bool), s string) split {
	end, comma, commas, quote, ctl, high := f(s)
	return split{end, comma, commas, quote, ctl, high}
}

func TestSplitRow(t *testing.T) {
	tests := []struct {
		name string
		in   string
		want split
	}{
		{"plain", "Ana,Paz,1,2000-01-01,5\nrest", split{end: 22, comma: [4]int{3, 7, 9, 20}, commas: 4}},
		{"no LF", "Ana,Paz,1,2000-01-01,5", split{end: 22, comma: [4]int{3, 7, 9, 20}, commas: 4}},
		{"accented", "Ávila,Paz,1,2000-01-01,5\n", split{end: 25, comma: [4]int{6, 10, 12, 23}, commas: 4, high: true}},
		{"quoted", `"Paz, Ana",B,1,2000-01-01,5` + "\n", split{end: 27, comma: [4]int{4, 10, 12, 14}, commas: 5, quote: true}},
		{"CR", "Ana,Paz,1,2000-01-01,5\r\n", split{end: 23, comma: [4]int{3, 7, 9, 20}, commas: 4, ctl: true}},
		{"DEL", "Ana,Pa\x7f,1,2000-01-01,5\n", split{end: 22, comma: [4]int{3, 7, 9, 20}, commas: 4, ctl: true}},
		{"six fields", "Ana,Paz,1,2000-01-01,5,6\n", split{end: 24, comma: [4]int{3, 7, 9, 20}, commas: 5}},
		{"three fields", "Ana,Paz,12345678\n", split{end: 16, comma: [4]int{3, 7}, commas: 2}},
		{"short", "a,b,c\n", split{end: 5, comma: [4]int{1, 3}, commas: 2}},
		{"empty", "", split{}},
		{"long", strings.Repeat("A", 60) + ",Paz,1,2000-01-01,5\n", split{end: 79, comma: [4]int{60, 64, 66, 77}, commas: 4}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			assert.Equal(t, tt.want, splitOf(splitRow, tt.in))
		})
	}
}

// daysIn counts the days of every month of five centuries as time.Date does.
func TestDaysIn(t *testing.T) {
	for y := 1800; y <= 2300; y++ {
		for m := 1; m <= 12; m++ {
			want := time.Date(y, time.Month(m)+1, 0, 0, 0, 0, 0, time.UTC).Day() // day 0: the last of m
			require.Equal(t, want, daysIn(y, m), "%d-%02d", y, m)
		}
	}
}

// plainUTF8Reference is what plainUTF8 answers: valid UTF-8, and no C2 byte.
func plainUTF8Reference(s string) bool {
	return utf8.ValidString(s) && strings.IndexByte(s, 0xc2) < 0
}

// plainUTF8 answers as its reference for every byte value, and every rune,
// at every place of names.
func TestPlainUTF8(t *testing.T) {
	bases := []string{"", "Ana", "Ávila", "Núñez,Zoë", "Ana\xc3", "\xa9Ana"}
	for _, base := range bases {
		for i := 0; i <= len(base); i++ {
			for c := range 256 {
				b := string([]byte{byte(c)}) // the byte, not its rune
				for _, s := range []string{base[:i] + b + base[i:], base[:i] + b + "\x80" + base[i:]} {
					require.Equal(t, plainUTF8Reference(s), plainUTF8(s), "%q", s)
				}
			}
			for r := rune(0x80); r <= utf8.MaxRune; r += 7 {
				s := base[:i] + string(r) + base[i:]
				require.Equal(t, plainUTF8Reference(s), plainUTF8(s), "%q", s)
			}
		}
	}
}

func FuzzPlainUTF8(f *testing.F) {
	f.Add("Ávila")
	f.Add("Ana\xc2\x85")
	f.Fuzz(func(t *testing.T, s string) {
		if got, want := plainUTF8(s), plainUTF8Reference(s); got != want {
			t.Fatalf("plainUTF8(%q) = %v, want %v", s, got, want)
		}
	})
}
