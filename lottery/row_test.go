package lottery

import (
	"bytes"
	"encoding/csv"
	"errors"
	"fmt"
	"io"
	"iter"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// csvFieldsRow is b's row as encoding/csv's Writer writes it, without the
// agency column: what AppendRow must write, worked out apart from it.
func csvFieldsRow(t testing.TB, b Bet) string {
	t.Helper()
	var w strings.Builder
	cw := csv.NewWriter(&w)
	require.NoError(t, cw.Write([]string{b.FirstName, b.LastName, b.Document, b.Birthdate, strconv.Itoa(b.Number)}))
	cw.Flush()
	require.NoError(t, cw.Error())
	return w.String()
}

// AppendRow writes csv.Writer's row for any bet, valid or not, after what
// dst holds.
func TestAppendRow(t *testing.T) {
	tests := []struct {
		name string
		bet  Bet
		want string // "" when only csv.Writer says
	}{
		{"plain", goodBet(), "Santiago Lionel,Lorca,30904465,1999-03-17,2201\n"},
		{"comma and doubled quote", trickyBets()[1], `"Pérez, Juan","O""Higgins",1,1900-01-01,0` + "\n"},
		{"leading space and a quoted name", trickyBets()[2], `" Iñaki","""Ñandú""",1234567890,2000-02-29,7574` + "\n"},
		{"backslash-dot", trickyBets()[3], `"\.",Zoé Ávila,007,1970-01-01,9999` + "\n"},
		{"leading no-break space", Bet{FirstName: "\u00a0Eva", LastName: "Paz", Document: "1", Birthdate: "2000-01-01", Number: 1}, ""},
		{"leading tab", Bet{FirstName: "\tEva", LastName: "Paz", Document: "1", Birthdate: "2000-01-01", Number: 1}, ""},
		{"empty fields", Bet{}, ",,,,0\n"},
		{"LF and CR in names", Bet{FirstName: "A\nna", LastName: "Pa\rz", Document: "1", Birthdate: "2000-01-01", Number: 1}, "\"A\nna\",\"Pa\rz\",1,2000-01-01,1\n"},
		{"a document and birthdate csv quotes", Bet{FirstName: "Ana", LastName: "Paz", Document: "1,2", Birthdate: ` 2000`, Number: 1}, ""},
		{"invalid UTF-8", Bet{FirstName: "An\xffa", LastName: "\xc2", Document: "x", Birthdate: "y", Number: 1}, ""},
		{"negative number", Bet{FirstName: "Ana", LastName: "Paz", Document: "1", Birthdate: "2000-01-01", Number: -1}, "Ana,Paz,1,2000-01-01,-1\n"},
		{"number past 9999", Bet{FirstName: "Ana", LastName: "Paz", Document: "1", Birthdate: "2000-01-01", Number: 70000}, "Ana,Paz,1,2000-01-01,70000\n"},
		{"the agency is not in it", Bet{Agency: 42, FirstName: "Ana", LastName: "Paz", Document: "1", Birthdate: "2000-01-01", Number: 1}, "Ana,Paz,1,2000-01-01,1\n"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			want := csvFieldsRow(t, tt.bet)
			if tt.want != "" {
				require.Equal(t, tt.want, want, "the case's expectation is csv.Writer's")
			}
			assert.Equal(t, want, string(AppendRow(nil, tt.bet)))
			assert.Equal(t, "prefix|"+want, string(AppendRow([]byte("prefix|"), tt.bet)), "appends to dst")
		})
	}
}

// rowsOf is the rows of bets, each as csv.Writer writes it, one after another.
func rowsOf(t testing.TB, bets ...Bet) []byte {
	t.Helper()
	var rows []byte
	for _, b := range bets {
		rows = append(rows, csvFieldsRow(t, b)...)
	}
	return rows
}

// addAll is what Rows.Add writes for bets, all of agency: the store's rows.
func addAll(t testing.TB, agency int, bets []Bet) string {
	t.Helper()
	var r Rows
	for _, b := range bets {
		b.Agency = agency
		require.NoError(t, r.Add(b, rowsNow))
	}
	return string(r.buf)
}

