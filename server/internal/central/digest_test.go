package central

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"lotterycentral.example/lottery"
	"lotterycentral.example/lottery/logfmt"
	"lotterycentral.example/protocol"
	"lotterycentral.example/server/internal/vocab"
)

// digestOf is the digest of bets as their agency computes it from its file.
func digestOf(t *testing.T, bets []lottery.Bet) protocol.Digest {
	t.Helper()
	w := protocol.NewDigestWriter()
	for _, b := range wireBets(bets) {
		require.NoError(t, w.Bet(b))
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
