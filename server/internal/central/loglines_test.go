package central

import (
	"bytes"
	"context"
	"net"
	"strings"
	"sync"
	"testing"

	"github.com/sirupsen/logrus"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"lotterycentral.example/lottery"
	"lotterycentral.example/lottery/logfmt"
	"lotterycentral.example/protocol"
	"lotterycentral.example/server/internal/vocab"
)

// writeLog keeps each Write apart.
type writeLog struct {
	mu     sync.Mutex
	writes []string
}

func (w *writeLog) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.writes = append(w.writes, string(p))
	return len(p), nil
}

// with is every write that holds part, each split into its lines.
func (w *writeLog) with(part string) [][]string {
	w.mu.Lock()
	defer w.mu.Unlock()
	var got [][]string
	for _, s := range w.writes {
		if strings.Contains(s, part) {
			lines := strings.SplitAfter(s, "\n")
			if lines[len(lines)-1] == "" {
				lines = lines[:len(lines)-1]
			}
			got = append(got, lines)
		}
	}
	return got
}

// The lines of the batches one commit stored reach the central's output with
// one write, not one each: four batches sent at once are staged and committed
// together, and their four lines leave together, in the batches' order.
func TestStoredLinesShareOneWrite(t *testing.T) {
	out := &writeLog{}
	base := logrus.New()
	base.SetOutput(out)
	base.SetFormatter(logfmt.Formatter{})
	srv, err := openServer(testConfig(t), logfmt.Wrap(base))
	require.NoError(t, err)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	served := make(chan error, 1)
	go func() { served <- srv.Serve(ln) }()
	defer func() {
		require.NoError(t, srv.Shutdown(context.Background()))
		<-served // Serve says it was shut down
	}()

	c := dialRaw(t, ln.Addr().String())
	c.hello(1)
	var frames bytes.Buffer
	for seq := uint32(1); seq <= 4; seq++ {
		bets := make([]lottery.Bet, seq) // batch n holds n bets: its line says which it is
		for i := range bets {
			bets[i] = lottery.Bet{FirstName: "Ana", LastName: "Paz", Document: "30000000", Birthdate: "1990-01-02", Number: 1}
		}
		frame, err := protocol.AppendMessage(nil, batchOf(seq, bets...))
		require.NoError(t, err)
		frames.Write(frame)
	}
	c.write(frames.Bytes())
	for seq := uint32(1); seq <= 4; seq++ {
		require.Equal(t, seq, c.expect(protocol.MsgBatchAck).(*protocol.BatchAck).Seq)
	}

	stored := vocab.ApuestaRecibida.Line(logfmt.Success)
	writes := out.with(stored)
	require.Len(t, writes, 1, "the four batches' lines in one write")
	require.Len(t, writes[0], 4)
	for i, line := range writes[0] {
		assert.Contains(t, line, vocab.ApuestaRecibida.Line(logfmt.Success, vocab.Cantidad.Int(i+1)), "line %d", i+1)
		assert.True(t, strings.HasSuffix(line, "\n"), "line %d is whole", i+1)
	}
}
