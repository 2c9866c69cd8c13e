package central

import (
	"io"
	"net"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/sirupsen/logrus"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"

	"lotterycentral.example/lottery"
	"lotterycentral.example/lottery/logfmt"
	"lotterycentral.example/lottery/logfmt/logfmttest"
	"lotterycentral.example/protocol"
	"lotterycentral.example/server/internal/vocab"
)

// The hostile suite runs every case against its own central with seven
// agencies. Agencies 1–5 are honest clients (agency.Run) streaming alongside
// the hostile peer; agency 6 is the identity the hostile peer claims when a
// case needs an identified connection; agency 7 is the latch: the harness
// finishes it last, so the draw never runs while a case is going on unless
// the case itself asks for it. Afterwards every agency must get exactly its
// winners and the bets file must hold exactly the agencies' files.
const (
	honestAgencies = 5
	hostileAgency  = 6
	latchAgency    = 7
	suiteAgencies  = 7
	suiteBets      = 150
	// replyWait only turns a hung read into a failure; nothing waits on it.
	replyWait = 10 * time.Second
)

// rowsOf is bets' rows as BATCH carries them: each bet as the central
// stores it after its agency column, LF included (lottery.AppendRow, which
// formats invalid bets too).
func rowsOf(bets ...lottery.Bet) []byte {
	var rows []byte
	for _, b := range bets {
		rows = lottery.AppendRow(rows, b)
	}
	return rows
}

// batchOf is a BATCH of bets under seq, its count theirs.
func batchOf(seq uint32, bets ...lottery.Bet) protocol.Batch {
	return protocol.Batch{Seq: seq, Count: len(bets), Rows: rowsOf(bets...)}
}

// intruder is a valid, winning bet that no agency file holds: if any of them
// is ever stored, the winners and the bets file both show it. A row carries
// no agency: on any connection it is that connection's agency's bet.
func intruder() lottery.Bet {
	return lottery.Bet{FirstName: "Intruso", LastName: "Hostil",
		Document: "99999999", Birthdate: "1990-01-01", Number: lottery.WinningNumber}
}

// intruderRow is intruder's row without its LF, for rows written by hand.
const intruderRow = "Intruso,Hostil,99999999,1990-01-01,7574"

// withBadBet is a batch of four bets whose third (index 2) is intruder changed by bad.
func withBadBet(seq uint32, bad func(*lottery.Bet)) protocol.Batch {
	bets := []lottery.Bet{intruder(), intruder(), intruder(), intruder()}
	bad(&bets[2])
	return batchOf(seq, bets...)
}

// withBadRow is a batch of four rows whose third (index 2) is row, written
// by hand without its LF, the others intruder's.
func withBadRow(seq uint32, row string) protocol.Batch {
	rows := intruderRow + "\n" + intruderRow + "\n" + row + "\n" + intruderRow + "\n"
	return protocol.Batch{Seq: seq, Count: 4, Rows: []byte(rows)}
}

// batchFrame encodes a BATCH frame of intruder rows whose payload is exactly
// payloadLen bytes; AppendMessage enforces no size limit, so it can go over.
func batchFrame(t *testing.T, seq uint32, payloadLen int) []byte {
	t.Helper()
	fixed := len(intruderRow) + 1 - len(intruder().FirstName) // an intruder's row but its first name's bytes
	const long = 60                                           // the first name of every row but the last
	var bets []lottery.Bet
	rem := payloadLen - 6
	for rem-fixed > lottery.MaxNameLen {
		b := intruder()
		b.FirstName = strings.Repeat("a", long)
		bets = append(bets, b)
		rem -= fixed + long
	}
	b := intruder()
	b.FirstName = strings.Repeat("a", rem-fixed) // 1..MaxNameLen bytes: a valid name
	bets = append(bets, b)
	frame, err := protocol.AppendMessage(nil, batchOf(seq, bets...))
	require.NoError(t, err)
	require.Equal(t, protocol.HeaderSize+payloadLen, len(frame))
	return frame
}

// hostileEnv is one case's world: its central, the agency files and the honest agencies.
type hostileEnv struct {
	tc     *testCentral
	dir    string
	bets   map[int][]lottery.Bet
	honest []<-chan agencyResult
	held   map[int]*rawConn // a live connection identified as the agency, ready to go on

	once    sync.Once
	results []agencyResult
}

func newHostileEnv(t *testing.T) *hostileEnv {
	t.Helper()
	dir := t.TempDir()
	_, err := lottery.GenerateAgencyFiles(dir, suiteAgencies, suiteBets, 2024)
	require.NoError(t, err)
	h := &hostileEnv{dir: dir, bets: agencyBetsIn(t, dir, suiteAgencies), held: make(map[int]*rawConn)}
	cfg := testConfig(t)
	cfg.Agencies = suiteAgencies
	h.tc = startCentral(t, cfg)
	for id := 1; id <= honestAgencies; id++ {
		acfg := agencyConfig(h.tc, dir, id)
		acfg.BatchMaxAmount = 20 // several batches each, interleaved with the hostile peer
		h.honest = append(h.honest, runAgency(t.Context(), acfg))
	}
	return h
}

func (h *hostileEnv) file(id int) string { return filepath.Join(h.dir, lottery.AgencyFileName(id)) }

// awaitReleased waits until every connection that identified as agency id has ended,
// so a new one can claim it.
func (h *hostileEnv) awaitReleased(t *testing.T, id int) {
	t.Helper()
	tag := vocab.Agencia.Int(id).String() + " |"
	n := h.tc.logs.Count(vocab.Identificacion.Line(logfmt.Success), tag)
	h.tc.logs.AwaitT(t, n, vocab.CerrarConexion.Line(logfmt.Success), tag)
}

