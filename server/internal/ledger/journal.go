package ledger

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"strings"

	"lotterycentral.example/protocol"
)

// The FINISH journal lives beside the bets file: one line
// `agency,total,digest` per FINISH (the digest of the agency's rows in
// lower-case hex), fsynced before the FINISH is acknowledged, so a restarted
// central knows who finished and whether the draw ran, and can tell that a
// finished agency's rows are still the ones it acknowledged. The draw itself is a lookup
// of the winners kept as batches were counted; the bets never change once
// every agency finished.

// JournalPath is where the FINISH journal of a bets file lives.
func JournalPath(betsPath string) string { return betsPath + ".finished" }

// Finish records agency a's FINISH with the total it says it sent, once
// that total is the agency's stored bets, and returns how many agencies
// neither finished nor were excluded yet: 0 means this FINISH completed the
// round, and the draw may run. The digest of its rows is journaled with it
// (Agency.Digest from then on). It is durable before it returns; a failed
// attempt leaves no line behind. Errors: ErrFinished, ErrExcluded,
// ErrCount, or the journal's failure.
func (l *Ledger) Finish(a int, total uint64) (pending int, err error) {
	l.jmu.Lock()
	defer l.jmu.Unlock()
	f := &l.agencies[a-1]
	if f.stale {
		// A batch of it was lost after it was hashed: only its durable rows count.
		if err := l.rehash(f); err != nil {
			return 0, fmt.Errorf("FINISH of agency %d: rebuild the digest of its bets: %w", a, err)
		}
	}
	digest, err := l.closeAgency(f, total)
	if err != nil {
		return 0, err
	}
	err = l.appendJournal(&l.journal, fmt.Appendf(nil, "%d,%d,%s\n", a, total, digest))
	l.mu.Lock()
	defer l.mu.Unlock()
	if err != nil {
		f.closed = nil
		return 0, fmt.Errorf("journal FINISH of agency %d: %w", a, err)
	}
	f.final.Store(&digest)
	f.finished.Store(true)
	l.finished++
	return l.pendingLocked(), nil
}

// closeAgency stops f's batches while its FINISH is journaled, once its
// stored bets are total and none of its batches is still on its way: a
// batch counted after the FINISH would change what the journal says. It
// returns the digest of those rows.
func (l *Ledger) closeAgency(f *facts, total uint64) (protocol.Digest, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	switch {
	case f.finished.Load():
		return protocol.Digest{}, ErrFinished
	case f.excluded.Load() != nil:
		return protocol.Digest{}, ErrExcluded
	}
	for _, t := range l.pending {
		if t.agency == f {
			return protocol.Digest{}, fmt.Errorf("%w: a batch of this agency is not yet durable", ErrCount)
		}
	}
	if stored := f.stored.Load(); stored != total {
		return protocol.Digest{}, fmt.Errorf("%w: FINISH says %d bets, the central stored %d", ErrCount, total, stored)
	}
	f.closed = ErrFinished
	return f.digest.Sum(), nil
}

// lineFile is a journal the ledger appends whole lines to (the FINISH
// journal, the operator journal), under jmu.
type lineFile struct {
	f   *os.File
	end int64 // its complete lines
	cut bool  // a failed append may have left part of a line after end
}

// open opens the journal at path to append to, creating it.
func (j *lineFile) open(path string) error {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o644)
	if err != nil {
		return err
	}
	fi, err := f.Stat()
	if err != nil {
		f.Close()
		return err
	}
	j.f, j.end = f, fi.Size()
	return nil
}

// appendJournal writes and fsyncs line to j, or leaves j as it was.
func (l *Ledger) appendJournal(j *lineFile, line []byte) error {
	path := j.f.Name()
	var err error
	if j.cut {
		err = l.trimJournal(j)
	}
	if err == nil {
		if err = l.before(OpWrite, path); err == nil {
			_, err = j.f.Write(line)
		}
	}
	if err == nil {
		if err = l.before(OpSync, path); err == nil {
			err = j.f.Sync()
		}
	}
	if err != nil {
		j.cut = true
		_ = l.trimJournal(j)
		return err
	}
	j.end += int64(len(line))
	return nil
}

// trimJournal cuts what a failed append may have left after j's last
// complete line.
func (l *Ledger) trimJournal(j *lineFile) error {
	err := l.before(OpTruncate, j.f.Name())
	if err == nil {
		err = j.f.Truncate(j.end)
	}
	if err == nil {
		j.cut = false
	}
	return err
}

// readJournal checks the FINISH journal and marks the agencies that finished.
// Each line is a canonical `agency,total,digest` for an agency of the round
// whose total and digest are those of its stored rows: a row edited, or rows
// swapped between agencies, with every count unchanged, still fails. A
// repeated agency must repeat its line.
func (l *Ledger) readJournal(path string) error {
	data, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("recover journal %q: %w", path, err)
	}
	seen := make(map[int]string)
	// RepairTail left either nothing or complete lines.
	for n, text := 1, string(data); text != ""; n++ {
		var line string
		line, text, _ = strings.Cut(text, "\n")
		agency, total, digest, err := parseJournalLine(line, len(l.agencies))
		if err != nil {
			return fmt.Errorf("recover journal %q: line %d: %w", path, n, err)
		}
		f := &l.agencies[agency-1]
		prev, again := seen[agency]
		switch {
		case again && prev != line:
			err = fmt.Errorf("agency %d finished again as %q, first as %q", agency, line, prev)
		case f.stored.Load() != total:
			err = fmt.Errorf("agency %d finished with %d bets but %q holds %d of its bets", agency, total, l.path,
				f.stored.Load())
		case f.digest.Sum() != digest:
			err = fmt.Errorf("agency %d finished with digest %s but its %d bets in %q hash to %s: "+
				"its bets changed after its FINISH", agency, digest, total, l.path, f.digest.Sum())
		}
		if err != nil {
			return fmt.Errorf("recover journal %q: line %d: %w", path, n, err)
		}
		if !again {
			seen[agency] = line
			f.final.Store(&digest)
			f.finished.Store(true)
			f.closed = ErrFinished
			l.finished++
		}
	}
	return nil
}

// parseJournalLine reads `agency,total,digest` exactly as Finish writes it.
func parseJournalLine(line string, agencies int) (int, uint64, protocol.Digest, error) {
	a, rest, comma1 := strings.Cut(line, ",")
	t, d, comma2 := strings.Cut(rest, ",")
	agency, okA := parseDecimal(a)
	total, okT := parseDecimal(t)
	if !comma1 || !comma2 || !okA || !okT {
		return 0, 0, protocol.Digest{}, fmt.Errorf(
			"%q is not agency,total,digest with numbers in decimal digits without sign or leading zero", line)
	}
	if agency < 1 || agency > uint64(agencies) {
		return 0, 0, protocol.Digest{}, fmt.Errorf("agency %d not in 1..%d (SERVER_AGENCIES)", agency, agencies)
	}
	digest, err := protocol.ParseDigest(d)
	if err != nil {
		return 0, 0, protocol.Digest{}, fmt.Errorf("agency %d: %w", agency, err)
	}
	return int(agency), total, digest, nil
}

// parseDecimal reads a number as strconv.Itoa writes it: 1 to 19 digits, no
// leading zero.
func parseDecimal(s string) (uint64, bool) {
	if s == "" || len(s) > 19 || len(s) > 1 && s[0] == '0' {
		return 0, false
	}
	var n uint64
	for i := range len(s) {
		if s[i] < '0' || s[i] > '9' {
			return 0, false
		}
		n = n*10 + uint64(s[i]-'0')
	}
	return n, true
}