// AddBatch takes rows written as csv.Writer writes valid bets, and appends
// them as the store writes them: byte for byte Rows.Add's rows for the same
// bets. It returns the winners' documents, in order.
func TestAddBatch(t *testing.T) {
	bet := func(first, last string, number int) Bet {
		return Bet{FirstName: first, LastName: last, Document: "30904465", Birthdate: "1999-03-17", Number: number}
	}
	tests := []struct {
		name    string
		rows    string // "" when made from bets
		bets    []Bet
		winners []string
	}{
		{"one plain row", "Ana,Lorca,30904465,1999-03-17,42\n", []Bet{bet("Ana", "Lorca", 42)}, nil},
		{"a quoted name with a comma", `"Pérez, Juan",Lorca,30904465,1999-03-17,42` + "\n", []Bet{bet("Pérez, Juan", "Lorca", 42)}, nil},
		{"a doubled quote", `Ana,"O""Higgins",30904465,1999-03-17,42` + "\n", []Bet{bet("Ana", `O"Higgins`, 42)}, nil},
		{"a name only of quotes", `"""""",Lorca,30904465,1999-03-17,42` + "\n", []Bet{bet(`""`, "Lorca", 42)}, nil},
		{"non-ASCII names", "Iñaki Ángel,Núñez Agüero,30904465,1999-03-17,42\nZoé,Ñandú,30904465,1999-03-17,42\n",
			[]Bet{bet("Iñaki Ángel", "Núñez Agüero", 42), bet("Zoé", "Ñandú", 42)}, nil},
		{"a leading space, quoted", `" Iñaki",Lorca,30904465,1999-03-17,42` + "\n", []Bet{bet(" Iñaki", "Lorca", 42)}, nil},
		{"a leading no-break space, quoted", "\"\u00a0Eva\",Lorca,30904465,1999-03-17,42\n", []Bet{bet("\u00a0Eva", "Lorca", 42)}, nil},
		{"backslash-dot, quoted", `"\.",Lorca,30904465,1999-03-17,42` + "\n", []Bet{bet(`\.`, "Lorca", 42)}, nil},
		{"a trailing space is not quoted", "Ana ,Lorca ,30904465,1999-03-17,42\n", []Bet{bet("Ana ", "Lorca ", 42)}, nil},
		{"number 0", "Ana,Lorca,30904465,1999-03-17,0\n", []Bet{bet("Ana", "Lorca", 0)}, nil},
		{"the extremes", "A,B,1234567890,1900-01-01,9999\nA,B,0,2026-12-03,1\n", []Bet{
			{FirstName: "A", LastName: "B", Document: "1234567890", Birthdate: "1900-01-01", Number: 9999},
			{FirstName: "A", LastName: "B", Document: "0", Birthdate: "2026-12-03", Number: 1},
		}, nil},
		{"winners among others", "", []Bet{
			{FirstName: "Ana", LastName: "Paz", Document: "1", Birthdate: "2000-01-01", Number: WinningNumber},
			bet("Luis", "Gómez", 12),
			{FirstName: "Pérez, Juan", LastName: `O"Higgins`, Document: "007", Birthdate: "2000-02-29", Number: WinningNumber},
		}, []string{"1", "007"}},
		{"the tricky bets", "", trickyBets(), []string{"1234567890"}},
		{"a batch of 140", "", randomValidBets(rand.New(rand.NewPCG(1, 2)), 140), nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rows := rowsOf(t, tt.bets...)
			if tt.rows != "" {
				require.Equal(t, tt.rows, string(rows), "the case's rows are csv.Writer's")
			}
			var wantWinners []string
			for _, b := range tt.bets {
				if HasWon(b) {
					wantWinners = append(wantWinners, b.Document)
				}
			}
			if tt.winners != nil {
				require.Equal(t, tt.winners, wantWinners)
			}

			var r Rows
			require.NoError(t, r.Add(goodBet(), rowsNow)) // rows already there stay
			before := string(r.buf)
			winners, bad, err := r.AddBatch(7, rows, rowsNow)
			require.NoError(t, err)
			assert.Zero(t, bad)
			assert.Equal(t, wantWinners, winners)
			assert.Equal(t, 1+len(tt.bets), r.Len())
			assert.Equal(t, before+addAll(t, 7, tt.bets), string(r.buf), "Rows.Add's rows")
			var want strings.Builder
			for line := range strings.Lines(string(rows)) {
				want.WriteString("7," + line)
			}
			assert.Equal(t, before+want.String(), string(r.buf), "the agency column, then the row as it came")
		})
	}
}

// randomValidBets are randomBets' bets with the agency left out; all valid.
func randomValidBets(r *rand.Rand, n int) []Bet {
	bets := randomBets(r, n)
	for i := range bets {
		bets[i].Agency = 0
	}
	return bets
}

// AddBatch agrees with Rows.Add batch after batch, agency after agency, and
// its winners are copies: the rows it read may change after it returns.
func TestAddBatchMatchesRowsAdd(t *testing.T) {
	rng := rand.New(rand.NewPCG(7, 8))
	var got, want Rows
	var gotWinners, wantWinners []string
	for i := range 50 {
		agency := 1 + i%7
		if i%11 == 0 {
			agency = 12345
		}
		bets := randomValidBets(rng, 1+rng.IntN(200))
		rows := rowsOf(t, bets...)
		winners, bad, err := got.AddBatch(agency, rows, rowsNow)
		require.NoError(t, err, "batch %d", i)
		require.Zero(t, bad)
		gotWinners = append(gotWinners, winners...)
		clear(rows) // the winners and the rows gathered are the Rows' own
		for _, b := range bets {
			b.Agency = agency
			require.NoError(t, want.Add(b, rowsNow))
			if HasWon(b) {
				wantWinners = append(wantWinners, b.Document)
			}
		}
	}
	assert.Equal(t, want.Len(), got.Len())
	assert.Equal(t, string(want.buf), string(got.buf))
	require.NotEmpty(t, wantWinners)
	assert.Equal(t, wantWinners, gotWinners)

	// And the store's file is what LoadBets reads back as those bets.
	path := filepath.Join(t.TempDir(), "bets.csv")
	s, err := OpenStore(path)
	require.NoError(t, err)
	require.NoError(t, s.StoreRows(&got))
	require.NoError(t, s.Close())
	stored, err := os.ReadFile(path)
	require.NoError(t, err)
	assert.Equal(t, string(want.buf), string(stored))
}

