// Package wire digests an agency's file as its agency sends it
// (protocol.Digest over its rows): the one value an agency, bin/dataset
// digest and a central must all compute alike.
package wire

import (
	"lotterycentral.example/lottery"
	"lotterycentral.example/protocol"
)

// FileDigest reads the agency file at path and returns how many bets it
// holds and their digest: what the central's digest of that agency must be.
func FileDigest(path string) (uint64, protocol.Digest, error) {
	var n uint64
	w := protocol.NewDigestWriter()
	for row, err := range lottery.ReadAgencyRows(path) {
		if err != nil {
			return 0, protocol.Digest{}, err // it names the file and the line
		}
		w.Write(row)
		n++
	}
	return n, w.Sum(), nil
}
