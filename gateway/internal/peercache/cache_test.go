package peercache

import (
	"context"
	"fmt"
	"net/http"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/mosaic-federation/mosaic/gateway/api"
	"github.com/mosaic-federation/mosaic/gateway/internal/fedclient"
)

// fakePeer answers lists and searches with one row each, or fails with err; calls
// counts what reached it. release, when set, holds every call until closed.
type fakePeer struct {
	fedclient.Peer // Name and anything else unused
	mu             sync.Mutex
	calls          int
	err            error
	release        chan struct{}
}

func (p *fakePeer) Name() string { return "work" }

func (p *fakePeer) call(ctx context.Context) error {
	p.mu.Lock()
	p.calls++
	err, release := p.err, p.release
	p.mu.Unlock()
	if release != nil {
		select {
		case <-release:
		case <-ctx.Done(): // as the transport does
			return &fedclient.PeerError{Code: api.CodeCanceled}
		}
	}
	return err
}

func (p *fakePeer) List(ctx context.Context, _ string, _ api.FedListRequest) (fedclient.ListResult, error) {
	if err := p.call(ctx); err != nil {
		return fedclient.ListResult{}, err
	}
	return fedclient.ListResult{Items: []api.Item{api.Task{ID: "t1"}}, NextCursor: "c1"}, nil
}

func (p *fakePeer) Search(ctx context.Context, _ string, _ api.SearchRequest) (fedclient.SearchResult, error) {
	if err := p.call(ctx); err != nil {
		return fedclient.SearchResult{}, err
	}
	return fedclient.SearchResult{Items: []api.Item{api.Memory{ID: "m1"}}}, nil
}

func (p *fakePeer) Get(ctx context.Context, _, _ string) (api.Item, error) {
	return nil, p.call(ctx)
}

func (p *fakePeer) fail(err error) { p.mu.Lock(); p.err = err; p.mu.Unlock() }

func (p *fakePeer) count() int { p.mu.Lock(); defer p.mu.Unlock(); return p.calls }

// clock is a settable now.
type clock struct{ t time.Time }

func (c *clock) now() time.Time      { return c.t }
func (c *clock) add(d time.Duration) { c.t = c.t.Add(d) }
func newCache(ttl time.Duration) (*Cache, *clock) {
	c := New(Config{TTL: ttl, MaxStaleness: 10 * time.Minute, MaxBytes: 1 << 20})
	clk := &clock{t: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)}
	c.now = clk.now
	return c, clk
}

var (
	alice = Owner{UserID: "alice", PeerID: "peer-work", GrantID: "grant-1"}
	req   = api.FedListRequest{Limit: 10}
	ctx   = context.Background()
)

func TestAFreshEntryAnswersWithoutACall(t *testing.T) {
	c, clk := newCache(5 * time.Second)
	peer := &fakePeer{}
	p := c.Wrap(peer, alice)
	if res, err := p.List(ctx, "tasks", req); err != nil || res.Cached || len(res.Items) != 1 {
		t.Fatalf("first: %+v %v", res, err)
	}
	clk.add(2 * time.Second)
	res, err := p.List(ctx, "tasks", req)
	if err != nil || !res.Cached || res.Stale || res.Age != 2*time.Second || res.NextCursor != "c1" || peer.count() != 1 {
		t.Errorf("within the ttl: %+v %v, %d calls", res, err, peer.count())
	}
	clk.add(3 * time.Second) // 5s: no longer fresh
	if res, err := p.List(ctx, "tasks", req); err != nil || res.Cached || peer.count() != 2 {
		t.Errorf("after the ttl: %+v %v, %d calls", res, err, peer.count())
	}
	s, err := p.Search(ctx, "memories", api.SearchRequest{Query: "q", Mode: api.ModeText, Limit: 3})
	s2, _ := p.Search(ctx, "memories", api.SearchRequest{Query: "q", Mode: api.ModeText, Limit: 3})
	if err != nil || s.Cached || !s2.Cached || peer.count() != 3 {
		t.Errorf("search: %+v then %+v, %d calls", s, s2, peer.count())
	}
}

