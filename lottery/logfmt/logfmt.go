// Package logfmt renders log lines in the course's format, shared by the
// central and the agencies:
//
//	2023-03-30 22:13:58 INFO     action: apuesta_recibida | result: success | cantidad: 120
//
// A program declares every action and key it logs once, in its vocabulary (a
// package of Action and Key constants), and logs through a Logger: a line is
// built from those declarations, and only when its level is enabled.
package logfmt

import (
	"errors"
	"fmt"
	"io"
	"iter"
	"strconv"
	"strings"
	"time"

	"github.com/sirupsen/logrus"
)

// Result is how an action went; a line carries one of these three.
type Result string

// The only results a line may carry.
const (
	Success    Result = "success"
	Fail       Result = "fail"
	InProgress Result = "in_progress"
)

// Action names an event. Each program declares its actions once, in its vocabulary.
type Action string

// Key names a value on a line. Each program declares its keys once, in its vocabulary.
type Key string

// Field is one key and its value, rendered "key: value".
type Field struct {
	key  Key
	kind fieldKind
	num  uint64 // int and uint values; an int is stored as its two's complement
	str  string
	val  any
}

type fieldKind uint8

const (
	kindInt fieldKind = iota
	kindUint
	kindStr
	kindAny
)

// Int is the field k: n.
func (k Key) Int(n int) Field { return Field{key: k, kind: kindInt, num: uint64(int64(n))} }

// Uint is the field k: n.
func (k Key) Uint(n uint64) Field { return Field{key: k, kind: kindUint, num: n} }

// Str is the field k: s.
func (k Key) Str(s string) Field { return Field{key: k, kind: kindStr, str: s} }

// Any is the field k: v, v printed with %v (an error, a duration, an address).
func (k Key) Any(v any) Field { return Field{key: k, kind: kindAny, val: v} }

// String is the field as a line shows it: "key: value".
func (f Field) String() string { return string(f.appendTo(nil)) }

func (f Field) appendTo(b []byte) []byte {
	b = append(b, f.key...)
	b = append(b, ": "...)
	switch f.kind {
	case kindInt:
		return strconv.AppendInt(b, int64(f.num), 10)
	case kindUint:
		return strconv.AppendUint(b, f.num, 10)
	case kindStr:
		return append(b, f.str...)
	}
	return fmt.Append(b, f.val)
}

// Line is "action: A | result: R | k1: v1 | k2: v2", the fields in the order
// given: the message of a log line, and what a test waits for.
func (a Action) Line(r Result, fields ...Field) string {
	return string(a.appendLine(make([]byte, 0, 48+24*len(fields)), r, fields))
}

// appendLine appends Line's text to b.
func (a Action) appendLine(b []byte, r Result, fields []Field) []byte {
	b = append(b, "action: "...)
	b = append(b, a...)
	b = append(b, " | result: "...)
	b = append(b, r...)
	for _, f := range fields {
		b = append(b, " | "...)
		b = f.appendTo(b)
	}
	return b
}

// TimeLayout is the timestamp at the start of every line.
const TimeLayout = "2006-01-02 15:04:05"

// Formatter writes "<Prefix><time> <LEVEL padded to 8> <message>\n". The
// message is expected to come from Action.Line; logrus fields, if any, are not
// printed because their order would not be stable.
type Formatter struct {
	// Prefix starts every line, e.g. "server   | " when several programs
	// write to one output (make run): each line then says whose it is, and
	// lines reach the output in the order they were logged.
	Prefix string
}

// Format implements logrus.Formatter. It writes into the entry's Buffer,
// which logrus takes from a pool and reuses line after line: the central logs
// a line per batch, and a line should leave no garbage behind. The Buffer
// grows to a group's lines and keeps what it grew, for the next group. An
// entry of a group (Lines) is several lines, each with its own level, at the
// entry's time.
func (f Formatter) Format(e *logrus.Entry) ([]byte, error) {
	if e.Buffer == nil {
		var b []byte
		for l := range EntryLines(e) {
			b = f.appendLine(b, e.Time, l.Level, l.Message)
		}
		return b, nil
	}
	for l := range EntryLines(e) {
		e.Buffer.Grow(len(f.Prefix) + len(TimeLayout) + len(levelColumns[0]) + len(l.Message) + 1)
		e.Buffer.Write(f.appendLine(e.Buffer.AvailableBuffer(), e.Time, l.Level, l.Message))
	}
	return e.Buffer.Bytes(), nil
}

func (f Formatter) appendLine(b []byte, t time.Time, level logrus.Level, msg string) []byte {
	b = append(b, f.Prefix...)
	b = t.AppendFormat(b, TimeLayout)
	if int(level) < len(levelColumns) {
		b = append(b, levelColumns[level]...)
	} else {
		b = fmt.Appendf(b, " %-8s ", strings.ToUpper(level.String()))
	}
	b = append(b, msg...)
	return append(b, '\n')
}

// levelColumns are each level's column, padded, between spaces.
var levelColumns = func() (cols [logrus.TraceLevel + 1]string) {
	for l := range cols {
		cols[l] = fmt.Sprintf(" %-8s ", strings.ToUpper(logrus.Level(l).String()))
	}
	return cols
}()

