package localapi

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/gorilla/mux"

	"github.com/mosaic-federation/mosaic/gateway/api"
	"github.com/mosaic-federation/mosaic/gateway/internal/apitoken"
	"github.com/mosaic-federation/mosaic/gateway/internal/embed"
	"github.com/mosaic-federation/mosaic/gateway/internal/fedclient"
	"github.com/mosaic-federation/mosaic/gateway/internal/httpx"
	"github.com/mosaic-federation/mosaic/gateway/internal/store"
)

// fakePeer answers searches with n scored items, or fails.
type fakePeer struct {
	fedclient.Peer // any other method panics
	name           string
	n              int
	err            error
	asked          []api.SearchRequest
}

func (p *fakePeer) Name() string { return p.name }

func (p *fakePeer) Search(_ context.Context, resource string, req api.SearchRequest) (fedclient.SearchResult, error) {
	p.asked = append(p.asked, req)
	if p.err != nil {
		return fedclient.SearchResult{}, p.err
	}
	var items []api.Item
	for i := range p.n {
		score := float64(100 - i)
		items = append(items, api.Memory{ID: fmt.Sprintf("%s-%d", p.name, i), Score: &score, Source: "lies"})
	}
	return fedclient.SearchResult{Items: items}, nil
}

type fakePeers []fedclient.Peer

func (f fakePeers) Owned(context.Context, string, bool) ([]fedclient.Peer, error) { return f, nil }

func searchAPI(t *testing.T, peers ...fedclient.Peer) (http.Handler, string) {
	t.Helper()
	return peersAPI(t, fakePeers(peers))
}