func TestTTLZeroTurnsFreshHitsOff(t *testing.T) {
	c, _ := newCache(0)
	peer := &fakePeer{}
	p := c.Wrap(peer, alice)
	for range 3 {
		if res, err := p.List(ctx, "tasks", req); err != nil || res.Cached {
			t.Fatalf("%+v %v", res, err)
		}
	}
	if peer.count() != 3 {
		t.Errorf("%d calls, want 3", peer.count())
	}
	peer.fail(&fedclient.PeerError{Code: api.CodeUnreachable})
	if res, err := p.List(ctx, "tasks", req); err != nil || !res.Stale {
		t.Errorf("ttl 0 still keeps entries for stale answers: %+v %v", res, err)
	}
}

// Which failures a stale entry answers for (SPEC §6c): transport errors, timeouts,
// 5xx, 429 and an open breaker — never a refusal or a malformed answer.
func TestStaleAnswers(t *testing.T) {
	status := func(s int, code string) error { return &fedclient.PeerError{Status: s, Code: code} }
	tests := []struct {
		name  string
		err   error
		stale bool
	}{
		{"unreachable", status(0, api.CodeUnreachable), true},
		{"a timeout", status(0, api.CodeTimeout), true},
		{"a read that failed", status(0, api.CodeReadFailed), true},
		{"a TLS failure", status(0, api.CodeTLSVerificationFailed), true},
		{"500", status(500, api.CodeInternal), true},
		{"503", status(503, api.CodeUnavailable), true},
		{"429", status(429, api.CodeRateLimited), true},
		{"an open breaker", status(0, api.CodePeerUnavailable), true},
		{"400", status(400, api.CodeInvalidCursor), false},
		{"404", status(404, api.CodeNotFound), false},
		{"401", status(401, api.CodeCertificateExpired), false},
		{"403", status(403, api.CodeGrantRevoked), false},
		{"a malformed answer", status(0, api.CodeInvalidResponse), false},
		{"our caller left", status(0, api.CodeCanceled), false},
		{"an error that is no peer's", fmt.Errorf("boom"), false},
	}
	for _, tc := range tests {
		c, clk := newCache(5 * time.Second)
		peer := &fakePeer{}
		p := c.Wrap(peer, alice)
		if _, err := p.List(ctx, "tasks", req); err != nil {
			t.Fatal(err)
		}
		clk.add(time.Minute)
		peer.fail(tc.err)
		res, err := p.List(ctx, "tasks", req)
		if tc.stale {
			if err != nil || !res.Stale || res.Cached || res.Age != time.Minute || len(res.Items) != 1 {
				t.Errorf("%s: want stale, got %+v %v", tc.name, res, err)
			}
			// Older than max_staleness: no answer but the error.
			clk.add(10 * time.Minute)
			if _, err := p.List(ctx, "tasks", req); err == nil {
				t.Errorf("%s: an entry older than max_staleness answered", tc.name)
			}
			continue
		}
		if err == nil || res.Stale || res.Items != nil {
			t.Errorf("%s: want the error, got %+v %v", tc.name, res, err)
		}
	}
}

func TestNoStaleWithoutAnEntry(t *testing.T) {
	c, _ := newCache(5 * time.Second)
	peer := &fakePeer{err: &fedclient.PeerError{Code: api.CodeUnreachable}}
	if res, err := c.Wrap(peer, alice).List(ctx, "tasks", req); err == nil || res.Stale {
		t.Errorf("%+v %v", res, err)
	}
}

