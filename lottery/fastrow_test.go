package lottery

import (
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// fastRowDate is the day the tests check rows on, as YYYYMMDD.
var fastRowDate = today(time.Date(2026, 12, 5, 12, 0, 0, 0, time.UTC))

// slowRow is AddBatch's field-by-field reading of the first row of s, the
// one fastRow must agree with.
func slowRow(s string, date int) (end int, document string, number int, err error) {
	end, comma, commas, quote, ctl, high := splitRow(s)
	line := s[:end]
	var b Bet
	if quote || commas != len(comma) {
		b, err = checkRow(1, line, date)
	} else {
		b, err = plainBet(1, line, &comma, plainLine(line[:comma[1]], ctl, high), date)
	}
	return end, b.Document, b.Number, err
}

// checkFastRow: when fastRow takes the first row of s, the slow reading
// takes it too, ending at the same place, with the same document and number.
func checkFastRow(t *testing.T, s string) (ok bool) {
	t.Helper()
	end, document, number, ok := fastRow(s, fastRowDate)
	if !ok {
		return false
	}
	wantEnd, wantDocument, wantNumber, err := slowRow(s, fastRowDate)
	if err != nil || end != wantEnd || document != wantDocument || number != wantNumber {
		t.Fatalf("fastRow(%q) = %d, %q, %d, true; the fields' reading: %d, %q, %d, %v",
			s, end, document, number, wantEnd, wantDocument, wantNumber, err)
	}
	return true
}

func TestFastRow(t *testing.T) {
	tests := []struct {
		name   string
		line   string
		ok     bool
		number int
	}{
		{"plain", "Ana,Paz,30904465,1999-03-17,7574", true, 7574},
		{"accented names", "Ávila,Núñez,1,2000-01-01,5", true, 5},
		{"number 0", "Ana,Paz,1,2000-01-01,0", true, 0},
		{"leap day", "Ana,Paz,1,2024-02-29,12", true, 12},
		{"ten-digit document", "Ana,Paz,1234567890,2000-01-01,9999", true, 9999},
		{"64 bytes", strings.Repeat("A", 45) + ",Paz,1,2000-01-01,1", true, 1},
		{"today", "Ana,Paz,1,2026-12-05,1", true, 1},
		// The rest are left to the fields' reading, valid or not.
		{"7 bytes", "a,b,1,2", false, 0},
		{"65 bytes", strings.Repeat("A", 46) + ",Paz,1,2000-01-01,1", false, 0},
		{"quoted name", `"Paz, Ana",B,1,2000-01-01,5`, false, 0},
		{"CR", "Ana,Paz,1,2000-01-01,5\r", false, 0},
		{"DEL", "Ana,Pa\x7f,1,2000-01-01,5", false, 0},
		{"three commas", "Ana,Paz,1,2000-01-015", false, 0},
		{"five commas", "Ana,Paz,1,2000-01-01,5,6", false, 0},
		{"empty name", ",Paz,1,2000-01-01,5", false, 0},
		{"name starting with a space", " Ana,Paz,1,2000-01-01,5", false, 0},
		{"C1 control in a name", "An\xc2\x85,Paz,1,2000-01-01,5", false, 0},
		{"three-byte rune in a name", "Ana€,Paz,1,2000-01-01,5", true, 5},
		{"invalid UTF-8 in a name", "An\xc3,Paz,1,2000-01-01,5", false, 0},
		{"empty document", "Ana,Paz,,2000-01-01,5", false, 0},
		{"eleven-digit document", "Ana,Paz,12345678901,2000-01-01,5", false, 0},
		{"letter in the document", "Ana,Paz,12a4,2000-01-01,5", false, 0},
		{"not a leap year", "Ana,Paz,1,2023-02-29,5", false, 0},
		{"April 31", "Ana,Paz,1,2000-04-31,5", false, 0},
		{"month 13", "Ana,Paz,1,2000-13-01,5", false, 0},
		{"day 0", "Ana,Paz,1,2000-01-00,5", false, 0},
		{"1899", "Ana,Paz,1,1899-12-31,5", false, 0},
		{"tomorrow", "Ana,Paz,1,2026-12-06,5", false, 0},
		{"slashes", "Ana,Paz,1,2000/01/01,5", false, 0},
		{"short date", "Ana,Paz,1,2000-1-01,5", false, 0},
		{"leading zero", "Ana,Paz,1,2000-01-01,05", false, 0},
		{"five digits", "Ana,Paz,1,2000-01-01,10000", false, 0},
		{"empty number", "Ana,Paz,1,2000-01-01,", false, 0},
		{"signed number", "Ana,Paz,1,2000-01-01,+5", false, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			for _, s := range []string{tt.line, tt.line + "\nAna,Paz,1,2000-01-01,5\n"} {
				end, _, number, ok := fastRow(s, fastRowDate)
				require.Equal(t, tt.ok, ok, "%q", s)
				assert.Equal(t, len(tt.line), end)
				if ok {
					assert.Equal(t, tt.number, number)
				}
				checkFastRow(t, s)
			}
		})
	}
}

// Every byte value inserted and put in place of every byte of rows of every
// length fastRow reads differently: whatever it takes, the fields' reading
// takes the same way.
func TestFastRowEveryByte(t *testing.T) {
	bases := []string{
		"Ana,Paz,1,2000-01-01,5",
		"Ávila,Núñez,1234567890,2024-02-29,7574",
		"Abcdefgh,Pqrstuvw,12345678,2000-12-31,0",
		strings.Repeat("A", 44) + ",Paz,1,2000-01-01,1", // 63 bytes
		strings.Repeat("A", 45) + ",Paz,1,2000-01-01,1", // 64
	}
	for _, base := range bases {
		require.True(t, checkFastRow(t, base), "%q", base)
		for i := 0; i <= len(base); i++ {
			for c := range 256 {
				b := string([]byte{byte(c)}) // the byte, not its rune
				checkFastRow(t, base[:i]+b+base[i:])
				if i < len(base) {
					checkFastRow(t, base[:i]+b+base[i+1:])
				}
			}
		}
	}
}

// fastRow takes every row of generated files: the fields' reading is left
// the rows no generator writes.
func TestFastRowGenerated(t *testing.T) {
	for _, line := range generatedLines(t, 2, 5000, 7) {
		require.True(t, checkFastRow(t, string(line)+"\n"), "%q", line)
	}
}

func FuzzFastRow(f *testing.F) {
	f.Add("Ana,Paz,30904465,1999-03-17,7574\n")
	f.Add("Ávila,Núñez,1,2024-02-29,0")
	f.Add(`"Paz, Ana",B,1,2000-01-01,5` + "\r\n")
	f.Fuzz(func(t *testing.T, s string) {
		checkFastRow(t, s)
	})
}
