package protocol

import (
	"bufio"
	"bytes"
	"io"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// blockingReader fails the test if Buffered reads the source.
type blockingReader struct{ t *testing.T }

func (r blockingReader) Read([]byte) (int, error) {
	r.t.Error("Buffered read from the source")
	return 0, io.EOF
}

func TestBuffered(t *testing.T) {
	ack, err := AppendMessage(nil, BatchAck{Seq: 7})
	require.NoError(t, err)
	tests := []struct {
		name            string
		buffered        []byte
		whole, headerOK bool
	}{
		{"nothing", nil, false, false},
		{"part of the header", ack[:HeaderSize-1], false, false},
		{"the header only", ack[:HeaderSize], false, true},
		{"all but the last byte", ack[:len(ack)-1], false, true},
		{"the whole frame", ack, true, true},
		{"a frame and part of the next", append(bytes.Clone(ack), ack[:2]...), true, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			// What is buffered comes first; then the source would block.
			br := bufio.NewReader(io.MultiReader(bytes.NewReader(tt.buffered), blockingReader{t}))
			if len(tt.buffered) > 0 {
				_, err := br.Peek(len(tt.buffered))
				require.NoError(t, err)
			}
			h, whole, ok := Buffered(br)
			assert.Equal(t, tt.headerOK, ok)
			assert.Equal(t, tt.whole, whole)
			if ok {
				assert.Equal(t, MsgBatchAck, h.Type())
			}
		})
	}
}
