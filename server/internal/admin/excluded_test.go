package admin

import (
	"encoding/json"
	"net/http"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// An agency the operator excluded shows as excluded, whatever it did
// before, with who excluded it, when and why; it has no winners, and the
// draw box counts it apart from the agencies it waits for and the finished.
func TestExcludedAgency(t *testing.T) {
	at := time.Date(2026, 12, 5, 9, 41, 13, 0, time.UTC)
	ex := &Exclusion{At: at, Operator: "operator-ana", Reason: "host burned"}
	tests := []struct {
		name     string
		status   Status
		wantDraw string // a part of the page's draw box
	}{
		{"while the draw waits", Status{Agencies: 5, Pending: []int{5}, PendingText: "5", Excluded: []int{3}, ExcludedText: "3",
			Rows: []Agency{
				{ID: 1, Stored: 10, Finished: true, Parked: true, Winners: -1},
				{ID: 2, Stored: 10, Finished: true, Winners: -1},
				{ID: 3, Stored: 4, Connected: true, Excluded: ex, Winners: -1},
				{ID: 4, Stored: 10, Finished: true, Winners: -1},
				{ID: 5, Stored: 6, Connected: true, Winners: -1},
			}}, `waiting</strong> for 1 of 5 agencies: <span id="pending">5</span> (1 excluded: <span id="excluded">3</span>).`},
		{"once drawn", Status{Agencies: 5, Drawn: true, DrawAt: at, Excluded: []int{3}, ExcludedText: "3",
			Rows: []Agency{
				{ID: 1, Stored: 10, Finished: true, Answered: true, Winners: 2},
				{ID: 2, Stored: 10, Finished: true, Answered: true, Winners: 3},
				{ID: 3, Stored: 4, Excluded: ex, Winners: -1},
				{ID: 4, Stored: 10, Finished: true, Answered: true, Winners: 2},
				{ID: 5, Stored: 6, Finished: true, Answered: true, Winners: 0},
			}}, `7 winners. Not drawn, excluded by the operator: <span id="excluded">3</span>.`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			src := &fakeSource{status: tt.status}
			h := New(src, nil)
			v := h.view()
			require.Len(t, v.Rows, 5)
			assert.Equal(t, StateExcluded, v.Rows[2].State)
			assert.Nil(t, v.Rows[2].Winners, "an excluded agency is not drawn")
			assert.Equal(t, ex, v.Rows[2].Excluded)
			assert.Equal(t, []int{3}, v.Draw.Excluded)
			assert.Equal(t, 1, v.Draw.ExcludedN)
			assert.Equal(t, 5-len(tt.status.Pending)-1, v.Draw.Finished, "the excluded one has not finished")

			rec := serve(h, "/")
			require.Equal(t, http.StatusOK, rec.Code)
			page := rec.Body.String()
			assert.Contains(t, page, tt.wantDraw)
			assert.Contains(t, page, `<tr data-agency="3" data-state="excluded"`)
			assert.Contains(t, page, `title="by operator-ana: host burned"`)
			assert.Contains(t, page, "Agency 3 excluded from the draw by operator-ana at 2026-12-05 09:41:13: host burned")

			rec = serve(h, "/status.json")
			require.Equal(t, http.StatusOK, rec.Code)
			var got struct {
				Rows []map[string]any `json:"rows"`
				Draw struct {
					Excluded      []int `json:"excluded"`
					ExcludedCount int   `json:"excluded_count"`
				} `json:"draw"`
			}
			require.NoError(t, json.Unmarshal(rec.Body.Bytes(), &got), rec.Body.String())
			assert.Equal(t, []int{3}, got.Draw.Excluded)
			assert.Equal(t, 1, got.Draw.ExcludedCount)
			assert.Equal(t, map[string]any{"at": "2026-12-05T09:41:13Z", "operator": "operator-ana", "reason": "host burned"},
				got.Rows[2]["excluded"])
			assert.NotContains(t, got.Rows[0], "excluded", "only an excluded agency's row says so")
		})
	}
}

// Without exclusions, /status.json lists none, as a list.
func TestNoExclusion(t *testing.T) {
	rec := serve(New(&fakeSource{status: Status{Agencies: 1, Pending: []int{1}}}, nil), "/status.json")
	var got struct {
		Draw map[string]any `json:"draw"`
	}
	require.NoError(t, json.Unmarshal(rec.Body.Bytes(), &got))
	assert.Equal(t, []any{}, got.Draw["excluded"])
}
