package localapi

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gorilla/mux"

	"github.com/mosaic-federation/mosaic/gateway/api"
	"github.com/mosaic-federation/mosaic/gateway/internal/apitoken"
	"github.com/mosaic-federation/mosaic/gateway/internal/fedclient"
	"github.com/mosaic-federation/mosaic/gateway/internal/httpx"
	"github.com/mosaic-federation/mosaic/gateway/internal/store"
)

var mergeEpoch = time.Date(2026, 11, 1, 9, 0, 0, 0, time.UTC)

// row is a task created at minute m, with an id of its own made from n.
func row(m, n int) api.Task {
	at := mergeEpoch.Add(time.Duration(m) * time.Minute)
	return api.Task{ID: fmt.Sprintf("00000000-0000-4000-8000-%012d", n), OwnerUserID: fuzzUser, Title: "t",
		Status: api.StatusOpen, CreatedAt: at, UpdatedAt: at}
}

// keysetPeer is a peer with rows of its own that pages them as a serving site does:
// strictly after the keyset, newest first, at most its cap; fail makes call n fail.
type keysetPeer struct {
	fedclient.Peer
	name string
	rows []api.Task
	cap  int
	fail func(call int) error

	mu    sync.Mutex
	calls []api.FedListRequest
}

func (p *keysetPeer) Name() string { return p.name }

func (p *keysetPeer) List(_ context.Context, _ string, req api.FedListRequest) (fedclient.ListResult, error) {
	p.mu.Lock()
	p.calls = append(p.calls, req)
	n := len(p.calls)
	p.mu.Unlock()
	if p.fail != nil {
		if err := p.fail(n); err != nil {
			return fedclient.ListResult{}, err
		}
	}
	rows := slices.Clone(p.rows)
	slices.SortFunc(rows, func(a, b api.Task) int {
		if api.KeyOf(a).Before(api.KeyOf(b)) {
			return -1
		}
		return 1
	})
	limit := req.Limit
	if p.cap > 0 {
		limit = min(limit, p.cap)
	}
	var res fedclient.ListResult
	for _, r := range rows {
		if req.After != nil && !req.After.Before(api.KeyOf(r)) {
			continue
		}
		if len(res.Items) == limit {
			res.NextCursor = "more"
			break
		}
		res.Items = append(res.Items, api.WithSource(r, fedclient.SourceOf(p.name)))
	}
	return res, nil
}

func (p *keysetPeer) asked() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return len(p.calls)
}

// mergeAPI is the API over a SQLite store holding local's rows, with the peers.
func mergeAPI(t *testing.T, local []api.Task, peers ...fedclient.Peer) func(query string) (int, api.ListOf[map[string]any], api.ErrorBody) {
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
	for _, tk := range local {
		if err := st.PutTask(ctx, tk); err != nil {
			t.Fatal(err)
		}
	}
	r := mux.NewRouter()
	New(Config{Store: st, Log: slog.New(slog.NewTextHandler(io.Discard, nil)), Peers: fakePeers(peers)}).Register(r)
	h := httpx.RequestID(r)
	return func(query string) (int, api.ListOf[map[string]any], api.ErrorBody) {
		t.Helper()
		req := httptest.NewRequest(http.MethodGet, "/api/v1/tasks?"+query, nil)
		req.Header.Set("Authorization", "Bearer "+token)
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		var page api.ListOf[map[string]any]
		var e api.ErrorBody
		if rec.Code == 200 {
			if err := json.Unmarshal(rec.Body.Bytes(), &page); err != nil {
				t.Fatal(err)
			}
		} else if err := json.Unmarshal(rec.Body.Bytes(), &e); err != nil {
			t.Fatal(err)
		}
		return rec.Code, page, e
	}
}

// world3 is three sources whose rows interleave in time, with ties at one instant
// across sources and inside one; the second peer's cap (2) is below the page size.
func world3() (local []api.Task, work, lab *keysetPeer) {
	for i := range 7 {
		local = append(local, row(i*3, 100+i))
	}
	local = append(local, row(9, 199)) // the same instant as local's 103 and work's 203
	work = &keysetPeer{name: "work"}
	for i := range 5 {
		work.rows = append(work.rows, row(i*4+1, 200+i))
	}
	work.rows = append(work.rows, row(9, 203))
	lab = &keysetPeer{name: "lab", cap: 2}
	for i := range 6 {
		lab.rows = append(lab.rows, row(i*2, 300+i))
	}
	return local, work, lab
}

