package main

import (
	"fmt"
	"path/filepath"
	"regexp"
	"strconv"
	"syscall"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"lotterycentral.example/lottery"
	"lotterycentral.example/lottery/logfmt"
	"lotterycentral.example/protocol"
	"lotterycentral.example/protocol/pki"
	"lotterycentral.example/server/internal/logtest"
	"lotterycentral.example/server/internal/vocab"
)

// tlsRound is a round of real processes over mutual TLS: the certificates
// `make certs` writes, the official dataset, and a central whose port and
// files outlive a restart.
type tlsRound struct {
	dir, certs, store string
	port              int
	admin             string
	extra             []string // more of the central's variables
}

func newTLSRound(t *testing.T) *tlsRound {
	t.Helper()
	r := &tlsRound{dir: t.TempDir(), certs: t.TempDir()}
	r.store = filepath.Join(r.dir, "bets.csv")
	_, err := lottery.ExtractDataset(officialDataset, r.dir)
	require.NoError(t, err)
	_, err = pki.WriteDir(r.certs, 5, nil, false)
	require.NoError(t, err)
	return r
}

func (r *tlsRound) cert(name string) string { return filepath.Join(r.certs, name) }

var adminURL = regexp.MustCompile(linePattern(vocab.EscucharAdmin.Line(logfmt.Success,
	vocab.Direccion.Str(pat(`(\S+)`)))) + " ")

// startCentral runs the central; after a restart it listens on the same port,
// where the agencies reconnect.
func (r *tlsRound) startCentral(t *testing.T) *proc {
	t.Helper()
	env := append([]string{"SERVER_PORT=" + strconv.Itoa(r.port),
		"SERVER_TLS_CERT=" + r.cert(pki.CentralFile), "SERVER_TLS_KEY=" + r.cert(pki.CentralKeyFile),
		"SERVER_TLS_CLIENT_CA=" + r.cert(pki.CAFile)}, r.extra...)
	srv, got := startServer(t, 5, r.store, env...)
	r.port = got
	r.admin = srv.await(t, adminURL)[1]
	srv.awaitUntil(t, "recovery", func(l string) bool { return logtest.Contains(l, vocab.Recuperacion.Line(logfmt.Success)) })
	return srv
}

func (r *tlsRound) startAgency(t *testing.T, id int) *proc {
	t.Helper()
	return startProc(t, "client", "CLI_ID="+strconv.Itoa(id),
		fmt.Sprintf("CLI_SERVER_ADDRESS=127.0.0.1:%d", r.port),
		"CLI_DATA_PATH="+filepath.Join(r.dir, lottery.AgencyFileName(id)),
		"CLI_TLS_CERT="+r.cert(pki.AgencyFile(id)), "CLI_TLS_KEY="+r.cert(pki.AgencyKeyFile(id)),
		"CLI_TLS_CA="+r.cert(pki.CAFile), "CLI_CONNECT_TIMEOUT=60s", "CLI_MAX_RETRIES=50")
}

// The round: five real agencies over mutual TLS, agency 3 killed for
// good mid-stream, the operator excludes it with `server exclude`; the other
// four get exactly their winners, the draw names agency 3 and counts only the
// drawn bets, and agency 3 is refused when it comes back. The same with the
// central restarted between the exclusion and the last FINISH.
func TestExcludeADeadAgencyEndToEnd(t *testing.T) {
	for _, restart := range []bool{false, true} {
		t.Run(fmt.Sprintf("restart between the exclusion and the last FINISH: %v", restart), func(t *testing.T) {
			r := newTLSRound(t)
			srv := r.startCentral(t)

			// Agency 3 streams, and dies for good once some of its batches are stored.
			dead := r.startAgency(t, 3)
			srv.awaitUntil(t, "a batch of agency 3", func(l string) bool {
				return logtest.Contains(l, vocab.ApuestaRecibida.Line(logfmt.Success), vocab.Agencia.Int(3).String())
			})
			require.NoError(t, dead.cmd.Process.Signal(syscall.SIGKILL))
			dead.wait(t)

			// Agencies 1, 2 and 4 finish and wait for the draw; 5 comes last.
			early := map[int]*proc{}
			for _, id := range []int{1, 2, 4} {
				early[id] = r.startAgency(t, id)
				srv.awaitUntil(t, "agency parked", func(l string) bool {
					return logtest.Contains(l, vocab.EsperaSorteo.Line(logfmt.InProgress, vocab.Agencia.Int(id)))
				})
			}

			code, line := runOrder(t, r, "exclude", "3", "-reason", "host lost for good")
			require.Equal(t, 0, code, line)
			srv.awaitUntil(t, "the exclusion", func(l string) bool {
				return logtest.Contains(l, vocab.ExcluirAgencia.Line(logfmt.Success, vocab.Agencia.Int(3)))
			})

			if restart {
				require.NoError(t, srv.cmd.Process.Signal(syscall.SIGTERM))
				require.Equal(t, 0, srv.wait(t), srv.output())
				srv = r.startCentral(t)
				srv.awaitUntil(t, "the exclusion read back", func(l string) bool {
					return logtest.Contains(l, vocab.Recuperacion.Line(logfmt.Success), vocab.AgenciasExcluidas.Int(1).String())
				})
			}
			last := r.startAgency(t, 5)

			want := map[int]int{1: 2, 2: 3, 4: 2, 5: 0}
			early[5] = last
			for id, p := range early {
				require.Equal(t, 0, p.wait(t), "agency %d:\n%s", id, p.output())
				assert.Equal(t, strconv.Itoa(want[id]), p.await(t, winnersLine)[1], "agency %d's winners", id)
			}
			assert.Equal(t, 1, srv.countParts(vocab.Sorteo.Line(logfmt.Success, vocab.Apuestas.Int(26936+25518+9238+991),
				vocab.Ganadores.Int(7), vocab.Excluidas.Str("3"))), srv.output())

			// Agency 3 comes back: refused, and told why; it does not retry.
			back := r.startAgency(t, 3)
			assert.Equal(t, 1, back.wait(t), back.output())
			assert.Contains(t, back.output(), protocol.CodeExcluded.String())

			require.NoError(t, srv.cmd.Process.Signal(syscall.SIGTERM))
			require.Equal(t, 0, srv.wait(t), srv.output())
			stored := rows(t, lottery.LoadBets(r.store))
			perAgency := map[int]int{}
			for b, n := range stored {
				perAgency[b.Agency] += n
			}
			assert.Equal(t, map[int]int{1: 26936, 2: 25518, 4: 9238, 5: 991}, withoutAgency(perAgency, 3),
				"every drawn agency's bets, once")
			assert.Positive(t, perAgency[3], "the excluded agency's rows stay in the file")
		})
	}
}

// runOrder runs `server args...` as the operator, against r's central.
func runOrder(t *testing.T, r *tlsRound, args ...string) (int, string) {
	t.Helper()
	return order(t, map[string]string{"SERVER_ADMIN_ADDRESS": r.admin,
		"SERVER_OPERATOR_CERT": r.cert(pki.OperatorFile), "SERVER_OPERATOR_KEY": r.cert(pki.OperatorKeyFile),
		"SERVER_TLS_CLIENT_CA": r.cert(pki.CAFile)}, args...)
}

func withoutAgency(m map[int]int, a int) map[int]int {
	out := make(map[int]int, len(m))
	for k, v := range m {
		if k != a {
			out[k] = v
		}
	}
	return out
}
