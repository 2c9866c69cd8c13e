// Command dataset prepares agency files: it generates synthetic ones, extracts the
// official ones, and computes each agency's winners without the server, so scripts can
// check the server's answers against an independent count: from the agency files
// (-dir), or from the central's own bets file (-store), read with lottery.LoadBets.
// digest computes, from the agency files, each agency's digest and the round's, which
// the central reports after its draw (its sorteo line's digesto_ronda): the round's
// leaves out the agencies -exclude names, as the central leaves out those its operator
// excluded.
//
//	dataset generate -agencies 5 -bets 20000 -seed 1 -out .data
//	dataset extract -zip .data/dataset.zip -out .data
//	dataset winners -dir .data
//	dataset winners -store .run/bets.csv
//	dataset digest -dir .data -exclude 3,4
//
// Paths are relative to the working directory; the defaults are the repository's layout
// (make runs it from the root). generate and extract first remove any agency-N.csv already
// in the output directory, so it never mixes two datasets; other files there are kept.
package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"lotterycentral.example/lottery"
)

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

const usage = `usage: dataset <command> [flags]

commands:
  generate  write synthetic agency-N.csv files
  extract   unzip the official dataset's agency-N.csv files
  winners   print each agency's bets and winners, from its agency file (-dir)
            or from a central's bets file (-store)
  digest    print each agency's digest and, last, the round's, from the agency
            files (-dir); -exclude leaves agencies out of the round's

Run "dataset <command> -h" for a command's flags.
`

// run returns the exit code: 0 on success, 1 when the work failed, 2 on bad usage.
func run(args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		fmt.Fprint(stderr, usage)
		return 2
	}
	fs := flag.NewFlagSet("dataset "+args[0], flag.ContinueOnError)
	fs.SetOutput(stderr)
	var action func() error
	check := func() error { return nil } // the flags' combination, once parsed
	switch args[0] {
	case "generate":
		agencies := fs.Int("agencies", 5, "number of agencies")
		bets := fs.Int("bets", 20000, "bets per agency")
		seed := fs.Uint64("seed", 1, "random seed; the same seed gives the same files")
		out := fs.String("out", ".data", "output directory, created if missing; its agency-N.csv files are replaced")
		action = func() error {
			_, err := lottery.GenerateAgencyFiles(*out, *agencies, *bets, *seed)
			return err
		}
	case "extract":
		zip := fs.String("zip", ".data/dataset.zip", "the official dataset (committed in the repository)")
		out := fs.String("out", ".data", "output directory, created if missing; its agency-N.csv files are replaced")
		action = func() error {
			_, err := lottery.ExtractDataset(*zip, *out)
			return err
		}
	case "winners":
		dir := fs.String("dir", ".data", "directory holding agency-N.csv files")
		store := fs.String("store", "", "a central's bets `file`: count each agency in it instead of -dir's agency files")
		action = func() error {
			var counts []count
			var err error
			if *store != "" {
				counts, err = countStore(*store)
			} else {
				counts, err = countDir(*dir)
			}
			if err != nil {
				return err
			}
			return printCounts(stdout, counts)
		}
		check = func() error {
			set := map[string]bool{}
			fs.Visit(func(f *flag.Flag) { set[f.Name] = true })
			if set["dir"] && set["store"] {
				return errors.New("-dir and -store are mutually exclusive: count the agency files or a bets file, not both")
			}
			if set["store"] && *store == "" {
				return errors.New("-store needs a file")
			}
			return nil
		}
	case "digest":
		dir := fs.String("dir", ".data", "directory holding agency-N.csv files")
		exclude := fs.String("exclude", "", "agencies of -dir left out of the round's digest, as the central's excluidas lists them: `list` of numbers and ranges (3,4 or 1-3,7)")
		var excluded []int
		action = func() error {
			digests, err := digestDir(*dir, excluded)
			if err != nil {
				return err
			}
			return printDigests(stdout, digests)
		}
		check = func() error {
			var err error
			if excluded, err = parseAgencies(*exclude); err != nil {
				return fmt.Errorf("-exclude %q: %w", *exclude, err)
			}
			return nil
		}
	case "-h", "-help", "--help", "help":
		fmt.Fprint(stdout, usage)
		return 0
	default:
		fmt.Fprintf(stderr, "dataset: unknown command %q\n%s", args[0], usage)
		return 2
	}

	if err := fs.Parse(args[1:]); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		return 2
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(stderr, "dataset %s: unexpected arguments %q\n", args[0], fs.Args())
		fs.Usage()
		return 2
	}
	if err := check(); err != nil {
		fmt.Fprintf(stderr, "dataset %s: %v\n", args[0], err)
		fs.Usage()
		return 2
	}
	if err := action(); err != nil {
		var ue *usageError
		if errors.As(err, &ue) {
			fmt.Fprintf(stderr, "dataset %s: %v\n", args[0], err)
			fs.Usage()
			return 2
		}
		fmt.Fprintf(stderr, "dataset: %v\n", err)
		return 1
	}
	return 0
}