// "Cache-Control: no-cache": a live answer or an error, never a cached or stale one.
func TestNoCacheSkipsTheCache(t *testing.T) {
	c, _ := newCache(5 * time.Second)
	peer := &fakePeer{}
	p := c.Wrap(peer, alice)
	if _, err := p.List(ctx, "tasks", req); err != nil {
		t.Fatal(err)
	}
	nc := WithNoCache(ctx)
	if res, err := p.List(nc, "tasks", req); err != nil || res.Cached || peer.count() != 2 {
		t.Errorf("a fresh entry answered a no-cache request: %+v %v, %d calls", res, err, peer.count())
	}
	peer.fail(&fedclient.PeerError{Status: 503, Code: api.CodeUnavailable})
	if res, err := p.List(nc, "tasks", req); err == nil || res.Stale {
		t.Errorf("a stale entry answered a no-cache request: %+v %v", res, err)
	}
}

// A 401 or 403 drops every entry of that peer — of every user, every request — and
// no other peer's.
func TestRefusalsDropThePeersEntries(t *testing.T) {
	for _, status := range []int{http.StatusUnauthorized, http.StatusForbidden} {
		for _, verb := range []string{"list", "get"} {
			c, _ := newCache(5 * time.Second)
			work, lab := &fakePeer{}, &fakePeer{}
			bob := Owner{UserID: "bob", PeerID: alice.PeerID, GrantID: "grant-2"}
			pa, pb := c.Wrap(work, alice), c.Wrap(work, bob)
			other := c.Wrap(lab, Owner{UserID: "alice", PeerID: "peer-lab", GrantID: "grant-3"})
			for _, p := range []fedclient.Peer{pa, pb, other} {
				_, _ = p.List(ctx, "tasks", req)
				_, _ = p.List(ctx, "notes", req)
			}
			work.fail(&fedclient.PeerError{Status: status, Code: "refused"})
			if verb == "list" {
				if _, err := pa.List(WithNoCache(ctx), "tasks", req); fedclient.Code(err) != "refused" {
					t.Fatalf("%d: %v", status, err)
				}
			} else if _, err := pa.Get(ctx, "tasks", "x"); fedclient.Code(err) != "refused" {
				t.Fatalf("%d get: %v", status, err)
			}
			work.fail(&fedclient.PeerError{Status: 503, Code: api.CodeUnavailable})
			for _, p := range []fedclient.Peer{pa, pb} {
				if res, err := p.List(ctx, "notes", req); err == nil || res.Stale || res.Cached {
					t.Errorf("%d after a %s: an entry of the refusing peer answered: %+v %v", status, verb, res, err)
				}
			}
			if res, err := other.List(ctx, "notes", req); err != nil || !res.Cached {
				t.Errorf("%d after a %s: another peer's entry was dropped: %+v %v", status, verb, res, err)
			}
		}
	}
}

func TestDropPeerAndDropAll(t *testing.T) {
	c, _ := newCache(5 * time.Second)
	peer := &fakePeer{}
	p := c.Wrap(peer, alice)
	_, _ = p.List(ctx, "tasks", req)
	c.DropPeer(alice.PeerID)
	if res, _ := p.List(ctx, "tasks", req); res.Cached {
		t.Error("DropPeer left an entry")
	}
	c.DropAll()
	if res, _ := p.List(ctx, "tasks", req); res.Cached || peer.count() != 3 {
		t.Errorf("DropAll left an entry: %d calls", peer.count())
	}
}