// identify opens a new connection as agency id.
func (h *hostileEnv) identify(t *testing.T, id int) *rawConn {
	t.Helper()
	h.awaitReleased(t, id)
	c := dialRaw(t, h.tc.addr)
	c.hello(id)
	return c
}

// complete sends what is left of agency id's file and FINISHes it, on the
// connection the case left usable or on a new one that resumes.
func (h *hostileEnv) complete(t *testing.T, id int) *rawConn {
	t.Helper()
	c := h.held[id]
	if c == nil {
		c = h.identify(t, id)
	}
	h.held[id] = c
	if c.finished {
		return c
	}
	c.sendBets(h.bets[id][c.stored:], 25)
	c.finish(len(h.bets[id]))
	return c
}

// honestResults waits for the five honest agencies; they return after the draw.
func (h *hostileEnv) honestResults() []agencyResult {
	h.once.Do(func() {
		for _, ch := range h.honest {
			h.results = append(h.results, <-ch)
		}
	})
	return h.results
}

// drawn finishes agencies 6 and 7 and waits for the honest ones: the draw ran.
func (h *hostileEnv) drawn(t *testing.T) {
	t.Helper()
	h.complete(t, hostileAgency)
	h.complete(t, latchAgency)
	h.honestResults()
	h.tc.logs.AwaitT(t, 1, vocab.Sorteo.Line(logfmt.Success))
}

func (h *hostileEnv) awaitProtocolFail(t *testing.T, code protocol.Code) {
	t.Helper()
	h.tc.logs.AwaitT(t, 1, vocab.Protocolo.Line(logfmt.Fail), vocab.Motivo.Str(code.String()).String()+" |")
}

func (h *hostileEnv) awaitReject(t *testing.T, count int, code protocol.Code, index string) {
	t.Helper()
	h.tc.logs.AwaitT(t, 1, vocab.ApuestaRecibida.Line(logfmt.Fail, vocab.Cantidad.Int(count)))
	h.tc.logs.AwaitT(t, 1, vocab.RechazoLote.Line(logfmt.Fail), vocab.Motivo.Str(code.String()).String()+" |", vocab.Apuesta.Str(index).String()+" |")
}

// verify is every case's epilogue: every agency gets exactly its winners, the
// draw ran once, and the bets file parses and holds exactly the agencies' files.
func (h *hostileEnv) verify(t *testing.T) {
	t.Helper()
	for _, id := range []int{hostileAgency, latchAgency} {
		h.complete(t, id)
	}
	for _, id := range []int{hostileAgency, latchAgency} {
		got := h.held[id].consult()
		assert.ElementsMatch(t, expectedWinners(t, h.file(id), id), got, "agency %d", id)
	}
	for _, r := range h.honestResults() {
		require.NoError(t, r.err, "honest agency %d", r.id)
		assert.ElementsMatch(t, expectedWinners(t, h.file(r.id), r.id), r.docs, "honest agency %d", r.id)
	}
	assert.Equal(t, 1, h.tc.logs.Count(vocab.Sorteo.Line(logfmt.Success)))

	h.tc.stop()
	want := make(map[lottery.Bet]int)
	for _, bets := range h.bets {
		for _, b := range bets {
			want[b]++
		}
	}
	got := make(map[lottery.Bet]int)
	for bet, err := range lottery.LoadBets(h.tc.path) {
		require.NoError(t, err, "the bets file must stay parseable")
		got[bet]++
	}
	assert.Equal(t, want, got, "the bets file must hold exactly the agencies' files")
}

