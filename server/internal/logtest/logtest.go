// Package logtest collects log lines as they are printed — through a logrus
// hook, or from a process's output — and lets a caller wait for a line without
// sleeping: every new line wakes the waiters, which look only at the lines
// they have not seen yet. The in-process tests, the tests that run the
// binaries or containers, and the benchmarks all wait through it.
package logtest

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"sync"
	"time"

	"github.com/sirupsen/logrus"

	"lotterycentral.example/lottery/logfmt"
)

// ErrEnded is returned by a wait whose lines stopped coming (the process
// exited) before the wait was met.
var ErrEnded = errors.New("no more lines")

// DefaultBound is how long AwaitT waits: it only turns a hang into a
// failure; nothing waits on time.
const DefaultBound = 60 * time.Second

// Line is one line and when it was recorded.
type Line struct {
	Text string
	At   time.Time
	// Level is the entry's, for lines recorded through the logrus hook (Fire);
	// lines read from a process's output carry it in their text instead.
	Level logrus.Level
}

// Recorder holds every line recorded so far. The zero value is not usable: call New.
type Recorder struct {
	mu      sync.Mutex
	lines   []Line
	changed chan struct{} // closed and replaced on each new line, and on End
	ended   bool
	partial []byte // what Write got after the last newline
}

// New returns an empty recorder.
func New() *Recorder { return &Recorder{changed: make(chan struct{})} }

// Add records one line.
func (r *Recorder) Add(text string) { r.add(Line{Text: text, At: time.Now()}) }

func (r *Recorder) add(l Line) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.lines = append(r.lines, l)
	close(r.changed)
	r.changed = make(chan struct{})
}

// End says no more lines will come: waits not yet met fail with ErrEnded.
func (r *Recorder) End() {
	r.mu.Lock()
	defer r.mu.Unlock()
	if !r.ended {
		r.ended = true
		close(r.changed)
	}
}

// ReadAll records every line of rd until it ends, then calls End. Lines
// longer than 1 MiB end the reading with an error.
func (r *Recorder) ReadAll(rd io.Reader) error {
	defer r.End()
	sc := bufio.NewScanner(rd)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		r.Add(sc.Text())
	}
	if err := sc.Err(); err != nil {
		return fmt.Errorf("read log lines: %w", err)
	}
	return nil
}

// Write records every complete line in p (an io.Writer for a program's
// output); a line's start is kept until its newline comes.
func (r *Recorder) Write(p []byte) (int, error) {
	r.mu.Lock()
	data := append(r.partial, p...)
	var lines []string
	for {
		i := bytes.IndexByte(data, '\n')
		if i < 0 {
			break
		}
		lines = append(lines, string(data[:i]))
		data = data[i+1:]
	}
	r.partial = append([]byte(nil), data...)
	r.mu.Unlock()
	for _, l := range lines {
		r.Add(l)
	}
	return len(p), nil
}

// Levels implements logrus.Hook: every level.
func (r *Recorder) Levels() []logrus.Level { return logrus.AllLevels }

// Fire implements logrus.Hook: it records the entry's lines (a group's
// entry has several, see logfmt.Lines), each with its level.
func (r *Recorder) Fire(e *logrus.Entry) error {
	at := time.Now()
	for l := range logfmt.EntryLines(e) {
		r.add(Line{Text: l.Message, At: at, Level: l.Level})
	}
	return nil
}

// LevelOf is the level of the first line containing every one of parts, and
// whether there is one (see Line.Level).
func (r *Recorder) LevelOf(parts ...string) (logrus.Level, bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, l := range r.lines {
		if Contains(l.Text, parts...) {
			return l.Level, true
		}
	}
	return 0, false
}

// Lines returns a copy of the lines recorded so far.
func (r *Recorder) Lines() []Line {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]Line(nil), r.lines...)
}

// Texts returns the text of every line recorded so far.
func (r *Recorder) Texts() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := make([]string, len(r.lines))
	for i, l := range r.lines {
		out[i] = l.Text
	}
	return out
}

// String is every line recorded so far, each ended by a newline, as it was printed.
func (r *Recorder) String() string {
	var sb strings.Builder
	for _, t := range r.Texts() {
		sb.WriteString(t)
		sb.WriteByte('\n')
	}
	return sb.String()
}

// Contains reports whether line contains every one of parts.
func Contains(line string, parts ...string) bool {
	for _, p := range parts {
		if !strings.Contains(line, p) {
			return false
		}
	}
	return true
}

// Count is how many lines so far contain every one of parts.
func (r *Recorder) Count(parts ...string) int {
	r.mu.Lock()
	defer r.mu.Unlock()
	n := 0
	for _, l := range r.lines {
		if Contains(l.Text, parts...) {
			n++
		}
	}
	return n
}

// Until feeds match the lines from index from on, in order and each once,
// waiting for new ones, until match returns true; it returns the index just
// past the matching line, so a caller can go on from there. It fails when ctx
// ends or the lines end first.
func (r *Recorder) Until(ctx context.Context, from int, match func(Line) bool) (int, error) {
	for {
		r.mu.Lock()
		lines, changed, ended := r.lines, r.changed, r.ended
		r.mu.Unlock()
		for ; from < len(lines); from++ {
			if match(lines[from]) {
				return from + 1, nil
			}
		}
		if ended {
			return from, ErrEnded
		}
		select {
		case <-changed:
		case <-ctx.Done():
			return from, context.Cause(ctx)
		}
	}
}

// Await waits until at least n lines contain every one of parts.
func (r *Recorder) Await(ctx context.Context, n int, parts ...string) error {
	if n <= 0 {
		return nil
	}
	seen := 0
	_, err := r.Until(ctx, 0, func(l Line) bool {
		if Contains(l.Text, parts...) {
			seen++
		}
		return seen >= n
	})
	if err != nil {
		return fmt.Errorf("wait for %d lines with %q, saw %d: %w", n, parts, seen, err)
	}
	return nil
}

// TB is the part of testing.TB that AwaitT uses.
type TB interface {
	Helper()
	Fatalf(format string, args ...any)
	Context() context.Context
}

// AwaitT is Await for a test: it fails t, with every line seen, when the
// lines do not come within DefaultBound.
func (r *Recorder) AwaitT(t TB, n int, parts ...string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), DefaultBound)
	defer cancel()
	if err := r.Await(ctx, n, parts...); err != nil {
		t.Fatalf("%v:\n%s", err, r)
	}
}
