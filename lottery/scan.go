package lottery

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"encoding/csv"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"math"
	"math/bits"
	"os"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"time"
	"unsafe"
)

// Tally is what a store file holds: rows per agency and the documents of
// each agency's winning bets (HasWon), in file order.
type Tally struct {
	Rows    uint64
	Bets    map[int]uint64
	Winners map[int][]string // each string its own copy, never aliasing a read buffer
}

// ScanOptions tune ScanStore.
type ScanOptions struct {
	// Now, if set, has every row checked as a bet against the row rules
	// that ingest applies (Rows.AddBatch; Validate's, with "the future"
	// after Now's date), before Check.
	Now time.Time
	// Check is each bet's validation beyond that (the caller's rules, e.g. an agency range).
	// It is called from several goroutines at once; the Bet's strings are valid only during the call
	// (they may alias a reused read buffer) and must not be retained. nil checks nothing beyond the row's form.
	Check func(Bet) error
	// Progress, if set, is called from one goroutine at a time, in file order, with the rows scanned so far, after each chunk.
	// An error it returns ends the scan with that error (a central told to stop, say).
	Progress func(rows uint64) error
	// Hash, if set, is handed each agency's rows in file order, each as
	// BATCH carries it (its line without the agency column, LF included:
	// AppendRow's), a run of one agency's rows at a time, on one goroutine:
	// the central's digests. Rows read in place are copied as they are.
	Hash func(agency int, rows []byte)
	// Limit, when positive, reads only the file's first Limit bytes: a
	// prefix ending where a row ends, such as a central's synced rows while
	// it appends more.
	Limit int64
}

// scanChunkSize is how much of the file a worker takes at a time: large
// enough that handing chunks over is noise, small enough that the buffers
// in flight (two per worker) stay a few MiB.
const scanChunkSize = 512 << 10

// scanMaxGrowth bounds a buffer grown for a record longer than a chunk, in
// chunks; a longer one (only a corrupt file has one) is read by csv alone.
const scanMaxGrowth = 4

// ScanStore reads a store file once, sequentially, and trusts none of it:
// every row must be six columns, its numbers in strconv.Itoa form, its bet
// must pass Check, and it must be byte for byte the row the store writes for
// that bet (ErrNotCanonical: no needless quotes, no CRLF, no blank line). The
// first bad row in file order ends the scan with an error reading
// `recover bets "path": line N: reason`. Rows are parsed by one goroutine per
// core (GOMAXPROCS) in a few buffers of scanChunkSize, however large the
// file. A missing file is an empty Tally; on error the Tally is empty. Repair
// a torn last row first (RepairTail).
func ScanStore(path string, opts ScanOptions) (Tally, error) {
	return scanStore(path, opts, scanChunkSize, runtime.GOMAXPROCS(0))
}

