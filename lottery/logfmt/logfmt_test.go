package logfmt

import (
	"bytes"
	"errors"
	"io"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/sirupsen/logrus"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestFormat(t *testing.T) {
	at := time.Date(2023, 3, 30, 22, 13, 58, 0, time.Local)
	const (
		received Action = "apuesta_recibida"
		drawn    Action = "sorteo"
		cantidad Key    = "cantidad"
	)
	tests := []struct {
		name  string
		level logrus.Level
		msg   string
		want  string
	}{
		{"info", logrus.InfoLevel, received.Line(Success, cantidad.Int(120)),
			"2023-03-30 22:13:58 INFO     action: apuesta_recibida | result: success | cantidad: 120\n"},
		{"error", logrus.ErrorLevel, received.Line(Fail, cantidad.Uint(120)),
			"2023-03-30 22:13:58 ERROR    action: apuesta_recibida | result: fail | cantidad: 120\n"},
		{"no fields", logrus.InfoLevel, drawn.Line(Success),
			"2023-03-30 22:13:58 INFO     action: sorteo | result: success\n"},
		{"every kind", logrus.WarnLevel, Action("x").Line(InProgress, Key("a").Str("b"), Key("c").Any(1.5),
			Key("d").Int(-3), Key("e").Any(errors.New("boom"))),
			"2023-03-30 22:13:58 WARNING  action: x | result: in_progress | a: b | c: 1.5 | d: -3 | e: boom\n"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := Formatter{}.Format(&logrus.Entry{Time: at, Level: tt.level, Message: tt.msg})
			require.NoError(t, err)
			assert.Equal(t, tt.want, string(got))
		})
	}
}

// A field reads as it does on a line, so a test can wait for one alone.
func TestFieldString(t *testing.T) {
	assert.Equal(t, "agencia: 3", Key("agencia").Int(3).String())
	assert.Equal(t, "remoto: 127.0.0.1:5", Key("remoto").Str("127.0.0.1:5").String())
}

func TestParseLevel(t *testing.T) {
	tests := []struct {
		name    string
		in      string
		want    logrus.Level
		wantErr error
	}{
		{"upper case", "DEBUG", logrus.DebugLevel, nil},
		{"lower case", "info", logrus.InfoLevel, nil},
		{"mixed case", "Warn", logrus.WarnLevel, nil},
		{"warning alias", "WARNING", logrus.WarnLevel, nil},
		{"error", "error", logrus.ErrorLevel, nil},
		{"unknown", "LOUD", 0, ErrLevel},
		{"logrus-only level", "trace", 0, ErrLevel},
		{"empty", "", 0, ErrLevel},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := ParseLevel(tt.in)
			if tt.wantErr != nil {
				require.ErrorIs(t, err, tt.wantErr)
				return
			}
			require.NoError(t, err)
			assert.Equal(t, tt.want, got)
		})
	}
}

func TestNew(t *testing.T) {
	var buf bytes.Buffer
	l, err := New(&buf, "warn")
	require.NoError(t, err)
	l.Info(Action("hidden"), Success)
	l.Warn(Action("shown"), Fail, Key("k").Str("v"))
	assert.Regexp(t, `^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d WARNING  action: shown \| result: fail \| k: v\n$`, buf.String())

	_, err = New(&buf, "loud")
	require.ErrorIs(t, err, ErrLevel)
}

// stringer counts how often it is formatted.
type stringer struct{ calls *int }

func (s stringer) String() string {
	*s.calls++
	return "formatted"
}

// A line below the logger's level is never built: its values are not formatted.
// writes records each Write apart.
type writes [][]byte

func (w *writes) Write(p []byte) (int, error) {
	*w = append(*w, bytes.Clone(p))
	return len(p), nil
}

// With a prefix every line starts with it, and each line is one Write: make
// run gives every process the same file to append to, and a line written in
// pieces could be cut by another process's.
func TestPrefix(t *testing.T) {
	var w writes
	l, err := New(&w, "info", Prefix("client3  | "))
	require.NoError(t, err)
	l.Info(Action("one"), Success)
	l.Error(Action("two"), Fail, Key("k").Int(1))
	require.Len(t, w, 2)
	assert.Regexp(t, `^client3  \| \d{4}-\d\d-\d\d \d\d:\d\d:\d\d INFO     action: one \| result: success\n$`, string(w[0]))
	assert.Regexp(t, `^client3  \| \d{4}-\d\d-\d\d \d\d:\d\d:\d\d ERROR    action: two \| result: fail \| k: 1\n$`, string(w[1]))

	w = nil
	l, err = New(&w, "info", Prefix(""))
	require.NoError(t, err)
	l.Info(Action("bare"), Success)
	require.Len(t, w, 1)
	assert.Regexp(t, `^\d{4}-`, string(w[0]))
}

func TestLineBuiltOnlyWhenEnabled(t *testing.T) {
	var buf bytes.Buffer
	l, err := New(&buf, "info")
	require.NoError(t, err)
	calls := 0
	l.Debug(Action("quiet"), Success, Key("v").Any(stringer{&calls}))
	assert.Zero(t, calls, "a DEBUG line was formatted at INFO")
	assert.Empty(t, buf.String())
	l.Info(Action("loud"), Success, Key("v").Any(stringer{&calls}))
	assert.Equal(t, 1, calls)
	assert.Contains(t, buf.String(), "action: loud | result: success | v: formatted")

	var none *Logger
	none.Error(Action("nowhere"), Fail) // a nil Logger logs nothing, and does not panic
}

// hookLines records every line its entries log, as a hook that records lines does.
type hookLines struct{ lines []Line }