// The key holds the user, the peer, the grant and the whole request — and nothing
// of the call's request id.
func TestKeysIsolateUsersGrantsAndRequests(t *testing.T) {
	since := time.Date(2026, 1, 1, 12, 0, 0, 0, time.UTC)
	sinceElsewhere := since.In(time.FixedZone("CET", 3600))
	tests := []struct {
		name   string
		o      Owner
		ctx    context.Context
		req    api.FedListRequest
		shared bool
	}{
		{"the same request", alice, ctx, req, true},
		{"another request id", alice, fedclient.WithRequestID(ctx, "other-id"), req, true},
		{"another user", Owner{UserID: "bob", PeerID: alice.PeerID, GrantID: alice.GrantID}, ctx, req, false},
		{"another grant", Owner{UserID: alice.UserID, PeerID: alice.PeerID, GrantID: "grant-9"}, ctx, req, false},
		{"another peer", Owner{UserID: alice.UserID, PeerID: "peer-lab", GrantID: alice.GrantID}, ctx, req, false},
		{"another limit", alice, ctx, api.FedListRequest{Limit: 11}, false},
		{"a cursor", alice, ctx, api.FedListRequest{Limit: 10, Cursor: "x"}, false},
		{"a keyset", alice, ctx, api.FedListRequest{Limit: 10, After: &api.Keyset{CreatedAt: since, ID: "k1"}}, false},
		{"a filter", alice, ctx, api.FedListRequest{Limit: 10, Filter: api.Filter{Status: api.StatusDone}}, false},
	}
	for _, tc := range tests {
		c, _ := newCache(5 * time.Second)
		peer := &fakePeer{}
		if _, err := c.Wrap(peer, alice).List(fedclient.WithRequestID(ctx, "first-id"), "tasks", req); err != nil {
			t.Fatal(err)
		}
		res, err := c.Wrap(peer, tc.o).List(tc.ctx, "tasks", tc.req)
		if err != nil || res.Cached != tc.shared {
			t.Errorf("%s: cached %v, want %v (%v)", tc.name, res.Cached, tc.shared, err)
		}
	}
	c, _ := newCache(5 * time.Second)
	peer := &fakePeer{}
	p := c.Wrap(peer, alice)
	_, _ = p.List(ctx, "tasks", api.FedListRequest{Limit: 1, Filter: api.Filter{UpdatedSince: &since}})
	if res, _ := p.List(ctx, "tasks", api.FedListRequest{Limit: 1, Filter: api.Filter{UpdatedSince: &sinceElsewhere}}); !res.Cached {
		t.Error("one instant in two zones made two keys")
	}
	_, _ = p.List(ctx, "tasks", api.FedListRequest{Limit: 1, After: &api.Keyset{CreatedAt: since, ID: "k1"}})
	if res, _ := p.List(ctx, "tasks", api.FedListRequest{Limit: 1, After: &api.Keyset{CreatedAt: sinceElsewhere, ID: "k1"}}); !res.Cached {
		t.Error("one keyset in two zones made two keys")
	}
	if res, _ := p.List(ctx, "tasks", api.FedListRequest{Limit: 1, After: &api.Keyset{CreatedAt: since, ID: "k2"}}); res.Cached {
		t.Error("another keyset shared a key")
	}
	if res, _ := p.List(ctx, "notes", api.FedListRequest{Limit: 1, Filter: api.Filter{UpdatedSince: &since}}); res.Cached {
		t.Error("another resource shared a key")
	}
}

// Identical concurrent requests share one call; another user's identical request
// does not share it. With fresh hits off (ttl 0) each makes its own.
func TestConcurrentIdenticalRequestsShareOneCall(t *testing.T) {
	for ttl, want := range map[time.Duration]int{time.Second: 2, 0: 9} {
		concurrent(t, ttl, want)
	}
}

func concurrent(t *testing.T, ttl time.Duration, want int) {
	c := New(Config{TTL: ttl, MaxStaleness: time.Minute, MaxBytes: 1 << 20})
	synctest.Test(t, func(t *testing.T) {
		peer := &fakePeer{release: make(chan struct{})}
		bob := Owner{UserID: "bob", PeerID: alice.PeerID, GrantID: alice.GrantID}
		var wg sync.WaitGroup
		results := make([]fedclient.ListResult, 9)
		for i := range results {
			o := alice
			if i == 8 {
				o = bob
			}
			wg.Go(func() {
				var err error
				if results[i], err = c.Wrap(peer, o).List(ctx, "tasks", req); err != nil {
					t.Error(err)
				}
			})
		}
		synctest.Wait() // every caller is waiting on a call
		if n := peer.count(); n != want {
			t.Errorf("ttl %v: %d calls in flight, want %d (alice's eight share one unless ttl is 0; bob's is his own)", ttl, n, want)
		}
		close(peer.release)
		wg.Wait()
		for _, r := range results {
			if len(r.Items) != 1 || r.Cached {
				t.Errorf("a caller got %+v", r)
			}
		}
	})
}

