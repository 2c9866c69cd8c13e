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

// TestSpecExamples keeps the worked examples in SPEC.md true to the encoder.
func TestSpecExamples(t *testing.T) {
	// Whitespace folded to one space, so hex dumps match however they are wrapped.
	spec := strings.Join(strings.Fields(readSpec(t)), " ")
	tests := []struct {
		name string
		m    Message
	}{
		{"HELLO", Hello{Version: Version, Agency: 3}},
		{"HELLO_ACK", HelloAck{Version: Version}},
		{"BATCH", Batch{Seq: 1, Bets: []Bet{{Agency: 3, FirstName: "Santiago Lionel", LastName: "Lorca",
			Document: "30904465", Birthdate: "1999-03-17", Number: 7574}}}},
		{"BATCH_ACK", BatchAck{Seq: 1}},
		{"INFORM_AGENCY_WINNERS", Winners{Total: 1, Documents: []string{"30904465"}}},
		{"FINISH", Finish{Total: 1}},
		// The digest of the BATCH example's one bet: BLAKE3 of its encoding.
		{"FINISH_ACK", FinishAck{Stored: 1, Digest: blake3.Sum256(specBet(t))}},
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
	assert.Len(t, batch, 59)
	assert.Equal(t, uint32(54), Header(batch[:HeaderSize]).Length())
}

// specBet is the BATCH example's one bet, encoded.
func specBet(t *testing.T) []byte {
	b, err := AppendBet(nil, Bet{Agency: 3, FirstName: "Santiago Lionel", LastName: "Lorca",
		Document: "30904465", Birthdate: "1999-03-17", Number: 7574})
	require.NoError(t, err)
	require.Len(t, b, 48, "SPEC.md says so")
	return b
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