// want is every row of the sources as one local-ordered list: "source/id".
func want(local []api.Task, peers ...*keysetPeer) []string {
	type tagged struct {
		k   api.Keyset
		tag string
	}
	var all []tagged
	for _, r := range local {
		all = append(all, tagged{api.KeyOf(r), SourceLocal + "/" + r.ID})
	}
	for _, p := range peers {
		for _, r := range p.rows {
			all = append(all, tagged{api.KeyOf(r), fedclient.SourceOf(p.name) + "/" + r.ID})
		}
	}
	slices.SortFunc(all, func(a, b tagged) int {
		switch {
		case a.k.Before(b.k):
			return -1
		case b.k.Before(a.k):
			return 1
		}
		return strings.Compare(a.tag, b.tag)
	})
	out := make([]string, len(all))
	for i, t := range all {
		out[i] = t.tag
	}
	return out
}

// pageAll pages source=all with limit until no cursor, checking each page's size.
func pageAll(t *testing.T, list func(string) (int, api.ListOf[map[string]any], api.ErrorBody), limit int) ([]string, []api.ListOf[map[string]any]) {
	t.Helper()
	var got []string
	var pages []api.ListOf[map[string]any]
	cursor := ""
	for range 100 {
		code, page, e := list(fmt.Sprintf("source=all&limit=%d&cursor=%s", limit, url.QueryEscape(cursor)))
		if code != 200 {
			t.Fatalf("%d %+v", code, e)
		}
		if len(page.Items) > limit {
			t.Fatalf("a page of %d items, limit %d", len(page.Items), limit)
		}
		for _, it := range page.Items {
			got = append(got, it["_source"].(string)+"/"+it["id"].(string))
		}
		pages = append(pages, page)
		if cursor = page.NextCursor; cursor == "" {
			return got, pages
		}
	}
	t.Fatal("paging did not end")
	return nil, nil
}

func TestMergedListVisitsEveryRowOnceInOrder(t *testing.T) {
	local, work, lab := world3()
	expected := want(local, work, lab)
	for _, limit := range []int{1, 2, 3, 5, 50} {
		t.Run(fmt.Sprint("limit ", limit), func(t *testing.T) {
			list := mergeAPI(t, local, work, lab)
			got, pages := pageAll(t, list, limit)
			if strings.Join(got, ",") != strings.Join(expected, ",") {
				t.Fatalf("paged\n%v\nwant\n%v", got, expected)
			}
			for i, p := range pages {
				if p.Partial || len(p.Sources) != 3 {
					t.Errorf("page %d: partial %v, sources %+v", i, p.Partial, p.Sources)
				}
			}
		})
	}
}

// The first page takes the newest rows of all sources together, at most limit, and
// each peer is asked from exactly after the last row it contributed.
func TestMergedListResumesEachSourceAfterItsLastRow(t *testing.T) {
	local, work, lab := world3()
	list := mergeAPI(t, local, work, lab)
	_, first, _ := list("source=all&limit=3")
	if len(first.Items) != 3 || first.NextCursor == "" {
		t.Fatalf("%d items, cursor %q", len(first.Items), first.NextCursor)
	}
	_, _, _ = list("source=all&limit=3&cursor=" + first.NextCursor)
	last := map[string]api.Keyset{}
	for _, it := range first.Items {
		at, _ := time.Parse(time.RFC3339Nano, it["created_at"].(string))
		last[it["_source"].(string)] = api.Keyset{CreatedAt: at, ID: it["id"].(string)}
	}
	for _, p := range []*keysetPeer{work, lab} {
		if len(p.calls) != 2 || p.calls[0].After != nil || p.calls[0].Limit != 3 {
			t.Fatalf("%s asked %+v", p.name, p.calls)
		}
		k, ok := last[fedclient.SourceOf(p.name)]
		switch after := p.calls[1].After; {
		case ok && (after == nil || !after.CreatedAt.Equal(k.CreatedAt) || after.ID != k.ID):
			t.Errorf("%s resumed after %+v, want its last row %+v", p.name, after, k)
		case !ok && after != nil:
			t.Errorf("%s contributed nothing but resumed after %+v", p.name, after)
		}
	}
}