// A row that is not a valid bet written as csv.Writer writes it refuses the
// whole batch: nothing appended, the first bad row's index, and which field
// is wrong and why.
func TestAddBatchRefuses(t *testing.T) {
	const (
		good       = "Ana,Lorca,30904465,1999-03-17,42\n"
		notQuoted  = "must be quoted, as csv writes it"
		needless   = "quoted, but csv writes it without quotes"
		notNumber  = "not written as a decimal number 0..9999 without sign or leading zero"
		moreFields = "followed by more fields: a row has 5"
	)
	tests := []struct {
		name   string
		agency int // 7 when 0
		row    string
		field  string
		reason string
	}{
		{"four fields", 0, "Ana,Lorca,30904465,1999-03-17\n", "number", "missing: a row has 5 fields, this one 4"},
		{"two fields", 0, "Ana,Lorca\n", "document", "missing: a row has 5 fields, this one 2"},
		{"six fields", 0, "Ana,Lorca,30904465,1999-03-17,42,x\n", "number", moreFields},
		{"six fields, the last quoted", 0, `Ana,Lorca,30904465,1999-03-17,"42",x` + "\n", "number", moreFields},
		{"a trailing comma", 0, "Ana,Lorca,30904465,1999-03-17,42,\n", "number", moreFields},
		{"ten fields", 0, "Ana,Lorca,30904465,1999-03-17,42,,,,,\n", "number", moreFields},
		{"an empty line", 0, "\n", "last_name", "missing: a row has 5 fields, this one 1"},
		{"a CRLF line ending", 0, "Ana,Lorca,30904465,1999-03-17,42\r\n", "number", notNumber},
		{"needless quotes on a name", 0, `"Ana",Lorca,30904465,1999-03-17,42` + "\n", "first_name", needless},
		{"needless quotes on the last name", 0, `Ana,"Lorca",30904465,1999-03-17,42` + "\n", "last_name", needless},
		{"needless quotes on the document", 0, `Ana,Lorca,"30904465",1999-03-17,42` + "\n", "document", needless},
		{"needless quotes on the birthdate", 0, `Ana,Lorca,30904465,"1999-03-17",42` + "\n", "birthdate", needless},
		{"needless quotes on the number", 0, `Ana,Lorca,30904465,1999-03-17,"42"` + "\n", "number", needless},
		{"an unquoted name starting with a space", 0, " Ana,Lorca,30904465,1999-03-17,42\n", "first_name", notQuoted},
		{"an unquoted name starting with a no-break space", 0, "Ana,\u00a0Lorca,30904465,1999-03-17,42\n", "last_name", notQuoted},
		{"an unquoted backslash-dot", 0, `\.,Lorca,30904465,1999-03-17,42` + "\n", "first_name", notQuoted},
		{"a bare quote in an unquoted field", 0, `An"a,Lorca,30904465,1999-03-17,42` + "\n", "first_name", `holds a '"' but is not quoted`},
		{"a bare quote in the number", 0, `Ana,Lorca,30904465,1999-03-17,4"2` + "\n", "number", `holds a '"' but is not quoted`},
		{"an unterminated quote", 0, `"Ana,Lorca,30904465,1999-03-17,42` + "\n", "first_name", "its quote is not closed"},
		{"text after a closing quote", 0, `"Ana"x,Lorca,30904465,1999-03-17,42` + "\n", "first_name", "text after its closing quote"},
		{"an inner quote not doubled", 0, `Ana,"O"Higgins",30904465,1999-03-17,42` + "\n", "last_name", "text after its closing quote"},
		{"number 07574", 0, "Ana,Lorca,30904465,1999-03-17,07574\n", "number", notNumber},
		{"number 00", 0, "Ana,Lorca,30904465,1999-03-17,00\n", "number", notNumber},
		{"number +1", 0, "Ana,Lorca,30904465,1999-03-17,+1\n", "number", notNumber},
		{"number -1", 0, "Ana,Lorca,30904465,1999-03-17,-1\n", "number", notNumber},
		{"number 10000", 0, "Ana,Lorca,30904465,1999-03-17,10000\n", "number", "out of range 0..9999"},
		{"number of ten digits", 0, "Ana,Lorca,30904465,1999-03-17,1000000000\n", "number", notNumber},
		{"an empty number", 0, "Ana,Lorca,30904465,1999-03-17,\n", "number", notNumber},
		{"a number with a space", 0, "Ana,Lorca,30904465,1999-03-17, 42\n", "number", notNumber},
		{"a control character", 0, "An\ta,Lorca,30904465,1999-03-17,42\n", "first_name", "contains a control character"},
		{"a NUL", 0, "Ana,Lor\x00ca,30904465,1999-03-17,42\n", "last_name", "contains a control character"},
		{"a C1 control character", 0, "Ana,Lor\u0085ca,30904465,1999-03-17,42\n", "last_name", "contains a control character"},
		{"a quoted CR", 0, "\"An\ra\",Lorca,30904465,1999-03-17,42\n", "first_name", "contains a control character"},
		{"invalid UTF-8", 0, "An\xffa,Lorca,30904465,1999-03-17,42\n", "first_name", "not valid UTF-8"},
		{"a blank name", 0, " ,Lorca,30904465,1999-03-17,42\n", "first_name", "empty"},
		{"an empty name", 0, "Ana,,30904465,1999-03-17,42\n", "last_name", "empty"},
		{"a name too long", 0, strings.Repeat("a", MaxNameLen+1) + ",Lorca,30904465,1999-03-17,42\n", "first_name", "longer than 100 bytes"},
		{"a document with a letter", 0, "Ana,Lorca,3090446x,1999-03-17,42\n", "document", "not only digits"},
		{"a quoted document with a comma", 0, `Ana,Lorca,"3090,4465",1999-03-17,42` + "\n", "document", "not only digits"},
		{"a future birthdate", 0, "Ana,Lorca,30904465,2026-12-04,42\n", "birthdate", "in the future"},
		{"a birthdate that is no date", 0, "Ana,Lorca,30904465,1999-02-30,42\n", "birthdate", "not a date in YYYY-MM-DD"},
		{"a birthdate before 1900", 0, "Ana,Lorca,30904465,1899-12-31,42\n", "birthdate", "before 1900"},
		{"agency 0", -1, good, "agency", "must be at least 1"},
	}
	for _, tt := range tests {
		for _, at := range []int{0, 2} {
			t.Run(fmt.Sprintf("%s/at %d", tt.name, at), func(t *testing.T) {
				agency, index := 7, at
				if tt.agency != 0 {
					agency, index = max(tt.agency, 0), 0 // every row is bad
				}
				rows := []byte(strings.Repeat(good, at) + tt.row + good)
				var r Rows
				require.NoError(t, r.Add(goodBet(), rowsNow))
				before := string(r.buf)
				winners, bad, err := r.AddBatch(agency, rows, rowsNow)
				require.ErrorIs(t, err, ErrInvalidBet)
				var fe *FieldError
				require.ErrorAs(t, err, &fe)
				assert.Equal(t, tt.field, fe.Field, "%v", err)
				assert.Equal(t, tt.reason, fe.Reason)
				assert.Equal(t, index, bad, "the bad row's index")
				assert.Nil(t, winners)
				assert.Equal(t, 1, r.Len(), "nothing appended")
				assert.Equal(t, before, string(r.buf), "nothing appended")
				if agency > 0 {
					_, err := csvBet(tt.row)
					assert.Error(t, err, "the case is a canonical and valid row")
				}
			})
		}
	}
}

