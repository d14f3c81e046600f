package peers

import (
	"context"
	"errors"
	"log/slog"
	"sync"
	"time"

	"github.com/sony/gobreaker/v2"

	"github.com/mosaic-federation/mosaic/gateway/api"
	"github.com/mosaic-federation/mosaic/gateway/internal/fedclient"
	"github.com/mosaic-federation/mosaic/gateway/internal/telemetry"
)

// tripAfter is how many consecutive failures open a peer's breaker (SPEC §6c).
const tripAfter = 5

// Breakers keep one circuit breaker per peer (closed → open after tripAfter
// consecutive failures → half-open after OpenFor, one probe). They outlive the
// directory's clients: a renewed certificate does not make a dead link live.
type Breakers struct {
	OpenFor time.Duration
	Log     *slog.Logger
	// Metrics exports each breaker's state (nil: none).
	Metrics *telemetry.Metrics

	mu sync.Mutex
	m  map[string]*gobreaker.CircuitBreaker[any] // by peer row id
}

// wrap puts the peer's breaker in front of p.
func (b *Breakers) wrap(p fedclient.Peer, peerID string) fedclient.Peer {
	b.mu.Lock()
	defer b.mu.Unlock()
	cb, ok := b.m[peerID]
	if !ok {
		cb = gobreaker.NewCircuitBreaker[any](gobreaker.Settings{
			Name:        p.Name(),
			MaxRequests: 1,
			Timeout:     b.OpenFor,
			ReadyToTrip: func(c gobreaker.Counts) bool { return c.ConsecutiveFailures >= tripAfter },
			// A refusal (4xx, 429) is the peer answering: not a failure of the link.
			IsSuccessful: func(err error) bool { return !fedclient.Failure(err) },
			// Our caller leaving says nothing about the peer.
			IsExcluded:    func(err error) bool { return fedclient.Code(err) == api.CodeCanceled },
			OnStateChange: b.logChange,
		})
		if b.m == nil {
			b.m = map[string]*gobreaker.CircuitBreaker[any]{}
		}
		b.m[peerID] = cb
		b.Metrics.BreakerState(p.Name(), telemetry.BreakerClosed)
	}
	return broken{Peer: p, cb: cb}
}

// logChange logs a breaker's new state: the peer's name only.
func (b *Breakers) logChange(peer string, from, to gobreaker.State) {
	b.Metrics.BreakerState(peer, breakerState(to))
	if b.Log != nil {
		b.Log.Warn("peer circuit breaker changed state", "peer", peer, "from", from.String(), "to", to.String())
	}
}

// broken is a peer behind its breaker: while the breaker is open, calls fail at
// once with peer_unavailable and no deadline is waited out.
type broken struct {
	fedclient.Peer
	cb *gobreaker.CircuitBreaker[any]
}

func (s broken) List(ctx context.Context, resource string, req api.FedListRequest) (fedclient.ListResult, error) {
	return through(s, func() (fedclient.ListResult, error) { return s.Peer.List(ctx, resource, req) })
}

func (s broken) Get(ctx context.Context, resource, id string) (api.Item, error) {
	return through(s, func() (api.Item, error) { return s.Peer.Get(ctx, resource, id) })
}

func (s broken) Search(ctx context.Context, resource string, req api.SearchRequest) (fedclient.SearchResult, error) {
	return through(s, func() (fedclient.SearchResult, error) { return s.Peer.Search(ctx, resource, req) })
}

// through runs call behind the breaker.
func through[T any](s broken, call func() (T, error)) (T, error) {
	v, err := s.cb.Execute(func() (any, error) { return call() })
	if errors.Is(err, gobreaker.ErrOpenState) || errors.Is(err, gobreaker.ErrTooManyRequests) {
		var zero T
		return zero, &fedclient.PeerError{Peer: s.Name(), Code: api.CodePeerUnavailable}
	}
	t, _ := v.(T)
	return t, err
}

// breakerState is a gobreaker state as the breaker metric's value.
func breakerState(s gobreaker.State) int {
	switch s {
	case gobreaker.StateOpen:
		return telemetry.BreakerOpen
	case gobreaker.StateHalfOpen:
		return telemetry.BreakerHalfOpen
	}
	return telemetry.BreakerClosed
}
