package lottery

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
)

// RepairTail cuts a partial last row off a store file and reports how many
// bytes it removed. A crash in the middle of StoreBets can leave such a row;
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
