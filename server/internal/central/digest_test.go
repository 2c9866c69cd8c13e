package central

import (
	"bufio"
	"bytes"
	"encoding/csv"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"lotterycentral.example/lottery"
	"lotterycentral.example/lottery/logfmt"
	"lotterycentral.example/protocol"
	"lotterycentral.example/server/internal/vocab"
)

// csvRow is b's row as encoding/csv's Writer writes it, without the agency
// column: what BATCH carries and the digest covers, written here without
// the lottery package.
func csvRow(b lottery.Bet) []byte {
	var buf bytes.Buffer
	w := csv.NewWriter(&buf)
	_ = w.Write([]string{b.FirstName, b.LastName, b.Document, b.Birthdate, strconv.Itoa(b.Number)})
	w.Flush()
	return buf.Bytes()
}

// digestOf is the digest of bets as their agency computes it from its file:
// BLAKE3 over their rows as csv writes them. It also requires that
// lottery.AppendRow, which the tests' batches use, writes each row so.
func digestOf(t *testing.T, bets []lottery.Bet) protocol.Digest {
	t.Helper()
	w := protocol.NewDigestWriter()
	for _, b := range bets {
		row := csvRow(b)
		require.Equal(t, string(row), string(lottery.AppendRow(nil, b)), "lottery.AppendRow against csv.Writer")
		w.Write(row)
	}
	return w.Sum()
}

// The digests over the wire and in the log: FINISH_ACK carries the digest
// of the agency's bets however they were batched and over however many
// connections; HELLO_ACK repeats it to an agency that reconnects after its
// FINISH, before and after a restart of the central; the sorteo line and
// the status page publish the round's digest, the agencies' in order.
func TestDigests(t *testing.T) {
	cfg := testConfig(t)
	cfg.Agencies = 3
	bets := map[int][]lottery.Bet{
		1: agencyBets(1, 7),
		2: agencyBets(2, 300),
		3: nil, // no bets: the digest of nothing
	}
	tc := startCentral(t, cfg)

	finish := func(tc *testCentral, id int) protocol.Digest {
		t.Helper()
		c := dialRaw(t, tc.addr)
		c.hello(id)
		return c.finish(len(bets[id]))
	}
	// Agency 2 in batches of 7 over two connections: the digest is of its bets, not of its batches.
	c := dialRaw(t, tc.addr)
	c.hello(2)
	c.sendBets(bets[2][:120], 7)
	c.raw.Close()
	c, ack := rehello(t, tc, 2)
	require.EqualValues(t, 120, ack.Stored)
	assert.Zero(t, ack.Digest, "no digest before its FINISH")
	c.sendBets(bets[2][120:], 50)
	assert.Equal(t, digestOf(t, bets[2]), c.finish(len(bets[2])), "agency 2's FINISH_ACK")
	c.raw.Close()

	c = dialRaw(t, tc.addr)
	c.hello(1)
	c.sendBets(bets[1], 3)
	assert.Equal(t, digestOf(t, bets[1]), c.finish(len(bets[1])), "agency 1's FINISH_ACK")
	c.raw.Close()
	_, ack = rehello(t, tc, 1)
	assert.Equal(t, protocol.HelloAck{Version: protocol.Version, Stored: 7, Finished: true, Digest: digestOf(t, bets[1])}, *ack,
		"agency 1 back after its FINISH")

	// A restart: the digests come back from the bets file.
	tc.stop()
	tc = startCentral(t, cfg)
	for _, id := range []int{1, 2} {
		_, ack := rehello(t, tc, id)
		assert.Equal(t, digestOf(t, bets[id]), ack.Digest, "agency %d after a restart", id)
	}
	assert.Equal(t, protocol.NewDigestWriter().Sum(), finish(tc, 3), "agency 3, no bets")

	round := protocol.RoundDigest([]protocol.Digest{digestOf(t, bets[1]), digestOf(t, bets[2]), digestOf(t, nil)})
	tc.logs.AwaitT(t, 1, vocab.Sorteo.Line(logfmt.Success, vocab.Apuestas.Int(307), vocab.Ganadores.Int(winnersIn(bets[1])+winnersIn(bets[2])),
		vocab.DigestoRonda.Str(round.String())))
	st := tc.srv.Status()
	assert.Equal(t, round.String(), st.Digest, "the status page's round digest")
	for _, row := range st.Rows {
		assert.Equal(t, digestOf(t, bets[row.ID]).String(), row.Digest, "agency %d on the status page", row.ID)
	}
}