// After a refused batch the Rows take the next one as if nothing happened.
func TestAddBatchAfterRefusal(t *testing.T) {
	var r Rows
	_, bad, err := r.AddBatch(3, []byte("Ana,Lorca,1,1999-03-17,7574\nAna,Lorca,2,1999-03-17,07574\n"), rowsNow)
	require.Error(t, err)
	assert.Equal(t, 1, bad)
	winners, _, err := r.AddBatch(4, []byte("Ana,Lorca,3,1999-03-17,7574\n"), rowsNow)
	require.NoError(t, err)
	assert.Equal(t, []string{"3"}, winners)
	assert.Equal(t, "4,Ana,Lorca,3,1999-03-17,7574\n", string(r.buf))
	assert.Equal(t, 1, r.Len())

	winners, bad, err = r.AddBatch(4, nil, rowsNow)
	require.NoError(t, err, "no rows: nothing to refuse")
	assert.Zero(t, bad)
	assert.Empty(t, winners)
	assert.Equal(t, 1, r.Len())
}

// csvBet reads row, one LF-terminated row, as encoding/csv reads it, apart
// from AddBatch: the bet it holds if it is a valid bet (agency 7) written
// exactly as AppendRow writes it, else why not.
func csvBet(row string) (Bet, error) {
	cr := csv.NewReader(strings.NewReader(row))
	rec, err := cr.Read()
	if err != nil {
		return Bet{}, err
	}
	if _, err := cr.Read(); err != io.EOF {
		return Bet{}, fmt.Errorf("more than one record: %v", err)
	}
	if len(rec) != 5 {
		return Bet{}, fmt.Errorf("%d fields", len(rec))
	}
	number, err := strconv.Atoi(rec[4])
	if err != nil {
		return Bet{}, err
	}
	b := Bet{Agency: 7, FirstName: rec[0], LastName: rec[1], Document: rec[2], Birthdate: rec[3], Number: number}
	if err := b.Validate(rowsNow); err != nil {
		return Bet{}, err
	}
	if canonical := string(AppendRow(nil, b)); canonical != row {
		return Bet{}, fmt.Errorf("written %q, not %q", row, canonical)
	}
	return b, nil
}

// AddBatch takes a batch exactly when each of its rows is a valid bet
// written as AppendRow writes it (read back by encoding/csv); it refuses at
// the first row that is not, appending nothing.
func FuzzAddBatch(f *testing.F) {
	for _, s := range []string{
		"Ana,Lorca,30904465,1999-03-17,42\n",
		"Ana,Lorca,30904465,1999-03-17,7574\nLuis,Gómez,1,1980-05-06,0\n",
		`"Pérez, Juan","O""Higgins",1,1900-01-01,0` + "\n",
		`" Iñaki","""Ñandú""",1234567890,2000-02-29,7574` + "\n",
		`"\.",Zoé Ávila,007,1970-01-01,9999` + "\n",
		"\"\u00a0Eva\",Lorca,1,1999-03-17,1\n",
		"\u00a0Eva,Lorca,1,1999-03-17,1\n",
		`"Ana",Lorca,1,1999-03-17,1` + "\n",
		`Ana,Lorca,"1",1999-03-17,1` + "\n",
		`Ana,Lorca,1,1999-03-17,"1"` + "\n",
		`Ana,Lorca,1,1999-03-17,"1",x` + "\n",
		"Ana,Lorca,1,1999-03-17,1,x\n",
		"Ana,Lorca,1,1999-03-17\n",
		"\n",
		"\n\n",
		",,,,\n",
		" Ana,Lorca,1,1999-03-17,1\n",
		`An"a,Lorca,1,1999-03-17,1` + "\n",
		`"Ana,Lorca,1,1999-03-17,1` + "\n",
		`"Ana"x,Lorca,1,1999-03-17,1` + "\n",
		`"A""na",Lorca,1,1999-03-17,1` + "\n",
		`"A"""na",Lorca,1,1999-03-17,1` + "\n",
		"Ana,Lorca,1,1999-03-17,07574\n",
		"Ana,Lorca,1,1999-03-17,+1\n",
		"Ana,Lorca,1,1999-03-17,-1\n",
		"Ana,Lorca,1,1999-03-17,10000\n",
		"Ana,Lorca,1,1999-03-17,\n",
		"Ana,Lorca,1,1999-03-17,1\r\n",
		"An\ta,Lorca,1,1999-03-17,1\n",
		"\"An\ra\",Lorca,1,1999-03-17,1\n",
		"An\xffa,Lorca,1,1999-03-17,1\n",
		"Ana,Lorca,1,2026-12-04,1\n",
		"Ana,Lorca,1,2026-12-03,1\n",
		"Ana,Lor\u0085ca,1,1999-03-17,1\n",
		"Ana,Lorca,1,1999-03-17,1\n\"\",Lorca,1,1999-03-17,1\n",
	} {
		f.Add([]byte(s), uint8(7))
	}
	f.Add([]byte("Ana,Lorca,1,1999-03-17,1\n"), uint8(0))
	f.Add([]byte(""), uint8(7))
	f.Fuzz(func(t *testing.T, data []byte, agency8 uint8) {
		agency := int(agency8 % 8) // 0 now and then: no bet is valid
		// BATCH's rows end in LF (protocol.BatchRows checks it).
		if len(data) > 0 && data[len(data)-1] != '\n' {
			data = append(data, '\n')
		}
		input := bytes.Clone(data)
		var r Rows
		require.NoError(t, r.Add(goodBet(), rowsNow))
		before := string(r.buf)
		winners, bad, err := r.AddBatch(agency, data, rowsNow)
		require.Equal(t, input, data, "AddBatch changed its input")

		// The reference: each row on its own, through encoding/csv.
		lines := slices.Collect(strings.Lines(string(data)))
		firstBad := -1
		var bets []Bet
		for i, line := range lines {
			b, rerr := csvBet(line)
			if rerr == nil && agency < 1 {
				rerr = errors.New("agency")
			}
			if rerr != nil {
				firstBad = i
				break
			}
			bets = append(bets, b)
		}

		if err != nil {
			var fe *FieldError
			require.ErrorAs(t, err, &fe)
			require.ErrorIs(t, err, ErrInvalidBet)
			require.Contains(t, storeColumns, fe.Field)
			require.NotEmpty(t, fe.Reason)
			require.Equal(t, firstBad, bad, "refused row %d (%v), but csv reads row %d as a bad one", bad, err, firstBad)
			require.Nil(t, winners)
			require.Equal(t, 1, r.Len())
			require.Equal(t, before, string(r.buf))
			// The bad row alone is refused the same way.
			var alone Rows
			_, bad1, err1 := alone.AddBatch(agency, []byte(lines[bad]), rowsNow)
			require.Zero(t, bad1)
			require.Equal(t, err, err1)
			return
		}
		if firstBad >= 0 {
			t.Fatalf("took row %d, which csv reads as no canonical valid bet: %q", firstBad, lines[firstBad])
		}
		require.Zero(t, bad)
		require.Equal(t, 1+len(lines), r.Len())
		var want []string
		for _, b := range bets {
			if HasWon(b) {
				want = append(want, b.Document)
			}
		}
		require.Equal(t, want, winners)
		require.Equal(t, before+addAll(t, agency, bets), string(r.buf), "Rows.Add's rows")
	})
}