// scanStore is ScanStore with chunks of chunkSize bytes and workers (at least
// one) parsing them, so tests can put chunk boundaries anywhere and choose
// how many chunks are in flight.
func scanStore(path string, opts ScanOptions, chunkSize, workers int) (Tally, error) {
	const op = "recover bets"
	tally := Tally{Bets: map[int]uint64{}, Winners: map[int][]string{}}
	f, err := os.Open(path)
	if errors.Is(err, fs.ErrNotExist) {
		return tally, nil
	}
	if err != nil {
		return Tally{}, fmt.Errorf("%s: %w", op, err)
	}
	defer f.Close()
	var src interface {
		io.Reader
		io.ReaderAt
	} = f
	end := int64(math.MaxInt64)
	if opts.Limit > 0 {
		src, end = io.NewSectionReader(f, 0, opts.Limit), opts.Limit
	}

	nbuf := 2*workers + 1
	s := &scanner{
		chunkSize: chunkSize,
		free:      make(chan []byte, nbuf),
		freeRows:  make(chan rowBufs, nbuf),
		jobs:      make(chan chunk, workers),
		results:   make(chan chunkResult, nbuf),
		done:      make(chan struct{}),
	}
	s.failed.Store(math.MaxInt64)
	ws := make([]*scanWorker, workers)
	s.live.Store(int32(workers))
	s.wg.Add(1 + workers)
	go s.read(src)
	rows := opts.Hash != nil
	for i := range ws {
		ws[i] = newScanWorker(opts)
		go s.work(ws[i])
	}

	// Merge in file order: Winners keep their order and the first failure
	// in the file wins, with its line counted from the chunks before it.
	pending := map[int]chunkResult{}
	next, lines := 0, 0
	for r := range s.results {
		if err != nil {
			continue // draining until every goroutine is gone
		}
		pending[r.seq] = r
		for {
			r, ok := pending[next]
			if !ok {
				break
			}
			delete(pending, next)
			if r.open {
				// No worker can split it: csv reads on from there, one record at a time.
				w := newScanWorker(opts)
				ws = append(ws, w)
				rd := io.NewSectionReader(src, r.offset, end-r.offset)
				w.readCSV(bufio.NewReaderSize(rd, bufSize), 0, &r)
			}
			if r.fail != nil {
				err = r.failure(path, op, lines, tally.Rows)
				close(s.done)
				break
			}
			for _, w := range r.winners {
				tally.Winners[w.agency] = append(tally.Winners[w.agency], w.document)
			}
			tally.Rows += r.rows
			lines += r.lines
			if rows {
				r.hash(opts.Hash)
				select {
				case s.freeRows <- rowBufs{r.copied[:0], r.spans[:0]}:
				default:
				}
			}
			if r.buf != nil {
				s.free <- r.buf[:cap(r.buf)] // never blocks: there are at most nbuf buffers
			}
			next++
			if opts.Progress != nil {
				if perr := opts.Progress(tally.Rows); perr != nil {
					err = fmt.Errorf("%s %q: after %d rows: %w", op, path, tally.Rows, perr)
					close(s.done)
					break
				}
			}
		}
	}
	if err == nil {
		close(s.done)
	}
	s.wg.Wait()
	if err != nil {
		return Tally{}, err
	}
	for _, w := range ws {
		for agency, n := range w.counts {
			if n > 0 {
				tally.Bets[agency] += n
			}
		}
		for agency, n := range w.more {
			tally.Bets[agency] += n
		}
	}
	return tally, nil
}

// scanner is one ScanStore: a reader goroutine cuts the file into chunks of
// whole records, workers check them, and the caller's goroutine merges.
type scanner struct {
	chunkSize int
	made      int          // buffers made, up to cap(free); the reader's
	free      chan []byte  // buffers the reader may fill
	freeRows  chan rowBufs // buffers a worker may copy a chunk's rows into (ScanOptions.Hash)
	jobs      chan chunk
	results   chan chunkResult
	done      chan struct{} // closed when the merge needs nothing more
	failed    atomic.Int64  // the first chunk known to fail: later ones need no work
	live      atomic.Int32  // workers running; the last one closes results
	wg        sync.WaitGroup
}

// chunk is a run of whole records, starting where one starts; only the
// file's last chunk may end without a newline.
type chunk struct {
	seq int
	buf []byte
	err error // a failed read, after buf's records
	// open is the rest of the file from offset, where no record ends within
	// scanMaxGrowth chunks; it has no buf.
	open   bool
	offset int64
}

type chunkResult struct {
	chunk
	rows    uint64
	lines   int // newlines in buf
	winners []winner
	// With ScanOptions.Hash, the chunk's rows without their agency
	// column, as runs of one agency's rows, in order.
	copied []byte
	spans  []span
	// fail is the chunk's first bad row (or err) at failLine, counted from
	// 1 in the chunk; 0 names no line. With failByRows the line is counted
	// in rows instead: csv skips blank lines, so a blank line at the end is
	// named by the row it would have been.
	fail       error
	failLine   int
	failByRows bool
}

type winner struct {
	agency   int
	document string
}

// rowBufs are the buffers a chunk's rows are copied into, handed back by
// the merge for the next chunk: a scan allocates a few, however large the file.
type rowBufs struct {
	copied []byte
	spans  []span
}

// span is a run of consecutive rows of one agency, ending at end in its
// chunk's copied rows; it starts where the previous span ends.
type span struct{ agency, end int }

// hash hands r's rows to hash, a run of one agency's at a time: a
// batch of a central's file is one call, not one per row.
func (r *chunkResult) hash(hash func(int, []byte)) {
	start := 0
	for _, sp := range r.spans {
		hash(sp.agency, r.copied[start:sp.end])
		start = sp.end
	}
}

