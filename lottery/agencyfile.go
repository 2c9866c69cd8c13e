package lottery

import (
	"bufio"
	"bytes"
	"encoding/csv"
	"fmt"
	"io"
	"iter"
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

		br := bufio.NewReaderSize(f, bufSize)
		if head, _ := br.Peek(len(utf8BOM)); bytes.Equal(head, utf8BOM) {
			br.Discard(len(utf8BOM))
		}
		r := csv.NewReader(br)
		r.FieldsPerRecord = 5
		r.ReuseRecord = true
		for {
			rec, err := r.Read()
			if err == io.EOF {
				return
			}
			if err != nil {
				if line, cause := csvError(err, rec, 5); line > 0 {
					err = fmt.Errorf("%s:%d: %w", path, line, cause)
				} else {
					err = fmt.Errorf("read agency file %s: %w", path, err)
				}
				yield(Bet{}, err)
				return
			}
			number, err := strconv.Atoi(rec[4])
			if err != nil {
				line, _ := r.FieldPos(4)
				yield(Bet{}, fmt.Errorf("%s:%d: number: %w", path, line, err))
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
}

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
