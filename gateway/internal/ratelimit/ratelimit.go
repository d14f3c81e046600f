// Package ratelimit is the serving side's limits (SPEC §6b): GCRA in Valkey, so every
// replica of a site shares one limit per key (go-redis/redis_rate), with an in-memory
// limiter at the same rate per replica while Valkey is unreachable — never unlimited,
// never refusing everything — and back to Valkey once it answers.
package ratelimit

import (
	"context"
	"log/slog"
	"math"
	"sync"
	"sync/atomic"
	"time"

	"github.com/go-redis/redis_rate/v10"
	"github.com/hashicorp/golang-lru/v2/simplelru"
	"github.com/redis/go-redis/v9"
	"golang.org/x/time/rate"

	"github.com/mosaic-federation/mosaic/gateway/api"
)

// Limit is a rate and the burst above it.
type Limit struct {
	Rate  api.Rate
	Burst int
}

// Decision is a limiter's answer.
type Decision struct {
	Allowed    bool
	RetryAfter time.Duration // when refused: how long until one more is allowed
}

// RetryAfterSeconds is Retry-After as HTTP wants it: whole seconds, at least 1.
func (d Decision) RetryAfterSeconds() int {
	return max(1, int(math.Ceil(d.RetryAfter.Seconds())))
}

// Limiter decides per key.
type Limiter struct {
	shared *redis_rate.Limiter
	log    *slog.Logger

	degraded atomic.Bool
	retryAt  atomic.Int64 // unix nanoseconds: when to try Valkey again

	mu    sync.Mutex
	local *simplelru.LRU[string, *rate.Limiter]
	// refused remembers, per key, until when Valkey's last answer refuses it. GCRA does
	// not move a key's schedule when it refuses, and other replicas can only move it
	// later, so until then the answer is known without a round trip: a flood of
	// refusals costs this replica (and Valkey) next to nothing.
	refused *simplelru.LRU[string, time.Time]
}

// localKeys bounds the fallback's memory: the least recently used keys start afresh.
const localKeys = 10000

// retryValkey is how long the fallback serves before Valkey is tried again.
const retryValkey = time.Second

// New limits through rdb (nil: the in-memory limiter only, as a tier without Valkey).
func New(rdb redis.UniversalClient, log *slog.Logger) *Limiter {
	l := &Limiter{log: log}
	l.local, _ = simplelru.NewLRU[string, *rate.Limiter](localKeys, nil)
	l.refused, _ = simplelru.NewLRU[string, time.Time](localKeys, nil)
	if rdb != nil {
		l.shared = redis_rate.NewLimiter(rdb)
	}
	return l
}

// Degraded says the limiter is on its in-memory fallback (Valkey unreachable).
func (l *Limiter) Degraded() bool { return l.degraded.Load() }

// Allow takes one request of key under lim.
func (l *Limiter) Allow(ctx context.Context, key string, lim Limit) Decision {
	if l.shared != nil && (!l.degraded.Load() || time.Now().UnixNano() >= l.retryAt.Load()) {
		if d, ok := l.stillRefused(key); ok {
			return d
		}
		res, err := l.shared.Allow(ctx, "mosaic:"+key, redis_rate.Limit{Rate: lim.Rate.Count, Period: lim.Rate.Period, Burst: lim.Burst})
		if err == nil {
			if l.degraded.Swap(false) {
				l.log.Info("rate limits shared through Valkey again")
			}
			d := Decision{Allowed: res.Allowed > 0, RetryAfter: res.RetryAfter}
			if !d.Allowed && d.RetryAfter > 0 {
				l.mu.Lock()
				l.refused.Add(key, time.Now().Add(d.RetryAfter))
				l.mu.Unlock()
			}
			return d
		}
		if !l.degraded.Swap(true) {
			l.log.Warn("Valkey unreachable: rate limits fall back to this replica's memory, at the same rates", "err", err)
		}
		l.retryAt.Store(time.Now().Add(retryValkey).UnixNano())
	}
	return l.allowLocal(key, lim)
}

// stillRefused answers from the last refusal of key while it holds.
func (l *Limiter) stillRefused(key string) (Decision, bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	until, ok := l.refused.Get(key)
	if !ok {
		return Decision{}, false
	}
	if left := time.Until(until); left > 0 {
		return Decision{RetryAfter: left}, true
	}
	l.refused.Remove(key)
	return Decision{}, false
}

// allowLocal is the same limit, kept in this process.
func (l *Limiter) allowLocal(key string, lim Limit) Decision {
	l.mu.Lock()
	b, ok := l.local.Get(key)
	if !ok || b.Burst() != lim.Burst || b.Limit() != perSecond(lim.Rate) {
		b = rate.NewLimiter(perSecond(lim.Rate), lim.Burst)
		l.local.Add(key, b)
	}
	l.mu.Unlock()
	r := b.Reserve()
	if d := r.Delay(); d > 0 {
		r.Cancel()
		return Decision{RetryAfter: d}
	}
	return Decision{Allowed: true}
}

func perSecond(r api.Rate) rate.Limit {
	return rate.Limit(float64(r.Count) / r.Period.Seconds())
}