// agencyFiles are agency files of every shape ReadAgencyRows meets: line
// endings, BOM, blank lines, quoted fields, fields csv must quote, numbers
// written otherwise.
var agencyFiles = []struct{ name, content string }{
	{"empty", ""},
	{"LF", "Ana,Paz,1,2000-01-01,5\nLuis,Gómez,2,1980-05-06,7574\n"},
	{"CRLF", "Ana,Paz,1,2000-01-01,5\r\nLuis,Gómez,2,1980-05-06,7574\r\n"},
	{"mixed endings", "Ana,Paz,1,2000-01-01,5\nLuis,Gómez,2,1980-05-06,7574\r\nEva,Ruiz,3,1990-01-01,0\n"},
	{"BOM", "\uFEFFAna,Paz,1,2000-01-01,5\r\n"},
	{"BOM only", "\uFEFF"},
	{"blank lines", "\r\n\nAna,Paz,1,2000-01-01,5\r\n\r\n\nLuis,Gómez,2,1980-05-06,7574\r\n\n\r\n"},
	{"only blank lines", "\n\r\n\n"},
	{"last line without newline", "Ana,Paz,1,2000-01-01,5\r\nLuis,Gómez,2,1980-05-06,7574"},
	{"last line ending in CR", "Ana,Paz,1,2000-01-01,5\r\nLuis,Gómez,2,1980-05-06,7574\r"},
	{"only line ending in CR", "Ana,Paz,1,2000-01-01,5\r"},
	{"quoted last line ending in CR", "Ana,Paz,1,2000-01-01,5\r\n\"Luis\",Gómez,2,1980-05-06,7574\r"},
	{"accents", "Iñaki Ángel,Núñez,30904465,1999-03-17,2201\r\nZoé,Agüero,1,2000-01-01,7574\r\n"},
	{"quoted fields", `"Pérez, Juan","O""Higgins",1,1900-01-01,0` + "\r\n" + "Ana,Paz,1,2000-01-01,5\r\n"},
	{"needless quotes", `"Ana","Paz","1","2000-01-01","5"` + "\r\nAna,Paz,1,2000-01-01,5\r\n"},
	{"quoted after plain lines", "Ana,Paz,1,2000-01-01,5\r\nAna,Paz,2,2000-01-01,6\r\n" + `"Ana",Paz,3,2000-01-01,7` + "\r\nAna,Paz,4,2000-01-01,8\r\n"},
	{"a leading space", "Ana, Paz,1,2000-01-01,5\r\nAna,Paz,2,2000-01-01,6\r\n"},
	{"a leading tab", "\tAna,Paz,1,2000-01-01,5\n"},
	{"a leading no-break space", "Ana,\u00a0Paz,1,2000-01-01,5\n"},
	{"a leading em space", "\u2003Ana,Paz,1,2000-01-01,5\n"},
	{"backslash-dot", `\.,Paz,1,2000-01-01,5` + "\n" + `\.x,Paz,1,2000-01-01,5` + "\n"},
	{"number 0012", "Ana,Paz,1,2000-01-01,0012\r\nAna,Paz,1,2000-01-01,12\r\n"},
	{"number 0", "Ana,Paz,1,2000-01-01,0\r\nAna,Paz,1,2000-01-01,00\r\n"},
	{"signed numbers", "Ana,Paz,1,2000-01-01,-5\r\nAna,Paz,1,2000-01-01,+5\r\n"},
	{"large numbers", "Ana,Paz,1,2000-01-01,123456789\nAna,Paz,1,2000-01-01,1234567890\nAna,Paz,1,2000-01-01,9223372036854775807\n"},
	{"a bare CR in a field", "An\ra,Paz,1,2000-01-01,5\r\nAna,Paz,1,2000-01-01,5\r\n"},
	{"a quoted line break", "\"An\r\na\",Paz,1,2000-01-01,5\r\nAna,Paz,1,2000-01-01,5\r\n"},
	{"empty fields", ",,,,0\r\n"},
	{"invalid bets still rows", "Ana,Paz,12a,2023-02-30,70000\r\n"},
	{"invalid UTF-8", "An\xffa,Paz,1,2000-01-01,5\n"},
	{"a line longer than the buffer", strings.Repeat("ñ", agencyReadSize) + ",Paz,1,2000-01-01,5\r\nAna,Paz,1,2000-01-01,5\r\n"},
	{"many plain lines then a quoted one", strings.Repeat("Ana,Paz,1,2000-01-01,5\r\n", 5000) + `"Ana, Eva",Paz,1,2000-01-01,5` + "\r\n" + strings.Repeat("Ana,Paz,1,2000-01-01,5\n", 100)},
}

// collectRows drains ReadAgencyRows, each row copied (a row is valid until
// the next one), and returns its first error.
func collectRows(t testing.TB, seq iter.Seq2[[]byte, error]) ([]string, error) {
	t.Helper()
	var rows []string
	var first error
	for row, err := range seq {
		if first != nil {
			t.Fatalf("got %q, %v after the error %v", row, err, first)
		}
		if err != nil {
			require.Nil(t, row)
			first = err
			continue
		}
		rows = append(rows, string(row))
	}
	return rows, first
}

// appendRows is AppendRow of each bet.
func appendRows(bets []Bet) []string {
	var rows []string
	for _, b := range bets {
		rows = append(rows, string(AppendRow(nil, b)))
	}
	return rows
}

