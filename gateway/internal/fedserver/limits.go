package fedserver

import (
	"context"
	"net/http"
	"strconv"
	"sync/atomic"
	"time"

	"github.com/mosaic-federation/mosaic/gateway/api"
	"github.com/mosaic-federation/mosaic/gateway/internal/errs"
	"github.com/mosaic-federation/mosaic/gateway/internal/fedstore"
	"github.com/mosaic-federation/mosaic/gateway/internal/ratelimit"
)

// Limits is the rate-limit stage: per grant (a grant's own rate or the site's, shared
// by every replica) and per client address on what needs no certificate.
type Limits struct {
	Limiter    *ratelimit.Limiter
	PerGrant   ratelimit.Limit
	PerAddress ratelimit.Limit
	// Hold is the longest an over-limit address's refusal is held (0: none).
	Hold time.Duration

	held atomic.Int64 // refusals being held now
}

// MaxHeld bounds the refusals held at once: past it they are answered at once, so
// holding never costs more than this many parked goroutines.
const MaxHeld = 1024

// grant takes one request of a grant's limit.
func (l *Limits) grant(ctx context.Context, g fedstore.Grant) error {
	if l == nil {
		return nil
	}
	lim := l.PerGrant
	if g.RateLimit != "" {
		// A grant's own rate ("5/s") allows a burst of one period's count.
		if r, err := api.ParseRate(g.RateLimit); err == nil {
			lim = ratelimit.Limit{Rate: r, Burst: r.Count}
		}
	}
	return refusal(l.Limiter.Allow(ctx, "rl:grant:"+g.ID, lim), "the grant's rate limit")
}

// address takes one request of the client address's limit.
func (l *Limits) address(r *http.Request) error {
	if l == nil {
		return nil
	}
	d := l.Limiter.Allow(r.Context(), "rl:addr:"+clientAddr(r), l.PerAddress)
	if !d.Allowed {
		l.hold(r.Context(), d.RetryAfter)
	}
	return refusal(d, "this address's rate limit")
}

// hold parks an over-limit address's refusal until its next request would be allowed
// (at most Hold). A client that sends as fast as it can, never waiting for
// Retry-After, is so slowed to about its allowed rate per connection: a flood from one
// address stops taking the CPU that the requests of everyone else need. A client
// that waits as told loses nothing. Grants' refusals are never held: a peer's
// gateway is trusted to back off, and its caller is waiting on the answer.
func (l *Limits) hold(ctx context.Context, retryAfter time.Duration) {
	d := min(retryAfter, l.Hold)
	if d <= 0 {
		return
	}
	if l.held.Add(1) > MaxHeld {
		l.held.Add(-1)
		return
	}
	defer l.held.Add(-1)
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
	case <-ctx.Done():
	}
}

// perAddress limits next per client address (the routes that need no certificate);
// its refusals are audited like the pipeline's.
func (s *Server) perAddress(verb string, next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if err := s.Limits.address(r); err != nil {
			s.finish(w, r, done{verb: verb, err: err, start: time.Now()}, nil)
			return
		}
		next.ServeHTTP(w, r)
	})
}

// refusal is a 429 with Retry-After when d refuses.
func refusal(d ratelimit.Decision, what string) error {
	if d.Allowed {
		return nil
	}
	secs := d.RetryAfterSeconds()
	e := errs.New(errs.TooMany, api.CodeRateLimited, "over %s: retry in %d s", what, secs)
	e.Header = http.Header{"Retry-After": {strconv.Itoa(secs)}}
	return e
}
