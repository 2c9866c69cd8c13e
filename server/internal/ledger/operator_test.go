package ledger

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"lotterycentral.example/lottery"
)

// readOperatorFile is the operator journal's content.
func readOperatorFile(t testing.TB, betsPath string) string {
	t.Helper()
	data, err := os.ReadFile(OperatorPath(betsPath))
	require.NoError(t, err)
	return string(data)
}

// operatorLines parses the operator journal, as Open does.
func operatorLines(t testing.TB, betsPath string) []opLine {
	t.Helper()
	var out []opLine
	for line := range strings.Lines(readOperatorFile(t, betsPath)) {
		require.True(t, strings.HasSuffix(line, "\n"), "a whole line: %q", line)
		e, err := parseOpLine(strings.TrimSuffix(line, "\n"))
		require.NoError(t, err)
		out = append(out, e)
	}
	return out
}

// exclude excludes agency a, requiring it to succeed with pending agencies left.
func exclude(t testing.TB, l *Ledger, a int, pending int) {
	t.Helper()
	got, err := l.Exclude(a, "host burned", "operator-ana")
	require.NoError(t, err, "exclude agency %d", a)
	require.Equal(t, pending, got, "agencies pending after excluding agency %d", a)
}

// An exclusion the ledger refuses journals nothing and changes nothing: an
// agency out of the round, a reason or operator the journal could not hold,
// an agency that finished or is already excluded, or the last agency that
// could still be drawn.
func TestExcludeRefused(t *testing.T) {
	tests := []struct {
		name     string
		prepare  func(t *testing.T, l *Ledger) // before the refused exclusion
		agency   int
		reason   string
		operator string
		want     error
	}{
		{"agency 0", nil, 0, "host burned", "operator-ana", ErrNoAgency},
		{"agency N+1", nil, 5, "host burned", "operator-ana", ErrNoAgency},
		{"a blank reason", nil, 2, "  ", "operator-ana", ErrInvalid},
		{"no operator", nil, 2, "host burned", "", ErrInvalid},
		{"a newline in the reason", nil, 2, "host burned\nagencia: 4", "operator-ana", ErrInvalid},
		{"a field separator in the reason", nil, 2, "host burned | agencia: 4", "operator-ana", ErrInvalid},
		{"an operator name longer than a Common Name", nil, 2, "host burned", strings.Repeat("a", 65), ErrInvalid},
		{"a reason that is not UTF-8", nil, 2, "host \xff burned", "operator-ana", ErrInvalid},
		{"an agency that finished", func(t *testing.T, l *Ledger) {
			_, err := l.Finish(1, 3)
			require.NoError(t, err)
		}, 1, "host burned", "operator-ana", ErrFinished},
		{"an agency already excluded", func(t *testing.T, l *Ledger) { exclude(t, l, 2, 3) }, 2, "again", "operator-bo", ErrExcluded},
		{"every agency", func(t *testing.T, l *Ledger) {
			exclude(t, l, 1, 3)
			exclude(t, l, 2, 2)
			exclude(t, l, 3, 1)
		}, 4, "host burned", "operator-ana", ErrLastAgency},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			l, path, _ := openTest(t, 4, nil)
			commitOne(t, l.Batches(1), agencyBetsFor(1, lottery.WinningNumber-1, 3))
			if tt.prepare != nil {
				tt.prepare(t, l)
			}
			before, journal := l.Round(), readOperatorFile(t, path)
			pending, err := l.Exclude(tt.agency, tt.reason, tt.operator)
			require.ErrorIs(t, err, tt.want)
			assert.ErrorContains(t, err, fmt.Sprintf("exclude agency %d: ", tt.agency))
			assert.Zero(t, pending)
			assert.Equal(t, before, l.Round(), "a refused exclusion changes no fact")
			assert.Equal(t, journal, readOperatorFile(t, path), "a refused exclusion journals nothing")
		})
	}
}

