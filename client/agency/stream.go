package agency

import (
	"bufio"
	"errors"
	"fmt"
	"io/fs"
	"time"

	"lotterycentral.example/client/internal/vocab"
	"lotterycentral.example/lottery"
	"lotterycentral.example/lottery/logfmt"
	"lotterycentral.example/protocol"
)

// progressEvery bounds how long a large file streams without a progress line.
const progressEvery = 3 * time.Second

// window is how many batches an agency keeps in flight: the central stores
// the batches that arrived together with one sync and answers them
// together, and the agency does not wait a round trip per batch. The
// larger it is, the fewer times the agency waits, and each wait puts the
// process to sleep and wakes it again, which costs more than the answers
// it reads. 32 batches are 256 KiB at most, in the sockets' buffers.
const window = 32

// sendBuffer holds the batches queued between two waits for answers: up to
// eight full frames go out in one write.
const sendBuffer = 8 * protocol.MaxClientFrame

// inFlight is a batch sent and not yet acknowledged.
type inFlight struct {
	seq   uint32
	first uint64 // its first bet, counted from 1 in the file
	count int
}

// stream sends the bets file over one connection, with up to window batches
// awaiting their acknowledgement.
type stream struct {
	a      *Agency
	stored uint64 // bets the central already holds: skipped
	bb     *protocol.BatchBuilder
	// Batches queued while the agency waits for answers leave together, in
	// one write (and fewer, larger TLS records).
	bw           *bufio.Writer
	seq          uint32     // the last batch sent
	total        uint64     // bets of the file read so far
	sent         uint64     // bets acknowledged on this connection
	pending      []inFlight // oldest first
	lastProgress time.Time
	opened       bool // the file was opened, so its closing is logged
	// Every bet of the file as BATCH carries it, the skipped ones too: the
	// file's digest, to check the central's against (finish). Sent bets are
	// hashed a whole frame at a time, as it leaves.
	digest *protocol.DigestWriter
}

// sendBets streams the agency file, skipping the first `stored` bets the
// central already holds. It returns the number of bets in the file and
// their digest, the skipped ones included: read in the same pass.
func (a *Agency) sendBets(stored uint64) (uint64, protocol.Digest, error) {
	s := &stream{
		a:            a,
		stored:       stored,
		bb:           protocol.NewBatchBuilder(a.cfg.BatchMaxAmount),
		bw:           bufio.NewWriterSize(a.conn, sendBuffer),
		lastProgress: time.Now(),
		digest:       protocol.NewDigestWriter(),
	}
	total, err := s.run()
	if err != nil {
		return 0, protocol.Digest{}, err
	}
	return total, s.digest.Sum(), nil
}

// run streams the file, waits for every answer and returns the file's count.
func (s *stream) run() (uint64, error) {
	err := s.readFile()
	if s.opened {
		s.a.log.Info(vocab.CerrarArchivo, logfmt.Success, vocab.Archivo.Str(s.a.cfg.DataPath))
	}
	if err != nil {
		return 0, err
	}
	if err := s.end(); err != nil {
		return 0, err
	}
	if s.total < s.stored {
		return 0, s.a.checkCount(s.stored, s.total) // bets this agency never sent
	}
	s.a.log.Info(vocab.EnvioApuestas, logfmt.Success, vocab.Enviadas.Uint(s.sent),
		vocab.Lotes.Uint(uint64(s.seq)), vocab.YaAlmacenadas.Uint(s.stored))
	return s.total, nil
}

// readFile queues every bet past the first s.stored, and adds every bet to
// the file's digest. ReadAgencyRows opens the file on the loop's first step
// and closes it when the loop ends, however it ends: once readFile returns, a
// file that was opened is closed, and only then may its closing be logged.
// Rows go to the central as the file holds them: nothing is parsed here
// that the central checks anyway.
func (s *stream) readFile() error {
	for row, err := range lottery.ReadAgencyRows(s.a.cfg.DataPath) {
		if err != nil {
			var pe *fs.PathError
			s.opened = s.opened || !errors.As(err, &pe) || pe.Op != "open"
			return &DataFileError{Path: s.a.cfg.DataPath, Err: err}
		}
		s.opened = true
		n := s.total + 1 // this bet's number in the file
		if n > s.stored {
			if err := s.add(n, row); err != nil {
				return err
			}
		} else {
			s.digest.Write(row) // already durable at the central (a resumed connection): only hashed
		}
		s.total = n
	}
	s.opened = true // an empty file was opened too
	return nil
}