// Logger logs lines built from a vocabulary's actions and keys. A nil
// *Logger logs nothing.
type Logger struct {
	base *logrus.Logger
}

// Wrap logs through base (its level, output, formatter and hooks).
func Wrap(base *logrus.Logger) *Logger { return &Logger{base: base} }

// Debug logs a line at DEBUG; the line is built only if DEBUG is enabled.
func (l *Logger) Debug(a Action, r Result, fields ...Field) { l.log(logrus.DebugLevel, a, r, fields) }

// Info logs a line at INFO.
func (l *Logger) Info(a Action, r Result, fields ...Field) { l.log(logrus.InfoLevel, a, r, fields) }

// Warn logs a line at WARNING.
func (l *Logger) Warn(a Action, r Result, fields ...Field) { l.log(logrus.WarnLevel, a, r, fields) }

// Error logs a line at ERROR.
func (l *Logger) Error(a Action, r Result, fields ...Field) { l.log(logrus.ErrorLevel, a, r, fields) }

func (l *Logger) log(level logrus.Level, a Action, r Result, fields []Field) {
	if l == nil || !l.base.IsLevelEnabled(level) {
		return
	}
	l.base.Log(level, a.Line(r, fields...))
}

// Lines is a group of lines logged together, in order, with one write: a
// line per event, but one system call for events that happen at once (the
// central's batches that one commit stored). Add lines with Info, Warn and
// Error; Flush logs them and empties the group, which is then reused. A
// group of a nil *Logger logs nothing.
type Lines struct {
	l     *Logger
	text  []byte      // the lines' messages, one after another
	lines []lineIndex // each line's level and where its message ends in text
}

type lineIndex struct {
	level logrus.Level
	end   int
}

// Line is one line of a group: its level and message (Action.Line).
type Line struct {
	Level   logrus.Level
	Message string
}

// groupField holds, in a group's entry, the lines after the first.
const groupField = "logfmt.lines"

// Lines returns an empty group of lines logged through l.
func (l *Logger) Lines() *Lines { return &Lines{l: l} }

// Info adds a line at INFO.
func (g *Lines) Info(a Action, r Result, fields ...Field) { g.add(logrus.InfoLevel, a, r, fields) }

// Warn adds a line at WARNING.
func (g *Lines) Warn(a Action, r Result, fields ...Field) { g.add(logrus.WarnLevel, a, r, fields) }

// Error adds a line at ERROR.
func (g *Lines) Error(a Action, r Result, fields ...Field) { g.add(logrus.ErrorLevel, a, r, fields) }

func (g *Lines) add(level logrus.Level, a Action, r Result, fields []Field) {
	if g.l == nil || !g.l.base.IsLevelEnabled(level) {
		return
	}
	g.text = a.appendLine(g.text, r, fields)
	g.lines = append(g.lines, lineIndex{level, len(g.text)})
}

// Flush logs the group's lines: one logrus entry at the first line's level,
// which its hooks see (EntryLines gives them every line) and the Formatter
// writes as every line, so that they reach the output with one write.
func (g *Lines) Flush() {
	if len(g.lines) == 0 {
		return
	}
	// One string for the group's messages, which the lines share: the
	// entry may outlive the group's next use (a hook keeps it).
	text := string(g.text)
	first := g.lines[0]
	if len(g.lines) == 1 {
		g.l.base.Log(first.level, text)
	} else {
		rest := make([]Line, len(g.lines)-1)
		for i, l := range g.lines[1:] {
			rest[i] = Line{l.level, text[g.lines[i].end:l.end]}
		}
		g.l.base.WithField(groupField, rest).Log(first.level, text[:first.end])
	}
	g.text, g.lines = g.text[:0], g.lines[:0]
}

// EntryLines yields every line an entry logs: its own, then those of its
// group (Lines). The Formatter writes them; a hook that records lines reads
// them here.
func EntryLines(e *logrus.Entry) iter.Seq[Line] {
	return func(yield func(Line) bool) {
		if !yield(Line{e.Level, e.Message}) {
			return
		}
		rest, _ := e.Data[groupField].([]Line)
		for _, l := range rest {
			if !yield(l) {
				return
			}
		}
	}
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

// Option changes how New's logger writes its lines.
type Option func(*Formatter)

// Prefix starts every line with p (see Formatter.Prefix); "" adds nothing.
func Prefix(p string) Option { return func(f *Formatter) { f.Prefix = p } }

// New returns a logger writing to w in the course's format, at the level
// named (see ParseLevel). Each line is one Write to w, but for a group's
// lines (Lines), which share one: a line is never split across Writes.
func New(w io.Writer, level string, opts ...Option) (*Logger, error) {
	lvl, err := ParseLevel(level)
	if err != nil {
		return nil, err
	}
	var f Formatter
	for _, o := range opts {
		o(&f)
	}
	l := logrus.New()
	l.SetFormatter(f)
	l.SetLevel(lvl)
	l.SetOutput(w)
	return Wrap(l), nil
}
