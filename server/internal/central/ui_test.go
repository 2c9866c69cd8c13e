//go:build ui

// The status page in a real browser: `make test-ui` runs this file (build tag
// ui) with Debian's chromium, installing it when it is missing.

package central

import (
	"context"
	"os"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"lotterycentral.example/lottery/logfmt"
	"lotterycentral.example/server/internal/admin"
	"lotterycentral.example/server/internal/vocab"
)

// screenshotDir is where the browser test leaves its screenshots: .run/ui/
// at the repository's root, which git ignores.
const screenshotDir = "../../../.run/ui"

// renderedRow is one agency's row as the browser renders it.
type renderedRow struct {
	Agency  string  `json:"agency"`
	State   string  `json:"state"`
	Bets    string  `json:"bets"`
	Rate    string  `json:"rate"`
	Winners string  `json:"winners"`
	Bar     float64 `json:"bar"` // the bar's rendered width over its track's, in percent
}

// readRows reads the table's rows from the rendered page.
const readRows = `[...document.querySelectorAll('#agencies tbody tr')].map(tr => {
	const track = tr.querySelector('.bar').getBoundingClientRect().width;
	const bar = tr.querySelector('.bar span').getBoundingClientRect().width;
	return {
		agency: tr.dataset.agency,
		state: tr.dataset.state,
		bets: tr.querySelector('.bets').textContent.trim(),
		rate: tr.querySelector('.rate').textContent.trim(),
		winners: tr.querySelector('.winners').textContent.trim(),
		bar: track > 0 ? 100 * bar / track : -1,
	};
})`

// browser starts a headless Chromium for the test.
func browser(t *testing.T) context.Context {
	t.Helper()
	opts := append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.WindowSize(1100, 720),
		chromedp.Flag("disable-dev-shm-usage", true),
	)
	if os.Geteuid() == 0 {
		opts = append(opts, chromedp.NoSandbox) // Chromium refuses its sandbox to root
	}
	alloc, cancelAlloc := chromedp.NewExecAllocator(t.Context(), opts...)
	t.Cleanup(cancelAlloc)
	ctx, cancel := chromedp.NewContext(alloc)
	t.Cleanup(cancel)
	require.NoError(t, chromedp.Do(ctx), "start Chromium (make test-ui installs it)")
	return ctx
}

// shoot saves a screenshot of the whole page as name under screenshotDir.
func shoot(t *testing.T, ctx context.Context, name string) {
	t.Helper()
	png, err := chromedp.Run(ctx, chromedp.FullScreenshot(100))
	require.NoError(t, err)
	require.NoError(t, os.MkdirAll(screenshotDir, 0o755))
	path := filepath.Join(screenshotDir, name)
	require.NoError(t, os.WriteFile(path, png, 0o644))
	abs, _ := filepath.Abs(path)
	t.Logf("screenshot: %s", abs)
}

// During the official draw the page shows four agencies parked and one
// sending, at a rate it shows from its first batch; it reloads itself,
// and after the draw shows all five answered with 2, 3, 3, 2 and 0 winners,
// each bar as wide as its agency's share.
func TestStatusPageInBrowser(t *testing.T) {
	dir, bets := officialFiles(t)
	oc := startObserved(t, testConfig(t), nil)
	ctx := browser(t)

	runs, c := holdOfficialDraw(t, oc, dir, bets, 400)

	wait, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	require.NoError(t, chromedp.Do(wait,
		chromedp.Navigate(oc.url+"/"),
		chromedp.WaitVisible(chromedp.CSS(`#draw[data-state="waiting"]`)),
	))
	// More bets: the page, reloading itself, shows agency 5 sending them.
	c.sendBets(bets[5][400:700], 100)
	require.NoError(t, chromedp.Do(wait,
		chromedp.WaitVisible(chromedp.CSS(`tr[data-agency="5"][data-state="sending"][data-bets="700"]`))))
	pending, err := chromedp.Run(wait, chromedp.Text(chromedp.CSS(`#pending`)))
	require.NoError(t, err)
	rows, err := chromedp.Run(wait, chromedp.Evaluate[[]renderedRow](readRows))
	require.NoError(t, err)
	assert.Equal(t, "5", pending)
	require.Len(t, rows, 5)
	for i, r := range rows {
		id := i + 1
		assert.Equal(t, strconv.Itoa(id), r.Agency)
		if id <= 4 {
			assert.Equal(t, admin.StateParked, r.State, "agency %d", id)
			assert.Equal(t, strconv.Itoa(officialBets[id]), r.Bets, "agency %d", id)
		} else {
			assert.Equal(t, admin.StateSending, r.State)
			assert.Equal(t, "700", r.Bets)
			rate, err := strconv.Atoi(r.Rate)
			require.NoError(t, err, "rate %q", r.Rate)
			assert.Positive(t, rate)
		}
		assert.Equal(t, "–", r.Winners)
	}
	shoot(t, ctx, "status-during.png")

	// Agency 5 sends the rest; the page, left alone, reloads into the draw.
	c.sendBets(bets[5][700:], 100)
	c.finish(len(bets[5]))
	assert.Empty(t, c.consult())
	for _, ch := range runs {
		r := <-ch
		require.NoError(t, r.err, "agency %d", r.id)
	}
	oc.logs.AwaitT(t, 5, vocab.EnvioGanadores.Line(logfmt.Success))
	require.NoError(t, chromedp.Do(wait, chromedp.WaitVisible(chromedp.CSS(`#draw[data-state="drawn"]`))))
	rows, err = chromedp.Run(wait, chromedp.Evaluate[[]renderedRow](readRows))
	require.NoError(t, err)
	require.Len(t, rows, 5)
	var total float64
	for i, r := range rows {
		id := i + 1
		assert.Equal(t, admin.StateAnswered, r.State, "agency %d", id)
		assert.Equal(t, strconv.Itoa(officialBets[id]), r.Bets, "agency %d", id)
		assert.Equal(t, strconv.Itoa(officialWinners[id]), r.Winners, "agency %d", id)
		assert.InDelta(t, 100*float64(officialBets[id])/78697, r.Bar, 0.5, "agency %d's bar", id)
		total += r.Bar
	}
	assert.InDelta(t, 100, total, 1)
	// The round's digest on the page is the one the sorteo line committed.
	digest, err := chromedp.Run(wait, chromedp.Text(chromedp.CSS(`#digest`)))
	require.NoError(t, err)
	assert.Regexp(t, `^[0-9a-f]{64}$`, digest)
	assert.Equal(t, 1, oc.logs.Count(vocab.Sorteo.Line(logfmt.Success), vocab.DigestoRonda.Str(digest).String()),
		"the page's round digest %s is the sorteo line's", digest)
	shoot(t, ctx, "status-after.png")
}
