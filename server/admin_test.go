package main

import (
	"errors"
	"io"
	"net"
	"net/http"
	"regexp"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"lotterycentral.example/lottery/logfmt"
	"lotterycentral.example/lottery/logfmt/logfmttest"
	"lotterycentral.example/server/internal/vocab"
)

var adminOn = regexp.MustCompile(linePattern(vocab.EscucharAdmin.Line(logfmt.Success,
	vocab.Direccion.Str(pat(`(\S+)`)), vocab.URL.Str(pat(`(\S+)`)))) + "$")

func httpGet(t *testing.T, url string) (int, string) {
	t.Helper()
	resp, err := (&http.Client{Timeout: 10 * time.Second}).Get(url)
	require.NoError(t, err)
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	return resp.StatusCode, string(body)
}

// SERVER_ADMIN_ADDRESS starts the admin listener inside run: its address and
// URL are logged, it serves /metrics, /healthz and the status page, and the
// central's shutdown closes it, logging that like every other resource.
func TestAdminListener(t *testing.T) {
	env, _ := storeEnv(t, map[string]string{"SERVER_ADMIN_ADDRESS": "127.0.0.1:0", "SERVER_AGENCIES": "3"})
	r := start(t, env)
	m := r.await(t, adminOn)
	url := m[2]
	assert.Equal(t, "http://"+m[1]+"/", url)
	r.await(t, listeningOn)

	code, body := httpGet(t, url+"healthz")
	assert.Equal(t, http.StatusOK, code)
	assert.Equal(t, "ok\n", body)
	code, body = httpGet(t, url+"metrics")
	assert.Equal(t, http.StatusOK, code)
	assert.Contains(t, body, "\nlottery_agencies 3\n")
	assert.Contains(t, body, "\nlottery_agencies_pending 3\n")
	assert.Contains(t, body, "\ngo_goroutines ")
	code, body = httpGet(t, url)
	assert.Equal(t, http.StatusOK, code)
	assert.Contains(t, body, "Draw waiting</strong> for 3 of 3 agencies")

	r.cancel(errors.New("terminated signal received"))
	require.Equal(t, 0, r.wait(t), r.stdout.String())
	assert.Equal(t, 1, r.stdout.Count(vocab.CerrarAdmin.Line(logfmt.Success)), r.stdout.String())
	_, err := net.DialTimeout("tcp", m[1], time.Second)
	assert.Error(t, err, "the admin listener is closed")
}

// An admin address that cannot be bound is logged; the central serves its
// agencies without it.
func TestAdminAddressInUse(t *testing.T) {
	taken, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	defer taken.Close()
	env, _ := storeEnv(t, map[string]string{"SERVER_ADMIN_ADDRESS": taken.Addr().String()})
	r := start(t, env)
	r.await(t, regexp.MustCompile(`ERROR    `+linePattern(vocab.EscucharAdmin.Line(logfmt.Fail,
		vocab.Direccion.Str(taken.Addr().String()), vocab.Error.Str(pat(`.*address already in use`))))+"$"))
	r.await(t, listeningOn)
	r.cancel(errors.New("terminated signal received"))
	require.Equal(t, 0, r.wait(t), r.stdout.String())
	assert.Zero(t, r.stdout.Count(logfmttest.AnyLine(vocab.CerrarAdmin)))
}

// SERVER_ADMIN_ADDRESS=off: no admin listener, and no metrics.
func TestAdminOff(t *testing.T) {
	env, _ := storeEnv(t, map[string]string{"SERVER_ADMIN_ADDRESS": "off"})
	r := start(t, env)
	r.await(t, listeningOn)
	r.cancel(errors.New("terminated signal received"))
	require.Equal(t, 0, r.wait(t), r.stdout.String())
	assert.Zero(t, r.stdout.Count(logfmttest.AnyLine(vocab.EscucharAdmin)), r.stdout.String())
	assert.Zero(t, r.stdout.Count(logfmttest.AnyLine(vocab.CerrarAdmin)), r.stdout.String())
}
