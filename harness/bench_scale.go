package main

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"time"

	"github.com/mosaic-federation/mosaic/gateway/api"
	"github.com/mosaic-federation/mosaic/harness/world"
)

// scaleLines gives work tasks more (gateway seed generate, timed) and measures the
// federated list through home under every filter at that size (issue 18's lists at
// scale): no filter, status, team_id, updated_since a week and an hour, and the next
// page by its cursor.
func scaleLines(ctx context.Context, w *world.World, n, tasks int) ([]result, error) {
	home, work := w.Site("home"), w.Site("work")
	start := time.Now()
	if _, err := work.GatewayCLI(ctx, "seed", "generate", "--tasks", strconv.Itoa(tasks), "--json"); err != nil {
		return nil, fmt.Errorf("seed generate --tasks %d at work: %w", tasks, err)
	}
	took := ms(time.Since(start))
	out := []result{{Name: fmt.Sprintf("seed generate --tasks %d at work (PostgreSQL)", tasks), P50ms: took, P99ms: took, Note: "one run"}}
	base := home.Gateway.APIURL + "/api/v1/tasks?source=federated:work&limit=50"
	token := home.Users[0].Token
	first, err := firstPage(base, token)
	if err != nil {
		return nil, err
	}
	team := ""
	for _, t := range first.Items {
		if t.TeamID != nil {
			team = *t.TeamID
			break
		}
	}
	if team == "" || first.NextCursor == "" {
		return nil, fmt.Errorf("the first page through home has no team row or no next page: the grant does not see the generated rows")
	}
	now := time.Now().UTC()
	filters := []struct{ name, query string }{
		{"no filter", ""},
		{"status=done", "&status=done"},
		{"team_id", "&team_id=" + team},
		{"updated_since a week", "&updated_since=" + url.QueryEscape(now.AddDate(0, 0, -7).Format(time.RFC3339))},
		{"updated_since an hour", "&updated_since=" + url.QueryEscape(now.Add(-time.Hour).Format(time.RFC3339))},
		{"the next page (cursor)", "&cursor=" + url.QueryEscape(first.NextCursor)},
	}
	api := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 8}}
	size := thousands(tasks)
	for _, f := range filters {
		u := base + f.query
		out = append(out, measure(w.RunDir, fmt.Sprintf("at %s tasks: federated list via home, 50 rows, %s", size, f.name), n,
			func() error { return do(api, http.MethodGet, u, token, nil) }, false))
	}
	return out, nil
}

// firstPage is a list's first page through home's API, read with no-cache.
func firstPage(u, token string) (api.ListOf[api.Task], error) {
	var page api.ListOf[api.Task]
	req, err := http.NewRequest(http.MethodGet, u, nil)
	if err != nil {
		return page, err
	}
	req.Header.Set("Authorization", "Bearer "+token)
	req.Header.Set("Cache-Control", "no-cache")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return page, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return page, fmt.Errorf("GET %s: %s", u, resp.Status)
	}
	return page, json.NewDecoder(resp.Body).Decode(&page)
}

// thousands writes n with a comma between groups of three digits: 1,000,000.
func thousands(n int) string {
	s := strconv.Itoa(n)
	for i := len(s) - 3; i > 0; i -= 3 {
		s = s[:i] + "," + s[i:]
	}
	return s
}
