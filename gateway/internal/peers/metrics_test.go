package peers

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/mosaic-federation/mosaic/gateway/api"
	"github.com/mosaic-federation/mosaic/gateway/internal/fedstore"
	"github.com/mosaic-federation/mosaic/gateway/internal/peercache"
	"github.com/mosaic-federation/mosaic/gateway/internal/telemetry"
)

// TestStagesExportBreakerAndCacheMetrics: a fresh hit and a stale answer are counted
// under our name for the peer, a call's latency and failure code are observed, and
// the breaker's state follows it open.
func TestStagesExportBreakerAndCacheMetrics(t *testing.T) {
	m := telemetry.NewMetrics()
	stages := func(ttl time.Duration, name string) (*fakePeer, func(context.Context, int) error) {
		d := &Directory{Metrics: m, Breakers: &Breakers{OpenFor: time.Minute, Metrics: m},
			Cache: peercache.New(peercache.Config{TTL: ttl, MaxStaleness: time.Hour, MaxBytes: 1 << 20})}
		fake := &fakePeer{}
		p := d.stages(named{fake, name}, fedstore.Peer{ID: name, Name: name, OwnerUserID: "u1", GrantID: "g1"})
		return fake, func(ctx context.Context, limit int) error {
			_, err := p.List(ctx, "tasks", api.FedListRequest{Limit: limit})
			return err
		}
	}
	ctx := context.Background()
	_, list := stages(time.Hour, "work")
	for range 2 { // a live answer, then a fresh hit
		if err := list(ctx, 1); err != nil {
			t.Fatal(err)
		}
	}
	fake, list := stages(0, "lab") // fresh hits off: a failing peer's answers are stale
	if err := list(ctx, 1); err != nil {
		t.Fatal(err)
	}
	fake.set(status(503, api.CodeUnavailable))
	for range 5 { // each answered stale, each a failure to the breaker: open after five
		if err := list(ctx, 1); err != nil {
			t.Fatalf("not answered stale: %v", err)
		}
	}
	body := scrapeMetrics(m)
	for _, want := range []string{
		`mosaic_peer_cache_hits_total{peer="work"} 1`,
		`mosaic_peer_breaker_state{peer="work"} 0`,
		`mosaic_peer_call_duration_seconds_count{peer="work",verb="list"} 1`,
		`mosaic_peer_stale_answers_total{peer="lab"} 5`,
		`mosaic_peer_breaker_state{peer="lab"} 2`,
		`mosaic_peer_errors_total{code="unavailable",peer="lab"} 5`,
	} {
		if !strings.Contains(body, want) {
			t.Errorf("missing %s", want)
		}
	}
}

func scrapeMetrics(m *telemetry.Metrics) string {
	w := httptest.NewRecorder()
	m.Handler(false).ServeHTTP(w, httptest.NewRequest(http.MethodGet, "/metrics", nil))
	return w.Body.String()
}

// named is a fake peer under our name for it (the client's name is the row's).
type named struct {
	*fakePeer
	name string
}

func (n named) Name() string { return n.name }