// An exclusion is journaled, then takes the agency out of the draw: its
// batches and FINISH are refused, its rows stay in the bets file but the
// round's bets and winners no longer count them, and it is no longer
// pending. With one agency finished, every other may be excluded: the draw
// may then run on the finished one.
func TestExclude(t *testing.T) {
	l, path, _ := openTest(t, 3, nil)
	one := agencyBetsFor(1, lottery.WinningNumber-1, 3) // its second bet wins
	two := agencyBetsFor(2, lottery.WinningNumber, 2)   // its first bet wins
	commitOne(t, l.Batches(1), one)
	commitOne(t, l.Batches(2), two)
	pending, err := l.Finish(1, 3)
	require.NoError(t, err)
	require.Equal(t, 2, pending)

	began := time.Now()
	pending, err = l.Exclude(2, "host burned", "operator-ana")
	require.NoError(t, err)
	assert.Equal(t, 1, pending, "agency 3 is left")

	lines := operatorLines(t, path)
	require.Len(t, lines, 1)
	assert.Equal(t, opLine{At: lines[0].At, Operator: "operator-ana", Action: ActionExclude, Agency: 2, Reason: "host burned"}, lines[0])
	assert.WithinRange(t, lines[0].At, began.Add(-time.Second), time.Now().Add(time.Second))
	assert.Regexp(t, `^\{"at":"[0-9T:.Z-]+","operator":"operator-ana","action":"exclude","agency":2,"reason":"host burned"\}\n$`,
		readOperatorFile(t, path))

	a := l.Agency(2)
	assert.Equal(t, Agency{Stored: 2, Batches: 1, Winners: 1,
		Excluded: &Exclusion{At: lines[0].At, Operator: "operator-ana", Reason: "host burned"}}, a)
	r := l.Round()
	assert.Equal(t, 1, r.Finished)
	assert.Equal(t, 1, r.Excluded)
	assert.EqualValues(t, 3, r.Bets, "agency 2's bets are not drawn")
	assert.Equal(t, 1, r.Winners, "nor its winner")
	assert.Equal(t, []int{3}, r.Pending())
	assert.Equal(t, []int{2}, r.ExcludedAgencies())
	assert.False(t, r.Complete())

	b := l.Batches(2)
	require.ErrorIs(t, b.Add(rowsOf(t, agencyBetsFor(2, 10, 1)), wireOf(agencyBetsFor(2, 10, 1)), nil), ErrExcluded, "bets after the exclusion")
	n, err := b.Commit()
	require.ErrorIs(t, err, ErrLost)
	require.ErrorIs(t, err, ErrExcluded)
	assert.Zero(t, n)
	_, err = l.Finish(2, 2)
	require.ErrorIs(t, err, ErrExcluded, "a FINISH after the exclusion")
	assert.Equal(t, map[int][]lottery.Bet{1: one, 2: two}, storedBets(t, path), "its rows stay in the bets file")
	assertConsistent(t, l, path)

	pending, err = l.Exclude(3, "never connected", "operator-bo")
	require.NoError(t, err, "every unfinished agency may go while one finished")
	assert.Zero(t, pending)
	assert.True(t, l.Round().Complete())
	assert.Equal(t, []int{2, 3}, l.Round().ExcludedAgencies())
	assert.Len(t, operatorLines(t, path), 2)
}

// A batch of the agency still on its way when it is excluded is settled
// first: counted before the exclusion, so that an excluded agency's facts no
// longer change.
func TestExcludeSettlesABatchOnItsWay(t *testing.T) {
	l, path, _ := openTest(t, 3, nil)
	b := l.Batches(2)
	late := agencyBetsFor(2, lottery.WinningNumber, 3) // its first bet wins
	require.NoError(t, b.Add(rowsOf(t, late), wireOf(late), winnersOf(late)))
	exclude(t, l, 2, 2)
	assert.EqualValues(t, 3, l.Agency(2).Stored, "settled before the exclusion")
	assert.Equal(t, 1, l.Agency(2).Winners)
	n, err := b.Commit()
	require.NoError(t, err)
	assert.Equal(t, 1, n, "its connection hears it was stored")
	require.ErrorIs(t, b.Add(rowsOf(t, agencyBetsFor(2, 3, 1)), wireOf(agencyBetsFor(2, 3, 1)), nil), ErrExcluded)
	_, _ = b.Commit()
	assert.EqualValues(t, 3, l.Agency(2).Stored)
	assertConsistent(t, l, path)
}

