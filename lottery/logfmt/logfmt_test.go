package logfmt

import (
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

func TestNew(t *testing.T) {
	l, err := New("debug")
	require.NoError(t, err)
	assert.Equal(t, logrus.DebugLevel, l.GetLevel())
	_, err = New("loud")
	require.ErrorContains(t, err, `parse log level "loud"`)
}
