package protocol

import (
	"bytes"
	"encoding/hex"
	"fmt"
	"os"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"github.com/zeebo/blake3"
)

// readSpec returns the text of SPEC.md.
func readSpec(t *testing.T) string {
	t.Helper()
	b, err := os.ReadFile("SPEC.md")
	require.NoError(t, err)
	return string(b)
}

func spaced(b []byte) string {
	h := hex.EncodeToString(b)
	var parts []string
	for i := 0; i < len(h); i += 2 {
		parts = append(parts, h[i:i+2])
	}
	return strings.Join(parts, " ")
}

// specRecords are the bets of the BATCH example, agency 3's, as fields.
var specRecords = [][]string{
	{"Ana", "Pérez", "1", "1990-01-02", "7574"},
	{`Juan "el Pibe"`, "Lorca", "30904465", "1999-03-17", "42"},
}

// specRows are those bets' rows as SPEC.md prints them (without their LF).
var specRows = []string{
	`Ana,Pérez,1,1990-01-02,7574`,
	`"Juan ""el Pibe""",Lorca,30904465,1999-03-17,42`,
}

// specBatchRows is the BATCH example's rows, LF included: what agency 3's
// digest covers in the FINISH_ACK example.
func specBatchRows(t *testing.T) []byte {
	var rows []byte
	for i, rec := range specRecords {
		row := csvRow(rec...)
		require.Equal(t, specRows[i]+"\n", string(row), "encoding/csv writes the example's row %d so", i)
		rows = append(rows, row...)
	}
	require.Len(t, rows, 77, "SPEC.md says so")
	return rows
}

// TestSpecExamples keeps the worked examples in SPEC.md true to the encoder.
func TestSpecExamples(t *testing.T) {
	// Whitespace folded to one space, so hex dumps match however they are wrapped.
	spec := strings.Join(strings.Fields(readSpec(t)), " ")
	rows := specBatchRows(t)
	tests := []struct {
		name string
		m    Message
	}{
		{"HELLO", Hello{Version: Version, Agency: 3}},
		{"HELLO_ACK", HelloAck{Version: Version}},
		{"BATCH", Batch{Seq: 1, Count: 2, Rows: rows}},
		{"BATCH_ACK", BatchAck{Seq: 1}},
		{"BATCH_REJECT", BatchReject{Seq: 2, Code: CodeInvalidBet, Index: 1, Text: "invalid bet: last_name: empty"}},
		{"INFORM_AGENCY_WINNERS", Winners{Total: 1, Documents: []string{"1"}}},
		{"FINISH", Finish{Total: 2}},
		// The digest of the BATCH example's two bets: BLAKE3 of its rows.
		{"FINISH_ACK", FinishAck{Stored: 2, Digest: blake3.Sum256(rows)}},
		{"FINISH_ACK of no bets", FinishAck{Digest: blake3.Sum256(nil)}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			frame := encode(t, tt.m)
			if ack, ok := tt.m.(FinishAck); ok {
				// The digest stands in SPEC.md in hex, besides its frame.
				assert.Contains(t, spec, hex.EncodeToString(ack.Digest[:]), "SPEC.md lacks the digest")
				if ack.Stored == 0 {
					return
				}
			}
			assert.Contains(t, spec, spaced(frame), "SPEC.md lacks the frame %x", frame)
		})
	}
	// The BATCH example's stated sizes.
	batch := encode(t, tests[2].m)
	assert.Len(t, batch, 88)
	assert.Equal(t, uint32(83), Header(batch[:HeaderSize]).Length())
	for _, row := range specRows {
		assert.Contains(t, spec, row, "SPEC.md prints the row")
	}
}

// TestSpecBetsFile: the digest section's bets file, cut as its command
// cuts it (grep '^3,' | cut -d, -f2-), hashes to the FINISH_ACK example's
// digest.
func TestSpecBetsFile(t *testing.T) {
	spec := readSpec(t)
	lines := []string{
		"3," + specRows[0],
		"1,Ana,Paz,2,1980-05-06,12",
		"3," + specRows[1],
	}
	block := "```\n" + strings.Join(lines, "\n") + "\n```"
	require.Contains(t, spec, block, "SPEC.md's bets file")
	assert.Contains(t, spec, "grep '^3,' bets.csv | cut -d, -f2- | b3sum")

	var cut []byte
	for _, line := range lines {
		if agency, rest, _ := strings.Cut(line, ","); agency == "3" {
			cut = append(append(cut, rest...), '\n')
		}
	}
	assert.Equal(t, specBatchRows(t), cut)
	want := Digest(blake3.Sum256(cut))
	assert.Contains(t, spec, want.String()+"  -", "b3sum's output in SPEC.md")
}

// TestSpecVersion: the title and HELLO speak of this version, and of the
// versions it refuses.
func TestSpecVersion(t *testing.T) {
	spec := strings.Join(strings.Fields(readSpec(t)), " ")
	assert.Contains(t, spec, fmt.Sprintf("# Lottery central wire protocol, version %d", Version))
	assert.Contains(t, spec, fmt.Sprintf("Protocol version: `%d`.", Version))
	assert.Contains(t, spec, fmt.Sprintf("Protocol version the central speaks: `%d`.", Version))
	assert.Contains(t, spec, fmt.Sprintf("Every other type code is unknown in version %d.", Version))
}

// TestSpecTables checks that SPEC.md lists every message type and error code as const.go names them.
func TestSpecTables(t *testing.T) {
	spec := readSpec(t)

	typeRow := regexp.MustCompile("(?m)^\\| `0x([0-9A-F]{2})` \\| ([A-Z_]+) +\\|")
	types := map[MsgType]string{}
	for _, m := range typeRow.FindAllStringSubmatch(spec, -1) {
		v, err := strconv.ParseUint(m[1], 16, 8)
		require.NoError(t, err)
		types[MsgType(v)] = m[2]
	}
	want := map[MsgType]string{}
	for typ, name := range msgNames {
		want[typ] = name
	}
	assert.Equal(t, want, types, "the message type table")

	codeRow := regexp.MustCompile("(?m)^\\| +([0-9]+) +\\| `([a-z_]+)` +\\|")
	codes := map[Code]string{}
	for _, m := range codeRow.FindAllStringSubmatch(spec, -1) {
		v, err := strconv.ParseUint(m[1], 10, 16)
		require.NoError(t, err)
		codes[Code(v)] = m[2]
	}
	wantCodes := map[Code]string{}
	for c, name := range codeNames {
		wantCodes[c] = name
	}
	assert.Equal(t, wantCodes, codes, "the error code table")

	for _, s := range []string{
		fmt.Sprintf("%d bytes (8 KiB)", MaxClientFrame), fmt.Sprintf("%d", MaxClientPayload),
		fmt.Sprintf("%d bytes (64 KiB)", MaxServerFrame), fmt.Sprintf("%d", MaxServerPayload),
		fmt.Sprintf("= %d` bets", MaxBatchBets), fmt.Sprintf("0–%d", MaxText),
	} {
		assert.Contains(t, spec, s)
	}
	assert.True(t, bytes.Contains([]byte(spec), []byte("0xFFFFFFFF")), "NoIndex")
}