// Every hostile input, each while five honest agencies stream alongside.
func TestHostilePeers(t *testing.T) {
	type hostileCase struct {
		name string
		run  func(t *testing.T, h *hostileEnv)
	}
	// errorBefore: bytes on a fresh connection that earn ERROR code and a close.
	errorBefore := func(name string, b []byte, code protocol.Code) hostileCase {
		return hostileCase{name, func(t *testing.T, h *hostileEnv) {
			c := dialRaw(t, h.tc.addr)
			c.write(b)
			c.expectError(code)
			h.awaitProtocolFail(t, code)
		}}
	}
	// errorAfter: bytes on a connection identified as agency 6 that earn ERROR code and a close.
	errorAfter := func(name string, b []byte, code protocol.Code) hostileCase {
		return hostileCase{name, func(t *testing.T, h *hostileEnv) {
			c := h.identify(t, hostileAgency)
			c.write(b)
			c.expectError(code)
			h.awaitProtocolFail(t, code)
		}}
	}
	// refused: batch 1 on a connection identified as agency 6 is refused
	// whole with code about bet index (protocol.NoIndex: about no bet), its
	// text holding text; the connection stays open and the refused number
	// is not used up (the harness goes on with seq 1 on the same connection).
	// The log counts the bets the batch's header says.
	refused := func(name string, b protocol.Batch, code protocol.Code, index uint32, text string) hostileCase {
		return hostileCase{name, func(t *testing.T, h *hostileEnv) {
			c := h.identify(t, hostileAgency)
			c.send(b)
			r := c.expectReject(1, code, index)
			assert.Contains(t, r.Text, text)
			logged := "-"
			if index != protocol.NoIndex {
				logged = strconv.Itoa(int(index))
			}
			h.awaitReject(t, b.Count, code, logged)
			c.ping()
			h.held[hostileAgency] = c
		}}
	}
	// badBet: a batch whose bet 2 breaks a rule is refused whole with
	// invalid_bet naming bet 2 and why (reason, after "invalid bet: ").
	badBet := func(name, reason string, bad func(*lottery.Bet)) hostileCase {
		return refused(name, withBadBet(1, bad), protocol.CodeInvalidBet, 2, "invalid bet: "+reason)
	}
	// badRow: as badBet, bet 2 being row, written by hand (without its LF).
	badRow := func(name, row, reason string) hostileCase {
		return refused(name, withBadRow(1, row), protocol.CodeInvalidBet, 2, "invalid bet: "+reason)
	}
	// malformedRows: a batch whose rows the codec refuses, whole and about no bet.
	malformedRows := func(name string, count int, rows string) hostileCase {
		return refused(name, protocol.Batch{Seq: 1, Count: count, Rows: []byte(rows)}, protocol.CodeMalformed, protocol.NoIndex, protocol.ErrMalformed.Error())
	}
	const notDecimal = "number: not written as a decimal number"
	msg := func(m protocol.Message) []byte {
		b, err := protocol.AppendMessage(nil, m)
		require.NoError(t, err)
		return b
	}
	hello := func(version uint8, agency uint32) []byte {
		return msg(protocol.Hello{Version: version, Agency: agency})
	}
	batch := msg(batchOf(1, intruder()))
	row := func(rows ...string) string { return strings.Join(rows, "\n") + "\n" }
	future := time.Now().AddDate(1, 0, 0).Format(time.DateOnly)

	cases := []hostileCase{
		// Framing.
		errorBefore("garbage bytes", []byte("GET / HTTP/1.1\r\nHost: central\r\n\r\n"), protocol.CodeFrameTooLarge),
		errorBefore("header announcing 4 GiB", []byte{byte(protocol.MsgBatch), 0xFF, 0xFF, 0xFF, 0xFF}, protocol.CodeFrameTooLarge),
		errorBefore("header of an unknown type announcing 4 GiB", []byte{0x99, 0xFF, 0xFF, 0xFF, 0xFF}, protocol.CodeFrameTooLarge),
		{"frame one byte over 8 KiB", func(t *testing.T, h *hostileEnv) {
			c := h.identify(t, hostileAgency)
			c.write(batchFrame(t, 1, protocol.MaxClientPayload+1))
			c.expectError(protocol.CodeFrameTooLarge)
			h.awaitProtocolFail(t, protocol.CodeFrameTooLarge)
			h.tc.logs.AwaitT(t, 1, vocab.ApuestaRecibida.Line(logfmt.Fail, vocab.Cantidad.Int(0)))
		}},
		{"a valid batch and a frame over 8 KiB in one write", func(t *testing.T, h *hostileEnv) {
			// The valid batch, already written when the big frame is read, is
			// still synced, answered and counted: its agency resumes after it.
			c := h.identify(t, hostileAgency)
			c.write(append(msg(batchOf(1, h.bets[hostileAgency][:10]...)),
				batchFrame(t, 2, protocol.MaxClientPayload+1)...))
			require.Equal(t, uint32(1), c.expect(protocol.MsgBatchAck).(*protocol.BatchAck).Seq)
			c.expectError(protocol.CodeFrameTooLarge)
			h.awaitProtocolFail(t, protocol.CodeFrameTooLarge)
			back := h.identify(t, hostileAgency)
			require.Equal(t, uint64(10), back.stored)
			h.held[hostileAgency] = back
		}},
		errorBefore("unknown message type", []byte{0x42, 0, 0, 0, 0}, protocol.CodeUnknownType),
		errorAfter("unknown message type with a payload after HELLO", []byte{0x7F, 0, 0, 0, 3, 1, 2, 3}, protocol.CodeUnknownType),
		errorAfter("a central's message sent by an agency", msg(protocol.BatchAck{Seq: 1}), protocol.CodeUnexpected),
		{"truncated header then close", func(t *testing.T, h *hostileEnv) {
			c := dialRaw(t, h.tc.addr)
			c.write([]byte{byte(protocol.MsgHello), 0, 0})
			require.NoError(t, c.raw.(*net.TCPConn).CloseWrite())
			c.expectClosed()
			h.tc.logs.AwaitT(t, 1, vocab.Protocolo.Line(logfmt.Fail), vocab.Motivo.Str("malformed").String()+" |", "truncated")
		}},
		{"truncated payload then close", func(t *testing.T, h *hostileEnv) {
			c := h.identify(t, hostileAgency)
			full := msg(batchOf(1, intruder(), intruder()))
			c.write(full[:len(full)-7])
			require.NoError(t, c.raw.(*net.TCPConn).CloseWrite())
			c.expectClosed()
			h.tc.logs.AwaitT(t, 1, vocab.Protocolo.Line(logfmt.Fail), vocab.Motivo.Str("malformed").String()+" |", "truncated")
		}},

		// Identification.
		errorBefore("BATCH before HELLO", batch, protocol.CodeNotIdentified),
		errorBefore("FINISH before HELLO", msg(protocol.Finish{Total: 0}), protocol.CodeNotIdentified),
		errorBefore("CONSULT before HELLO", msg(protocol.Consult{Agency: 1}), protocol.CodeNotIdentified),
		{"PING before HELLO gets PONG then close", func(t *testing.T, h *hostileEnv) {
			c := dialRaw(t, h.tc.addr)
			c.send(protocol.Ping{})
			c.expect(protocol.MsgPong)
			c.expectClosed()
		}},
		errorAfter("second HELLO", hello(protocol.Version, hostileAgency), protocol.CodeAlreadyIdentified),
		errorAfter("second HELLO for another agency", hello(protocol.Version, 1), protocol.CodeAlreadyIdentified),
		errorBefore("agency 0", hello(protocol.Version, 0), protocol.CodeBadAgency),
		errorBefore("agency -1", hello(protocol.Version, 0xFFFFFFFF), protocol.CodeBadAgency),
		errorBefore("agency -2^31", hello(protocol.Version, 0x80000000), protocol.CodeBadAgency),
		errorBefore("agency above SERVER_AGENCIES", hello(protocol.Version, suiteAgencies+1), protocol.CodeBadAgency),
		errorBefore("HELLO too short", []byte{byte(protocol.MsgHello), 0, 0, 0, 4, protocol.Version, 0, 0, 0}, protocol.CodeMalformed),
		errorBefore("HELLO with trailing bytes", []byte{byte(protocol.MsgHello), 0, 0, 0, 6, protocol.Version, 0, 0, 0, 6, 0}, protocol.CodeMalformed),
		errorBefore("unsupported protocol version", hello(protocol.Version+1, hostileAgency), protocol.CodeBadVersion),
		{"two live connections for one agency", func(t *testing.T, h *hostileEnv) {
			first := h.identify(t, hostileAgency)
			second := dialRaw(t, h.tc.addr)
			second.send(protocol.Hello{Version: protocol.Version, Agency: hostileAgency})
			second.expectError(protocol.CodeAgencyBusy)
			h.awaitProtocolFail(t, protocol.CodeAgencyBusy)
			first.ping()
			h.held[hostileAgency] = first
		}},

		// Bets: each rule of a bet, broken by bet 2 of four.
		badBet("empty first name", "first_name: empty", func(b *lottery.Bet) { b.FirstName = "" }),
		badBet("blank last name", "last_name: empty", func(b *lottery.Bet) { b.LastName = "  \t " }),
		badBet("over-long name", "first_name: longer than", func(b *lottery.Bet) { b.FirstName = strings.Repeat("x", lottery.MaxNameLen+1) }),
		badBet("invalid UTF-8 name", "last_name: not valid UTF-8", func(b *lottery.Bet) { b.LastName = "P\xe9rez" }),
		badBet("NUL byte in a name", "first_name: contains a control character", func(b *lottery.Bet) { b.FirstName = "Intr\x00uso" }),
		badBet("C1 control character in a name", "last_name: contains a control character", func(b *lottery.Bet) { b.LastName = "Hos\u0085til" }),
		badBet("CR in a name, quoted as csv quotes it", "first_name: contains a control character", func(b *lottery.Bet) { b.FirstName = "Intr\ruso" }),
		badBet("empty document", "document: empty", func(b *lottery.Bet) { b.Document = "" }),
		badBet("non-digit document", "document: not only digits", func(b *lottery.Bet) { b.Document = "3012a456" }),
		badBet("over-long document", "document: longer than", func(b *lottery.Bet) { b.Document = "12345678901" }),
		badBet("document with a comma, quoted as csv quotes it", "document: not only digits", func(b *lottery.Bet) { b.Document = "3012,456" }),
		badBet("impossible birthdate", "birthdate: not a date", func(b *lottery.Bet) { b.Birthdate = "2023-02-30" }),
		badBet("future birthdate", "birthdate: in the future", func(b *lottery.Bet) { b.Birthdate = future }),
		badBet("birthdate before 1900", "birthdate: before 1900", func(b *lottery.Bet) { b.Birthdate = "1899-12-31" }),
		badBet("birthdate not YYYY-MM-DD", "birthdate: not a date", func(b *lottery.Bet) { b.Birthdate = "02/01/1990" }),
		badBet("number 10000", "number: out of range 0..9999", func(b *lottery.Bet) { b.Number = 10000 }),
		badBet("number 65535", "number: out of range 0..9999", func(b *lottery.Bet) { b.Number = 0xFFFF }),
		badBet("number -1", notDecimal, func(b *lottery.Bet) { b.Number = -1 }),

		// Rows: each written otherwise than csv.Writer writes the bet, so that
		// no two rows say one bet and the digest is of the bets themselves.
		badRow("row of 4 fields", "Intruso,Hostil,99999999,1990-01-01", "number: missing: a row has 5 fields, this one 4"),
		badRow("row of 6 fields", intruderRow+",7574", "number: "),
		badRow("row of 6 fields, the number quoted", intruderRow[:len(intruderRow)-4]+`"7574",7574`, "number: followed by more fields"),
		// The old per-bet agency, as the store's row: a sixth field.
		badRow("bet for another agency, as the store's row", "1,"+intruderRow, "number: "),
		badRow("bet for agency 0, as the store's row", "0,"+intruderRow, "number: "),
		badRow("empty row", "", "last_name: missing: a row has 5 fields, this one 1"),
		badRow("needlessly quoted name", `"Intruso",Hostil,99999999,1990-01-01,7574`, "first_name: quoted, but csv writes it without quotes"),
		badRow("needlessly quoted document", `Intruso,Hostil,"99999999",1990-01-01,7574`, "document: quoted, but csv writes it without quotes"),
		badRow("quoted number", `Intruso,Hostil,99999999,1990-01-01,"7574"`, "number: quoted, but csv writes it without quotes"),
		badRow("unquoted name starting with a space", " Intruso,Hostil,99999999,1990-01-01,7574", "first_name: must be quoted"),
		badRow("unquoted name starting with a no-break space", "Intruso,\u00a0Hostil,99999999,1990-01-01,7574", "last_name: must be quoted"),
		badRow(`unquoted name \.`, `\.,Hostil,99999999,1990-01-01,7574`, "first_name: must be quoted"),
		badRow("bare quote inside an unquoted field", `Intr"uso,Hostil,99999999,1990-01-01,7574`, `first_name: holds a '"' but is not quoted`),
		badRow("inner quote not doubled", `"Intr"uso",Hostil,99999999,1990-01-01,7574`, "first_name: text after its closing quote"),
		badRow("unterminated quote", `"Intruso,Hostil,99999999,1990-01-01,7574`, "first_name: its quote is not closed"),
		badRow("number with a leading zero", "Intruso,Hostil,99999999,1990-01-01,07574", notDecimal),
		badRow("number 0 written 00", "Intruso,Hostil,99999999,1990-01-01,00", notDecimal),
		badRow("number with a plus sign", "Intruso,Hostil,99999999,1990-01-01,+7574", notDecimal),
		badRow("number with a minus sign", "Intruso,Hostil,99999999,1990-01-01,-7574", notDecimal),
		badRow("number with a space", "Intruso,Hostil,99999999,1990-01-01, 7574", notDecimal),
		badRow("number past any integer", "Intruso,Hostil,99999999,1990-01-01,184467440737095516167574", notDecimal),
		badRow("empty number", "Intruso,Hostil,99999999,1990-01-01,", notDecimal),
		badRow("row ending in CRLF", intruderRow+"\r", notDecimal),
		badRow("NUL byte in a name, by hand", "Intr\x00uso,Hostil,99999999,1990-01-01,7574", "first_name: contains a control character"),
		refused("LF inside a quoted name, counted as a row", protocol.Batch{Seq: 1, Count: 5,
			Rows: []byte(row(intruderRow, intruderRow, `"Intr`, `uso",Hostil,99999999,1990-01-01,7574`, intruderRow))},
			protocol.CodeInvalidBet, 2, "invalid bet: first_name: its quote is not closed"),
		malformedRows("LF inside a quoted name, not counted", 4, row(intruderRow, intruderRow, `"Intr`, `uso",Hostil,99999999,1990-01-01,7574`, intruderRow)),
		malformedRows("count larger than its rows", 3, row(intruderRow, intruderRow)),
		malformedRows("count smaller than its rows", 1, row(intruderRow, intruderRow)),
		malformedRows("rows without the final LF", 2, intruderRow+"\n"+intruderRow),
		malformedRows("one row without its LF", 1, intruderRow),
		malformedRows("LFs agreeing with count, the last row without its LF", 1, intruderRow+"\n"+intruderRow),
		malformedRows("count 65535, one row", 0xFFFF, row(intruderRow)),
		refused("empty batch", protocol.Batch{Seq: 1}, protocol.CodeEmptyBatch, protocol.NoIndex, protocol.ErrEmptyBatch.Error()),
		refused("count 0 carrying a row", protocol.Batch{Seq: 1, Rows: []byte(row(intruderRow))}, protocol.CodeEmptyBatch, protocol.NoIndex, protocol.ErrEmptyBatch.Error()),
		{"batch with trailing bytes", func(t *testing.T, h *hostileEnv) {
			c := h.identify(t, hostileAgency)
			b := msg(batchOf(1, intruder()))
			b = append(b, 0)
			b[4]++ // the header's length covers the extra byte
			c.write(b)
			c.expectReject(1, protocol.CodeMalformed, protocol.NoIndex)
			h.awaitReject(t, 1, protocol.CodeMalformed, "-")
			c.ping()
			h.held[hostileAgency] = c
		}},
		{"a bad row after a valid batch", func(t *testing.T, h *hostileEnv) {
			// Batch 1 is stored; batch 2, whose last row is bad, is refused
			// whole, its good rows too, and its number is not used up.
			c := h.identify(t, hostileAgency)
			c.sendBets(h.bets[hostileAgency][:5], 5)
			bad := protocol.Batch{Seq: 2, Count: 3, Rows: append(rowsOf(h.bets[hostileAgency][5:7]...), "Intruso,Hostil,99999999,1990-01-01,07574\n"...)}
			c.send(bad)
			r := c.expectReject(2, protocol.CodeInvalidBet, 2)
			assert.Contains(t, r.Text, notDecimal)
			h.awaitReject(t, 3, protocol.CodeInvalidBet, "2")
			c.ping()
			h.held[hostileAgency] = c // goes on with seq 2 after 5 bets
		}},
		errorAfter("batch shorter than its sequence number and count",
			[]byte{byte(protocol.MsgBatch), 0, 0, 0, 3, 0, 0, 0}, protocol.CodeMalformed),
		{"replayed batch", func(t *testing.T, h *hostileEnv) {
			c := h.identify(t, hostileAgency)
			first := h.bets[hostileAgency][:10]
			c.sendBets(first, 10)
			c.send(batchOf(1, first...))
			c.expectReject(1, protocol.CodeBadSequence, protocol.NoIndex)
			h.awaitReject(t, 10, protocol.CodeBadSequence, "-")
			h.held[hostileAgency] = c // goes on with seq 2: stored exactly once
		}},
		{"batch sequence skips ahead", func(t *testing.T, h *hostileEnv) {
			c := h.identify(t, hostileAgency)
			c.send(batchOf(2, h.bets[hostileAgency][:5]...))
			c.expectReject(2, protocol.CodeBadSequence, protocol.NoIndex)
			h.awaitReject(t, 5, protocol.CodeBadSequence, "-")
			h.held[hostileAgency] = c
		}},
		{"batch sequence zero", func(t *testing.T, h *hostileEnv) {
			c := h.identify(t, hostileAgency)
			c.send(batchOf(0, h.bets[hostileAgency][:5]...))
			c.expectReject(0, protocol.CodeBadSequence, protocol.NoIndex)
			h.awaitReject(t, 5, protocol.CodeBadSequence, "-")
			h.held[hostileAgency] = c
		}},
		{"sequence restarts at 1 on a new connection", func(t *testing.T, h *hostileEnv) {
			c := h.identify(t, hostileAgency)
			c.sendBets(h.bets[hostileAgency][:10], 5) // seq 1 and 2
			c.conn.Close()
			c = h.identify(t, hostileAgency)
			require.EqualValues(t, 10, c.stored, "HELLO_ACK counts the bets already held")
			h.held[hostileAgency] = c // goes on with seq 1
		}},

		// FINISH and the draw.
		{"bets after the agency's own FINISH", func(t *testing.T, h *hostileEnv) {
			c := h.complete(t, hostileAgency)
			c.send(batchOf(c.seq, intruder()))
			c.expectReject(c.seq, protocol.CodeAfterFinish, protocol.NoIndex)
			h.awaitReject(t, 1, protocol.CodeAfterFinish, "-")
		}},
		{"FINISH twice", func(t *testing.T, h *hostileEnv) {
			c := h.complete(t, hostileAgency)
			c.send(protocol.Finish{Total: uint64(len(h.bets[hostileAgency]))})
			c.expectError(protocol.CodeAfterFinish)
			h.awaitProtocolFail(t, protocol.CodeAfterFinish)
			h.held[hostileAgency] = nil
		}},
		{"FINISH again after reconnecting", func(t *testing.T, h *hostileEnv) {
			h.complete(t, hostileAgency).conn.Close()
			h.held[hostileAgency] = nil
			c := h.identify(t, hostileAgency)
			require.True(t, c.finished, "HELLO_ACK must say the agency finished")
			c.send(protocol.Finish{Total: uint64(len(h.bets[hostileAgency]))})
			c.expectError(protocol.CodeAfterFinish)
			h.awaitProtocolFail(t, protocol.CodeAfterFinish)
		}},
		{"FINISH with a wrong total", func(t *testing.T, h *hostileEnv) {
			c := h.identify(t, hostileAgency)
			c.send(protocol.Finish{Total: uint64(len(h.bets[hostileAgency]))})
			c.expectError(protocol.CodeCountMismatch)
			h.awaitProtocolFail(t, protocol.CodeCountMismatch)
		}},
		{"FINISH counting a refused batch", func(t *testing.T, h *hostileEnv) {
			c := h.identify(t, hostileAgency)
			c.send(withBadBet(1, func(b *lottery.Bet) { b.Number = 10000 }))
			c.expectReject(1, protocol.CodeInvalidBet, 2)
			c.send(protocol.Finish{Total: 4})
			c.expectError(protocol.CodeCountMismatch)
			h.awaitProtocolFail(t, protocol.CodeCountMismatch)
		}},
		{"CONSULT for another agency", func(t *testing.T, h *hostileEnv) {
			c := h.identify(t, hostileAgency)
			c.send(protocol.Consult{Agency: 1})
			c.expectError(protocol.CodeWrongAgency)
			h.awaitProtocolFail(t, protocol.CodeWrongAgency)
		}},
		{"CONSULT for another agency after the draw", func(t *testing.T, h *hostileEnv) {
			h.drawn(t)
			c := h.held[hostileAgency]
			c.send(protocol.Consult{Agency: 1})
			c.expectError(protocol.CodeWrongAgency) // an ERROR, never agency 1's winners
			h.awaitProtocolFail(t, protocol.CodeWrongAgency)
			h.held[hostileAgency] = nil
		}},
		{"CONSULT before the agency's own FINISH", func(t *testing.T, h *hostileEnv) {
			c := h.identify(t, hostileAgency)
			c.sendBets(h.bets[hostileAgency][:5], 5)
			c.send(protocol.Consult{Agency: hostileAgency})
			c.expectError(protocol.CodeNotFinished)
			h.awaitProtocolFail(t, protocol.CodeNotFinished)
		}},
		{"data while waiting for the draw", func(t *testing.T, h *hostileEnv) {
			c := h.complete(t, hostileAgency)
			c.send(protocol.Consult{Agency: hostileAgency})
			h.tc.logs.AwaitT(t, 1, vocab.EsperaSorteo.Line(logfmt.InProgress), vocab.Agencia.Int(hostileAgency).String())
			c.send(protocol.Ping{})
			c.expectError(protocol.CodeUnexpected)
			h.awaitProtocolFail(t, protocol.CodeUnexpected)
			h.held[hostileAgency] = nil
		}},
		{"bets after the draw", func(t *testing.T, h *hostileEnv) {
			h.drawn(t)
			c := h.identify(t, 1) // the honest agency 1 left after its winners
			require.True(t, c.finished)
			c.send(batchOf(1, intruder()))
			c.expectReject(1, protocol.CodeDrawDone, protocol.NoIndex)
			h.awaitReject(t, 1, protocol.CodeDrawDone, "-")
			c.ping()
		}},
		{"bets after the draw on the finished agency's connection", func(t *testing.T, h *hostileEnv) {
			h.drawn(t)
			c := h.held[hostileAgency]
			c.send(batchOf(c.seq, intruder()))
			c.expectReject(c.seq, protocol.CodeDrawDone, protocol.NoIndex)
			h.awaitReject(t, 1, protocol.CodeDrawDone, "-")
		}},
	}
	for _, tt := range cases {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			h := newHostileEnv(t)
			tt.run(t, h)
			h.verify(t)
		})
	}
}

