package fedserver

import (
	"context"
	"encoding/json"
	"slices"
	"strings"
	"testing"

	"github.com/mosaic-federation/mosaic/gateway/api"
	"github.com/mosaic-federation/mosaic/gateway/internal/embed"
	"github.com/mosaic-federation/mosaic/gateway/internal/scope"
	"github.com/mosaic-federation/mosaic/gateway/internal/store"
)

// SearchGranted answers Limit hits scored 1, ½, ⅓… and records what it was asked.
func (s *fakeStore) SearchGranted(_ context.Context, rows scope.Rows, o store.SearchOptions) ([]store.Hit, error) {
	s.rows = append(s.rows, rows)
	s.searches = append(s.searches, o)
	if s.err != nil {
		return nil, s.err
	}
	var hits []store.Hit
	for i := range o.Limit {
		hits = append(hits, store.Hit{Item: api.Memory{ID: rowID, OwnerUserID: subject, Content: "m"}, Score: 1 / float64(i+1)})
	}
	return hits, nil
}

func memoriesCaller() fakeGuard {
	c := activeCaller()
	c.Grant.Scope.ExcludedResources = nil
	return fakeGuard{caller: c}
}

// TestSearchRefuses: the scope's 403 comes before any 400 of the body, each bad input
// names its problem, and nothing refused reaches the store; each is audited once.
func TestSearchRefuses(t *testing.T) {
	ok := fakeGuard{caller: activeCaller()} // memories excluded
	long := `{"query": "` + strings.Repeat("a", api.MaxQuery+1) + `", "mode": "text"}`
	tests := []struct {
		name   string
		guard  Guard
		path   string
		body   string
		status int
		code   string
	}{
		{"an excluded resource, before a bad body", ok, "/search/memories", `{"query": ""}`, 403, api.CodeResourceNotInScope},
		{"credentials", ok, "/search/credentials", `{"query": "x", "mode": "text"}`, 403, api.CodeResourceNotInScope},
		{"no body", ok, "/search/tasks", ``, 400, api.CodeEmptyQuery},
		{"an empty query", ok, "/search/tasks", `{"query": "", "mode": "text"}`, 400, api.CodeEmptyQuery},
		{"a query over 1000 characters", ok, "/search/tasks", long, 400, api.CodeQueryTooLong},
		{"an unknown mode", ok, "/search/tasks", `{"query": "x", "mode": "fuzzy"}`, 400, api.CodeInvalidMode},
		{"no mode", ok, "/search/tasks", `{"query": "x"}`, 400, api.CodeInvalidMode},
		{"vector on tasks", ok, "/search/tasks", `{"query": "x", "mode": "vector"}`, 400, api.CodeModeNotSupported},
		{"hybrid on notes", ok, "/search/notes", `{"query": "x", "mode": "hybrid"}`, 400, api.CodeModeNotSupported},
		{"a vector sent by the peer", memoriesCaller(), "/search/memories", `{"query": "x", "mode": "vector", "embedding": [1]}`, 400, api.CodeInvalidBody},
		{"a negative limit", ok, "/search/tasks", `{"query": "x", "mode": "text", "limit": -2}`, 400, api.CodeInvalidLimit},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r := serve(t, tc.guard, &fakeStore{}, &fakeAudit{}, exchange{"POST", Prefix + tc.path, tc.body})
			if r.status != tc.status || errorCode(t, r.body) != tc.code {
				t.Fatalf("got %d %s, want %d %s", r.status, r.body, tc.status, tc.code)
			}
			if len(r.store.rows) != 0 {
				t.Error("a refused search read the store")
			}
			if len(r.audit.entries) != 1 || r.audit.entries[0].Reason != tc.code || r.audit.entries[0].Outcome != api.OutcomeDenied {
				t.Errorf("audit rows %+v", r.audit.entries)
			}
		})
	}
}

func TestSearchAnswersTheEffectiveRowsScored(t *testing.T) {
	st, au := &fakeStore{}, &fakeAudit{}
	r := serve(t, memoriesCaller(), st, au, exchange{"POST", Prefix + "/search/memories", `{"query": "vpn keys", "mode": "hybrid", "limit": 50}`})
	if r.status != 200 {
		t.Fatalf("got %d %s", r.status, r.body)
	}
	var res api.FedSearchOf[map[string]any]
	if err := json.Unmarshal(r.body, &res); err != nil {
		t.Fatal(err)
	}
	if len(res.Items) != 3 || !res.Truncated {
		t.Errorf("the cap of 3 must lower a limit of 50 and say so: %d items, truncated %v", len(res.Items), res.Truncated)
	}
	for i, it := range res.Items {
		if it["_source"] != "work" || it["_score"] != 1/float64(i+1) {
			t.Errorf("item %d: %v, want _source work and its own _score", i, it)
		}
	}
	if len(st.rows) != 1 || st.rows[0].Resource() != "memories" || st.rows[0].Subject() != subject {
		t.Errorf("the store searched %+v, want the grant's effective rows of memories", st.rows)
	}
	if o := st.searches[0]; o.Query != "vpn keys" || o.Mode != api.ModeHybrid || o.Limit != 3 || !slices.Equal(o.Embedding, embed.HashVector("vpn keys")) {
		t.Errorf("the store was asked %+v, want the query embedded by this site", o)
	}
	if len(au.entries) != 1 || au.entries[0].Rows != 3 || au.entries[0].Action != "POST /api/federation/v1/search/{resource}" {
		t.Errorf("audit rows %+v", au.entries)
	}

	st = &fakeStore{}
	r = serve(t, memoriesCaller(), st, &fakeAudit{}, exchange{"POST", Prefix + "/search/tasks", `{"query": "backup", "mode": "text", "limit": 2}`})
	if r.status != 200 || st.searches[0].Embedding != nil || st.searches[0].Limit != 2 {
		t.Errorf("a text search: %d, %+v (no embedding needed)", r.status, st.searches)
	}
	if !strings.Contains(string(r.body), `"truncated":false`) {
		t.Errorf("a limit under the cap is not truncated: %s", r.body)
	}
}

func TestCapabilitiesAdvertiseSearch(t *testing.T) {
	r := serve(t, fakeGuard{caller: activeCaller()}, &fakeStore{}, &fakeAudit{}, exchange{"GET", Prefix + "/capabilities", ""})
	var caps api.Capabilities
	if err := json.Unmarshal(r.body, &caps); err != nil || !slices.Contains(caps.SupportedVerbs, "search") {
		t.Errorf("capabilities: %s", r.body)
	}
}