// ReadAgencyRows gives, row for row, AppendRow of the bet ReadAgencyFile
// reads from the same line, and the error it gives, text for text.
func TestReadAgencyRows(t *testing.T) {
	for _, tt := range agencyFiles {
		t.Run(tt.name, func(t *testing.T) {
			path := writeTemp(t, "agency-1.csv", tt.content)
			bets, err := drain(t, ReadAgencyFile(path, 1))
			require.NoError(t, err)
			rows, err := collectRows(t, ReadAgencyRows(path))
			require.NoError(t, err)
			assert.Equal(t, appendRows(bets), rows)
			// And encoding/csv alone agrees.
			csvBets, err := drain(t, readAgencyFileCSV(path, 1))
			require.NoError(t, err)
			assert.Equal(t, appendRows(csvBets), rows)
		})
	}
}

// The rows ReadAgencyRows hands on as they are and those it reads with csv
// and writes again are the same: the lines of a file read after a line that
// sends the rest through csv give the rows they give on their own.
func TestReadAgencyRowsFastPathMatchesCSV(t *testing.T) {
	for _, tt := range agencyFiles {
		for _, first := range []string{
			`"Ana",Paz,1,2000-01-01,5` + "\r\n", // needless quotes
			"Ana,Paz,1,2000-01-01,05\n",         // a number written otherwise
			" Ana,Paz,1,2000-01-01,5\n",         // a field csv quotes
		} {
			t.Run(fmt.Sprintf("%s/after %q", tt.name, first), func(t *testing.T) {
				content := strings.TrimPrefix(tt.content, "\uFEFF")
				firstRows, err := collectRows(t, ReadAgencyRows(writeTemp(t, "first.csv", first)))
				require.NoError(t, err)
				require.Len(t, firstRows, 1)
				plain, err := collectRows(t, ReadAgencyRows(writeTemp(t, "plain.csv", content)))
				require.NoError(t, err)
				viaCSV, err := collectRows(t, ReadAgencyRows(writeTemp(t, "csv.csv", first+content)))
				require.NoError(t, err)
				assert.Equal(t, append(firstRows, plain...), viaCSV)
			})
		}
	}
}

// Plain lines are handed on as the file holds them, the LF kept; the rest
// are written again.
func TestReadAgencyRowsRewritesOnlyWhatIsNoRow(t *testing.T) {
	tests := []struct {
		name, content string
		want          []string
	}{
		{"plain lines as they are", "Ana,Paz,1,2000-01-01,5\nLuis,Gómez,2,1980-05-06,7574\n",
			[]string{"Ana,Paz,1,2000-01-01,5\n", "Luis,Gómez,2,1980-05-06,7574\n"}},
		{"CRLF to LF", "Ana,Paz,1,2000-01-01,5\r\n", []string{"Ana,Paz,1,2000-01-01,5\n"}},
		{"an LF added at the end", "Ana,Paz,1,2000-01-01,5", []string{"Ana,Paz,1,2000-01-01,5\n"}},
		{"needless quotes dropped", `"Ana",Paz,1,2000-01-01,"5"` + "\n", []string{"Ana,Paz,1,2000-01-01,5\n"}},
		{"quotes csv needs kept", `"Pérez, Juan","O""Higgins",1,1900-01-01,0` + "\n",
			[]string{`"Pérez, Juan","O""Higgins",1,1900-01-01,0` + "\n"}},
		{"a leading space quoted", "Ana, Paz,1,2000-01-01,5\n", []string{`Ana," Paz",1,2000-01-01,5` + "\n"}},
		{"backslash-dot quoted", `\.,Paz,1,2000-01-01,5` + "\n", []string{`"\.",Paz,1,2000-01-01,5` + "\n"}},
		{"number 0012", "Ana,Paz,1,2000-01-01,0012\n", []string{"Ana,Paz,1,2000-01-01,12\n"}},
		{"number +5", "Ana,Paz,1,2000-01-01,+5\n", []string{"Ana,Paz,1,2000-01-01,5\n"}},
		{"a bare CR quoted", "An\ra,Paz,1,2000-01-01,5\n", []string{"\"An\ra\",Paz,1,2000-01-01,5\n"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rows, err := collectRows(t, ReadAgencyRows(writeTemp(t, "agency-1.csv", tt.content)))
			require.NoError(t, err)
			assert.Equal(t, tt.want, rows)
		})
	}
}

