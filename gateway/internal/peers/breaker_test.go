package peers

import (
	"bytes"
	"context"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/mosaic-federation/mosaic/gateway/api"
	"github.com/mosaic-federation/mosaic/gateway/internal/audit"
	"github.com/mosaic-federation/mosaic/gateway/internal/fedclient"
	"github.com/mosaic-federation/mosaic/gateway/internal/fedstore"
	"github.com/mosaic-federation/mosaic/gateway/internal/peercache"
)

// fakePeer fails every call with err (nil: answers one row); hold, when set, keeps a
// call until closed.
type fakePeer struct {
	fedclient.Peer
	mu    sync.Mutex
	calls int
	err   error
	hold  chan struct{}
}

func (p *fakePeer) Name() string { return "work" }

func (p *fakePeer) List(context.Context, string, api.FedListRequest) (fedclient.ListResult, error) {
	p.mu.Lock()
	p.calls++
	err, hold := p.err, p.hold
	p.mu.Unlock()
	if hold != nil {
		<-hold
	}
	if err != nil {
		return fedclient.ListResult{}, err
	}
	return fedclient.ListResult{Items: []api.Item{api.Task{ID: "t1"}}}, nil
}

func (p *fakePeer) set(err error) { p.mu.Lock(); p.err = err; p.mu.Unlock() }
func (p *fakePeer) count() int    { p.mu.Lock(); defer p.mu.Unlock(); return p.calls }

func status(s int, code string) error { return &fedclient.PeerError{Status: s, Code: code} }

// What the breaker counts (SPEC §6c): five consecutive transport errors, timeouts or
// 5xx open it; 4xx, 429 and our own cancellations neither count nor open it.
func TestBreakerCountsOnlyFailures(t *testing.T) {
	tests := []struct {
		name  string
		errs  []error
		opens bool
	}{
		{"five 503s", repeat(status(503, api.CodeUnavailable), 5), true},
		{"five unreachable", repeat(status(0, api.CodeUnreachable), 5), true},
		{"five timeouts", repeat(status(0, api.CodeTimeout), 5), true},
		{"mixed failures", []error{status(500, "x"), status(0, api.CodeTimeout), status(502, "x"), status(0, api.CodeReadFailed), status(504, "x")}, true},
		{"four failures", repeat(status(503, api.CodeUnavailable), 4), false},
		{"ten 429s", repeat(status(429, api.CodeRateLimited), 10), false},
		{"ten 403s", repeat(status(403, api.CodeGrantRevoked), 10), false},
		{"ten 404s", repeat(status(404, api.CodeNotFound), 10), false},
		{"ten cancellations", repeat(status(0, api.CodeCanceled), 10), false},
		{"ten malformed answers", repeat(status(0, api.CodeInvalidResponse), 10), false},
		{"a success between", append(append(repeat(status(503, "x"), 4), nil), repeat(status(503, "x"), 4)...), false},
		{"a cancellation between counts for nothing", append(append(repeat(status(503, "x"), 4), status(0, api.CodeCanceled)), status(503, "x")), true},
		{"a 404 between", append(append(repeat(status(503, "x"), 4), status(404, "x")), repeat(status(503, "x"), 4)...), false},
	}
	for _, tc := range tests {
		b := &Breakers{OpenFor: time.Minute}
		peer := &fakePeer{}
		p := b.wrap(peer, "peer-1")
		for _, err := range tc.errs {
			peer.set(err)
			_, _ = p.List(context.Background(), "tasks", api.FedListRequest{})
		}
		peer.set(nil)
		_, err := p.List(context.Background(), "tasks", api.FedListRequest{})
		open := fedclient.Code(err) == api.CodePeerUnavailable
		if open != tc.opens || (open && peer.count() != len(tc.errs)) {
			t.Errorf("%s: open %v, want %v (%d calls reached the peer)", tc.name, open, tc.opens, peer.count())
		}
	}
}

func repeat(err error, n int) []error {
	out := make([]error, n)
	for i := range out {
		out[i] = err
	}
	return out
}