func (r *chunkResult) failure(path, op string, linesBefore int, rowsBefore uint64) error {
	switch {
	case r.failLine == 0:
		return fmt.Errorf("%s %q: %w", op, path, r.fail)
	case r.failByRows:
		return fmt.Errorf("%s %q: line %d: %w", op, path, rowsBefore+uint64(r.failLine), r.fail)
	}
	return fmt.Errorf("%s %q: line %d: %w", op, path, linesBefore+r.failLine, r.fail)
}

// read cuts the file into chunks of whole records for the workers.
func (s *scanner) read(f io.Reader) {
	defer s.wg.Done()
	defer close(s.jobs)
	buf, ok := s.take()
	n := 0
	var offset int64 // where buf starts in the file
	for seq := 0; ok; seq++ {
		m, err := readFull(f, buf[n:])
		n += m
		if err != nil {
			if err == io.EOF {
				err = nil
				if n == 0 {
					return
				}
			} else {
				n = max(cutRecords(buf[:n]), 0)
			}
			s.send(chunk{seq: seq, buf: buf[:n], err: err})
			return
		}
		cut := cutRecords(buf)
		if cut < 0 && len(buf) < scanMaxGrowth*s.chunkSize {
			// A record longer than the buffer: a longer buffer replaces it in the pool.
			buf = append(buf, make([]byte, len(buf))...)
			seq--
			continue
		}
		if cut < 0 {
			s.send(chunk{seq: seq, open: true, offset: offset})
			return
		}
		var next []byte
		if next, ok = s.take(); !ok {
			return
		}
		if tail := len(buf) - cut; tail > len(next)/2 {
			next = make([]byte, 2*tail)
		}
		n = copy(next, buf[cut:])
		ok = s.send(chunk{seq: seq, buf: buf[:cut]}) && s.failed.Load() == math.MaxInt64
		buf = next
		offset += int64(cut)
	}
}

// take is a buffer to fill: a free one, else a new one while there are
// fewer than cap(free), else the next one freed.
func (s *scanner) take() ([]byte, bool) {
	select {
	case b := <-s.free:
		return b, true
	default:
	}
	if s.made < cap(s.free) {
		s.made++
		return make([]byte, s.chunkSize), true
	}
	select {
	case b := <-s.free:
		return b, true
	case <-s.done:
		return nil, false
	}
}

func (s *scanner) send(c chunk) bool {
	select {
	case s.jobs <- c:
		return true
	case <-s.done:
		return false
	}
}

// readFull fills b unless the file ends or fails first.
func readFull(f io.Reader, b []byte) (int, error) {
	n := 0
	for n < len(b) {
		m, err := f.Read(b[n:])
		n += m
		if err != nil {
			return n, err
		}
	}
	return n, nil
}

// cutRecords is where b's last whole record ends: just past a newline
// outside quotes (an even number of '"' before it) ending a line that is
// not blank, so blank lines stay with the record after them. -1 if none.
// Quote parity is the csv reader's state only while the rows are well
// formed, and a worker stops at the first row that is not.
func cutRecords(b []byte) int {
	quotes := bytes.Count(b, []byte{'"'})
	end := len(b)
	for {
		i := bytes.LastIndexByte(b[:end], '\n')
		if i < 0 {
			return -1
		}
		quotes -= bytes.Count(b[i+1:end], []byte{'"'})
		blank := i == 0 || b[i-1] == '\n' || b[i-1] == '\r' && (i == 1 || b[i-2] == '\n')
		if quotes%2 == 0 && !blank {
			return i + 1
		}
		end = i
	}
}

func (s *scanner) work(w *scanWorker) {
	defer s.wg.Done()
	defer func() {
		if s.live.Add(-1) == 0 {
			close(s.results)
		}
	}()
	for c := range s.jobs {
		r := chunkResult{chunk: c}
		if w.rows {
			// A chunk's rows without their agency column: fewer bytes than the chunk.
			select {
			case e := <-s.freeRows:
				r.copied, r.spans = e.copied, e.spans
			default:
				r.copied = make([]byte, 0, len(c.buf))
			}
		}
		if !c.open && int64(c.seq) <= s.failed.Load() {
			w.scan(&r)
			if r.fail == nil && c.err != nil {
				r.fail = c.err
			}
			for r.fail != nil {
				failed := s.failed.Load()
				if int64(c.seq) >= failed || s.failed.CompareAndSwap(failed, int64(c.seq)) {
					break
				}
			}
		}
		select {
		case s.results <- r:
		case <-s.done:
			return
		}
	}
}

