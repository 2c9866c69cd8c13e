package lottery

import (
	"bufio"
	"encoding/csv"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"iter"
	"os"
	"strconv"
)

// bufSize is large enough that a typical batch of bets reaches the OS in one write.
const bufSize = 64 << 10

// Store appends bets to one CSV file with the columns
// agency,first_name,last_name,document,birthdate,number.
//
// A Store is not safe for concurrent use: the server serialises access to it, as it
// must anyway to keep each batch's rows together.
type Store struct {
	path   string
	f      *os.File
	cw     *csv.Writer
	closed bool
}

// OpenStore opens the bets file at path for appending, creating it if missing.
// The parent directory must exist.
func OpenStore(path string) (*Store, error) {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o644)
	if err != nil {
		return nil, fmt.Errorf("open store %q: %w", path, err)
	}
	// csv.NewWriter adopts this larger bufio.Writer as its own buffer rather than adding one.
	return &Store{path: path, f: f, cw: csv.NewWriter(bufio.NewWriterSize(f, bufSize))}, nil
}

// Path returns the file the store appends to.
func (s *Store) Path() string { return s.path }

// StoreBets appends bets in order and hands them to the OS before returning.
// They survive a crash of the process but not of the machine until Sync.
func (s *Store) StoreBets(bets []Bet) error {
	if s.closed {
		return fmt.Errorf("store bets: %w", os.ErrClosed)
	}
	for _, b := range bets {
		rec := [6]string{strconv.Itoa(b.Agency), b.FirstName, b.LastName, b.Document, b.Birthdate, strconv.Itoa(b.Number)}
		if err := s.cw.Write(rec[:]); err != nil {
			return fmt.Errorf("store bets %q: %w", s.path, err)
		}
	}
	return s.flush()
}

// flush moves buffered rows to the OS.
func (s *Store) flush() error {
	s.cw.Flush()
	if err := s.cw.Error(); err != nil {
		return fmt.Errorf("store bets %q: %w", s.path, err)
	}
	return nil
}

// Sync flushes and fsyncs: once it returns nil, every stored bet is durable.
func (s *Store) Sync() error {
	if s.closed {
		return fmt.Errorf("sync store: %w", os.ErrClosed)
	}
	if err := s.flush(); err != nil {
		return err
	}
	if err := s.f.Sync(); err != nil {
		return fmt.Errorf("sync store %q: %w", s.path, err)
	}
	return nil
}

// Close syncs and closes the file. Calling it again does nothing.
func (s *Store) Close() error {
	if s.closed {
		return nil
	}
	syncErr := s.Sync()
	s.closed = true
	if err := s.f.Close(); err != nil {
		return errors.Join(syncErr, fmt.Errorf("close store %q: %w", s.path, err))
	}
	return syncErr
}

// LoadBets flushes pending writes, then streams the file like the package's LoadBets.
func (s *Store) LoadBets() iter.Seq2[Bet, error] {
	if !s.closed {
		if err := s.flush(); err != nil {
			return func(yield func(Bet, error) bool) { yield(Bet{}, err) }
		}
	}
	return LoadBets(s.path)
}

// LoadBets streams the bets of a store file in order, never holding more than one row.
// A missing file yields nothing. A bad row yields (Bet{}, err), err naming the line,
// and ends the sequence.
func LoadBets(path string) iter.Seq2[Bet, error] {
	return func(yield func(Bet, error) bool) {
		f, err := os.Open(path)
		if errors.Is(err, fs.ErrNotExist) {
			return
		}
		if err != nil {
			yield(Bet{}, fmt.Errorf("load bets: %w", err))
			return
		}
		defer f.Close()

		r := csv.NewReader(bufio.NewReaderSize(f, bufSize))
		r.FieldsPerRecord = 6
		r.ReuseRecord = true
		for {
			rec, err := r.Read()
			if err == io.EOF {
				return
			}
			if err != nil {
				if line, cause := csvError(err, rec, 6); line > 0 {
					err = fmt.Errorf("line %d: %w", line, cause)
				}
				yield(Bet{}, fmt.Errorf("load bets %q: %w", path, err))
				return
			}
			b, err := parseStoreRecord(rec)
			if err != nil {
				line, _ := r.FieldPos(0)
				yield(Bet{}, fmt.Errorf("load bets %q: line %d: %w", path, line, err))
				return
			}
			if !yield(b, nil) {
				return
			}
		}
	}
}

func parseStoreRecord(rec []string) (Bet, error) {
	agency, err := strconv.Atoi(rec[0])
	if err != nil {
		return Bet{}, fmt.Errorf("agency: %w", err)
	}
	number, err := strconv.Atoi(rec[5])
	if err != nil {
		return Bet{}, fmt.Errorf("number: %w", err)
	}
	// The fields share one string per row (csv.Reader), so keeping them costs no copy.
	return Bet{
		Agency:    agency,
		FirstName: rec[1],
		LastName:  rec[2],
		Document:  rec[3],
		Birthdate: rec[4],
		Number:    number,
	}, nil
}

// csvError splits a csv.ParseError into its line and cause, keeping the cause in the chain
// (errors.Is(err, csv.ErrFieldCount) still works) and saying how many fields came.
// Line is 0 for errors that are not about a row, such as a failed read.
func csvError(err error, rec []string, want int) (line int, cause error) {
	var pe *csv.ParseError
	if !errors.As(err, &pe) {
		return 0, err
	}
	if errors.Is(pe.Err, csv.ErrFieldCount) {
		return pe.Line, fmt.Errorf("%w: got %d, want %d", pe.Err, len(rec), want)
	}
	return pe.Line, fmt.Errorf("column %d: %w", pe.Column, pe.Err)
}
