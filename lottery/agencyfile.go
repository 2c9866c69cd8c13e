package lottery

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"encoding/csv"
	"fmt"
	"io"
	"iter"
	"math/bits"
	"os"
	"strconv"
)

// utf8BOM is what some editors put at the start of a "UTF-8 CSV"; it is not part of a name.
var utf8BOM = []byte("\uFEFF")

// ReadAgencyFile streams the bets of an agency file: no header, the columns
// first_name,last_name,document,birthdate,number, CRLF or LF line endings. Every bet gets
// the given agency. Bets are not validated (callers decide what to do with a bad one), but
// a malformed row or a non-integer number yields (Bet{}, err) with err starting
// "path:line: ", and ends the sequence. A missing file is an error wrapping fs.ErrNotExist.
func ReadAgencyFile(path string, agency int) iter.Seq2[Bet, error] {
	return func(yield func(Bet, error) bool) {
		f, err := os.Open(path)
		if err != nil {
			yield(Bet{}, fmt.Errorf("read agency file: %w", err)) // os.Open names the path
			return
		}
		defer f.Close()
		readAgency(bufio.NewReaderSize(f, bufSize), path, agency, yield)
	}
}

// readAgency parses the lines without a quote itself, which is what every official row
// looks like, and gives the rest to encoding/csv from the first line that holds one. The
// results are encoding/csv's, row for row and error for error.
func readAgency(br *bufio.Reader, path string, agency int, yield func(Bet, error) bool) {
	skipBOM(br)
	const ones = 0x0101010101010101
	line := 0 // lines read so far
	for {
		// The complete lines already buffered, up to the first quote, are split in place: a
		// mask of the commas and newlines of each 64 bytes, then a step per bit: on lines
		// this short, a ReadSlice and an IndexByte per field cost more than the fields.
		win, _ := br.Peek(br.Buffered())
		end := len(win)
		if q := bytes.IndexByte(win, '"'); q >= 0 {
			end = q
		}
		// The bets of this window share one string, as a row's fields share
		// one in csv: one allocation per window instead of one per bet.
		text := string(win[:end])
		start, commas := 0, 0 // of the line being split
		var comma [4]int
		var pad [64]byte // the last block, zeros after the bytes: they match neither
		for i := 0; i < end; i += 64 {
			blk := &pad
			if i+64 <= end {
				blk = (*[64]byte)(win[i:])
			} else {
				copy(pad[:], win[i:end])
			}
			var mask uint64 // bit k: blk[k] is a comma or a newline
			for k := 0; k < 64; k += 8 {
				w := binary.LittleEndian.Uint64(blk[k : k+8])
				m := zeroBytes(w^(','*ones)) | zeroBytes(w^('\n'*ones))
				mask |= (m >> 7 * 0x0102040810204080 >> 56) << k // a bit per byte
			}
			for ; mask != 0; mask &= mask - 1 {
				j := i + bits.TrailingZeros64(mask)
				if win[j] == ',' {
					if commas < len(comma) {
						comma[commas] = j - start
					}
					commas++
					continue
				}
				line++
				b, blank, err := lineBet(text[start:j], &comma, commas, line, path, agency)
				if err != nil {
					yield(Bet{}, err)
					return
				}
				if !blank && !yield(b, nil) {
					return
				}
				start, commas = j+1, 0
			}
		}
		br.Discard(start)
		if end < len(win) {
			// A quoted field may span lines: csv takes over from the start of this one.
			readAgencyCSV(br, path, agency, line, yield)
			return
		}

		// The line that runs past the buffered bytes, or the first one: ReadSlice fills
		// the buffer, and says EOF, a read error or a line longer than the buffer.
		raw, err := br.ReadSlice('\n')
		if err == io.EOF && len(raw) == 0 {
			return
		}
		comma, commas, quote := scanLine(raw)
		if quote || (err != nil && err != io.EOF) {
			readAgencyCSV(csvFrom(raw, br, err), path, agency, line, yield)
			return
		}
		line++
		if n := len(raw); n > 0 && raw[n-1] == '\n' {
			raw = raw[:n-1]
		}
		b, blank, err := lineBet(string(raw), &comma, commas, line, path, agency)
		if err != nil {
			yield(Bet{}, err)
			return
		}
		if !blank && !yield(b, nil) {
			return
		}
	}
}