// count is one agency's bets and the documents of its winning ones, in file order.
type count struct {
	agency int
	bets   int
	docs   []string
}

func (c *count) add(b lottery.Bet) {
	c.bets++
	if lottery.HasWon(b) {
		c.docs = append(c.docs, b.Document)
	}
}

// printCounts prints "agency N: bets B winners W documents D1,D2,..." per count, in
// order; the document list is empty when nobody won.
func printCounts(w io.Writer, counts []count) error {
	for _, c := range counts {
		if _, err := fmt.Fprintf(w, "agency %d: bets %d winners %d documents %s\n",
			c.agency, c.bets, len(c.docs), strings.Join(c.docs, ",")); err != nil {
			return err
		}
	}
	return nil
}

// agencyFiles lists the agencies N of the agency-N.csv files in dir, in
// ascending order; none is an error.
func agencyFiles(dir string) ([]int, error) {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return nil, err
	}
	var agencies []int
	for _, e := range entries {
		if n, ok := lottery.ParseAgencyFileName(e.Name()); ok && e.Type().IsRegular() {
			agencies = append(agencies, n)
		}
	}
	if len(agencies) == 0 {
		return nil, fmt.Errorf("no agency-N.csv files in %s", dir)
	}
	slices.Sort(agencies)
	return agencies, nil
}

// countDir counts each agency-N.csv file in dir, sorted by N.
func countDir(dir string) ([]count, error) {
	agencies, err := agencyFiles(dir)
	if err != nil {
		return nil, err
	}
	counts := make([]count, len(agencies))
	for i, agency := range agencies {
		counts[i].agency = agency
		for b, err := range lottery.ReadAgencyFile(filepath.Join(dir, lottery.AgencyFileName(agency)), agency) {
			if err != nil {
				return nil, err
			}
			counts[i].add(b)
		}
	}
	return counts, nil
}

// countStore counts each agency present in the bets file at path, sorted by agency,
// reading it with lottery.LoadBets: not the central's own recovery scan, so an
// operator can check the central's answers against its file. A missing file is an
// error (LoadBets reads none as empty): a wrong path, rather than a central that
// took no bets, which leaves an empty file.
func countStore(path string) ([]count, error) {
	if _, err := os.Stat(path); err != nil {
		return nil, fmt.Errorf("bets file: %w", err)
	}
	byAgency := map[int]*count{}
	for b, err := range lottery.LoadBets(path) {
		if err != nil {
			return nil, err
		}
		c := byAgency[b.Agency]
		if c == nil {
			c = &count{agency: b.Agency}
			byAgency[b.Agency] = c
		}
		c.add(b)
	}
	counts := make([]count, 0, len(byAgency))
	for _, c := range byAgency {
		counts = append(counts, *c)
	}
	slices.SortFunc(counts, func(a, b count) int { return a.agency - b.agency })
	return counts, nil
}
