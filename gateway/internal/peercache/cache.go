// Package peercache is the requesting side's cache of peer answers (SPEC §6c): in
// memory only, bounded in bytes, keyed by local user, peer, grant and a canonical
// encoding of the request. A fresh entry answers without a call; identical
// concurrent requests share one call (unless fresh hits are off); when the peer fails for a reason that is not a
// refusal, an entry younger than the staleness bound answers as stale. A 401 or 403
// drops the peer's entries.
package peercache

import (
	"context"
	"encoding/json"
	"sync"
	"time"

	"github.com/maypok86/otter/v2"
	"golang.org/x/sync/singleflight"

	"github.com/mosaic-federation/mosaic/gateway/api"
	"github.com/mosaic-federation/mosaic/gateway/internal/fedclient"
)

// Config is the cache's settings (federation.cache.*).
type Config struct {
	// TTL is how long an entry answers without a call (0: never).
	TTL time.Duration
	// MaxStaleness is the oldest entry served as stale (0: none).
	MaxStaleness time.Duration
	// MaxBytes bounds the entries' estimated size.
	MaxBytes int64
}

// Cache holds every peer's answers; Wrap puts it in front of one peer.
type Cache struct {
	cfg     Config
	entries *otter.Cache[key, entry]
	flight  singleflight.Group
	now     func() time.Time

	// drops counts DropPeer and DropAll calls: an answer whose call began before a
	// drop is not kept (a call in flight when a peer was revoked must not refill it).
	// The write lock orders a drop against every keep.
	mu    sync.RWMutex
	drops uint64
}

// key is one request of one user to one peer under one grant. The peer is apart so
// its entries can be found and dropped.
type key struct{ peer, rest string }

// entry is an answer and when it arrived.
type entry struct {
	at     time.Time
	list   fedclient.ListResult
	search fedclient.SearchResult
	size   uint32
}

// New makes a cache.
func New(cfg Config) *Cache {
	keep := max(cfg.TTL, cfg.MaxStaleness, time.Second)
	return &Cache{cfg: cfg, now: time.Now, entries: otter.Must(&otter.Options[key, entry]{
		MaximumWeight:    uint64(max(cfg.MaxBytes, 1)),
		Weigher:          func(_ key, e entry) uint32 { return e.size },
		ExpiryCalculator: otter.ExpiryWriting[key, entry](keep),
	})}
}

// Owner is whose requests a wrapped peer carries: the parts of a key that are not
// the request.
type Owner struct{ UserID, PeerID, GrantID string }

// Wrap puts the cache in front of p, a peer of o.
func (c *Cache) Wrap(p fedclient.Peer, o Owner) fedclient.Peer { return stage{Peer: p, c: c, o: o} }

// DropPeer drops every entry of a peer (by its row id).
func (c *Cache) DropPeer(peerID string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.drops++
	var drop []key
	for k := range c.entries.Keys() {
		if k.peer == peerID {
			drop = append(drop, k)
		}
	}
	for _, k := range drop {
		c.entries.Invalidate(k)
	}
}

// DropAll drops every entry.
func (c *Cache) DropAll() {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.drops++
	c.entries.InvalidateAll()
}

type noCacheKey struct{}

// WithNoCache marks ctx's peer calls as the caller's "Cache-Control: no-cache": no
// entry answers them, fresh or stale, and they share no call with others.
func WithNoCache(ctx context.Context) context.Context {
	return context.WithValue(ctx, noCacheKey{}, true)
}

// NoCache reports whether ctx's peer calls skip the cache.
func NoCache(ctx context.Context) bool { v, _ := ctx.Value(noCacheKey{}).(bool); return v }

// stage is the cache in front of one peer. Get passes through (its answer has no
// place to say it is cached), but its refusals drop the peer's entries too.
type stage struct {
	fedclient.Peer
	c *Cache
	o Owner
}

func (s stage) List(ctx context.Context, resource string, req api.FedListRequest) (fedclient.ListResult, error) {
	if req.Filter.UpdatedSince != nil { // one instant, one key, whatever its zone
		t := req.Filter.UpdatedSince.UTC()
		req.Filter.UpdatedSince = &t
	}
	if req.After != nil { // the same for a keyset (a copy: the caller's stays as it was)
		k := api.Keyset{CreatedAt: req.After.CreatedAt.UTC(), ID: req.After.ID}
		req.After = &k
	}
	e, served, err := s.c.answer(ctx, s.o, "list", resource, req, func(ctx context.Context) (entry, error) {
		res, err := s.Peer.List(ctx, resource, req)
		return entry{list: res}, err
	})
	e.list.Served = served
	return e.list, err
}