// A caller whose deadline passes leaves a shared call without failing the others.
func TestACallerLeavingDoesNotFailTheOthers(t *testing.T) {
	c := New(Config{TTL: time.Second, MaxStaleness: time.Minute, MaxBytes: 1 << 20})
	synctest.Test(t, func(t *testing.T) {
		peer := &fakePeer{release: make(chan struct{})}
		short, cancel := context.WithCancel(ctx)
		errs := make(chan error, 2)
		go func() { _, err := c.Wrap(peer, alice).List(short, "tasks", req); errs <- err }()
		synctest.Wait()
		go func() { _, err := c.Wrap(peer, alice).List(ctx, "tasks", req); errs <- err }()
		synctest.Wait()
		cancel()
		if err := <-errs; fedclient.Code(err) != api.CodeCanceled {
			t.Errorf("the caller that left: %v", err)
		}
		close(peer.release)
		if err := <-errs; err != nil || peer.count() != 1 {
			t.Errorf("the caller that stayed: %v, %d calls", err, peer.count())
		}
	})
}

func TestEntriesAreBoundedInBytes(t *testing.T) {
	c := New(Config{TTL: time.Minute, MaxStaleness: time.Minute, MaxBytes: 64 << 10})
	peer := &fakePeer{}
	for i := range 2000 { // ~300 bytes each: ~600 KB asked of a 64 KiB cache
		_, _ = c.Wrap(peer, alice).List(ctx, "tasks", api.FedListRequest{Limit: i + 1})
	}
	c.entries.CleanUp()
	if w := c.entries.WeightedSize(); w > 64<<10 {
		t.Errorf("weighted size %d over the bound", w)
	}
}

// sizedPeer answers a page the size a peer's bytes said.
type sizedPeer struct {
	fakePeer
	size int
}

func (p *sizedPeer) List(context.Context, string, api.FedListRequest) (fedclient.ListResult, error) {
	return fedclient.ListResult{Items: []api.Item{api.Task{ID: "t1"}}, Size: p.size}, nil
}

// An entry weighs what its answer weighed on the wire: a 40 KB answer fills most
// of a 64 KiB cache, and a second one pushes the first out.
func TestEntriesWeighTheirAnswer(t *testing.T) {
	c := New(Config{TTL: time.Minute, MaxStaleness: time.Minute, MaxBytes: 64 << 10})
	peer := &sizedPeer{size: 40 << 10}
	_, _ = c.Wrap(peer, alice).List(ctx, "tasks", api.FedListRequest{Limit: 1})
	c.entries.CleanUp()
	if w := c.entries.WeightedSize(); w < 40<<10 || w > 41<<10 {
		t.Errorf("weighted size %d, want the answer's 40 KiB and a little", w)
	}
	_, _ = c.Wrap(peer, alice).List(ctx, "tasks", api.FedListRequest{Limit: 2})
	c.entries.CleanUp()
	if w := c.entries.WeightedSize(); w > 64<<10 {
		t.Errorf("weighted size %d over the bound", w)
	}
}

// A call in flight when the peer's entries are dropped (a revocation, a 403 to
// another request) does not refill the cache with its answer.
func TestACallInFlightAcrossADropIsNotKept(t *testing.T) {
	c := New(Config{TTL: time.Minute, MaxStaleness: time.Hour, MaxBytes: 1 << 20})
	synctest.Test(t, func(t *testing.T) {
		peer := &fakePeer{release: make(chan struct{})}
		done := make(chan error)
		go func() { _, err := c.Wrap(peer, alice).List(ctx, "tasks", req); done <- err }()
		synctest.Wait()
		c.DropPeer(alice.PeerID)
		close(peer.release)
		if err := <-done; err != nil {
			t.Fatal(err)
		}
		peer.release = nil
		if res, _ := c.Wrap(peer, alice).List(ctx, "tasks", req); res.Cached {
			t.Error("an answer begun before the drop was kept")
		}
	})
}
