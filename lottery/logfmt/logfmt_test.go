package logfmt

import (
	"bytes"
	"testing"
	"time"

	"github.com/sirupsen/logrus"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestFormat(t *testing.T) {
	at := time.Date(2023, 3, 30, 22, 13, 58, 0, time.Local)
	tests := []struct {
		name  string
		level logrus.Level
		msg   string
		want  string
	}{
		{"info", logrus.InfoLevel, Line("apuesta_recibida", Success, "cantidad", 120),
			"2023-03-30 22:13:58 INFO     action: apuesta_recibida | result: success | cantidad: 120\n"},
		{"error", logrus.ErrorLevel, Line("apuesta_recibida", Fail, "cantidad", 120),
			"2023-03-30 22:13:58 ERROR    action: apuesta_recibida | result: fail | cantidad: 120\n"},
		{"no fields", logrus.InfoLevel, Line("sorteo", Success),
			"2023-03-30 22:13:58 INFO     action: sorteo | result: success\n"},
		{"warning", logrus.WarnLevel, Line("x", InProgress, "a", "b", "c", 1.5),
			"2023-03-30 22:13:58 WARNING  action: x | result: in_progress | a: b | c: 1.5\n"},
		{"odd kv", logrus.DebugLevel, Line("x", Success, "lonely"),
			"2023-03-30 22:13:58 DEBUG    action: x | result: success | lonely: \n"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := Formatter{}.Format(&logrus.Entry{Time: at, Level: tt.level, Message: tt.msg})
			require.NoError(t, err)
			assert.Equal(t, tt.want, string(got))
		})
	}
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
	l.Info(Line("hidden", Success))
	l.Warn(Line("shown", Fail, "k", "v"))
	assert.Regexp(t, `^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d WARNING  action: shown \| result: fail \| k: v\n$`, buf.String())

	_, err = New(&buf, "loud")
	require.ErrorIs(t, err, ErrLevel)
}
