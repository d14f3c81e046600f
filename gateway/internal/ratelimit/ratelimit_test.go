package ratelimit

import (
	"context"
	"io"
	"log/slog"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/mosaic-federation/mosaic/gateway/api"
)

func TestFallbackLimitsAtTheSameRate(t *testing.T) {
	// A Valkey that does not answer: every call falls back to memory.
	rdb := redis.NewClient(&redis.Options{Addr: "127.0.0.1:1", DialTimeout: 50 * time.Millisecond, MaxRetries: -1})
	defer rdb.Close()
	l := New(rdb, slog.New(slog.NewTextHandler(io.Discard, nil)))
	lim := Limit{Rate: api.Rate{Count: 5, Period: time.Second}, Burst: 10}
	allowed := 0
	var last Decision
	for range 50 {
		if last = l.Allow(context.Background(), "grant:g", lim); last.Allowed {
			allowed++
		}
	}
	if !l.Degraded() {
		t.Error("an unreachable Valkey must show as degraded")
	}
	if allowed < 10 || allowed > 11 {
		t.Errorf("%d of 50 allowed at once, want the burst of 10: never unlimited, never refusing everything", allowed)
	}
	if last.Allowed || last.RetryAfterSeconds() < 1 {
		t.Errorf("a refusal must say when to retry, in whole seconds ≥ 1: %+v", last)
	}
	if other := l.Allow(context.Background(), "grant:h", lim); !other.Allowed {
		t.Error("another key has its own limit")
	}
}

func TestRetryAfterSeconds(t *testing.T) {
	for d, want := range map[time.Duration]int{0: 1, time.Millisecond: 1, 1500 * time.Millisecond: 2, 3 * time.Second: 3} {
		if got := (Decision{RetryAfter: d}).RetryAfterSeconds(); got != want {
			t.Errorf("%v: %d, want %d", d, got, want)
		}
	}
}

func TestARememberedRefusalAnswersWithoutValkey(t *testing.T) {
	// Valkey does not answer: a call that reached it would turn the limiter degraded.
	rdb := redis.NewClient(&redis.Options{Addr: "127.0.0.1:1", DialTimeout: 50 * time.Millisecond, MaxRetries: -1})
	defer rdb.Close()
	l := New(rdb, slog.New(slog.NewTextHandler(io.Discard, nil)))
	lim := Limit{Rate: api.Rate{Count: 1, Period: time.Second}, Burst: 1}
	l.refused.Add("addr:x", time.Now().Add(time.Minute))

	d := l.Allow(context.Background(), "addr:x", lim)
	if d.Allowed || d.RetryAfter <= 50*time.Second || l.Degraded() {
		t.Fatalf("a key refused until a minute from now is refused from memory, without Valkey: %+v degraded=%v", d, l.Degraded())
	}
	l.refused.Add("addr:x", time.Now().Add(-time.Millisecond))
	if l.Allow(context.Background(), "addr:x", lim); !l.Degraded() {
		t.Error("once the refusal has run out, Valkey decides again")
	}
}