func (s stage) Search(ctx context.Context, resource string, req api.SearchRequest) (fedclient.SearchResult, error) {
	e, served, err := s.c.answer(ctx, s.o, "search", resource, req, func(ctx context.Context) (entry, error) {
		res, err := s.Peer.Search(ctx, resource, req)
		return entry{search: res}, err
	})
	e.search.Served = served
	return e.search, err
}

func (s stage) Get(ctx context.Context, resource, id string) (api.Item, error) {
	item, err := s.Peer.Get(ctx, resource, id)
	if fedclient.Denied(err) {
		s.c.DropPeer(s.o.PeerID)
	}
	return item, err
}

// answer is the cache's decision for one request: a fresh entry, else the peer's
// answer (one call for identical concurrent requests), else a stale entry when the
// peer is unavailable.
func (c *Cache) answer(ctx context.Context, o Owner, verb, resource string, body any,
	call func(context.Context) (entry, error)) (entry, fedclient.Served, error) {
	b, err := json.Marshal(body) // a struct's fields marshal in one order: canonical
	if err != nil {
		return entry{}, fedclient.Served{}, err
	}
	k := key{peer: o.PeerID, rest: o.UserID + "\x00" + o.GrantID + "\x00" + verb + "\x00" + resource + "\x00" + string(b)}
	if NoCache(ctx) {
		e, err := c.fetch(ctx, k, call)
		return e, fedclient.Served{}, err
	}
	old, have := c.entries.GetIfPresent(k)
	age := c.now().Sub(old.at)
	if have && age < c.cfg.TTL {
		return old, fedclient.Served{Cached: true, Age: age}, nil
	}
	var e entry
	if c.cfg.TTL > 0 {
		e, err = c.collapse(ctx, k, call)
	} else { // fresh hits off: every request sees its own live answer
		e, err = c.fetch(ctx, k, call)
	}
	if err != nil && have && age <= c.cfg.MaxStaleness && fedclient.Unavailable(err) {
		return old, fedclient.Served{Stale: true, Age: c.now().Sub(old.at)}, nil
	}
	return e, fedclient.Served{}, err
}

// collapse makes one call for identical concurrent requests (the key holds the
// user, so only one user's requests ever share). The call runs on the first
// caller's values and deadline but not its cancellation, so one caller leaving does
// not fail the others; each caller waits at most until its own context ends.
func (c *Cache) collapse(ctx context.Context, k key, call func(context.Context) (entry, error)) (entry, error) {
	detached := context.WithoutCancel(ctx)
	ch := c.flight.DoChan(k.peer+"\x00"+k.rest, func() (any, error) {
		fctx, cancel := detached, context.CancelFunc(func() {})
		if d, ok := ctx.Deadline(); ok {
			fctx, cancel = context.WithDeadline(detached, d)
		}
		defer cancel()
		return c.fetch(fctx, k, call)
	})
	select {
	case r := <-ch:
		e, _ := r.Val.(entry)
		return e, r.Err
	case <-ctx.Done():
		code := api.CodeCanceled
		if ctx.Err() == context.DeadlineExceeded {
			code = api.CodeTimeout
		}
		return entry{}, &fedclient.PeerError{Code: code}
	}
}

// fetch calls the peer and keeps its answer, or drops the peer's entries on a
// refusal.
func (c *Cache) fetch(ctx context.Context, k key, call func(context.Context) (entry, error)) (entry, error) {
	c.mu.RLock()
	began := c.drops
	c.mu.RUnlock()
	e, err := call(ctx)
	switch {
	case fedclient.Denied(err):
		c.DropPeer(k.peer)
	case err == nil && (c.cfg.TTL > 0 || c.cfg.MaxStaleness > 0):
		e.at, e.size = c.now(), weigh(k, e)
		c.mu.RLock()
		if c.drops == began {
			c.entries.Set(k, e)
		}
		c.mu.RUnlock()
	}
	return e, err
}

// weigh is an entry's bytes: the answer as the peer sent it (fedclient's Size: the
// rows are not encoded again to weigh them), its key, and some overhead. An answer
// of no known size (a stage that made it up) counts rowGuess bytes a row.
func weigh(k key, e entry) uint32 {
	n := e.list.Size + e.search.Size
	if n == 0 {
		n = rowGuess * (len(e.list.Items) + len(e.search.Items))
	}
	n += len(e.list.NextCursor) + len(k.peer) + len(k.rest) + 256
	return uint32(min(n, 1<<31))
}

const rowGuess = 512
