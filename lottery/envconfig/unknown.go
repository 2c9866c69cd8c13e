package envconfig

import (
	"fmt"
	"slices"
	"strings"
)

// Unknown is a variable that looks like one of a program's settings (it has
// their prefix) and is none: a typo, most likely, which the program would
// otherwise ignore without a word.
type Unknown struct {
	Var     string // as it is set, e.g. SERVER_AGENCY
	Nearest string // the setting it is near enough to be a typo of (see near); "" when none is
}

// Text says what is wrong, for a warning: "SERVER_AGENCY is not a setting;
// did you mean SERVER_AGENCIES?", or, with no setting near it, "SERVER_X is
// not a setting; server -h lists them", help being the command that lists
// the settings ("server -h").
func (u Unknown) Text(help string) string {
	if u.Nearest != "" {
		return fmt.Sprintf("%s is not a setting; did you mean %s?", u.Var, u.Nearest)
	}
	return fmt.Sprintf("%s is not a setting; %s lists them", u.Var, help)
}

// UnknownVars lists the variables of environ (os.Environ's NAME=value form)
// whose name starts with prefix, in any case ("SERVER_", "server_"), that are
// neither one of T's settings nor one of others, the variables legitimately
// set beside the program without being its settings. Each is listed once,
// sorted by name, with the setting it is nearest to when that one is near
// enough: a name is compared with the settings' without the prefix and in
// upper case, so "server_port" suggests SERVER_PORT.
func UnknownVars[T any](environ []string, prefix string, others ...string) []Unknown {
	var settings []string
	for _, f := range fields[T]() {
		settings = append(settings, f.key)
	}
	var out []Unknown
	seen := make(map[string]bool)
	for _, kv := range environ {
		name, _, _ := strings.Cut(kv, "=")
		if seen[name] || len(name) < len(prefix) || !strings.EqualFold(name[:len(prefix)], prefix) ||
			slices.Contains(settings, name) || slices.Contains(others, name) {
			continue
		}
		seen[name] = true
		out = append(out, Unknown{Var: name, Nearest: nearest(name, settings, len(prefix))})
	}
	slices.SortFunc(out, func(a, b Unknown) int { return strings.Compare(a.Var, b.Var) })
	return out
}

// nearest is the one setting nearest to name, compared without their first
// skip bytes (the prefix they share) and in upper case, if it is near enough;
// "" when none is, or when two are equally near (a guess between them would
// mislead as often as help).
func nearest(name string, settings []string, skip int) string {
	typed := strings.ToUpper(name[skip:])
	best, bestD, tie := "", -1, false
	for _, s := range settings {
		if len(s) < skip {
			continue
		}
		d := distance(typed, s[skip:])
		if !near(d, typed, s[skip:]) {
			continue
		}
		switch {
		case bestD < 0 || d < bestD:
			best, bestD, tie = s, d, false
		case d == bestD:
			tie = true
		}
	}
	if tie {
		return ""
	}
	return best
}

// near tells a typo from another name: at most one edit for every three
// characters of the longer name, rounded up. AGENCY is near AGENCIES (3 edits
// in 8 characters), PROT near PORT (a swap in 4) and IP near ID (1 in 2); FOO
// is not near HOST (3 in 4), nor LOG near LOG_LEVEL (6 in 9).
func near(d int, a, b string) bool {
	longer := max(len([]rune(a)), len([]rune(b)))
	return d <= (longer+2)/3
}

// distance is the number of edits that turn a into b, an edit being a
// character inserted, deleted or replaced, or two neighbours swapped:
// Levenshtein's distance with a swap counted as one edit, not two (the
// optimal string alignment distance), a swap being the commonest slip of a
// typing hand.
func distance(a, b string) int {
	ra, rb := []rune(a), []rune(b)
	// Three rows of the edit matrix: i-2, i-1 and i.
	before, prev, cur := make([]int, len(rb)+1), make([]int, len(rb)+1), make([]int, len(rb)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(ra); i++ {
		cur[0] = i
		for j := 1; j <= len(rb); j++ {
			cost := 1
			if ra[i-1] == rb[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
			if i > 1 && j > 1 && ra[i-1] == rb[j-2] && ra[i-2] == rb[j-1] {
				cur[j] = min(cur[j], before[j-2]+1)
			}
		}
		before, prev, cur = prev, cur, before
	}
	return prev[len(rb)]
}
