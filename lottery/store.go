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
	"time"
	"unicode"
	"unicode/utf8"
)

// bufSize is the buffer of the package's file reads and writes, and the
// room a Store starts with for gathered rows: large enough that a read or a
// write moves the rows of many batches at once.
const bufSize = 64 << 10

// Store appends bets to one CSV file with the columns
// agency,first_name,last_name,document,birthdate,number, each row exactly as
// encoding/csv's Writer writes it (ScanStore checks that byte for byte).
//
// A Store is not safe for concurrent use: the server serialises access to it, as it
// must anyway to keep each batch's rows together.
type Store struct {
	path   string
	f      *os.File
	out    io.Writer // f; a test may put a failing writer in its place
	buf    []byte    // rows not handed to the OS yet: Flush, Sync and Close write them
	err    error     // a failed write, kept until Rewind as bufio.Writer keeps its own
	size   int64     // end of the last complete row handed to the OS
	closed bool
}

// OpenStore opens the bets file at path for appending, creating it if missing.
// The parent directory must exist.
func OpenStore(path string) (*Store, error) {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o644)
	if err != nil {
		return nil, fmt.Errorf("open store %q: %w", path, err)
	}
	fi, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("open store %q: %w", path, err)
	}
	return &Store{path: path, f: f, out: f, size: fi.Size(), buf: make([]byte, 0, bufSize)}, nil
}

// Rows holds the rows of valid bets, formatted as the store writes them, for
// StoreRows. Add checks and formats a bet in one pass over its fields: the
// scan that validates a name also says whether it needs quotes. Reset keeps
// the buffer for the next batch.
type Rows struct {
	buf    []byte
	n      int
	prefix []byte // AddBatch's agency column, reused
}

// Add checks b as Validate does and, valid, appends its row; invalid, it
// returns Validate's error and appends nothing.
func (r *Rows) Add(b Bet, now time.Time) error {
	quotes, err := b.check(today(now))
	if err != nil {
		return err
	}
	r.buf = appendRow(r.buf, b, quotes)
	r.n++
	return nil
}

// Len is the number of rows added since the last Reset.
func (r *Rows) Len() int { return r.n }

// Reset empties r, keeping its buffer.
func (r *Rows) Reset() { r.buf, r.n = r.buf[:0], 0 }

// StoreRows gathers r's rows after those already gathered, in order; they
// reach the OS at the next Flush, Sync or Close. The caller decides when to
// write (see Buffered), so that the rows of many batches reach the OS in one
// system call. Flushed, the rows survive a crash of the process; synced, a
// crash of the machine.
func (s *Store) StoreRows(r *Rows) error {
	if err := s.usable("store bets"); err != nil {
		return err
	}
	s.buf = append(s.buf, r.buf...)
	return nil
}

// Buffered is how many bytes of rows are gathered and not yet handed to the OS.
func (s *Store) Buffered() int { return len(s.buf) }

// Flush hands the rows StoreRows gathered to the OS.
func (s *Store) Flush() error {
	if err := s.usable("flush store"); err != nil {
		return err
	}
	return s.write()
}

// usable says why op cannot run: the store is closed, or a write failed and
// no Rewind came since.
func (s *Store) usable(op string) error {
	if s.closed {
		return fmt.Errorf("%s: %w", op, os.ErrClosed)
	}
	if s.err != nil {
		return fmt.Errorf("%s %q: %w", op, s.path, s.err)
	}
	return nil
}

// write hands the gathered rows to the OS, all of them or, failing, none
// counted: Size stays at the last row of the last good write.
func (s *Store) write() error {
	rows := s.buf
	s.buf = s.buf[:0]
	if len(rows) == 0 {
		return nil
	}
	n, err := s.out.Write(rows)
	if err == nil && n < len(rows) {
		err = io.ErrShortWrite
	}
	if err != nil {
		s.err = err
		return fmt.Errorf("store bets %q: %w", s.path, err)
	}
	s.size += int64(n)
	return nil
}