// A parked agency learns that the central is shutting down (SPEC rule 7)
// instead of seeing its connection just drop.
func TestParkedAgencyToldOfShutdown(t *testing.T) {
	cfg := testConfig(t)
	cfg.Agencies = 2
	tc := startCentral(t, cfg)
	c := dialRaw(t, tc.addr)
	c.hello(1)
	c.send(batchOf(1, intruder()))
	c.expect(protocol.MsgBatchAck)
	c.finish(1)
	c.send(protocol.Consult{Agency: 1})
	tc.logs.AwaitT(t, 1, vocab.EsperaSorteo.Line(logfmt.InProgress), vocab.Agencia.Int(1).String())

	tc.stop()
	c.expectError(protocol.CodeShuttingDown)
	assert.Equal(t, 1, tc.logs.Count(vocab.Protocolo.Line(logfmt.Fail), vocab.Motivo.Str("shutting_down").String()+" |"))
	assert.Zero(t, tc.logs.Count(logfmttest.AnyLine(vocab.Sorteo)))
}

// The idle timeout cuts silent and slow peers, whatever they do in between.
func TestIdleTimeout(t *testing.T) {
	const idle = 300 * time.Millisecond
	tests := []struct {
		name string
		peer func(t *testing.T, c *rawConn, stop <-chan struct{})
	}{
		{"silent connection", func(t *testing.T, c *rawConn, stop <-chan struct{}) {}},
		{"silent after HELLO", func(t *testing.T, c *rawConn, stop <-chan struct{}) { c.hello(1) }},
		{"silent after a batch", func(t *testing.T, c *rawConn, stop <-chan struct{}) {
			c.hello(1)
			c.send(batchOf(1, intruder()))
			c.expect(protocol.MsgBatchAck)
		}},
		{"stalled inside a header", func(t *testing.T, c *rawConn, stop <-chan struct{}) {
			c.write([]byte{byte(protocol.MsgHello), 0})
		}},
		{"stalled inside a payload", func(t *testing.T, c *rawConn, stop <-chan struct{}) {
			c.hello(1)
			b, err := protocol.AppendMessage(nil, batchOf(1, intruder()))
			require.NoError(t, err)
			c.write(b[:len(b)-1])
		}},
		{"one byte at a time, each within the timeout", func(t *testing.T, c *rawConn, stop <-chan struct{}) {
			// A HELLO dripped one byte every idle/3 would take over three
			// timeouts; the deadline is per frame, so the drip does not keep it alive.
			b, err := protocol.AppendMessage(nil, protocol.Hello{Version: protocol.Version, Agency: 1})
			require.NoError(t, err)
			go func() {
				tick := time.NewTicker(idle / 3)
				defer tick.Stop()
				for _, x := range b {
					select {
					case <-stop:
						return
					case <-tick.C:
					}
					if _, err := c.conn.Write([]byte{x}); err != nil {
						return
					}
				}
			}()
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			cfg := testConfig(t)
			cfg.IdleTimeout = idle
			tc := startCentral(t, cfg)
			start := time.Now() // before the dial: the central's clock starts at its accept
			c := dialRaw(t, tc.addr)
			stop := make(chan struct{})
			defer close(stop)
			tt.peer(t, c, stop)
			c.expectError(protocol.CodeIdleTimeout)
			assert.GreaterOrEqual(t, time.Since(start), idle, "cut before the timeout")
			tc.logs.AwaitT(t, 1, vocab.Protocolo.Line(logfmt.Fail), vocab.Motivo.Str("idle_timeout").String()+" |")
			tc.logs.AwaitT(t, 1, vocab.CerrarConexion.Line(logfmt.Success))
		})
	}
}

