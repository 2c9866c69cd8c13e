package agency

import (
	"errors"
	"fmt"
	"io"
	"path/filepath"
	"testing"

	"github.com/sirupsen/logrus"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"lotterycentral.example/client/internal/vocab"
	"lotterycentral.example/lottery"
	"lotterycentral.example/lottery/logfmt"
	"lotterycentral.example/protocol"
)

// digestOf is the digest of bets, in order, each bet's row as AppendRow
// writes it: computed apart from the agency's stream, which hashes its
// batches' rows as they leave.
func digestOf(bets []lottery.Bet) protocol.Digest {
	var rows []byte
	for _, b := range bets {
		rows = lottery.AppendRow(rows, b)
	}
	w := protocol.NewDigestWriter()
	w.Write(rows)
	return w.Sum()
}

// The agency checks FINISH_ACK's digest against its whole file, the bets a
// resumed connection skipped included: a central that holds other rows than
// the file's, even as many, stops the agency before it asks for winners, and
// its ERROR line names both digests. A FINISH counted before the connection
// leaves no digest to check: the agency says so and goes on.
func TestAgencyChecksTheDigest(t *testing.T) {
	tests := []struct {
		name     string
		stored   uint64 // HELLO_ACK's: bets the central held before
		finished bool   // HELLO_ACK's: FINISH already counted
		// tamper, if set, is what the central answers FINISH with, made
		// from the bets it stored; nil: the truth.
		tamper func(stored []lottery.Bet) []lottery.Bet
	}{
		{name: "every bet sent, digest matches"},
		{name: "resumed: the skipped bets are part of the digest", stored: 23},
		{name: "one bet's number altered", tamper: func(s []lottery.Bet) []lottery.Bet {
			s[17].Number = (s[17].Number + 1) % 10000
			return s
		}},
		{name: "two rows swapped", tamper: func(s []lottery.Bet) []lottery.Bet {
			s[4], s[5] = s[5], s[4]
			return s
		}},
		{name: "resumed: a row held before the connection altered", stored: 23, tamper: func(s []lottery.Bet) []lottery.Bet {
			s[2].Document += "0" // sent on an earlier connection, not this one
			return s
		}},
		{name: "finished before this run: HELLO_ACK's digest matches", stored: 50, finished: true},
		{name: "finished before this run: HELLO_ACK's digest of an altered row", stored: 50, finished: true,
			tamper: func(s []lottery.Bet) []lottery.Bet {
				s[49].FirstName = "Eva"
				return s
			}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			data := filepath.Join(t.TempDir(), "bets.csv")
			bets := make([]lottery.Bet, 50)
			for i := range bets {
				bets[i] = lottery.Bet{Agency: 3, FirstName: "Ana", LastName: "Pérez, Ana", Document: fmt.Sprint(30000000 + i),
					Birthdate: "1990-01-01", Number: (i * 37) % 10000}
			}
			writeBets(t, data, bets)
			fc := startFake(t, func(f *fakeConn) error {
				if _, err := f.expect(protocol.MsgHello); err != nil {
					return err
				}
				ack := protocol.HelloAck{Version: protocol.Version, Stored: tt.stored, Finished: tt.finished}
				if tt.finished {
					held := append([]lottery.Bet(nil), bets...)
					if tt.tamper != nil {
						held = tt.tamper(held)
					}
					ack.Digest = digestOf(held)
				}
				if err := f.send(ack); err != nil {
					return err
				}
				if !tt.finished {
					f.held, f.tamper = bets[:tt.stored], tt.tamper
					if err := f.ackUntilFinish(); err != nil {
						return err
					}
				}
				if tt.tamper != nil {
					// The agency hangs up: no CONSULT on a digest it refused.
					m, err := f.read()
					if err == nil {
						return fmt.Errorf("fake central: the agency sent %s after a wrong digest", m.Type())
					}
					if errors.Is(err, io.EOF) {
						return nil
					}
					return err
				}
				return f.answerConsult(protocol.Winners{Total: 1, Documents: []string{"7"}})
			})
			log, lines := testLog()
			docs, _, err := runBounded(t, New(failureConfig(fc.addr, data), log), fakeWait)
			<-fc.done
			require.NoError(t, fc.err, "the fake central's script")
			file := digestOf(bets)
			assert.Len(t, fc.fc.received, len(bets)-int(tt.stored), "bets sent on this connection")
			assert.False(t, lines.find(anyResult(vocab.VerificarConteo)), "the counts agree:\n%s", lines)

			if tt.tamper != nil {
				central := digestOf(tt.tamper(append([]lottery.Bet(nil), bets...)))
				require.NotEqual(t, file, central, "the tampering changes nothing")
				var de *DigestMismatchError
				require.ErrorAs(t, err, &de)
				assert.Equal(t, central, de.Central)
				assert.Equal(t, file, de.File)
				assert.False(t, retryable(err))
				assert.Equal(t, vocab.VerificarDigesto, FailedAction(err))
				assert.False(t, lines.find(anyResult(vocab.Conexion)), "retried:\n%s", lines)
				line := vocab.VerificarDigesto.Line(logfmt.Fail, vocab.DigestoCentral.Str(central.String()),
					vocab.DigestoArchivo.Str(file.String()), vocab.Archivo.Str(data))
				level, ok := lines.levelOf(line)
				require.True(t, ok, "no %q in\n%s", line, lines)
				assert.Equal(t, logrus.ErrorLevel, level, "%s", line)
				assert.False(t, lines.find(anyResult(vocab.FinApuestas)), "FINISH taken as acknowledged:\n%s", lines)
				return
			}
			require.NoError(t, err, "%s", lines)
			assert.Equal(t, []string{"7"}, docs)
			assert.False(t, lines.find(anyResult(vocab.VerificarDigesto)), "%s", lines)
			if tt.finished {
				assert.False(t, lines.find(anyResult(vocab.FinApuestas)), "%s", lines)
				return
			}
			line := vocab.FinApuestas.Line(logfmt.Success, vocab.Apuestas.Int(len(bets)), vocab.Digesto.Str(file.String()))
			assert.True(t, lines.find(line), "no %q in\n%s", line, lines)
		})
	}
}