// A source that fails on one page is error on that page and every later one, never
// asked again, while the others page on to their ends.
func TestMergedListLeavesAFailedSourceOut(t *testing.T) {
	local, work, lab := world3()
	work.fail = func(call int) error {
		if call == 2 {
			return &fedclient.PeerError{Code: api.CodeUnreachable}
		}
		return nil
	}
	list := mergeAPI(t, local, work, lab)
	got, pages := pageAll(t, list, 3)
	if len(pages) < 3 {
		t.Fatalf("%d pages: the test needs work to fail mid-way", len(pages))
	}
	for i, p := range pages {
		var st api.SourceStatus
		for _, s := range p.Sources {
			if s.Name == "federated:work" {
				st = s
			}
		}
		failed := i >= 1
		if failed != (st.Status == "error") || failed != p.Partial || (failed && st.Error != api.CodeUnreachable) {
			t.Errorf("page %d: work %+v, partial %v", i, st, p.Partial)
		}
	}
	if work.asked() != 2 {
		t.Errorf("work was asked %d times, want 2: once ok, once failing, then left out", work.asked())
	}
	// Every other source's rows once, in order; work's only those of the first page.
	var expected []string
	firstPage := strings.Join(got[:len(pages[0].Items)], ",")
	for _, id := range want(local, work, lab) {
		if !strings.HasPrefix(id, "federated:work/") || strings.Contains(firstPage, id) {
			expected = append(expected, id)
		}
	}
	if strings.Join(got, ",") != strings.Join(expected, ",") {
		t.Fatalf("paged\n%v\nwant\n%v", got, expected)
	}
}

func cursorOf(v any) string {
	b, _ := json.Marshal(v)
	return base64.RawURLEncoding.EncodeToString(b)
}

func TestMergedListRefusesACursorItDidNotWrite(t *testing.T) {
	local, work, lab := world3()
	list := mergeAPI(t, local, work, lab)
	ks := map[string]any{"created_at": "2026-11-01T09:00:00Z", "id": "00000000-0000-4000-8000-000000000100"}
	for name, c := range map[string]string{
		"not base64":          "%%%",
		"not JSON":            base64.RawURLEncoding.EncodeToString([]byte("local|x")),
		"a single source's":   base64.RawURLEncoding.EncodeToString([]byte("2026-11-01T09:00:00Z|00000000-0000-4000-8000-000000000100")),
		"another version":     cursorOf(map[string]any{"v": 2, "sources": map[string]any{}}),
		"no sources":          cursorOf(map[string]any{"v": 1}),
		"an unknown field":    cursorOf(map[string]any{"v": 1, "sources": map[string]any{}, "admin": true}),
		"an unknown source":   cursorOf(map[string]any{"v": 1, "sources": map[string]any{"everything": map[string]any{}}}),
		"a keyset's bad id":   cursorOf(map[string]any{"v": 1, "sources": map[string]any{"local": map[string]any{"after": map[string]any{"created_at": "2026-11-01T09:00:00Z", "id": "1 OR 1=1"}}}}),
		"a keyset's no time":  cursorOf(map[string]any{"v": 1, "sources": map[string]any{"local": map[string]any{"after": map[string]any{"id": ks["id"]}}}}),
		"two states":          cursorOf(map[string]any{"v": 1, "sources": map[string]any{"local": map[string]any{"after": ks, "done": true}}}),
		"a code of no shape":  cursorOf(map[string]any{"v": 1, "sources": map[string]any{"federated:work": map[string]any{"failed": "<script>"}}}),
		"trailing data":       cursorOf(map[string]any{"v": 1, "sources": map[string]any{}}) + base64.RawURLEncoding.EncodeToString([]byte("{}")),
		"over the size limit": strings.Repeat("A", maxMergedCursor+4),
	} {
		code, _, e := list("source=all&limit=3&cursor=" + url.QueryEscape(c))
		if code != 400 || e.Error.Code != api.CodeInvalidCursor {
			t.Errorf("%s: %d %+v, want 400 %s", name, code, e, api.CodeInvalidCursor)
		}
	}
	if work.asked()+lab.asked() != 0 {
		t.Error("a peer was asked on a bad cursor")
	}
}

// A forged cursor only narrows: a source the caller does not own is never asked, a
// source it leaves out stays out, a keyset past every row lists what is after it.
func TestMergedListForgedCursorOnlyNarrows(t *testing.T) {
	local, work, lab := world3()
	list := mergeAPI(t, local, work, lab)
	c := cursorOf(map[string]any{"v": 1, "sources": map[string]any{
		"federated:elsewhere": map[string]any{},
		"federated:work":      map[string]any{"after": map[string]any{"created_at": "2030-01-01T00:00:00Z", "id": "ffffffff-ffff-4fff-bfff-ffffffffffff"}},
	}})
	code, page, e := list("source=all&limit=50&cursor=" + c)
	if code != 200 {
		t.Fatalf("%d %+v", code, e)
	}
	if len(page.Sources) != 1 || page.Sources[0].Name != "federated:work" || lab.asked() != 0 {
		t.Errorf("sources %+v, lab asked %d: only the cursor's own sources of the caller's", page.Sources, lab.asked())
	}
	if len(page.Items) != len(work.rows) {
		t.Errorf("%d items, want work's %d", len(page.Items), len(work.rows))
	}
	for _, it := range page.Items {
		if it["_source"] != "federated:work" {
			t.Errorf("a row of %v", it["_source"])
		}
	}
}