// An operator action whose journal write or fsync fails leaves no line
// behind and no effect, and the same action succeeds once the disk heals.
func TestOperatorJournalFaults(t *testing.T) {
	faults := []struct {
		name string
		fail func(d *faultyDisk)
		want error
	}{
		{"the write fails", func(d *faultyDisk) { d.set(true, false) }, syscall.ENOSPC},
		{"the write fails leaving part of a line", func(d *faultyDisk) {
			d.tearNextWrite(`{"at":"2026-`)
			d.set(true, false)
		}, syscall.ENOSPC},
		{"the fsync fails", func(d *faultyDisk) { d.set(false, true) }, syscall.EIO},
		{"the write fails and so does its cut", func(d *faultyDisk) {
			d.tearNextWrite(`{"at":"2026-`)
			d.set(true, false)
			d.failTruncates(true)
		}, syscall.ENOSPC},
	}
	actions := []struct {
		name string
		do   func(l *Ledger) error
		// effect checks, after a failure (done false) and after the retry, what the action did.
		effect func(t *testing.T, l *Ledger, done bool)
		want   opLine // the line the retry journals, but its time
	}{
		{"exclude", func(l *Ledger) error {
			_, err := l.Exclude(2, "host burned", "operator-ana")
			return err
		}, func(t *testing.T, l *Ledger, done bool) {
			if done {
				assert.NotNil(t, l.Agency(2).Excluded)
				assert.ErrorIs(t, l.Batches(2).Add(rowsOf(t, agencyBetsFor(2, 9, 1)), wireOf(agencyBetsFor(2, 9, 1)), nil), ErrExcluded)
				return
			}
			assert.Nil(t, l.Agency(2).Excluded)
			assert.Equal(t, []int{1, 2, 3}, l.Round().Pending())
			// Its batches are still welcome: the failed exclusion let go of it.
			commitOne(t, l.Batches(2), agencyBetsFor(2, 0, 2))
		}, opLine{Operator: "operator-ana", Action: ActionExclude, Agency: 2, Reason: "host burned"}},
		{"record", func(l *Ledger) error {
			return l.Record(ActionReload, "operator-ana", "revocation list: 2 entries")
		}, func(*testing.T, *Ledger, bool) {}, opLine{Operator: "operator-ana", Action: ActionReload, Detail: "revocation list: 2 entries"}},
	}
	for _, action := range actions {
		for _, tt := range faults {
			t.Run(action.name+": "+tt.name, func(t *testing.T) {
				l, d, _ := openFaulty(t, 3)
				tt.fail(d)
				err := action.do(l)
				require.ErrorIs(t, err, tt.want)
				assert.ErrorContains(t, err, "journal")
				d.set(false, false)
				if !d.truncFail {
					assert.Empty(t, readOperatorFile(t, l.path), "a failed action leaves nothing in the journal")
				}
				d.failTruncates(false)
				action.effect(t, l, false)

				require.NoError(t, action.do(l), "the same action once the disk heals")
				action.effect(t, l, true)
				lines := operatorLines(t, l.path)
				require.Len(t, lines, 1, "one line: the failed attempt's part was cut")
				action.want.At = lines[0].At
				assert.Equal(t, action.want, lines[0])

				require.NoError(t, l.Close())
				l2, rec, err := Open(l.path, Options{Agencies: 3})
				require.NoError(t, err)
				defer l2.Close()
				assert.Equal(t, l.Round().Excluded, rec.Excluded)
			})
		}
	}
}

// Record journals an operator action that is not a fact of the round, as
// strictly as Open reads it back.
func TestRecord(t *testing.T) {
	tests := []struct {
		name                     string
		action, operator, detail string
		want                     error // nil: journaled
	}{
		{"a reload", ActionReload, "operator-ana", "revocation list: 2 entries", nil},
		{"a reload without detail", ActionReload, "operator-ana", "", nil},
		{"an unknown action", "delete", "operator-ana", "", ErrInvalid},
		{"an exclusion", ActionExclude, "operator-ana", "agency 3", ErrInvalid},
		{"no operator", ActionReload, " ", "", ErrInvalid},
		{"a control character in the detail", ActionReload, "operator-ana", "a\x1b[2J", ErrInvalid},
		{"a detail past 1 KiB", ActionReload, "operator-ana", strings.Repeat("x", 1025), ErrInvalid},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			l, path, _ := openTest(t, 2, nil)
			err := l.Record(tt.action, tt.operator, tt.detail)
			if tt.want != nil {
				require.ErrorIs(t, err, tt.want)
				assert.ErrorContains(t, err, "record "+tt.action+": ")
				assert.Empty(t, readOperatorFile(t, path))
				return
			}
			require.NoError(t, err)
			lines := operatorLines(t, path)
			require.Len(t, lines, 1)
			assert.Equal(t, opLine{At: lines[0].At, Operator: tt.operator, Action: tt.action, Detail: tt.detail}, lines[0])
			assert.Equal(t, l.Round(), Round{Agencies: make([]Agency, 2)}, "no fact of the round")
		})
	}
}