// lineBet is csv's reading of a line without a quote or \n; comma holds the offsets of its
// first commas, and commas counts them all. blank means csv skips the line.
func lineBet(s string, comma *[4]int, commas, line int, path string, agency int) (b Bet, blank bool, err error) {
	// csv turns \r\n into \n and drops a \r before EOF; a bare \r elsewhere is data.
	if n := len(s); n > 0 && s[n-1] == '\r' {
		s = s[:n-1]
	}
	if len(s) == 0 {
		return Bet{}, true, nil
	}
	if commas != 4 {
		pe := &csv.ParseError{StartLine: line, Line: line, Column: 1, Err: csv.ErrFieldCount}
		l, cause := csvError(pe, make([]string, commas+1), 5)
		return Bet{}, false, fmt.Errorf("%s:%d: %w", path, l, cause)
	}
	number, ok := atoi(s[comma[3]+1:])
	if !ok {
		if number, err = strconv.Atoi(s[comma[3]+1:]); err != nil {
			return Bet{}, false, fmt.Errorf("%s:%d: number: %w", path, line, err)
		}
	}
	return Bet{
		Agency:    agency,
		FirstName: s[:comma[0]],
		LastName:  s[comma[0]+1 : comma[1]],
		Document:  s[comma[1]+1 : comma[2]],
		Birthdate: s[comma[2]+1 : comma[3]],
		Number:    number,
	}, false, nil
}

// atoi is strconv.Atoi for 1 to 18 digits and no sign, where it cannot fail; ok is false
// for anything else, which strconv.Atoi then reads, so its errors stay the same.
func atoi(s string) (n int, ok bool) {
	if len(s) == 0 || len(s) > 18 {
		return 0, false
	}
	for i := 0; i < len(s); i++ {
		c := s[i] - '0'
		if c > 9 {
			return 0, false
		}
		n = n*10 + int(c)
	}
	return n, true
}

// scanLine is the split of one line that readAgency's loop does on the buffer: the offsets
// of its first 4 commas, how many it has, and whether it holds a quote.
func scanLine(line []byte) (comma [4]int, commas int, quote bool) {
	for i, c := range line {
		switch c {
		case '"':
			return comma, commas, true
		case ',':
			if commas < len(comma) {
				comma[commas] = i
			}
			commas++
		}
	}
	return comma, commas, false
}

// zeroBytes sets the high bit of each byte of w that is zero, and no other bit.
func zeroBytes(w uint64) uint64 {
	const low7 = 0x7f7f7f7f7f7f7f7f
	return ^((w&low7 + low7) | w | low7)
}

// readAgencyCSV reads r with encoding/csv, counting lines after the skipped ones already
// read, so errors name the line of the file.
func readAgencyCSV(r io.Reader, path string, agency, skipped int, yield func(Bet, error) bool) {
	cr := csv.NewReader(r)
	cr.FieldsPerRecord = 5
	cr.ReuseRecord = true
	for {
		rec, err := cr.Read()
		if err == io.EOF {
			return
		}
		if err != nil {
			if line, cause := csvError(err, rec, 5); line > 0 {
				err = fmt.Errorf("%s:%d: %w", path, skipped+line, cause)
			} else {
				err = fmt.Errorf("read agency file %s: %w", path, err)
			}
			yield(Bet{}, err)
			return
		}
		number, err := strconv.Atoi(rec[4])
		if err != nil {
			line, _ := cr.FieldPos(4)
			yield(Bet{}, fmt.Errorf("%s:%d: number: %w", path, skipped+line, err))
			return
		}
		b := Bet{
			Agency:    agency,
			FirstName: rec[0],
			LastName:  rec[1],
			Document:  rec[2],
			Birthdate: rec[3],
			Number:    number,
		}
		if !yield(b, nil) {
			return
		}
	}
}

