// Command dataset prepares agency files: it generates synthetic ones, extracts the
// official ones, and computes each agency's winners without the server, so scripts can
// check the server's answers against an independent count.
//
//	dataset generate -agencies 5 -bets 20000 -seed 1 -out .data
//	dataset extract -zip .data/dataset.zip -out .data
//	dataset winners -dir .data
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
  winners   print each agency's bets and winners

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
		action = func() error { return printWinners(stdout, *dir) }
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
	if err := action(); err != nil {
		fmt.Fprintf(stderr, "dataset: %v\n", err)
		return 1
	}
	return 0
}

// printWinners prints "agency N: bets B winners W documents D1,D2,..." per agency file,
// sorted by N; the document list is empty when nobody won.
func printWinners(w io.Writer, dir string) error {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return err
	}
	var agencies []int
	for _, e := range entries {
		if n, ok := lottery.ParseAgencyFileName(e.Name()); ok && e.Type().IsRegular() {
			agencies = append(agencies, n)
		}
	}
	if len(agencies) == 0 {
		return fmt.Errorf("no agency-N.csv files in %s", dir)
	}
	slices.Sort(agencies)
	for _, agency := range agencies {
		bets := 0
		var docs []string
		for b, err := range lottery.ReadAgencyFile(filepath.Join(dir, lottery.AgencyFileName(agency)), agency) {
			if err != nil {
				return err
			}
			bets++
			if lottery.HasWon(b) {
				docs = append(docs, b.Document)
			}
		}
		if _, err := fmt.Fprintf(w, "agency %d: bets %d winners %d documents %s\n",
			agency, bets, len(docs), strings.Join(docs, ",")); err != nil {
			return err
		}
	}
	return nil
}