// scanWorker checks chunks and counts their rows per agency.
type scanWorker struct {
	check  func(Bet) error
	date   int            // ScanOptions.Now as YYYYMMDD; 0 checks no row rules
	rows   bool           // copy each row, without its agency column, for ScanOptions.Hash
	counts []uint64       // rows per agency, for agencies below len(counts)
	more   map[int]uint64 // rows of the other agencies
	sr     strings.Reader
	br     *bufio.Reader // reads sr for csv
}

func newScanWorker(opts ScanOptions) *scanWorker {
	w := &scanWorker{check: opts.Check, rows: opts.Hash != nil, counts: make([]uint64, 1024), more: map[int]uint64{}}
	if !opts.Now.IsZero() {
		w.date = today(opts.Now)
	}
	w.br = bufio.NewReader(&w.sr)
	return w
}

// checkPlain checks b, read in place from a row without quotes (row, after
// its agency column), with the row rules if asked and then the caller's.
func (w *scanWorker) checkPlain(b Bet, row string) error {
	if w.date != 0 {
		if _, _, _, ok := fastRow(row, w.date); !ok || b.Agency < 1 {
			_, comma, _, _, ctl, high := splitRow(row) // four commas: plainRow read six fields
			if err := b.checkPlain(plainLine(row[:comma[1]], ctl, high), w.date); err != nil {
				return err
			}
		}
	}
	if w.check != nil {
		return w.check(b)
	}
	return nil
}

// count counts b, whose row (without the agency column and the LF) is row
// as it was read, or "" if it was read by csv: AppendRow then writes it.
func (w *scanWorker) count(b Bet, row string, r *chunkResult) {
	if uint(b.Agency) < uint(len(w.counts)) {
		w.counts[b.Agency]++
	} else {
		w.more[b.Agency]++
	}
	r.rows++
	if w.rows {
		if row != "" {
			r.copied = append(append(r.copied, row...), '\n')
		} else {
			r.copied = AppendRow(r.copied, b)
		}
		if n := len(r.spans); n > 0 && r.spans[n-1].agency == b.Agency {
			r.spans[n-1].end = len(r.copied)
		} else {
			r.spans = append(r.spans, span{b.Agency, len(r.copied)})
		}
	}
	if HasWon(b) {
		r.winners = append(r.winners, winner{b.Agency, strings.Clone(b.Document)})
	}
}

// scan checks r's chunk line by line: a line without '"' or '\r' is read in
// place; any other, with the blank lines before it and the lines its quotes
// span, goes through readCSV, which also says what is wrong with a plain line
// that plainRow refuses.
func (w *scanWorker) scan(r *chunkResult) {
	// The chunk outlives every string made from s but the winners, which are copies.
	s := unsafe.String(unsafe.SliceData(r.buf), len(r.buf))
	pos, line := 0, 0 // line counts the newlines before pos
	blank, blankLine := -1, 0
	quote, cr := -1, -1 // the next '"' and '\r' at or after pos, or len(s)
	for pos < len(s) {
		if quote < pos {
			quote = indexFrom(s, pos, '"')
		}
		if cr < pos {
			cr = indexFrom(s, pos, '\r')
		}
		end, commas, fields := splitLine(r.buf, pos)
		if l := s[pos:end]; l == "" || l == "\r" {
			if blank < 0 {
				blank, blankLine = pos, line
			}
			if pos = end + 1; end < len(s) {
				line++
			}
			continue
		}
		if blank < 0 && fields == len(storeColumns) && end < quote && end < cr {
			if b, ok := plainRow(s, pos, end, &commas); ok {
				if err := w.checkPlain(b, s[commas[0]+1:end]); err != nil {
					r.fail, r.failLine = err, line+1
					return
				}
				w.count(b, s[commas[0]+1:end], r)
				pos = end + 1
				line++
				continue
			}
		}
		start, startLine := pos, line
		if blank >= 0 {
			start, startLine = blank, blankLine
		}
		// A record runs on while its quotes are open.
		for quotes := strings.Count(s[pos:end], `"`); quotes%2 == 1 && end < len(s); {
			pos = end + 1
			line++
			end = indexFrom(s, pos, '\n')
			quotes += strings.Count(s[pos:end], `"`)
		}
		pos = end + 1
		line++
		if end == len(s) {
			pos, line = len(s), line-1
		}
		w.sr.Reset(s[start:pos])
		w.br.Reset(&w.sr)
		if w.readCSV(w.br, startLine, r); r.fail != nil {
			return
		}
		blank = -1
	}
	r.lines = line
	if blank >= 0 {
		// Only the file's last chunk ends on a blank line (see cutRecords).
		r.fail, r.failLine, r.failByRows = fmt.Errorf("%w: a blank line", ErrNotCanonical), int(r.rows)+1, true
	}
}