// An agency parked for the draw is never cut by the idle timeout, however
// long the draw takes.
func TestParkedAgencyOutlivesIdleTimeout(t *testing.T) {
	const idle = 300 * time.Millisecond
	dir := t.TempDir()
	_, err := lottery.GenerateAgencyFiles(dir, 2, 300, 11)
	require.NoError(t, err)
	cfg := testConfig(t)
	cfg.Agencies = 2
	cfg.IdleTimeout = idle
	tc := startCentral(t, cfg)

	parked := runAgency(t.Context(), agencyConfig(tc, dir, 1))
	tc.logs.AwaitT(t, 1, vocab.EsperaSorteo.Line(logfmt.InProgress), vocab.Agencia.Int(1).String())
	// Four idle timeouts of other connections, one after the other: more
	// than four timeouts pass while agency 1 waits.
	for i := 1; i <= 4; i++ {
		c := dialRaw(t, tc.addr)
		c.expectError(protocol.CodeIdleTimeout)
		tc.logs.AwaitT(t, i, vocab.Protocolo.Line(logfmt.Fail), vocab.Motivo.Str("idle_timeout").String()+" |")
	}
	require.Equal(t, 4, tc.logs.Count(vocab.Protocolo.Line(logfmt.Fail)), "only the idle probes were cut:\n%s", tc.logs.String())
	select {
	case r := <-parked:
		t.Fatalf("agency 1 returned before the draw: %+v", r)
	default:
	}

	last := <-runAgency(t.Context(), agencyConfig(tc, dir, 2))
	require.NoError(t, last.err)
	r := <-parked
	require.NoError(t, r.err)
	assert.ElementsMatch(t, expectedWinners(t, filepath.Join(dir, lottery.AgencyFileName(1)), 1), r.docs)
	assert.ElementsMatch(t, expectedWinners(t, filepath.Join(dir, lottery.AgencyFileName(2)), 2), last.docs)
}

