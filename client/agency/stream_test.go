package agency

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"lotterycentral.example/client/internal/vocab"
	"lotterycentral.example/lottery"
	"lotterycentral.example/lottery/logfmt"
	"lotterycentral.example/protocol"
)

// A connection resumes where the central's stored bets end: the agency sends
// only the rest of its file, and still finishes with the whole file's count.
// A central that holds more bets than the file fails the count check.
func TestAgencyResumes(t *testing.T) {
	tests := []struct {
		name        string
		bets        int // in the file, sent in batches of 10 (failureConfig)
		stored      uint64
		refuse      bool  // the central refuses the first batch's third bet
		wantBatches []int // bets per batch sent
		wantErr     string
		wantAction  logfmt.Action // FailedAction of the error
	}{
		{name: "from the start", bets: 50, wantBatches: []int{10, 10, 10, 10, 10}},
		{name: "mid-batch", bets: 50, stored: 23, wantBatches: []int{10, 10, 7}},
		{name: "on a batch boundary", bets: 50, stored: 30, wantBatches: []int{10, 10}},
		{name: "everything stored", bets: 50, stored: 50},
		{name: "an empty file"},
		{name: "a refusal names the bet by its place in the file", bets: 50, stored: 23, refuse: true,
			wantBatches: []int{10}, wantErr: "bet 26 of ", wantAction: vocab.ConsultaGanadores},
		{name: "the central holds more than the file", bets: 50, stored: 60,
			wantErr: "the central holds 60 bets of this agency but its file has 50", wantAction: vocab.VerificarConteo},
		{name: "the central holds bets of an empty file", stored: 3,
			wantErr: "the central holds 3 bets of this agency but its file has 0", wantAction: vocab.VerificarConteo},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			data := filepath.Join(t.TempDir(), "bets.csv")
			bets := make([]lottery.Bet, tt.bets)
			for i := range bets {
				bets[i] = lottery.Bet{Agency: 3, FirstName: "Ana", LastName: "Pérez", Document: fmt.Sprint(30000000 + i),
					Birthdate: "1990-01-01", Number: i}
			}
			writeBets(t, data, bets)
			fc := startFake(t, func(f *fakeConn) error {
				if _, err := f.expect(protocol.MsgHello); err != nil {
					return err
				}
				if err := f.send(protocol.HelloAck{Version: protocol.Version, Stored: tt.stored}); err != nil {
					return err
				}
				switch {
				case tt.refuse:
					m, err := f.expect(protocol.MsgBatch)
					if err != nil {
						return err
					}
					return f.send(protocol.BatchReject{Seq: m.(*protocol.Batch).Seq, Code: protocol.CodeInvalidBet,
						Index: 2, Text: "document: not only digits"})
				case tt.wantErr != "":
					return nil
				}
				f.held = bets[:tt.stored] // its digest starts with them
				if err := f.ackUntilFinish(); err != nil {
					return err
				}
				return f.answerConsult(protocol.Winners{Total: 1, Documents: []string{"7"}})
			})
			log, lines := testLog()
			docs, _, err := runBounded(t, New(failureConfig(fc.addr, data), log), fakeWait)
			<-fc.done
			require.NoError(t, fc.err)
			assert.Equal(t, tt.wantBatches, fc.fc.batches)
			assert.Equal(t, 1, countLines(lines, vocab.CerrarArchivo.Line(logfmt.Success, vocab.Archivo.Str(data))), "%s", lines)
			if tt.wantErr != "" {
				require.ErrorContains(t, err, tt.wantErr)
				assert.Equal(t, tt.wantAction, FailedAction(err))
				if tt.wantAction == vocab.VerificarConteo {
					line := vocab.VerificarConteo.Line(logfmt.Fail, vocab.AlmacenadasCentral.Uint(tt.stored),
						vocab.ApuestasArchivo.Int(tt.bets), vocab.Archivo.Str(data))
					assert.True(t, lines.find(line), "no %q in\n%s", line, lines)
				}
				return
			}
			require.NoError(t, err, "%s", lines)
			assert.Equal(t, []string{"7"}, docs)
			require.Len(t, fc.fc.received, tt.bets-int(tt.stored))
			for i, row := range fc.fc.received {
				assert.Equal(t, string(lottery.AppendRow(nil, bets[int(tt.stored)+i])), row, "bet %d sent", i+1)
			}
			for _, line := range []string{
				vocab.EnvioApuestas.Line(logfmt.Success, vocab.Enviadas.Int(tt.bets-int(tt.stored)),
					vocab.Lotes.Int(len(tt.wantBatches)), vocab.YaAlmacenadas.Uint(tt.stored)),
				vocab.FinApuestas.Line(logfmt.Success, vocab.Apuestas.Int(tt.bets), vocab.Digesto.Str(digestOf(bets).String())),
			} {
				assert.True(t, lines.find(line), "no %q in\n%s", line, lines)
			}
		})
	}
}