// appendRow appends b's row as csv.Writer writes it (comma, LF line ending);
// quotes has bit i set when text field i needs quotes (see Bet.check).
func appendRow(buf []byte, b Bet, quotes uint8) []byte {
	return appendFields(append(appendInt(buf, b.Agency), ','), b, quotes)
}

// appendFields appends b's row after the agency column (see AppendRow).
func appendFields(buf []byte, b Bet, quotes uint8) []byte {
	for i, field := range b.textFields() {
		if i > 0 {
			buf = append(buf, ',')
		}
		if quotes&(1<<i) == 0 {
			buf = append(buf, field...)
		} else {
			buf = appendQuoted(buf, field)
		}
	}
	buf = append(buf, ',')
	buf = appendInt(buf, b.Number)
	return append(buf, '\n')
}

// textFields are b's text columns in the file's order.
func (b Bet) textFields() [4]string {
	return [...]string{b.FirstName, b.LastName, b.Document, b.Birthdate}
}

// appendInt is strconv.AppendInt in base 10, by hand for 0..9999 (every
// number, and the agencies): it runs twice for every row stored, and those
// values need none of strconv's generality.
func appendInt(buf []byte, n int) []byte {
	switch {
	case n < 0 || n > 9999:
		return strconv.AppendInt(buf, int64(n), 10)
	case n < 10:
		return append(buf, byte('0'+n))
	case n < 100:
		return append(buf, byte('0'+n/10), byte('0'+n%10))
	case n < 1000:
		return append(buf, byte('0'+n/100), byte('0'+n/10%10), byte('0'+n%10))
	}
	return append(buf, byte('0'+n/1000), byte('0'+n/100%10), byte('0'+n/10%10), byte('0'+n%10))
}

// appendQuoted appends field quoted as csv.Writer quotes it: its quotes doubled.
func appendQuoted(buf []byte, field string) []byte {
	buf = append(buf, '"')
	for i := range len(field) {
		if field[i] == '"' {
			buf = append(buf, '"')
		}
		buf = append(buf, field[i])
	}
	return append(buf, '"')
}

// needsQuotes reports whether csv.Writer quotes field (without UseCRLF).
func needsQuotes(field string) bool { return quoteBit(field, classesOf(field), 0) != 0 }

// quoteBit is 1<<i when csv.Writer quotes field, whose byte classes are seen:
// it holds a comma, quote, CR or LF, or quotedStart says so; 0 otherwise.
func quoteBit(field string, seen uint8, i int) uint8 {
	if seen&classQuote != 0 || quotedStart(field) {
		return 1 << i
	}
	return 0
}

// classesOf ORs the byte classes of s, branch-free: most fields are short and
// plain.
func classesOf(s string) (seen uint8) {
	for i := range len(s) {
		seen |= byteClass[s[i]]
	}
	return seen
}

// quotedStart reports whether csv.Writer quotes field for how it starts: with
// a unicode space, or as the whole field `\.`. The usual field, starting with
// an ASCII letter or digit, needs no rune decoded.
func quotedStart(field string) bool {
	if field == "" {
		return false
	}
	if c := field[0]; c < utf8.RuneSelf {
		// unicode.IsSpace's ASCII spaces.
		return c == ' ' || '\t' <= c && c <= '\r' || c == '\\' && field == `\.`
	}
	r, _ := utf8.DecodeRuneInString(field)
	return unicode.IsSpace(r)
}

// Size is the length of the file up to the end of the last row handed to
// the OS (rows still gathered are not counted): what Rewind cuts back to
// after a failure.
func (s *Store) Size() int64 { return s.size }

// Discard drops the rows gathered and not yet handed to the OS: rows the
// caller will not have written, such as those of batches lost to a failure.
func (s *Store) Discard() { s.buf = s.buf[:0] }