// The connection cap refuses the excess with an error and frees a slot as
// soon as a connection leaves: an agency refused at the cap gets through
// (it retries) once another connection has gone.
func TestConnectionCap(t *testing.T) {
	const limit = 3
	dir := t.TempDir()
	_, err := lottery.GenerateAgencyFiles(dir, 1, 200, 5)
	require.NoError(t, err)
	cfg := testConfig(t)
	cfg.Agencies = 1
	cfg.MaxConnections = limit
	tc := startCentral(t, cfg)
	refused := func(n int) {
		t.Helper()
		tc.logs.AwaitT(t, n, vocab.AceptarConexion.Line(logfmt.Fail), vocab.Motivo.Str("too_many_connections").String())
	}

	idle := make([]*rawConn, limit)
	for i := range idle {
		idle[i] = dialRaw(t, tc.addr)
	}
	tc.logs.AwaitT(t, limit, vocab.AceptarConexion.Line(logfmt.Success))
	for i := 1; i <= 2; i++ {
		excess := dialRaw(t, tc.addr)
		excess.expectError(protocol.CodeTooManyConns)
		refused(i)
	}
	require.Equal(t, limit, tc.logs.Count(vocab.AceptarConexion.Line(logfmt.Success)))

	acfg := agencyConfig(tc, dir, 1)
	acfg.MaxRetries = 50
	honest := runAgency(t.Context(), acfg)
	refused(3) // the agency met the cap too

	idle[0].ping()
	idle[0].expectClosed() // PING first: answered, then closed, which frees a slot
	r := <-honest
	require.NoError(t, r.err)
	assert.ElementsMatch(t, expectedWinners(t, filepath.Join(dir, lottery.AgencyFileName(1)), 1), r.docs)

	idle[1].ping() // the connections that stayed are still served
	idle[1].expectClosed()
}

