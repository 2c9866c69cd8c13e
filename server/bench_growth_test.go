package main

// BenchmarkGrowth measures how a round's cost grows with its work: the bets
// (1M, 10M and 30M from 100 agencies) and the agency processes (10, 100 and
// 500 sending 10M bets in all). `make bench` runs it once after its rounds and
// server/cmd/bench draws it (docs/bench-growth.svg) and tabulates it:
//
//	go test -run '^$' -bench '^BenchmarkGrowth$' -benchtime 1x .
//
// Each sub-benchmark, bets=B/agencies=A, is one point; one op is one whole
// run with mutual TLS, as shipped, by runE2E (bench_test.go), so it reports
// the same figures as BenchmarkScale's tls=on: end to end (ns/op), the CPU of
// the central and of the agencies (central-cpu-s, agencies-cpu-s), the
// central's peak RSS (central-MiB), and the rest. 10M bets from 100 agencies
// belongs to both series and runs once. The datasets are generated like
// BenchmarkScale's (A agencies of B/A bets each, seed 1) and share their
// directories under BENCH_DIR: 10M from 100 is BenchmarkScale's own.
//
// BENCH_GROWTH_DIVISOR divides every point's bets (make bench BENCH_QUICK=1
// passes 100), to check the pipeline in a minute.
//
// The central's caps stay as shipped but for the one runE2E raises: every
// agency dials from 127.0.0.1, so the cap of unidentified connections per
// source is the agencies' count, as if each had its own host. 500 agencies
// are within SERVER_MAX_CONNECTIONS (2048); SERVER_MAX_UNIDENTIFIED (256 in
// all) applies as it would to 500 hosts: an agency it refuses retries.

import (
	"fmt"
	"testing"

	"github.com/stretchr/testify/require"

	"lotterycentral.example/lottery"
	"lotterycentral.example/protocol/pki"
)

// growthPoints are BenchmarkGrowth's runs: the series by bets, at 100
// agencies, then the one by agencies, at 10M bets (its 100 run above).
var growthPoints = []struct{ bets, agencies int }{
	{1_000_000, 100}, {10_000_000, 100}, {30_000_000, 100},
	{10_000_000, 10}, {10_000_000, 500},
}

func BenchmarkGrowth(b *testing.B) {
	divisor := envInt(b, "BENCH_GROWTH_DIVISOR", 1)
	if divisor < 1 {
		b.Fatalf("BENCH_GROWTH_DIVISOR=%d: want 1 or more", divisor)
	}
	dir, err := binaries()
	require.NoError(b, err)
	tree := build{"the tree's", dir}
	for _, p := range growthPoints {
		// Whole agency files: the name says the bets the run really sends.
		perAgency := max(1, p.bets/divisor/p.agencies)
		b.Run(fmt.Sprintf("bets=%d/agencies=%d", perAgency*p.agencies, p.agencies), func(b *testing.B) {
			name := fmt.Sprintf("scale-%dx%d-seed1", p.agencies, perAgency)
			ds := prepareDataset(b, name, name, p.agencies, func(dir string) error {
				_, err := lottery.GenerateAgencyFiles(dir, p.agencies, perAgency, 1)
				return err
			})
			certs := b.TempDir()
			_, err := pki.WriteDir(certs, ds.Agencies, nil, false)
			require.NoError(b, err, "write the certificates of %d agencies", ds.Agencies)
			measure(b, ds, func() map[string]float64 { return runE2E(b, ds, tree, certs) })
		})
	}
}
