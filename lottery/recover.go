package lottery

import (
	"bytes"
	"encoding/csv"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"strings"
)

// RepairTail cuts a partial last row off a store file and reports how many
// bytes it removed. A crash in the middle of a write can leave such a row;
// only the bytes after the last newline can be partial, because no field may
// hold a newline (Validate refuses control characters) and rows are appended
// whole and in order. A missing file needs no repair.
func RepairTail(path string) (int64, error) {
	f, err := os.OpenFile(path, os.O_RDWR, 0)
	if errors.Is(err, fs.ErrNotExist) {
		return 0, nil
	}
	if err != nil {
		return 0, fmt.Errorf("repair store %q: %w", path, err)
	}
	defer f.Close()
	size, err := f.Seek(0, io.SeekEnd)
	if err != nil {
		return 0, fmt.Errorf("repair store %q: %w", path, err)
	}
	keep, err := endOfLastLine(f, size)
	if err != nil {
		return 0, fmt.Errorf("repair store %q: %w", path, err)
	}
	if keep == size {
		return 0, nil
	}
	if err := f.Truncate(keep); err != nil {
		return 0, fmt.Errorf("repair store %q: cut to %d bytes: %w", path, keep, err)
	}
	if err := f.Sync(); err != nil {
		return 0, fmt.Errorf("repair store %q: %w", path, err)
	}
	return size - keep, nil
}

// endOfLastLine is the offset just past the last '\n' in the first size bytes
// of r (0 if there is none), found by reading backwards in blocks.
func endOfLastLine(r io.ReaderAt, size int64) (int64, error) {
	buf := make([]byte, 32<<10)
	for end := size; end > 0; {
		start := max(end-int64(len(buf)), 0)
		chunk := buf[:end-start]
		if _, err := r.ReadAt(chunk, start); err != nil {
			return 0, err
		}
		if i := bytes.LastIndexByte(chunk, '\n'); i >= 0 {
			return start + int64(i) + 1, nil
		}
		end = start
	}
	return 0, nil
}

// ErrNotCanonical is wrapped by ScanStore's error for a row that holds a
// valid bet but not in the bytes the store writes for it: needless quotes, a
// CRLF line ending, a blank line. Such a row was not written by the store.
var ErrNotCanonical = errors.New("not written as the store writes it")

// canonicalRow checks that the row rec was read from, rowLen bytes with its
// newline, is the one csv.Writer writes for rec: each field's width, from
// where the next one starts, and the whole row's length.
func canonicalRow(r *csv.Reader, rec []string, rowLen int64) error {
	line, col := r.FieldPos(0)
	var want int64
	for i, field := range rec {
		width := encodedLen(field)
		want += int64(width) + 1 // the comma after it, or the newline
		if i+1 == len(rec) {
			break
		}
		nextLine, next := r.FieldPos(i + 1)
		if nextLine != line || next-col-1 != width {
			return fmt.Errorf("%s: %w", storeColumns[i], ErrNotCanonical)
		}
		col = next
	}
	if rowLen != want {
		return fmt.Errorf("%s or line ending: %w", storeColumns[len(rec)-1], ErrNotCanonical)
	}
	return nil
}

// encodedLen is the width csv.Writer gives field (without UseCRLF): quoted,
// with its quotes doubled, when it needs quotes; as it is otherwise.
func encodedLen(field string) int {
	if !needsQuotes(field) {
		return len(field)
	}
	return len(field) + 2 + strings.Count(field, `"`)
}
