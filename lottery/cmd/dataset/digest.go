package main

import (
	"fmt"
	"io"
	"path/filepath"
	"slices"
	"strconv"
	"strings"

	"lotterycentral.example/lottery"
	"lotterycentral.example/lottery/wire"
	"lotterycentral.example/protocol"
)

// usageError is a flag value that is wrong only against what it names (an
// agency not in -dir): a usage error found by the action, exit 2.
type usageError struct{ err error }

func (e *usageError) Error() string { return e.err.Error() }
func (e *usageError) Unwrap() error { return e.err }

// agencyDigest is one agency's file: its bets and their digest, as the
// central would store them.
type agencyDigest struct {
	agency   int
	bets     uint64
	digest   protocol.Digest
	excluded bool
}

// parseAgencies reads -exclude: agency numbers and ranges, comma-separated,
// as the central's lines write them ("3", "3,4", "1-3,7"); "" is none.
func parseAgencies(s string) ([]int, error) {
	if s == "" {
		return nil, nil
	}
	var agencies []int
	for item := range strings.SplitSeq(s, ",") {
		lo, hi, isRange := strings.Cut(item, "-")
		first, err := agencyNumber(lo, item)
		if err != nil {
			return nil, err
		}
		last := first
		if isRange {
			if last, err = agencyNumber(hi, item); err != nil {
				return nil, err
			}
			if last < first {
				return nil, fmt.Errorf("%q: a range is low-high (%d-%d)", item, last, first)
			}
		}
		for n := first; n <= last; n++ {
			agencies = append(agencies, n)
		}
	}
	slices.Sort(agencies)
	return slices.Compact(agencies), nil
}

// agencyNumber reads one agency number, s, of the -exclude item item.
func agencyNumber(s, item string) (int, error) {
	n, err := strconv.Atoi(s)
	if err != nil || n < 1 || s != strconv.Itoa(n) {
		return 0, fmt.Errorf("%q is not an agency number (1, 2, ...; a range is 1-3)", item)
	}
	return n, nil
}

// digestDir digests each agency-N.csv file in dir, sorted by N, and marks
// those in exclude, which must all be agencies of dir and leave one out.
func digestDir(dir string, exclude []int) ([]agencyDigest, error) {
	agencies, err := agencyFiles(dir)
	if err != nil {
		return nil, err
	}
	for _, n := range exclude {
		if _, found := slices.BinarySearch(agencies, n); !found {
			return nil, &usageError{fmt.Errorf("-exclude %d: no agency-%d.csv in %s (its agencies: %s)", n, n, dir, joinInts(agencies))}
		}
	}
	if len(exclude) == len(agencies) {
		return nil, &usageError{fmt.Errorf("-exclude leaves no agency of %s in the round: every one of %s is excluded", dir, joinInts(agencies))}
	}
	digests := make([]agencyDigest, len(agencies))
	for i, agency := range agencies {
		d := &digests[i]
		d.agency = agency
		_, d.excluded = slices.BinarySearch(exclude, agency)
		d.bets, d.digest, err = wire.FileDigest(filepath.Join(dir, lottery.AgencyFileName(agency)))
		if err != nil {
			return nil, fmt.Errorf("digest agency %d: %w", agency, err)
		}
	}
	return digests, nil
}

// roundDigest is the round's digest of the agencies not excluded, in order.
func roundDigest(digests []agencyDigest) protocol.Digest {
	var in []protocol.Digest
	for _, d := range digests {
		if !d.excluded {
			in = append(in, d.digest)
		}
	}
	return protocol.RoundDigest(in)
}

// printDigests prints "agency N: bets B digest HEX" per agency, with
// " excluded" after an excluded one's, then "round: HEX".
func printDigests(w io.Writer, digests []agencyDigest) error {
	var b strings.Builder
	for _, d := range digests {
		fmt.Fprintf(&b, "agency %d: bets %d digest %s", d.agency, d.bets, d.digest)
		if d.excluded {
			b.WriteString(" excluded")
		}
		b.WriteByte('\n')
	}
	fmt.Fprintf(&b, "round: %s\n", roundDigest(digests))
	_, err := io.WriteString(w, b.String())
	return err
}

func joinInts(ns []int) string {
	s := make([]string, len(ns))
	for i, n := range ns {
		s[i] = strconv.Itoa(n)
	}
	return strings.Join(s, ",")
}