func winnersIn(bets []lottery.Bet) int {
	n := 0
	for _, b := range bets {
		if lottery.HasWon(b) {
			n++
		}
	}
	return n
}

// winningDocs are the documents of bets' winning bets, in order.
func winningDocs(bets []lottery.Bet) []string {
	var docs []string
	for _, b := range bets {
		if lottery.HasWon(b) {
			docs = append(docs, b.Document)
		}
	}
	return docs
}

// quotedBets are valid bets of agency whose names csv.Writer quotes — a
// comma, inner quotes (doubled), a leading space, a leading no-break space,
// the field \. — beside plain ones; some of each win.
func quotedBets(agency int) []lottery.Bet {
	names := [][2]string{
		{"Juan", "Pérez, Jr."},
		{`Ana "la"`, "Gómez"},
		{" Sol", "Ruiz"},
		{"Luis", "\u00a0Díaz"},
		{`\.`, `O"Brien, "Jr"`},
		{"Eva", "Paz"},
		{"Ñandú, \"el\" Grande", " Ríos, Jr."},
	}
	var bets []lottery.Bet
	for i, n := range names {
		for k, number := range []int{lottery.WinningNumber, i * 100} { // a winner, and not
			bets = append(bets, lottery.Bet{Agency: agency, FirstName: n[0], LastName: n[1],
				Document: strconv.Itoa(agency*1_000_000 + i*10 + k), Birthdate: "1985-03-04", Number: number})
		}
	}
	return bets
}

// Names that csv quotes travel in rows quoted as csv quotes them, and are
// stored, digested and drawn as any other: a hand-driven agency's
// FINISH_ACK is the digest of its rows as csv writes them; the real agency,
// reading an official-style file (csv, CRLF), agrees with the central's
// digest and gets its winners; the bets file holds every row as csv writes
// it; and a restarted central, hashing its rows again, gives the same
// digests.
func TestQuotedNames(t *testing.T) {
	cfg := testConfig(t)
	cfg.Agencies = 2
	bets := map[int][]lottery.Bet{1: quotedBets(1), 2: quotedBets(2)}
	dir := t.TempDir()
	f, err := os.Create(filepath.Join(dir, lottery.AgencyFileName(2)))
	require.NoError(t, err)
	bw := bufio.NewWriter(f)
	require.NoError(t, lottery.WriteAgencyFile(bw, slices.Values(bets[2])))
	require.NoError(t, bw.Flush())
	require.NoError(t, f.Close())
	tc := startCentral(t, cfg)

	c := dialRaw(t, tc.addr)
	c.hello(1)
	c.sendBets(bets[1], 3)
	assert.Equal(t, digestOf(t, bets[1]), c.finish(len(bets[1])), "agency 1's FINISH_ACK")
	r := <-runAgency(t.Context(), agencyConfig(tc, dir, 2))
	require.NoError(t, r.err, "agency 2: its file's digest must be the central's")
	assert.ElementsMatch(t, winningDocs(bets[2]), r.docs, "agency 2's winners")
	assert.ElementsMatch(t, winningDocs(bets[1]), c.consult(), "agency 1's winners")
	tc.logs.AwaitT(t, 1, vocab.Sorteo.Line(logfmt.Success, vocab.Apuestas.Int(len(bets[1])+len(bets[2])),
		vocab.Ganadores.Int(len(winningDocs(bets[1]))+len(winningDocs(bets[2])))))

	tc.stop()
	var want bytes.Buffer
	for _, id := range []int{1, 2} { // agency 1 finished before agency 2 began
		for _, b := range bets[id] {
			want.WriteString(strconv.Itoa(id) + ",")
			want.Write(csvRow(b))
		}
	}
	got, err := os.ReadFile(tc.path)
	require.NoError(t, err)
	assert.Equal(t, want.String(), string(got), "the bets file: each row as csv writes it")
	assert.Equal(t, bets, storedBets(t, tc.path))

	tc = startCentral(t, cfg)
	for _, id := range []int{1, 2} {
		c, ack := rehello(t, tc, id)
		assert.Equal(t, protocol.HelloAck{Version: protocol.Version, Stored: uint64(len(bets[id])), Finished: true, Drawn: true,
			Digest: digestOf(t, bets[id])}, *ack, "agency %d after a restart", id)
		assert.ElementsMatch(t, winningDocs(bets[id]), c.consult(), "agency %d's winners after a restart", id)
	}
}
