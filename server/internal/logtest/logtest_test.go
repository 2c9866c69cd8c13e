package logtest

import (
	"context"
	"errors"
	"io"
	"strings"
	"testing"
	"time"

	"github.com/sirupsen/logrus"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func TestAwait(t *testing.T) {
	tests := []struct {
		name    string
		lines   []string
		end     bool
		n       int
		parts   []string
		wantErr error
	}{
		{"already there", []string{"action: a | result: success", "action: b | result: success"}, false, 2, []string{"result: success"}, nil},
		{"every part must match", []string{"action: a | result: fail", "action: b | result: success"}, true, 1, []string{"action: a", "success"}, ErrEnded},
		{"too few before the end", []string{"x", "x"}, true, 3, []string{"x"}, ErrEnded},
		{"none wanted", nil, false, 0, []string{"x"}, nil},
		{"never comes", []string{"y"}, false, 1, []string{"x"}, context.DeadlineExceeded},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := New()
			for _, l := range tt.lines {
				r.Add(l)
			}
			if tt.end {
				r.End()
			}
			ctx, cancel := context.WithTimeout(t.Context(), 50*time.Millisecond)
			defer cancel()
			err := r.Await(ctx, tt.n, tt.parts...)
			if tt.wantErr == nil {
				require.NoError(t, err)
				return
			}
			require.ErrorIs(t, err, tt.wantErr)
		})
	}
}

// A waiter wakes on the line it waits for, added after it started waiting.
func TestAwaitWakesOnNewLine(t *testing.T) {
	r := New()
	done := make(chan error, 1)
	go func() { done <- r.Await(t.Context(), 2, "ping") }()
	r.Add("ping 1")
	r.Add("pong")
	r.Add("ping 2")
	require.NoError(t, <-done)
}

// Until goes on from where the last match ended, each line seen once.
func TestUntilResumes(t *testing.T) {
	r := New()
	for _, l := range []string{"a", "b", "a", "c"} {
		r.Add(l)
	}
	r.End()
	isA := func(l Line) bool { return l.Text == "a" }
	next, err := r.Until(t.Context(), 0, isA)
	require.NoError(t, err)
	assert.Equal(t, 1, next)
	next, err = r.Until(t.Context(), next, isA)
	require.NoError(t, err)
	assert.Equal(t, 3, next)
	_, err = r.Until(t.Context(), next, isA)
	assert.True(t, errors.Is(err, ErrEnded))
}

func TestReadAllAndHook(t *testing.T) {
	r := New()
	pr, pw := io.Pipe()
	read := make(chan error, 1)
	go func() { read <- r.ReadAll(pr) }()
	_, err := io.WriteString(pw, "one\ntwo\n")
	require.NoError(t, err)
	require.NoError(t, r.Await(t.Context(), 1, "two"))
	require.NoError(t, pw.Close())
	require.NoError(t, <-read)
	assert.ErrorIs(t, r.Await(t.Context(), 1, "three"), ErrEnded)

	log := logrus.New()
	log.SetOutput(io.Discard)
	hooked := New()
	log.AddHook(hooked)
	log.Info("action: x | result: success")
	assert.Equal(t, 1, hooked.Count("action: x"))
	assert.Equal(t, []string{"one", "two"}, r.Texts())
	assert.True(t, strings.Contains(r.String(), "one\ntwo"))
}