// A parked agency whose socket dies releases its goroutine at once, and the
// agencies parked beside it keep waiting and get their winners.
func TestParkedAgencyDisconnect(t *testing.T) {
	dir := t.TempDir()
	_, err := lottery.GenerateAgencyFiles(dir, 3, 200, 9)
	require.NoError(t, err)
	cfg := testConfig(t)
	cfg.Agencies = 3
	tc := startCentral(t, cfg)
	bets := agencyBetsIn(t, dir, 1)

	other := runAgency(t.Context(), agencyConfig(tc, dir, 2))
	tc.logs.AwaitT(t, 1, vocab.EsperaSorteo.Line(logfmt.InProgress), vocab.Agencia.Int(2).String())
	before := goleak.IgnoreCurrent() // agency 2 parked, agency 1 not connected yet

	c := dialRaw(t, tc.addr)
	c.hello(1)
	c.sendBets(bets[1], 50)
	c.finish(len(bets[1]))
	c.send(protocol.Consult{Agency: 1})
	tc.logs.AwaitT(t, 1, vocab.EsperaSorteo.Line(logfmt.InProgress), vocab.Agencia.Int(1).String())
	require.ErrorContains(t, goleak.Find(before), "(*session).park", "agency 1's session is parked")

	require.NoError(t, c.conn.Close())
	gone := vocab.EsperaSorteo.Line(logfmt.Fail, vocab.Agencia.Int(1), vocab.Motivo.Str("conexion_cerrada"))
	tc.logs.AwaitT(t, 1, gone)
	level, _ := tc.logs.LevelOf(gone)
	assert.Equal(t, logrus.WarnLevel, level, "an agency gone while parked is worth an operator's look")
	assert.Equal(t, 1, tc.logs.Count(gone, "| "+string(vocab.Error)+": ", io.EOF.Error()), "the line says why: the agency closed its side")
	tc.logs.AwaitT(t, 1, vocab.CerrarConexion.Line(logfmt.Success, vocab.Agencia.Int(1))+" |")
	goleak.VerifyNone(t, before) // its session and the watcher on its socket are gone

	select {
	case r := <-other:
		t.Fatalf("agency 2 answered before the draw: %+v", r)
	default:
	}
	assert.Zero(t, tc.logs.Count(vocab.EsperaSorteo.Line(logfmt.Fail, vocab.Agencia.Int(2))))

	// Agency 1 comes back: it is already counted, so it goes straight to CONSULT.
	back := dialRaw(t, tc.addr)
	require.True(t, back.hello(1).Finished)
	back.send(protocol.Consult{Agency: 1})
	tc.logs.AwaitT(t, 2, vocab.EsperaSorteo.Line(logfmt.InProgress), vocab.Agencia.Int(1).String())

	last := <-runAgency(t.Context(), agencyConfig(tc, dir, 3))
	require.NoError(t, last.err)
	assert.ElementsMatch(t, expectedWinners(t, filepath.Join(dir, lottery.AgencyFileName(1)), 1), back.readWinners())
	r := <-other
	require.NoError(t, r.err)
	assert.ElementsMatch(t, expectedWinners(t, filepath.Join(dir, lottery.AgencyFileName(2)), 2), r.docs)
	assert.Equal(t, 1, tc.logs.Count(vocab.Sorteo.Line(logfmt.Success)))
}