// The agency sends each bet of its file as the row the central stores:
// lines that already are such rows as they are, the others (a BOM, CRLF,
// needless quotes, a number written otherwise, a field csv quotes) written
// again; and what it sends is what its digest covers. Rows are not checked
// here: a number no bet has goes to the central, the judge of bets.
func TestAgencySendsRows(t *testing.T) {
	data := filepath.Join(t.TempDir(), "bets.csv")
	file := "\uFEFFAna,Pérez,30000001,1990-01-01,7574\r\n" +
		"\r\n" +
		`"Luis",Gómez,30000002,1980-05-06,"12"` + "\r\n" +
		`"Pérez, Juan","O""Higgins",30000003,1970-01-01,0012` + "\n" +
		"Eva, Paz,30000004,2000-02-29,9999\n" +
		"\n" +
		"Zoé,Ávila,30000005,1999-12-31,70000"
	require.NoError(t, os.WriteFile(data, []byte(file), 0o644))
	want := []string{
		"Ana,Pérez,30000001,1990-01-01,7574\n",
		"Luis,Gómez,30000002,1980-05-06,12\n",
		`"Pérez, Juan","O""Higgins",30000003,1970-01-01,12` + "\n",
		`Eva," Paz",30000004,2000-02-29,9999` + "\n",
		"Zoé,Ávila,30000005,1999-12-31,70000\n",
	}
	var bets []lottery.Bet
	for b, err := range lottery.ReadAgencyFile(data, 3) {
		require.NoError(t, err)
		bets = append(bets, b)
	}
	require.Len(t, bets, len(want))
	fc := startFake(t, func(f *fakeConn) error {
		if err := f.hello(); err != nil {
			return err
		}
		if err := f.ackUntilFinish(); err != nil {
			return err
		}
		return f.answerConsult(protocol.Winners{Total: 1, Documents: []string{"30000001"}})
	})
	log, lines := testLog()
	docs, _, err := runBounded(t, New(failureConfig(fc.addr, data), log), fakeWait)
	<-fc.done
	require.NoError(t, fc.err, "the fake central's script")
	require.NoError(t, err, "%s", lines)
	assert.Equal(t, []string{"30000001"}, docs)
	assert.Equal(t, want, fc.fc.received)
	line := vocab.FinApuestas.Line(logfmt.Success, vocab.Apuestas.Int(len(want)), vocab.Digesto.Str(digestOf(bets).String()))
	assert.True(t, lines.find(line), "no %q in\n%s", line, lines)
}

// The agency keeps window batches in flight: no more before an answer, and,
// its window full, none before half of them are answered; then the next
// batches leave together.
func TestAgencyKeepsAWindowOfBatches(t *testing.T) {
	dir := t.TempDir()
	data := filepath.Join(dir, "bets.csv")
	writeBets(t, data, generated(t, dir, 10*(window+4))) // in batches of 10
	fc := startFake(t, func(f *fakeConn) error {
		if err := f.hello(); err != nil {
			return err
		}
		var seqs []uint32
		for range window {
			m, err := f.expect(protocol.MsgBatch)
			if err != nil {
				return err
			}
			seqs = append(seqs, m.(*protocol.Batch).Seq)
		}
		// Nothing more can come before an answer; this only bounds how long
		// the test looks for a batch that must not be sent.
		if err := noMessage(f, 200*time.Millisecond); err != nil {
			return err
		}
		// Nor before half the window is answered.
		for _, seq := range seqs[:window/2-1] {
			if err := f.send(protocol.BatchAck{Seq: seq}); err != nil {
				return err
			}
		}
		if err := noMessage(f, 200*time.Millisecond); err != nil {
			return err
		}
		if err := f.send(protocol.BatchAck{Seq: seqs[window/2-1]}); err != nil {
			return err
		}
		m, err := f.expect(protocol.MsgBatch)
		if err != nil {
			return err
		}
		if seq := m.(*protocol.Batch).Seq; seq != window+1 {
			return fmt.Errorf("fake central: batch %d after the first %d, want %d", seq, window, window+1)
		}
		for _, seq := range seqs[window/2:] {
			if err := f.send(protocol.BatchAck{Seq: seq}); err != nil {
				return err
			}
		}
		if err := f.send(protocol.BatchAck{Seq: window + 1}); err != nil {
			return err
		}
		if err := f.ackUntilFinish(); err != nil {
			return err
		}
		return f.answerConsult(protocol.Winners{})
	})
	log, lines := testLog()
	_, _, err := runBounded(t, New(failureConfig(fc.addr, data), log), fakeWait)
	<-fc.done
	require.NoError(t, fc.err, "the fake central's script")
	require.NoError(t, err, "%s", lines)
	assert.Len(t, fc.fc.batches, window+4)
}

// noMessage fails if the agency sends anything within d.
func noMessage(f *fakeConn, d time.Duration) error {
	if err := f.conn.SetReadDeadline(time.Now().Add(d)); err != nil {
		return err
	}
	_, err := f.br.Peek(1)
	var ne interface{ Timeout() bool }
	if errors.As(err, &ne) && ne.Timeout() {
		return nil
	}
	return errors.Join(errors.New("fake central: the agency sent more than its window"), err)
}

func countLines(h *lineHook, line string) int {
	h.mu.Lock()
	defer h.mu.Unlock()
	n := 0
	for _, l := range h.lines {
		if l == line {
			n++
		}
	}
	return n
}