// ReadAgencyRows' errors are ReadAgencyFile's: path:line, and the same
// cause; the rows before the error come first, none after.
func TestReadAgencyRowsErrors(t *testing.T) {
	const good = "Ana,Paz,1,2000-01-01,5\r\n"
	tests := []struct {
		name    string
		content string
		rows    int
		want    string // after "agency-1.csv:"
		is      error
	}{
		{"four fields", good + "Ana,Paz,1,2000-01-01\r\n", 1, "2: wrong number of fields: got 4, want 5", csv.ErrFieldCount},
		{"six fields", good + good + "1,Ana,Paz,1,2000-01-01,5\r\n", 2, "3: wrong number of fields: got 6, want 5", csv.ErrFieldCount},
		{"one field", "Ana\r\n", 0, "1: wrong number of fields: got 1, want 5", csv.ErrFieldCount},
		{"a blank-looking line of spaces", good + "   \r\n", 1, "2: wrong number of fields: got 1, want 5", csv.ErrFieldCount},
		{"a header row", "first_name,last_name,document,birthdate,number\r\n", 0, "1: number:", strconv.ErrSyntax},
		{"a non-integer number", good + good + good + "Ana,Paz,1,2000-01-01,7574x\r\n", 3, "4: number:", strconv.ErrSyntax},
		{"an empty number", good + "Ana,Paz,1,2000-01-01,\r\n", 1, "2: number:", strconv.ErrSyntax},
		{"a number out of range", "Ana,Paz,1,2000-01-01,99999999999999999999\r\n", 0, "1: number:", strconv.ErrRange},
		{"CR CR LF", good + "Ana,Paz,1,2000-01-01,5\r\r\n", 1, "2: number:", strconv.ErrSyntax},
		{"blank lines counted", "\r\n\n" + good + "\r\nAna,Paz\r\n", 1, "5: wrong number of fields: got 2, want 5", csv.ErrFieldCount},
		{"after a BOM", "\uFEFF" + good + "x\r\n", 1, "2: wrong number of fields: got 1, want 5", csv.ErrFieldCount},
		{"a bare quote", good + "An\"a,Paz,1,2000-01-01,5\r\n", 1, "2: column 3:", csv.ErrBareQuote},
		{"text after a quote", good + `"Ana"x,Paz,1,2000-01-01,5` + "\r\n", 1, "2: column 5:", csv.ErrQuote},
		{"an unterminated quote", good + good + `"Ana,Paz,1,2000-01-01,5` + "\r\n" + good, 2, "5: column 24:", csv.ErrQuote}, // csv names the last line read
		{"after a quoted line", good + `"Pérez, Juan",Paz,1,2000-01-01,5` + "\r\n\r\n" + good + "Ana,Paz,1,2000-01-01\r\n", 3, "5: wrong number of fields: got 4, want 5", csv.ErrFieldCount},
		{"a bad number after a quoted line", good + `"Ana",Paz,1,2000-01-01,5` + "\r\n" + good + "Ana,Paz,1,2000-01-01,x\r\n", 3, "4: number:", strconv.ErrSyntax},
		{"after a quoted line break", good + "\"An\r\na\",Paz,1,2000-01-01,5\r\nx\r\n", 2, "4: wrong number of fields: got 1, want 5", csv.ErrFieldCount},
		{"after a line longer than the buffer", good + strings.Repeat("ñ", agencyReadSize) + ",Paz,1,2000-01-01,5\r\nx\r\n", 2,
			"3: wrong number of fields: got 1, want 5", csv.ErrFieldCount},
		{"after many plain lines", strings.Repeat(good, 3000) + "Ana,Paz\r\n", 3000, "3001: wrong number of fields: got 2, want 5", csv.ErrFieldCount},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := writeTemp(t, "agency-1.csv", tt.content+good)
			rows, err := collectRows(t, ReadAgencyRows(path))
			require.Error(t, err)
			assert.ErrorIs(t, err, tt.is)
			assert.Contains(t, err.Error(), path+":"+tt.want)
			assert.Len(t, rows, tt.rows)
			bets, fileErr := drain(t, ReadAgencyFile(path, 1))
			require.Error(t, fileErr)
			assert.Equal(t, fileErr.Error(), err.Error(), "ReadAgencyFile's error")
			assert.Equal(t, appendRows(bets), rows)
		})
	}

	t.Run("a missing file", func(t *testing.T) {
		path := filepath.Join(t.TempDir(), "agency-9.csv")
		rows, err := collectRows(t, ReadAgencyRows(path))
		assert.Empty(t, rows)
		require.ErrorIs(t, err, os.ErrNotExist)
		_, fileErr := drain(t, ReadAgencyFile(path, 9))
		assert.Equal(t, fileErr.Error(), err.Error())
	})
	t.Run("a directory", func(t *testing.T) {
		dir := t.TempDir()
		_, err := collectRows(t, ReadAgencyRows(dir))
		require.Error(t, err)
		_, fileErr := drain(t, ReadAgencyFile(dir, 1))
		assert.Equal(t, fileErr.Error(), err.Error())
	})
}

// A loop that stops early stops the reading, on either path.
func TestReadAgencyRowsStopEarly(t *testing.T) {
	const good = "Ana,Paz,1,2000-01-01,5\r\n"
	tests := []struct{ name, content string }{
		{"plain", good + good + good},
		{"through csv", `"Ana",Paz,1,2000-01-01,5` + "\r\n" + good + good},
		{"switching to csv at the stop", good + `"Ana",Paz,1,2000-01-01,5` + "\r\n" + good},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := writeTemp(t, "agency-1.csv", tt.content)
			n := 0
			for row, err := range ReadAgencyRows(path) {
				require.NoError(t, err)
				assert.Equal(t, "Ana,Paz,1,2000-01-01,5\n", string(row))
				if n++; n == 2 {
					break // a yield after this would panic
				}
			}
			assert.Equal(t, 2, n)
		})
	}
}

// Every generated agency file is rows as they are, and each is AppendRow of
// its bet.
func TestReadAgencyRowsGenerated(t *testing.T) {
	paths, err := GenerateAgencyFiles(t.TempDir(), 3, 3000, 5)
	require.NoError(t, err)
	for _, path := range paths {
		bets, err := drain(t, ReadAgencyFile(path, 1))
		require.NoError(t, err)
		rows, err := collectRows(t, ReadAgencyRows(path))
		require.NoError(t, err)
		assert.Equal(t, appendRows(bets), rows)
		data, err := os.ReadFile(path)
		require.NoError(t, err)
		assert.Equal(t, strings.ReplaceAll(string(data), "\r\n", "\n"), strings.Join(rows, ""), "the lines as they are, in LF")
	}
}

// For any file, ReadAgencyRows and ReadAgencyFile agree: as many rows as
// bets, each row AppendRow of its bet, and the same error.
func FuzzReadAgencyRows(f *testing.F) {
	for _, tt := range agencyFiles {
		if len(tt.content) < 4096 {
			f.Add([]byte(tt.content))
		}
	}
	for _, s := range []string{
		"Ana,Paz,1,2000-01-01\r\n",
		"Ana,Paz,1,2000-01-01,5,\r\n",
		"Ana,Paz,1,2000-01-01,x\r\n",
		"Ana,Paz,1,2000-01-01,5\r\r\nAna\r,Paz,1,2000-01-01,5\r\n",
		"Ana,Paz,1,2000-01-01,5\r\n\"An\r\na\",Paz,1,2000-01-01,\"5\r\n\"\r\nx\r\n",
		"Ana,Paz,1,2000-01-01,5\r\nAn\"a,Paz,1,2000-01-01,5\r\n",
		"\"Ana\"x,Paz,1,2000-01-01,5\r\n",
		"Ana,Paz,1,2000-01-01,5\r\n\"Ana,Paz",
		"Ana,Paz,1,2000-01-01,5\rAna,Paz,1,2000-01-01,5\r",
		"\r\n\n\r\r\n\r",
		"   \r\n",
		"\uFEFF\uFEFFAna,Paz,1,2000-01-01,5\n",
		"Ana,Paz,1,2000-01-01,5\n\n\"\",Paz,1,2000-01-01,5\n\"\"\n",
		strings.Repeat("Ana,Paz,1,2000-01-01,5\n", 10) + "Ana,Paz,1,2000-01-01,+5\r\n\r\nAna,Paz,1,2000-01-01\r\n",
	} {
		f.Add([]byte(s))
	}
	dir := f.TempDir()
	var n int
	f.Fuzz(func(t *testing.T, data []byte) {
		n++
		path := filepath.Join(dir, fmt.Sprintf("agency-%d.csv", n))
		require.NoError(t, os.WriteFile(path, data, 0o644))
		defer os.Remove(path)
		bets, fileErr := drain(t, ReadAgencyFile(path, 1))
		rows, err := collectRows(t, ReadAgencyRows(path))
		require.Equal(t, appendRows(bets), rows)
		if fileErr == nil {
			require.NoError(t, err)
			return
		}
		require.Error(t, err)
		require.Equal(t, fileErr.Error(), err.Error())
	})
}