// Open → after open_for one probe (others fail at once meanwhile) → closed on its
// success; state changes are logged with the peer's name only.
func TestBreakerHalfOpensForOneProbe(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var logs bytes.Buffer
		b := &Breakers{OpenFor: 10 * time.Second, Log: slog.New(slog.NewTextHandler(&logs, nil))}
		peer := &fakePeer{err: status(0, api.CodeUnreachable)}
		p := b.wrap(peer, "peer-1")
		ctx := context.Background()
		for range 5 {
			_, _ = p.List(ctx, "tasks", api.FedListRequest{})
		}
		if _, err := p.List(ctx, "tasks", api.FedListRequest{}); fedclient.Code(err) != api.CodePeerUnavailable || peer.count() != 5 {
			t.Fatalf("open: %v, %d calls", err, peer.count())
		}
		time.Sleep(9 * time.Second)
		if _, err := p.List(ctx, "tasks", api.FedListRequest{}); fedclient.Code(err) != api.CodePeerUnavailable {
			t.Fatalf("still open before open_for: %v", err)
		}
		time.Sleep(time.Second + time.Millisecond)
		peer.set(nil)
		peer.hold = make(chan struct{})
		probe := make(chan error)
		go func() { _, err := p.List(ctx, "tasks", api.FedListRequest{}); probe <- err }()
		synctest.Wait()        // the probe is at the peer
		b.wrap(peer, "peer-1") // the same peer's breaker, not a new one
		if _, err := p.List(ctx, "tasks", api.FedListRequest{}); fedclient.Code(err) != api.CodePeerUnavailable {
			t.Errorf("a second call while the probe is out: %v", err)
		}
		close(peer.hold)
		if err := <-probe; err != nil || peer.count() != 6 {
			t.Fatalf("probe: %v, %d calls", err, peer.count())
		}
		if _, err := p.List(ctx, "tasks", api.FedListRequest{}); err != nil {
			t.Errorf("closed after the probe: %v", err)
		}
		for _, want := range []string{"from=closed to=open", "from=open to=half-open", "from=half-open to=closed", "peer=work"} {
			if !strings.Contains(logs.String(), want) {
				t.Errorf("log lacks %q:\n%s", want, logs.String())
			}
		}
	})
}

type auditLog struct {
	mu   sync.Mutex
	rows []audit.Entry
}

func (l *auditLog) Enqueue(e audit.Entry) { l.mu.Lock(); l.rows = append(l.rows, e); l.mu.Unlock() }
func (l *auditLog) count() int            { l.mu.Lock(); defer l.mu.Unlock(); return len(l.rows) }

// The stages' order: a cache hit makes no call and no outbound audit row; with the
// breaker open, the cache answers stale and nothing reaches the peer or the audit.
func TestStagesOrder(t *testing.T) {
	log := &auditLog{}
	d := &Directory{Audit: log, Breakers: &Breakers{OpenFor: time.Minute},
		Cache: peercache.New(peercache.Config{TTL: time.Minute, MaxStaleness: time.Hour, MaxBytes: 1 << 20})}
	peer := &fakePeer{}
	p := d.stages(peer, fedstore.Peer{ID: "peer-1", Name: "work", OwnerUserID: "u1", GrantID: "g1"})
	ctx := context.Background()
	if _, err := p.List(ctx, "tasks", api.FedListRequest{}); err != nil || log.count() != 1 {
		t.Fatalf("first call: %v, %d audit rows", err, log.count())
	}
	if res, err := p.List(ctx, "tasks", api.FedListRequest{}); err != nil || !res.Cached || log.count() != 1 || peer.count() != 1 {
		t.Errorf("a cache hit: %+v %v, %d audit rows, %d calls", res, err, log.count(), peer.count())
	}
	peer.set(status(503, api.CodeUnavailable))
	nc := peercache.WithNoCache(ctx)
	for range 5 {
		_, _ = p.List(nc, "tasks", api.FedListRequest{})
	}
	rows, calls := log.count(), peer.count()
	if res, err := p.List(ctx, "tasks", api.FedListRequest{}); err != nil || !res.Cached || peer.count() != calls {
		t.Errorf("a fresh entry answers, the breaker open or not: %+v %v", res, err)
	}
	if _, err := p.List(ctx, "tasks", api.FedListRequest{Limit: 5}); fedclient.Code(err) != api.CodePeerUnavailable ||
		log.count() != rows || peer.count() != calls {
		t.Errorf("open breaker, no entry: %v, %d audit rows (was %d), %d calls (was %d)", err, log.count(), rows, peer.count(), calls)
	}
	d.Cache = peercache.New(peercache.Config{TTL: 0, MaxStaleness: time.Hour, MaxBytes: 1 << 20})
	peer.set(nil)
	d.Breakers = &Breakers{OpenFor: time.Minute}
	p = d.stages(peer, fedstore.Peer{ID: "peer-1", Name: "work", OwnerUserID: "u1", GrantID: "g1"})
	_, _ = p.List(ctx, "tasks", api.FedListRequest{})
	peer.set(status(503, api.CodeUnavailable))
	for range 5 {
		_, _ = p.List(nc, "tasks", api.FedListRequest{})
	}
	rows, calls = log.count(), peer.count()
	if res, err := p.List(ctx, "tasks", api.FedListRequest{}); err != nil || !res.Stale || log.count() != rows || peer.count() != calls {
		t.Errorf("open breaker with an entry: %+v %v; %d calls (was %d)", res, err, peer.count(), calls)
	}
}
