package lottery

import (
	"strconv"
	"strings"
	"testing"
	"unicode"
	"unicode/utf8"
)

// referenceCheckName is checkName written plainly, one library call per
// rule; the one-pass checkName must give the same answer for every string.
func referenceCheckName(s string) string {
	switch {
	case strings.TrimSpace(s) == "":
		return "empty"
	case len(s) > MaxNameLen:
		return "longer than " + strconv.Itoa(MaxNameLen) + " bytes"
	case !utf8.ValidString(s):
		return "not valid UTF-8"
	case strings.IndexFunc(s, unicode.IsControl) >= 0:
		return "contains a control character"
	}
	return ""
}

func FuzzCheckName(f *testing.F) {
	for _, s := range []string{"", " ", "\t", "\u00a0", "Ana", "María José", "Ana\n", "Ana\x00",
		"Ana\u0085", "Ana\u009f", "Ana\u00a0", "ñ\u0080ñ", "Ana\xc2", "Ana\xff", "\xff", " \xc3", strings.Repeat("á", 60), "O'Brien, Jr.", "\u2028"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		got, _ := checkName(s)
		if want := referenceCheckName(s); got != want {
			t.Fatalf("checkName(%q) = %q, want %q", s, got, want)
		}
	})
}
