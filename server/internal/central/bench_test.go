package central

import (
	"testing"

	"lotterycentral.example/lottery"
)

// BenchmarkIngest runs the whole draw in process: five agencies of 100,000
// bets each over loopback, from the first connection to the last winners.
// metrics=off is the central without metrics (SERVER_ADMIN_ADDRESS=off);
// metrics=on counts everything and serves its admin listener, as the binary
// does by default: the two should be within noise of each other. tls=on is
// metrics=off with mutual TLS.
func BenchmarkIngest(b *testing.B) {
	const agencies, bets = 5, 100_000
	dir := b.TempDir()
	if _, err := lottery.GenerateAgencyFiles(dir, agencies, bets, 1); err != nil {
		b.Fatal(err)
	}
	certs := newTrustPKI(b, agencies)
	for _, bm := range []struct {
		name    string
		metrics bool
		tls     bool
	}{{"metrics=off", false, false}, {"metrics=on", true, false}, {"tls=on", false, true}} {
		b.Run(bm.name, func(b *testing.B) {
			b.ReportAllocs()
			for range b.N {
				b.StopTimer()
				cfg := testConfig(b)
				cfg.Agencies = agencies
				cfg.LogLevel = "info"
				if bm.tls {
					certs.serveTLS(&cfg)
				}
				var tc *testCentral
				if bm.metrics {
					tc = startObserved(b, cfg, nil).testCentral
				} else {
					tc = startCentral(b, cfg)
				}
				b.StartTimer()
				var chans []<-chan agencyResult
				for id := 1; id <= agencies; id++ {
					acfg := agencyConfig(tc, dir, id)
					if bm.tls {
						acfg.TLSCert, acfg.TLSKey, acfg.TLSCA = certs.agencies[id].certFile, certs.agencies[id].keyFile, certs.caFile
					}
					chans = append(chans, runAgency(b.Context(), acfg))
				}
				for _, ch := range chans {
					if r := <-ch; r.err != nil {
						b.Fatal(r.err)
					}
				}
				b.StopTimer()
				tc.stop()
			}
			b.ReportMetric(float64(agencies*bets)*float64(b.N)/b.Elapsed().Seconds(), "bets/s")
		})
	}
}