// Open brings the exclusions back, and the other operator actions survive
// it; an agency excluded before the restart stays excluded, and the round
// completes once the others finished or were excluded.
func TestOpenRestoresExclusions(t *testing.T) {
	l, path, _ := openTest(t, 4, nil)
	two := agencyBetsFor(2, lottery.WinningNumber, 4) // its first bet wins
	commitOne(t, l.Batches(2), two)
	exclude(t, l, 2, 3)
	require.NoError(t, l.Record(ActionReload, "operator-bo", "revocation list: 2 entries"))
	_, err := l.Finish(1, 0)
	require.NoError(t, err)
	before := l.Round()
	require.NoError(t, l.Close())

	l2, rec, err := Open(path, Options{Agencies: 4})
	require.NoError(t, err)
	defer l2.Close()
	assert.Equal(t, Recovered{Bets: 4, Agencies: 1, Finished: 1, Excluded: 1}, rec)
	after := l2.Round()
	after.Agencies[1].Batches = before.Agencies[1].Batches // counted since the central started
	assert.Equal(t, before, after)
	require.NotNil(t, l2.Agency(2).Excluded)
	assert.Equal(t, *before.Agencies[1].Excluded, *l2.Agency(2).Excluded, "who, when and why")
	assert.Zero(t, after.Bets, "agency 2's bets are not drawn")
	assert.Equal(t, []string{two[0].Document}, l2.Winners(2), "its rows were read back and checked all the same")
	lines := operatorLines(t, path)
	require.Len(t, lines, 2, "the reload survives Open")
	assert.Equal(t, ActionReload, lines[1].Action)

	_, err = l2.Exclude(2, "again", "operator-ana")
	require.ErrorIs(t, err, ErrExcluded)
	require.ErrorIs(t, l2.Batches(2).Add(rowsOf(t, agencyBetsFor(2, 4, 1)), wireOf(agencyBetsFor(2, 4, 1)), nil), ErrExcluded)
	_, err = l2.Finish(2, 4)
	require.ErrorIs(t, err, ErrExcluded)
	pending, err := l2.Finish(3, 0)
	require.NoError(t, err)
	assert.Equal(t, 1, pending)
	exclude(t, l2, 4, 0)
	assert.True(t, l2.Round().Complete())
	require.NoError(t, l2.Close())

	l3, rec, err := Open(path, Options{Agencies: 4})
	require.NoError(t, err)
	defer l3.Close()
	assert.Equal(t, Recovered{Bets: 4, Agencies: 1, Finished: 2, Excluded: 2}, rec)
	assert.True(t, l3.Round().Complete())
}