// skipBOM skips a UTF-8 BOM at the start of br.
func skipBOM(br *bufio.Reader) {
	if head, _ := br.Peek(len(utf8BOM)); bytes.Equal(head, utf8BOM) {
		br.Discard(len(utf8BOM))
	}
}

// csvFrom is the rest of a file for encoding/csv from raw, the line
// ReadSlice returned with err that a fast path could not take: raw, then br,
// or the read error that stopped it (csv would stop there, not read again).
func csvFrom(raw []byte, br *bufio.Reader, err error) io.Reader {
	rest := io.Reader(br)
	if err != nil && err != bufio.ErrBufferFull && err != io.EOF {
		rest = errReader{err}
	}
	return io.MultiReader(bytes.NewReader(bytes.Clone(raw)), rest)
}

// errReader hands csv the read error that stopped the fast path.
type errReader struct{ err error }

func (r errReader) Read([]byte) (int, error) { return 0, r.err }

// WriteAgencyFile writes bets in the agency file format, with CRLF line endings like the
// official files. Pass a *bufio.Writer of at least 4 KiB to avoid a second buffer.
func WriteAgencyFile(w io.Writer, bets iter.Seq[Bet]) error {
	cw := csv.NewWriter(w)
	cw.UseCRLF = true
	for b := range bets {
		rec := [5]string{b.FirstName, b.LastName, b.Document, b.Birthdate, strconv.Itoa(b.Number)}
		if err := cw.Write(rec[:]); err != nil {
			return fmt.Errorf("write agency file: %w", err)
		}
	}
	cw.Flush()
	if err := cw.Error(); err != nil {
		return fmt.Errorf("write agency file: %w", err)
	}
	return nil
}

// agencyReadSize is ReadAgencyRows' buffer: a read per about 1,400 lines.
// Larger saves little (a read is a few microseconds) and costs every agency
// process the first touch of each page of it, which on a virtual machine is
// dearer than the reads it saves.
const agencyReadSize = 64 << 10

// ReadAgencyRows streams an agency file (see ReadAgencyFile) as rows, each
// as AppendRow writes it, LF included: what BATCH carries. Most lines are
// such a row already and are handed on as they are; the others (a quote, a
// CR inside a line, a field csv would quote, a number written otherwise) go
// through encoding/csv from there on and are written again. A row is valid
// until the next one. Rows are not validated, but a malformed line or a
// non-integer number yields (nil, err) with err starting "path:line: ", and
// ends the sequence.
func ReadAgencyRows(path string) iter.Seq2[[]byte, error] {
	return func(yield func([]byte, error) bool) {
		f, err := os.Open(path)
		if err != nil {
			yield(nil, fmt.Errorf("read agency file: %w", err)) // os.Open names the path
			return
		}
		defer f.Close()
		br := bufio.NewReaderSize(f, agencyReadSize)
		skipBOM(br)
		var scratch []byte // a row that is not a line of the buffer as it is
		for line := 0; ; line++ {
			raw, err := br.ReadSlice('\n')
			if err == io.EOF && len(raw) == 0 {
				return
			}
			content := raw
			if n := len(content); n > 0 && content[n-1] == '\n' {
				content = content[:n-1]
			}
			if n := len(content); n > 0 && content[n-1] == '\r' {
				content = content[:n-1]
			}
			if err == nil || err == io.EOF {
				switch {
				case len(content) == 0: // csv skips a blank line
					continue
				case plainAgencyRow(content):
					row := raw
					if len(content)+1 != len(raw) || raw[len(raw)-1] != '\n' { // CRLF, or no LF at the end
						scratch = append(append(scratch[:0], content...), '\n')
						row = scratch
					}
					if !yield(row, nil) {
						return
					}
					continue
				}
			}
			readAgencyCSV(csvFrom(raw, br, err), path, 0, line, func(b Bet, err error) bool {
				if err != nil {
					return yield(nil, err)
				}
				scratch = AppendRow(scratch[:0], b)
				return yield(scratch, nil)
			})
			return
		}
	}
}
