package logfmttest

import (
	"strings"

	"lotterycentral.example/lottery/logfmt"
)

// What a test waits for when a line's full text is not the point.

// AnyLine is the start of every line of action a, whatever its result.
func AnyLine(a logfmt.Action) string {
	line := a.Line("")
	return line[:strings.LastIndex(line, "| result: ")+1]
}

// AnyFail is in every line whose result is fail, whatever its action.
var AnyFail = strings.TrimPrefix(logfmt.Action("").Line(logfmt.Fail), "action: ")

// Fields is fields as a line shows them, in this order: "k1: v1 | k2: v2".
func Fields(fields ...logfmt.Field) string {
	s := make([]string, len(fields))
	for i, f := range fields {
		s[i] = f.String()
	}
	return strings.Join(s, " | ")
}