// Open reads the operator journal as strictly as Exclude and Record write
// it: a torn last line is cut, any other line that the ledger would not
// journal now stops it, naming the file, the line and the reason.
func TestOpenOperatorJournal(t *testing.T) {
	const at = `"at":"2026-12-05T09:41:13.5Z"`
	excl := func(agency int) string {
		return fmt.Sprintf(`{%s,"operator":"operator-ana","action":"exclude","agency":%d,"reason":"host burned"}`+"\n", at, agency)
	}
	reload := `{` + at + `,"operator":"operator-ana","action":"reload","detail":"revocation list"}` + "\n"
	fin1 := finLine(1, agencyBetsFor(1, 0, 2))
	tests := []struct {
		name     string
		finished string // the FINISH journal: agency 1 holds 2 bets
		operator string
		want     string // the error after "line "; "" if Open succeeds
		rec      Recovered
	}{
		{"exclusions and a reload", fin1, excl(2) + reload + excl(3), "", Recovered{Bets: 2, Agencies: 1, Finished: 1, Excluded: 2}},
		{"a torn last line is cut", "", excl(2) + `{"at":"2026-12`, "", Recovered{Bets: 2, Agencies: 1, Excluded: 1, CutOperator: 14}},
		{"not JSON", "", "exclude 2\n", "1: not an operator action in JSON: invalid character", Recovered{}},
		{"JSON cut short", "", excl(2) + `{"at":` + "\n", "2: not an operator action in JSON: unexpected EOF", Recovered{}},
		{"two objects on a line", "", strings.TrimSuffix(excl(2), "\n") + excl(3), "1: not one operator action in JSON", Recovered{}},
		{"a field the journal does not know", "", `{` + at + `,"operator":"operator-ana","action":"reload","by":"x"}` + "\n",
			`1: not an operator action in JSON: json: unknown field "by"`, Recovered{}},
		{"null", "", "null\n", "1: invalid operator action: no time (at)", Recovered{}},
		{"a time that is not RFC 3339", "", `{"at":"yesterday","operator":"operator-ana","action":"reload"}` + "\n",
			`1: not an operator action in JSON: parsing time`, Recovered{}},
		{"an unknown action", "", `{` + at + `,"operator":"operator-ana","action":"delete","agency":2}` + "\n",
			`1: invalid operator action: unknown action "delete"`, Recovered{}},
		{"an agency out of the round", "", excl(4), "1: no such agency: agency 4 not in 1..3 (SERVER_AGENCIES)", Recovered{}},
		{"an exclusion without agency", "", `{` + at + `,"operator":"operator-ana","action":"exclude","reason":"x"}` + "\n",
			"1: no such agency: agency 0 not in 1..3", Recovered{}},
		{"an empty operator", "", strings.Replace(excl(2), "operator-ana", "", 1), "1: invalid operator action: operator is empty", Recovered{}},
		{"no operator", "", `{` + at + `,"action":"reload"}` + "\n", "1: invalid operator action: operator is empty", Recovered{}},
		{"an empty reason", "", strings.Replace(excl(2), "host burned", "", 1), "1: invalid operator action: reason is empty", Recovered{}},
		{"a reload naming an agency", "", `{` + at + `,"operator":"operator-ana","action":"reload","agency":2}` + "\n",
			"1: invalid operator action: a reload names no agency", Recovered{}},
		{"an agency excluded that finished", fin1, reload + excl(1),
			"2: agency 1 excluded, but the FINISH journal says it finished", Recovered{}},
		{"an agency excluded twice", "", excl(2) + excl(3) + excl(2), "3: agency 2 excluded again, first on line 1", Recovered{}},
		{"every agency excluded", "", excl(2) + excl(3) + excl(1), "3: agency 1 excluded, and with it every agency", Recovered{}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "bets.csv")
			require.NoError(t, os.WriteFile(path, []byte(csvRows(agencyBetsFor(1, 0, 2))), 0o644))
			require.NoError(t, os.WriteFile(JournalPath(path), []byte(tt.finished), 0o644))
			require.NoError(t, os.WriteFile(OperatorPath(path), []byte(tt.operator), 0o644))
			l, rec, err := Open(path, Options{Agencies: 3})
			if tt.want != "" {
				require.Error(t, err)
				assert.Nil(t, l)
				assert.ErrorContains(t, err, fmt.Sprintf("recover operator journal %q: line %s", OperatorPath(path), tt.want))
				assert.Equal(t, tt.operator, readOperatorFile(t, path), "a refused start changes nothing")
				return
			}
			require.NoError(t, err)
			defer l.Close()
			assert.Equal(t, tt.rec, rec)
			assert.Equal(t, rec.Excluded, l.Round().Excluded)
			assert.Equal(t, strings.TrimSuffix(tt.operator, `{"at":"2026-12`), readOperatorFile(t, path))
			require.NotNil(t, l.Agency(2).Excluded)
			assert.Equal(t, Exclusion{At: time.Date(2026, 12, 5, 9, 41, 13, 5e8, time.UTC), Operator: "operator-ana", Reason: "host burned"},
				*l.Agency(2).Excluded)
			// The ledger appends after what it read.
			read := len(operatorLines(t, path))
			require.NoError(t, l.Record(ActionReload, "operator-bo", ""))
			assert.Len(t, operatorLines(t, path), read+1)
		})
	}
}
