// Package logfmt renders log lines in the course's format, shared by the
// central and the agencies:
//
//	2023-03-30 22:13:58 INFO     action: apuesta_recibida | result: success | cantidad: 120
package logfmt

import (
	"errors"
	"fmt"
	"io"
	"strings"

	"github.com/sirupsen/logrus"
)

// The only results a line may carry.
const (
	Success    = "success"
	Fail       = "fail"
	InProgress = "in_progress"
)

// TimeLayout is the timestamp at the start of every line.
const TimeLayout = "2006-01-02 15:04:05"

// Formatter writes "<time> <LEVEL padded to 8> <message>\n". The message is
// expected to come from Line; logrus fields, if any, are not printed because
// their order would not be stable.
type Formatter struct{}

// Format implements logrus.Formatter.
func (Formatter) Format(e *logrus.Entry) ([]byte, error) {
	b := make([]byte, 0, 64+len(e.Message))
	b = e.Time.AppendFormat(b, TimeLayout)
	b = fmt.Appendf(b, " %-8s %s\n", strings.ToUpper(e.Level.String()), e.Message)
	return b, nil
}

// Line builds "action: A | result: R | k1: v1 | k2: v2", keys and values in
// the order given. Values are printed with %v; a missing value prints empty.
func Line(action, result string, kv ...any) string {
	var sb strings.Builder
	sb.Grow(32 + 16*len(kv))
	sb.WriteString("action: ")
	sb.WriteString(action)
	sb.WriteString(" | result: ")
	sb.WriteString(result)
	for i := 0; i < len(kv); i += 2 {
		sb.WriteString(" | ")
		fmt.Fprint(&sb, kv[i])
		sb.WriteString(": ")
		if i+1 < len(kv) {
			fmt.Fprint(&sb, kv[i+1])
		}
	}
	return sb.String()
}

// LevelNames lists the log levels a configuration may name.
const LevelNames = "DEBUG, INFO, WARN, ERROR"

// ErrLevel is the error ParseLevel returns for any other name.
var ErrLevel = errors.New("must be one of " + LevelNames)

// ParseLevel reads a level named in a configuration: DEBUG, INFO, WARN (or
// WARNING) or ERROR, in any case.
func ParseLevel(name string) (logrus.Level, error) {
	switch strings.ToUpper(name) {
	case "DEBUG":
		return logrus.DebugLevel, nil
	case "INFO":
		return logrus.InfoLevel, nil
	case "WARN", "WARNING":
		return logrus.WarnLevel, nil
	case "ERROR":
		return logrus.ErrorLevel, nil
	}
	return 0, fmt.Errorf("log level %q: %w", name, ErrLevel)
}

// New returns a logger writing to w in the course's format, at the level
// named (see ParseLevel).
func New(w io.Writer, level string) (*logrus.Logger, error) {
	lvl, err := ParseLevel(level)
	if err != nil {
		return nil, err
	}
	l := logrus.New()
	l.SetFormatter(Formatter{})
	l.SetLevel(lvl)
	l.SetOutput(w)
	return l, nil
}