// peersAPI is the local API over a SQLite store with three memories and one user.
func peersAPI(t *testing.T, peers Peers) (http.Handler, string) {
	t.Helper()
	ctx := context.Background()
	st, err := store.OpenSQLite(ctx, filepath.Join(t.TempDir(), "api.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	token, _ := apitoken.New()
	if err := st.UpsertUser(ctx, store.User{ID: fuzzUser, Email: "a@example.test", DisplayName: "A", Role: "member", CreatedAt: time.Now()}); err != nil {
		t.Fatal(err)
	}
	if err := st.SetTokenHash(ctx, fuzzUser, apitoken.Hash(token)); err != nil {
		t.Fatal(err)
	}
	for i, c := range []string{"the vpn rotates keys", "vpn outage notes", "lunch menu"} {
		m := api.Memory{ID: uuid.NewString(), OwnerUserID: fuzzUser, Content: c, CreatedAt: time.Now().Add(time.Duration(i) * time.Second)}
		if err := st.PutMemory(ctx, m, embed.HashVector(c)); err != nil {
			t.Fatal(err)
		}
	}
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	r := mux.NewRouter()
	New(Config{Store: st, Embedder: embed.Hashing{}, Log: log, Peers: peers}).Register(r)
	return httpx.RequestID(r), token
}

func get(t *testing.T, h http.Handler, token, query string, out any) int {
	t.Helper()
	req := httptest.NewRequest(http.MethodGet, "/api/v1/search?"+query, nil)
	req.Header.Set("Authorization", "Bearer "+token)
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	if err := json.Unmarshal(rec.Body.Bytes(), out); err != nil {
		t.Fatalf("%s: %s", query, rec.Body)
	}
	return rec.Code
}

func TestSearchFusesSourcesByRank(t *testing.T) {
	work, lab, down := &fakePeer{name: "work", n: 9}, &fakePeer{name: "lab", n: 1}, &fakePeer{name: "down", err: &fedclient.PeerError{Code: api.CodeUnreachable}}
	h, token := searchAPI(t, work, lab, down)
	var res api.ListOf[map[string]any]
	if code := get(t, h, token, "q=vpn&resource=memories&source=all&limit=5", &res); code != 200 {
		t.Fatalf("%d", code)
	}
	var order []string
	for _, it := range res.Items {
		order = append(order, it["_source"].(string))
		if _, ok := it["_score"].(float64); !ok {
			t.Errorf("an item without its own _score: %v", it)
		}
	}
	// Rank by rank across sources: each source's first, then each one's second.
	if want := "local federated:work federated:lab local federated:work"; strings.Join(order, " ") != want {
		t.Errorf("fused order %v, want %s", order, want)
	}
	if res.Items[1]["_score"] != float64(100) || res.Items[1]["id"] != "work-0" {
		t.Errorf("a peer's item keeps its own score and id: %v", res.Items[1])
	}
	if !res.Partial || len(res.Sources) != 4 || res.Sources[3].Status != "error" || res.Sources[3].Error != api.CodeUnreachable {
		t.Errorf("partial %v, sources %+v", res.Partial, res.Sources)
	}
	if a := work.asked[0]; a.Query != "vpn" || a.Mode != api.ModeHybrid || a.Limit != 5 {
		t.Errorf("the peer was asked %+v: the query, memories' default mode hybrid, the limit", a)
	}

	work.asked = nil
	if code := get(t, h, token, "q=vpn&resource=tasks&source=federated:work&limit=3", &res); code != 200 {
		t.Fatalf("%d", code)
	}
	if len(res.Items) != 3 || res.Partial || work.asked[0].Mode != api.ModeText {
		t.Errorf("one peer, tasks in text mode: %d items, partial %v, asked %+v", len(res.Items), res.Partial, work.asked)
	}
}

func TestSearchLocalRanksTheCallersRows(t *testing.T) {
	h, token := searchAPI(t)
	var res api.ListOf[map[string]any]
	if code := get(t, h, token, "q=vpn+keys&resource=memories&mode=text", &res); code != 200 || len(res.Items) != 1 {
		t.Fatalf("%d %+v", code, res)
	}
	if res.Items[0]["content"] != "the vpn rotates keys" || res.Items[0]["_source"] != "local" || res.Sources[0].Name != "local" {
		t.Errorf("text: %+v", res)
	}
	if code := get(t, h, token, "q=lunch&resource=memories&mode=vector&limit=1", &res); code != 200 || res.Items[0]["content"] != "lunch menu" {
		t.Errorf("vector: %d %+v", code, res)
	}
}

func TestSearchRefusesBadInput(t *testing.T) {
	h, token := searchAPI(t)
	for query, code := range map[string]string{
		"q=x":                      api.CodeInvalidResource,
		"q=x&resource=credentials": api.CodeInvalidResource,
		"resource=tasks":           api.CodeEmptyQuery,
		"q=+++&resource=tasks":     api.CodeEmptyQuery,
		"q=" + strings.Repeat("a", 1001) + "&resource=tasks": api.CodeQueryTooLong,
		"q=x&resource=tasks&mode=fuzzy":                      api.CodeInvalidMode,
		"q=x&resource=tasks&mode=vector":                     api.CodeModeNotSupported,
		"q=x&resource=notes&mode=hybrid":                     api.CodeModeNotSupported,
		"q=x&resource=tasks&limit=0":                         api.CodeInvalidLimit,
		"q=x&resource=tasks&source=elsewhere":                api.CodeInvalidSource,
		"q=" + url.QueryEscape("a\xff") + "&resource=tasks":  api.CodeInvalidQuery,
	} {
		var e api.ErrorBody
		if status := get(t, h, token, query, &e); status != 400 || e.Error.Code != code {
			t.Errorf("%.60s: %d %s, want 400 %s", query, status, e.Error.Code, code)
		}
	}
	var e api.ErrorBody
	if status := get(t, h, token, "q=x&resource=tasks&source=federated:nobody", &e); status != 404 || e.Error.Code != api.CodeUnknownPeer {
		t.Errorf("an unknown peer: %d %s", status, e.Error.Code)
	}
	if status := get(t, h, "", "q=x&resource=tasks", &e); status != 401 {
		t.Errorf("no token: %d", status)
	}
}