// FuzzAppendRow: AppendRow is csv.Writer's row for any bet.
func FuzzAppendRow(f *testing.F) {
	for _, b := range trickyBets() {
		f.Add(b.FirstName, b.LastName, b.Document, b.Birthdate, b.Number)
	}
	f.Add("\u2003Eva", "\n", "\r", `\.`, -1)
	f.Fuzz(func(t *testing.T, first, last, document, birthdate string, number int) {
		b := Bet{FirstName: first, LastName: last, Document: document, Birthdate: birthdate, Number: number}
		require.Equal(t, csvFieldsRow(t, b), string(AppendRow(nil, b)))
	})
}

// benchBatch is a batch of n generated rows, as an agency sends them.
func benchBatch(b *testing.B, n int) (rows []byte, bets []Bet) {
	b.Helper()
	paths, err := GenerateAgencyFiles(b.TempDir(), 1, n, 1)
	require.NoError(b, err)
	for row, err := range ReadAgencyRows(paths[0]) {
		require.NoError(b, err)
		rows = append(rows, row...)
	}
	bets, err = drain(b, ReadAgencyFile(paths[0], 1))
	require.NoError(b, err)
	return rows, bets
}

// BenchmarkAddBatch checks and gathers a batch of 140 rows as the central
// does (AddBatch), beside the same bets checked and formatted one by one
// (Rows.Add, what a central that parsed them first would still do).
func BenchmarkAddBatch(b *testing.B) {
	const n = 140
	rows, bets := benchBatch(b, n)
	now := time.Now()
	b.Run("AddBatch", func(b *testing.B) {
		var r Rows
		b.ReportAllocs()
		b.SetBytes(int64(len(rows)))
		for b.Loop() {
			r.Reset()
			if _, _, err := r.AddBatch(1, rows, now); err != nil {
				b.Fatal(err)
			}
		}
		b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*n), "ns/bet")
	})
	b.Run("Rows.Add", func(b *testing.B) {
		var r Rows
		b.ReportAllocs()
		b.SetBytes(int64(len(rows)))
		for b.Loop() {
			r.Reset()
			for _, bet := range bets {
				if err := r.Add(bet, now); err != nil {
					b.Fatal(err)
				}
			}
		}
		b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*n), "ns/bet")
	})
}

// BenchmarkAddBatchDistinct is BenchmarkAddBatch's AddBatch over 200
// batches of 140 different rows, taken in turn, as a central meets them:
// one batch again and again lets a branch predictor learn its rows by heart.
func BenchmarkAddBatchDistinct(b *testing.B) {
	const n, batches = 140, 200
	var all [][]byte
	lines := generatedLines(b, 1, n*batches, 1)
	for i := 0; i < len(lines); i += n {
		var rows []byte
		for _, line := range lines[i : i+n] {
			rows = append(append(rows, line...), '\n')
		}
		all = append(all, rows)
	}
	now := time.Now()
	var r Rows
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		r.Reset()
		if _, _, err := r.AddBatch(1, all[i], now); err != nil {
			b.Fatal(err)
		}
		i = (i + 1) % len(all)
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*n), "ns/bet")
}

// BenchmarkReadAgencyRows reads BenchmarkReadAgencyFile's file as rows: as
// they are (rows), through csv from the first line (csv: a file whose first
// line is quoted), and as bets then AppendRow (what ReadAgencyRows spares).
func BenchmarkReadAgencyRows(b *testing.B) {
	const n = 100_000
	paths, err := GenerateAgencyFiles(b.TempDir(), 1, n, 1)
	require.NoError(b, err)
	data, err := os.ReadFile(paths[0])
	require.NoError(b, err)
	first, _, _ := bytes.Cut(data, []byte("\r\n"))
	fields := strings.SplitN(string(first), ",", 2)
	quoted := filepath.Join(b.TempDir(), "quoted.csv")
	require.NoError(b, os.WriteFile(quoted, append([]byte(`"`+fields[0]+`",`+fields[1]+"\r\n"), data[len(first)+2:]...), 0o644))
	rows := func(path string) iter.Seq2[[]byte, error] { return ReadAgencyRows(path) }
	bets := func(path string) iter.Seq2[[]byte, error] {
		return func(yield func([]byte, error) bool) {
			var row []byte
			for bet, err := range ReadAgencyFile(path, 1) {
				if err != nil {
					yield(nil, err)
					return
				}
				row = AppendRow(row[:0], bet)
				if !yield(row, nil) {
					return
				}
			}
		}
	}
	for _, bm := range []struct {
		name string
		path string
		read func(string) iter.Seq2[[]byte, error]
	}{
		{"rows", paths[0], rows},
		{"csv", quoted, rows},
		{"bets+AppendRow", paths[0], bets},
	} {
		b.Run(bm.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				got := 0
				for _, err := range bm.read(bm.path) {
					if err != nil {
						b.Fatal(err)
					}
					got++
				}
				if got != n {
					b.Fatalf("read %d rows, want %d", got, n)
				}
			}
			b.ReportMetric(float64(n)*float64(b.N)/b.Elapsed().Seconds(), "bets/s")
		})
	}
}