// indexFrom is the index of c in s at or after from, or len(s).
func indexFrom(s string, from int, c byte) int {
	if i := strings.IndexByte(s[from:], c); i >= 0 {
		return from + i
	}
	return len(s)
}

// readCSV reads records from br with encoding/csv and checks each as a row
// read in place is checked, and its exact bytes (canonicalRow), starting
// startLine lines into r's chunk: the rare rows with quotes, carriage returns
// or anything else unusual, or the rest of the file.
func (w *scanWorker) readCSV(br *bufio.Reader, startLine int, r *chunkResult) {
	cr := csv.NewReader(br) // adopts br rather than wrapping it
	cr.FieldsPerRecord = len(storeColumns)
	cr.ReuseRecord = true
	var end int64
	for {
		rec, err := cr.Read()
		if err == io.EOF {
			if cr.InputOffset() != end {
				r.fail, r.failLine, r.failByRows = fmt.Errorf("%w: a blank line", ErrNotCanonical), int(r.rows)+1, true
			}
			return
		}
		if err != nil {
			line, cause := csvError(err, rec, len(storeColumns))
			if line > 0 {
				line += startLine
			}
			r.fail, r.failLine = cause, line
			return
		}
		b, err := parseStoreRecord(rec)
		if err == nil && w.date != 0 {
			_, err = b.check(w.date) // canonicalRow below checks the quoting
		}
		if err == nil && w.check != nil {
			err = w.check(b)
		}
		if err == nil {
			err = canonicalRow(cr, rec, cr.InputOffset()-end)
		}
		if err != nil {
			line, _ := cr.FieldPos(0)
			r.fail, r.failLine = err, startLine+line
			return
		}
		end = cr.InputOffset()
		w.count(b, "", r)
	}
}

// splitLine finds the line at b[pos:]: its end (its newline, or len(b)),
// the first commas in it and how many fields they make. Eight bytes at a time:
// fields are a few bytes long, too short for a call per field to pay off.
func splitLine(b []byte, pos int) (end int, commas [len(storeColumns) - 1]int, fields int) {
	const ones, low7 = 0x0101010101010101, 0x7f7f7f7f7f7f7f7f
	fields = 1
	i := pos
	for ; i+8 <= len(b); i += 8 {
		w := binary.LittleEndian.Uint64(b[i:])
		// The top bit of each byte that is ',' or '\n' (exact, no carries between bytes).
		c, n := w^(','*ones), w^('\n'*ones)
		m := ^((c&low7 + low7) | c | low7) | ^((n&low7 + low7) | n | low7)
		for ; m != 0; m &= m - 1 {
			j := i + bits.TrailingZeros64(m)>>3
			if b[j] == '\n' {
				return j, commas, fields
			}
			if fields < len(storeColumns) {
				commas[fields-1] = j
			}
			fields++
		}
	}
	for ; i < len(b); i++ {
		switch b[i] {
		case '\n':
			return i, commas, fields
		case ',':
			if fields < len(storeColumns) {
				commas[fields-1] = i
			}
			fields++
		}
	}
	return len(b), commas, fields
}

// plainRow reads the line s[pos:end], six fields split at commas and no '"',
// '\r' or '\n', as its bet if it is exactly what the store writes for it;
// false sends it to readCSV, which says what is wrong.
func plainRow(s string, pos, end int, commas *[len(storeColumns) - 1]int) (Bet, bool) {
	agency, ok := decimal(s[pos:commas[0]])
	number, ok2 := decimal(s[commas[4]+1 : end])
	first, last, doc, birth := s[commas[0]+1:commas[1]], s[commas[1]+1:commas[2]], s[commas[2]+1:commas[3]], s[commas[3]+1:commas[4]]
	if !ok || !ok2 || quotedStart(first) || quotedStart(last) || quotedStart(doc) || quotedStart(birth) {
		return Bet{}, false
	}
	return Bet{Agency: agency, FirstName: first, LastName: last, Document: doc, Birthdate: birth, Number: number}, true
}