func (h *hookLines) Levels() []logrus.Level { return logrus.AllLevels }

func (h *hookLines) Fire(e *logrus.Entry) error {
	for l := range EntryLines(e) {
		h.lines = append(h.lines, l)
	}
	return nil
}

// A group's lines leave with one Write, in the order added, each formatted as
// if logged alone (with its own level, a line below the logger's dropped);
// hooks see every line; an empty group writes nothing; Flush empties it.
func TestLines(t *testing.T) {
	const received Action = "apuesta_recibida"
	cantidad := Key("cantidad")
	tests := []struct {
		name      string
		add       func(g *Lines)
		wantLines []string // each after the timestamp
		wantHook  []Line
	}{
		{"empty", func(*Lines) {}, nil, nil},
		{"one", func(g *Lines) { g.Info(received, Success, cantidad.Int(1)) },
			[]string{"INFO     action: apuesta_recibida | result: success | cantidad: 1"},
			[]Line{{logrus.InfoLevel, "action: apuesta_recibida | result: success | cantidad: 1"}}},
		{"three levels, in order", func(g *Lines) {
			g.Info(received, Success, cantidad.Int(1))
			g.Error(received, Fail, cantidad.Int(2))
			g.Warn(Action("rechazo_lote"), Fail)
		}, []string{
			"INFO     action: apuesta_recibida | result: success | cantidad: 1",
			"ERROR    action: apuesta_recibida | result: fail | cantidad: 2",
			"WARNING  action: rechazo_lote | result: fail",
		}, []Line{
			{logrus.InfoLevel, "action: apuesta_recibida | result: success | cantidad: 1"},
			{logrus.ErrorLevel, "action: apuesta_recibida | result: fail | cantidad: 2"},
			{logrus.WarnLevel, "action: rechazo_lote | result: fail"},
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var w writes
			l, err := New(&w, "info", Prefix("server   | "))
			require.NoError(t, err)
			hook := &hookLines{}
			l.base.AddHook(hook)
			g := l.Lines()
			tt.add(g)
			g.Flush()
			if tt.wantLines == nil {
				assert.Empty(t, w, "an empty group writes nothing")
				assert.Empty(t, hook.lines)
				return
			}
			require.Len(t, w, 1, "one write for the group")
			got := strings.SplitAfter(string(w[0]), "\n")
			require.Equal(t, "", got[len(got)-1], "the write ends with a whole line")
			got = got[:len(got)-1]
			require.Len(t, got, len(tt.wantLines))
			for i, line := range got {
				assert.Regexp(t, `^server   \| \d{4}-\d\d-\d\d \d\d:\d\d:\d\d `+regexp.QuoteMeta(tt.wantLines[i])+"\n$", line)
			}
			assert.Equal(t, tt.wantHook, hook.lines)

			w = nil
			g.Flush()
			assert.Empty(t, w, "Flush empties the group")
			g.Info(received, Success, cantidad.Int(3))
			g.Warn(received, Fail, cantidad.Int(4))
			g.Flush()
			require.Len(t, w, 1, "the group is reused")
			assert.Contains(t, string(w[0]), "cantidad: 3")
			assert.Equal(t, tt.wantHook, hook.lines[:len(tt.wantHook)], "a hook's lines outlive the group's next use")
		})
	}
}

// A group costs the same allocations however many lines it holds: their
// messages share one string, and the logger's pooled buffer keeps what it
// grew to for the next group. Under the race detector sync.Pool drops some
// of what it is given, on purpose, so the bound leaves room for that: less
// than half an allocation per line past the second (a string per line, as
// before, costs two).
func TestLinesAllocationsPerGroup(t *testing.T) {
	l, err := New(io.Discard, "info", Prefix("server   | "))
	require.NoError(t, err)
	g := l.Lines()
	allocs := func(lines int) float64 {
		return testing.AllocsPerRun(200, func() {
			for i := range lines {
				g.Info(Action("apuesta_recibida"), Success, Key("cantidad").Int(i), Key("agencia").Int(7))
			}
			g.Flush()
		})
	}
	two, sixteen := allocs(2), allocs(16)
	assert.Less(t, sixteen-two, 14.0/2, "allocations of a group of 16 lines (%v) past those of 2 (%v)", sixteen, two)
}

// A line below the logger's level is neither built nor written; a nil
// logger's group logs nothing.
func TestLinesLevelAndNil(t *testing.T) {
	var w writes
	l, err := New(&w, "warn")
	require.NoError(t, err)
	calls := 0
	g := l.Lines()
	g.Info(Action("quiet"), Success, Key("v").Any(stringer{&calls}))
	g.Warn(Action("loud"), Fail)
	g.Flush()
	assert.Zero(t, calls, "an INFO line was built at WARN")
	require.Len(t, w, 1)
	assert.Contains(t, string(w[0]), "action: loud")
	assert.NotContains(t, string(w[0]), "quiet")

	var none *Logger
	ng := none.Lines()
	ng.Error(Action("x"), Fail)
	ng.Flush() // must not panic
}

// A line logged alone leaves no garbage in the formatter: it writes into
// the buffer logrus reuses, line after line.
func TestFormatAllocatesNothing(t *testing.T) {
	e := &logrus.Entry{Time: time.Now(), Level: logrus.InfoLevel, Message: "action: apuesta_recibida | result: success | cantidad: 1",
		Buffer: bytes.NewBuffer(make([]byte, 0, 256))}
	allocs := testing.AllocsPerRun(100, func() {
		e.Buffer.Reset()
		if _, err := (Formatter{Prefix: "server   | "}).Format(e); err != nil {
			t.Fatal(err)
		}
	})
	assert.Zero(t, allocs)
}
