package main

// The operator's commands, `server exclude N -reason TEXT` and `server
// reload`: each is one POST to the running central's admin address, over TLS
// with the operator's certificate, and one line saying what the central
// answered.

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"lotterycentral.example/lottery/envconfig"
	"lotterycentral.example/lottery/logfmt"
	"lotterycentral.example/protocol/identity"
	"lotterycentral.example/server/internal/admin"
	"lotterycentral.example/server/internal/config"
	"lotterycentral.example/server/internal/vocab"
)

// orderTimeout bounds an order: connecting, the handshake and the answer.
const orderTimeout = 10 * time.Second

// maxAnswer bounds what is read of the central's answer: one line.
const maxAnswer = 4 << 10

// operatorCommand loads the operator's configuration and delivers inv.
func operatorCommand(ctx context.Context, getenv envconfig.Getenv, inv invocation, stdout, stderr io.Writer) int {
	cfg, err := config.LoadOperator(getenv)
	if err != nil {
		return configFailed(stderr, err)
	}
	log, err := logfmt.New(stdout, cfg.LogLevel, logfmt.Prefix(cfg.LogPrefix))
	if err != nil {
		return configFailed(stderr, err)
	}
	addr := cfg.AdminDialAddress()
	name, form := admin.ActionReload, url.Values{}
	fields := []logfmt.Field{vocab.Orden.Str(name)}
	if inv.cmd == cmdExclude {
		name = admin.ActionExclude
		form.Set(admin.FieldAgency, strconv.Itoa(inv.agency))
		form.Set(admin.FieldReason, inv.reason)
		fields = []logfmt.Field{vocab.Orden.Str(name), vocab.Agencia.Int(inv.agency)}
	}
	fields = append(fields, vocab.Direccion.Str(addr))

	// The central's certificate must name the host dialled, as an agency's check does.
	host, _, _ := net.SplitHostPort(addr)
	tlsConf, err := identity.ClientConfig(cfg.OperatorCert, cfg.OperatorKey, cfg.TLSClientCA, host)
	if err != nil {
		log.Error(vocab.OrdenAdmin, logfmt.Fail, append(fields, vocab.Error.Any(err))...)
		return exitFailed
	}
	code, text, err := post(ctx, addr, tlsConf, name, form)
	switch {
	case err != nil:
		if reason, ok := identity.DescribeHandshakeError(err); ok {
			fields = append(fields, vocab.Motivo.Str(reason))
		} else if errors.Is(err, http.ErrSchemeMismatch) {
			// net/http's word for the plain HTTP answer of a central without TLS.
			fields = append(fields, vocab.Motivo.Str(identity.ReasonNotTLS))
		}
		log.Error(vocab.OrdenAdmin, logfmt.Fail, append(fields, vocab.Error.Any(err))...)
		return exitFailed
	case code != http.StatusOK:
		log.Error(vocab.OrdenAdmin, logfmt.Fail, append(fields, vocab.CodigoHTTP.Int(code), vocab.Detalle.Str(text))...)
		return exitFailed
	}
	log.Info(vocab.OrdenAdmin, logfmt.Success, append(fields, vocab.Detalle.Str(text))...)
	return exitOK
}

// post sends form to the action on the admin address addr over TLS, and
// returns the answer's status code and its text, on one line.
func post(ctx context.Context, addr string, tlsConf *tls.Config, action string, form url.Values) (int, string, error) {
	ctx, cancel := context.WithTimeout(ctx, orderTimeout)
	defer cancel()
	// No proxy, no connection kept: one request, straight to the central.
	tr := &http.Transport{TLSClientConfig: tlsConf, DisableKeepAlives: true}
	defer tr.CloseIdleConnections()
	client := &http.Client{Transport: tr,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	u := (&url.URL{Scheme: "https", Host: addr, Path: "/actions/" + action}).String()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, u, strings.NewReader(form.Encode()))
	if err != nil {
		return 0, "", fmt.Errorf("%s: %w", action, err)
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	resp, err := client.Do(req)
	if err != nil {
		return 0, "", fmt.Errorf("%s: %w", action, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxAnswer))
	if err != nil {
		return 0, "", fmt.Errorf("%s: read the answer: %w", action, err)
	}
	// One line, whatever came: a control character becomes a space.
	text := strings.Map(func(c rune) rune {
		if c < ' ' || c == 0x7f {
			return ' '
		}
		return c
	}, strings.TrimSpace(string(body)))
	return resp.StatusCode, text, nil
}
