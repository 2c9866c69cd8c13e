// Package wire carries a lottery.Bet onto the wire: as BATCH carries it, and
// into the digest of an agency's file (protocol.Digest), the one value an
// agency, bin/dataset digest and a recovering central must all compute alike.
package wire

import (
	"fmt"
	"math"

	"lotterycentral.example/lottery"
	"lotterycentral.example/protocol"
)

// Bet is b as BATCH carries it. The central validates every bet and its
// refusal names the bet, so only what the wire cannot carry is refused
// here: a number past 16 bits would wrap into a valid one.
func Bet(b lottery.Bet) (protocol.Bet, error) {
	if b.Number < 0 || b.Number > math.MaxUint16 {
		return protocol.Bet{}, &lottery.FieldError{Field: "number", Reason: "out of range 0..9999"}
	}
	return protocol.Bet{Agency: uint32(b.Agency), FirstName: b.FirstName, LastName: b.LastName,
		Document: b.Document, Birthdate: b.Birthdate, Number: uint16(b.Number)}, nil
}

// AppendBet appends b encoded as BATCH encodes it: a stored bet back into
// what its agency's digest covers.
func AppendBet(dst []byte, b lottery.Bet) ([]byte, error) {
	wb, err := Bet(b)
	if err != nil {
		return dst, err
	}
	return protocol.AppendBet(dst, wb)
}

// FileDigest reads agency's file at path and returns how many bets it holds
// and their digest: what the central's digest of that agency must be.
func FileDigest(path string, agency int) (uint64, protocol.Digest, error) {
	var n uint64
	w := protocol.NewDigestWriter()
	for b, err := range lottery.ReadAgencyFile(path, agency) {
		if err != nil {
			return 0, protocol.Digest{}, err // it names the file and the line
		}
		wb, err := Bet(b)
		if err == nil {
			err = w.Bet(wb)
		}
		if err != nil {
			return 0, protocol.Digest{}, fmt.Errorf("%s: bet %d: %w", path, n+1, err)
		}
		n++
	}
	return n, w.Sum(), nil
}
