package localapi

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/mosaic-federation/mosaic/gateway/api"
	"github.com/mosaic-federation/mosaic/gateway/internal/fedclient"
	"github.com/mosaic-federation/mosaic/gateway/internal/peercache"
)

// listingPeer answers lists as a cache stage would: served says how; noCache
// records whether the caller's Cache-Control reached the stage.
type listingPeer struct {
	fedclient.Peer
	name    string
	served  fedclient.Served
	err     error
	noCache bool
}

func (p *listingPeer) Name() string { return p.name }

func (p *listingPeer) List(ctx context.Context, _ string, _ api.FedListRequest) (fedclient.ListResult, error) {
	p.noCache = peercache.NoCache(ctx)
	if p.err != nil {
		return fedclient.ListResult{}, p.err
	}
	return fedclient.ListResult{Items: []api.Item{api.Task{ID: p.name + "-1"}}, Served: p.served}, nil
}

// sources[] says how each peer answered: cached with its age, stale with its age
// (and not partial), error (partial).
func TestSourcesSayHowEachPeerAnswered(t *testing.T) {
	fresh := &listingPeer{name: "fresh", served: fedclient.Served{Cached: true, Age: 1500 * time.Millisecond}}
	stale := &listingPeer{name: "stale", served: fedclient.Served{Stale: true, Age: 2 * time.Minute}}
	live := &listingPeer{name: "live"}
	h, token := searchAPI(t, fresh, stale, live)
	list := func(query string, header http.Header) api.ListOf[map[string]any] {
		t.Helper()
		req := httptest.NewRequest(http.MethodGet, "/api/v1/tasks?"+query, nil)
		req.Header = header
		req.Header.Set("Authorization", "Bearer "+token)
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		var res api.ListOf[map[string]any]
		if rec.Code != 200 || json.Unmarshal(rec.Body.Bytes(), &res) != nil {
			t.Fatalf("%d %s", rec.Code, rec.Body)
		}
		return res
	}
	res := list("source=all", http.Header{})
	want := map[string]api.SourceStatus{
		"federated:fresh": {Status: "ok", Cached: true, AgeS: ptr(1.5)},
		"federated:stale": {Status: "stale", AgeS: ptr(120.0)},
		"federated:live":  {Status: "ok"},
	}
	for _, s := range res.Sources[1:] {
		w := want[s.Name]
		if s.Status != w.Status || s.Cached != w.Cached || (s.AgeS == nil) != (w.AgeS == nil) || (s.AgeS != nil && *s.AgeS != *w.AgeS) {
			t.Errorf("%s: %+v, want %+v", s.Name, s, w)
		}
	}
	if res.Partial || len(res.Items) != 3 { // no local tasks; one row from each peer
		t.Errorf("a stale source is not partial and its rows are in: partial %v, %d items", res.Partial, len(res.Items))
	}
	if fresh.noCache {
		t.Error("no-cache without the caller asking")
	}
	stale.err = &fedclient.PeerError{Status: 503, Code: api.CodeUnavailable}
	res = list("source=all", http.Header{"Cache-Control": {"max-age=0, No-Cache"}})
	if !fresh.noCache || !live.noCache || !res.Partial {
		t.Errorf("Cache-Control: no-cache reaches every peer's stage: %v %v; partial %v", fresh.noCache, live.noCache, res.Partial)
	}
}

func ptr(f float64) *float64 { return &f }

// laggingPeers keeps an old view of the caller's peers (none) until asked to read
// them fresh, as the directory does before a peer's change arrives.
type laggingPeers struct {
	peer  fedclient.Peer
	fresh int
}

func (l *laggingPeers) Owned(_ context.Context, _ string, fresh bool) ([]fedclient.Peer, error) {
	if !fresh {
		return nil, nil
	}
	l.fresh++
	return []fedclient.Peer{l.peer}, nil
}

// A source naming a peer the kept view lacks reads the peers again before it is
// unknown_peer: a peer added a moment ago answers at once.
func TestANamedPeerMissingFromTheKeptViewIsReadAgain(t *testing.T) {
	lag := &laggingPeers{peer: &listingPeer{name: "lab"}}
	h, token := peersAPI(t, lag)
	status := func(src string) int {
		req := httptest.NewRequest(http.MethodGet, "/api/v1/tasks?source="+src, nil)
		req.Header.Set("Authorization", "Bearer "+token)
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		return rec.Code
	}
	if got := status("federated:lab"); got != http.StatusOK || lag.fresh != 1 {
		t.Errorf("a peer only a fresh read has: %d after %d fresh reads, want 200 after 1", got, lag.fresh)
	}
	if got := status("federated:nobody"); got != http.StatusNotFound || lag.fresh != 2 {
		t.Errorf("a peer no read has: %d after %d fresh reads, want 404 after 2", got, lag.fresh)
	}
	if got := status("all"); got != http.StatusOK || lag.fresh != 2 {
		t.Errorf("source=all: %d, %d fresh reads; want 200 and no fresh read", got, lag.fresh)
	}
}