// badBet is the error for bet n of the file, which err says is wrong.
func (s *stream) badBet(n uint64, err error) error {
	path := s.a.cfg.DataPath
	return &DataFileError{Path: path, Err: fmt.Errorf("bet %d of %s: %w", n, path, err)}
}

// add puts bet n of the file in the batch, sending the batch first if full.
func (s *stream) add(n uint64, row []byte) error {
	err := s.bb.AddRow(row)
	if errors.Is(err, protocol.ErrBatchFull) {
		if err := s.flush(); err != nil {
			return err
		}
		err = s.bb.AddRow(row)
	}
	if err != nil {
		return s.badBet(n, err)
	}
	return nil
}

// flush queues the batch built so far, and waits for answers once window
// batches are in flight.
func (s *stream) flush() error {
	s.seq++
	frame := s.bb.Frame(s.seq)
	if err := protocol.WriteFrame(s.bw, frame); err != nil {
		return s.sendFailed(err)
	}
	s.digest.Write(s.bb.Rows())
	s.pending = append(s.pending, inFlight{seq: s.seq, first: s.total - uint64(s.bb.Len()) + 1, count: s.bb.Len()})
	s.bb.Reset()
	if len(s.pending) == window {
		return s.wait(window / 2)
	}
	return nil
}

// end sends the last, partial batch and waits for every answer.
func (s *stream) end() error {
	if s.bb.Len() > 0 {
		if err := s.flush(); err != nil {
			return err
		}
	}
	return s.wait(0)
}

// wait sends what is queued, waits until at most left batches await their
// answer, then takes every answer already received, making room for as many
// batches. A full window waits for half of it (flush): the next batches then
// leave together, and their answers come in a few reads, not one each.
func (s *stream) wait(left int) error {
	if err := s.bw.Flush(); err != nil {
		return s.sendFailed(err)
	}
	for len(s.pending) > left {
		if err := s.awaitOldest(); err != nil {
			return err
		}
	}
	for len(s.pending) > 0 {
		if _, whole, _ := protocol.Buffered(s.a.br); !whole {
			return nil // reading another answer could block
		}
		if err := s.awaitOldest(); err != nil {
			return err
		}
	}
	return nil
}

// awaitOldest takes the oldest batch's answer, logging progress now and then.
func (s *stream) awaitOldest() error {
	if err := s.a.awaitAck(s.pending[0]); err != nil {
		return err
	}
	s.sent += uint64(s.pending[0].count)
	s.pending = s.pending[1:]
	if time.Since(s.lastProgress) >= progressEvery {
		s.lastProgress = time.Now()
		s.a.log.Info(vocab.EnvioApuestas, logfmt.InProgress, vocab.Enviadas.Uint(s.sent))
	}
	return nil
}

// sendFailed reports a failed write. The central may have refused an earlier
// batch and closed the connection: its answer, already received, says more
// than a broken pipe.
func (s *stream) sendFailed(err error) error {
	for _, p := range s.pending {
		if rerr := s.a.awaitAck(p); rerr != nil && !retryable(rerr) {
			return rerr
		}
	}
	return fmt.Errorf("send batch %d: %w", s.seq, err)
}

// awaitAck waits for the answer to batch b, the oldest in flight.
func (a *Agency) awaitAck(b inFlight) error {
	m, err := a.receive(a.cfg.ReplyTimeout)
	if err != nil {
		return fmt.Errorf("send batch %d: %w", b.seq, err)
	}
	switch m := m.(type) {
	case *protocol.BatchAck:
		if m.Seq != b.seq {
			return fmt.Errorf("send batch %d: acknowledged batch %d instead", b.seq, m.Seq)
		}
		a.progress++
		return nil
	case *protocol.BatchReject:
		if m.Index != protocol.NoIndex {
			return fmt.Errorf("send batch %d: bet %d of %s: %w", b.seq, b.first+uint64(m.Index), a.cfg.DataPath, m.Err())
		}
		return fmt.Errorf("send batch %d: %w", b.seq, m.Err())
	}
	return fmt.Errorf("send batch %d: unexpected %s", b.seq, m.Type())
}
