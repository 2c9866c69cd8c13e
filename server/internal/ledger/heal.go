package ledger

import (
	"crypto/rand"
	"errors"
	"fmt"
	"io/fs"
	"os"

	"lotterycentral.example/lottery/logfmt"
	"lotterycentral.example/server/internal/vocab"
)

// probeSize is the free space healing asks for: several full batches.
const probeSize = 64 << 10

// probePath is the scratch file healing writes to learn that the disk has room again.
func probePath(betsPath string) string { return betsPath + ".probe" }

// Ready is nil when the ledger can store bets. After a storage failure it
// first heals, writing a probe to learn that the disk has room again: a
// HELLO asks, so an agency hears at once that it must come back later.
func (l *Ledger) Ready() error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.fault == nil {
		return nil
	}
	return l.healLocked(true)
}

// healLocked makes the bets file fit to append to after a failure: it cuts
// the file back to its synced rows, checks that it ends there on a newline,
// and fsyncs the cut; with probe set, it first writes and fsyncs probeSize
// bytes beside the file.
func (l *Ledger) healLocked(probe bool) error {
	err := l.healSteps(probe)
	if err != nil {
		l.log.Error(vocab.RepararAlmacenamiento, logfmt.Fail, vocab.Archivo.Str(l.path), vocab.Error.Any(err))
		return err
	}
	l.log.Warn(vocab.RepararAlmacenamiento, logfmt.Success, vocab.Archivo.Str(l.path), vocab.Bytes.Int(int(l.syncedEnd)),
		vocab.FalloPrevio.Any(l.fault))
	l.fault = nil
	return nil
}

func (l *Ledger) healSteps(probe bool) error {
	if probe {
		if err := l.probeSpace(); err != nil {
			return fmt.Errorf("heal bets file: %w", err)
		}
	}
	if err := l.cutTailLocked(); err != nil {
		return fmt.Errorf("heal bets file: %w", err)
	}
	if err := l.fsync(); err != nil {
		return fmt.Errorf("heal bets file: sync: %w", err)
	}
	return nil
}

// cutTailLocked cuts the bets file back to its synced rows and checks the
// result: exactly syncedEnd bytes, the last one a newline.
func (l *Ledger) cutTailLocked() error {
	err := l.before(OpTruncate, l.path)
	if err == nil {
		err = l.store.Rewind(l.syncedEnd)
	}
	if err != nil {
		return err
	}
	fi, err := l.syncFD.Stat()
	if err != nil {
		return fmt.Errorf("check tail: %w", err)
	}
	if fi.Size() != l.syncedEnd {
		return fmt.Errorf("check tail: %s is %d bytes after the cut, want %d", l.path, fi.Size(), l.syncedEnd)
	}
	if l.syncedEnd > 0 {
		var last [1]byte
		if _, err := l.syncFD.ReadAt(last[:], l.syncedEnd-1); err != nil {
			return fmt.Errorf("check tail: %w", err)
		}
		if last[0] != '\n' {
			return fmt.Errorf("check tail: %s does not end on a whole row at %d bytes", l.path, l.syncedEnd)
		}
	}
	return nil
}

func (l *Ledger) probeSpace() error {
	path := probePath(l.path)
	err := l.writeProbe(path)
	if rerr := os.Remove(path); rerr != nil && !errors.Is(rerr, fs.ErrNotExist) {
		err = errors.Join(err, rerr)
	}
	if err != nil {
		return fmt.Errorf("probe free space: %w", err)
	}
	return nil
}

func (l *Ledger) writeProbe(path string) error {
	if err := l.before(OpWrite, path); err != nil {
		return err
	}
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o644)
	if err != nil {
		return err
	}
	buf := make([]byte, probeSize)
	rand.Read(buf) // incompressible: a compressing filesystem must allocate it
	_, err = f.Write(buf)
	if err == nil {
		if err = l.before(OpSync, path); err == nil {
			err = f.Sync()
		}
	}
	return errors.Join(err, f.Close())
}