// Rewind cuts the file back to size bytes and forgets a failed write and the
// rows not flushed, so the next StoreRows starts on a clean row. size must be
// the end of a row, such as a value Size returned: a failed write (a full
// disk) may have left part of a row in the file.
func (s *Store) Rewind(size int64) error {
	if s.closed {
		return fmt.Errorf("rewind store: %w", os.ErrClosed)
	}
	s.err, s.buf = nil, s.buf[:0]
	if err := s.f.Truncate(size); err != nil {
		return fmt.Errorf("rewind store %q to %d bytes: %w", s.path, size, err)
	}
	s.size = size
	return nil
}

// Sync flushes and fsyncs: once it returns nil, every stored bet is durable.
func (s *Store) Sync() error {
	if err := s.Flush(); err != nil {
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

// LoadBets streams the bets of a store file in order, never holding more than one row.
// A missing file yields nothing. A bad row yields (Bet{}, err), err naming the line,
// and ends the sequence. Agency and number must be written as the store writes a
// valid bet's: the decimal digits of strconv.Itoa, so "+3" or "07574" is a bad row.
// Beyond that it takes any CSV: it neither validates bets nor holds rows to the
// store's exact bytes, as ScanStore does for a central's recovery. Sharing no more
// than the parsing of a field with ScanStore, it is the independent recount with
// which an operator checks a central's answers (`dataset winners -store`).
func LoadBets(path string) iter.Seq2[Bet, error] {
	const op = "load bets"
	return func(yield func(Bet, error) bool) {
		f, err := os.Open(path)
		if errors.Is(err, fs.ErrNotExist) {
			return
		}
		if err != nil {
			yield(Bet{}, fmt.Errorf("%s: %w", op, err))
			return
		}
		defer f.Close()

		r := csv.NewReader(bufio.NewReaderSize(f, bufSize))
		r.FieldsPerRecord = len(storeColumns)
		r.ReuseRecord = true
		for {
			rec, err := r.Read()
			if err == io.EOF {
				return
			}
			if err != nil {
				if line, cause := csvError(err, rec, len(storeColumns)); line > 0 {
					err = fmt.Errorf("line %d: %w", line, cause)
				}
				yield(Bet{}, fmt.Errorf("%s %q: %w", op, path, err))
				return
			}
			b, err := parseStoreRecord(rec)
			if err != nil {
				line, _ := r.FieldPos(0)
				yield(Bet{}, fmt.Errorf("%s %q: line %d: %w", op, path, line, err))
				return
			}
			if !yield(b, nil) {
				return
			}
		}
	}
}

// storeColumns are the store file's columns, in order.
var storeColumns = [...]string{"agency", "first_name", "last_name", "document", "birthdate", "number"}

func parseStoreRecord(rec []string) (Bet, error) {
	agency, err := parseDecimal(rec[0])
	if err != nil {
		return Bet{}, fmt.Errorf("agency: %w", err)
	}
	number, err := parseDecimal(rec[5])
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

// parseDecimal reads a number exactly as strconv.Itoa writes a non-negative
// int: digits only, no sign, no leading zero, no spaces. The store writes
// nothing else, so "+3", "03" or " 7" in a store file was not written by it.
func parseDecimal(s string) (int, error) {
	n, ok := decimal(s)
	if !ok {
		return 0, fmt.Errorf("%q: %w: want 1 to %d digits, no sign, no leading zero", s, strconv.ErrSyntax, maxDigits)
	}
	return n, nil
}

// maxDigits bounds a store file's numbers: far past any agency or number, and no overflow.
const maxDigits = 9

// decimal is parseDecimal without its error, for ScanStore's fast path.
func decimal(s string) (int, bool) {
	if s == "" || len(s) > maxDigits || s[0] == '0' && len(s) > 1 {
		return 0, false
	}
	n := 0
	for i := range len(s) {
		c := s[i]
		if c < '0' || c > '9' {
			return 0, false
		}
		n = n*10 + int(c-'0')
	}
	return n, true
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
