package apitoken

import (
	"context"
	"crypto/sha256"
	"sync"
	"time"
)

// Cache remembers which user a token resolved to, so a request does not look its
// token up again: keyed by the token's SHA-256 (the token itself is never kept),
// for at most TTL, bounded in entries. Only a lookup that found a user is kept — a
// token that failed is looked up again on its next request — and a lookup that began
// before a Drop is not kept, so a token revoked while it was being looked up is not
// served from here. Drop on every change of a user or token (the site's change
// notifications, or the process's own writes); TTL is the bound when a notification
// is missed.
type Cache[U any] struct {
	ttl time.Duration
	max int
	now func() time.Time

	mu      sync.Mutex
	gen     uint64 // drops so far
	entries map[[sha256.Size]byte]entry[U]
}

type entry[U any] struct {
	user U
	at   time.Time
}

// NewCache makes a cache of at most max entries, each trusted for ttl.
func NewCache[U any](ttl time.Duration, max int) *Cache[U] {
	return &Cache[U]{ttl: ttl, max: max, now: time.Now}
}

// Key is what the cache keeps of a token.
func Key(token string) [sha256.Size]byte { return sha256.Sum256([]byte(token)) }

// User returns key's user: from a fresh entry, else from lookup (kept when it
// succeeded and nothing was dropped meanwhile).
func (c *Cache[U]) User(ctx context.Context, key [sha256.Size]byte, lookup func(context.Context) (U, error)) (U, error) {
	c.mu.Lock()
	e, ok := c.entries[key]
	began := c.gen
	c.mu.Unlock()
	if ok && c.now().Sub(e.at) < c.ttl {
		return e.user, nil
	}
	at := c.now()
	u, err := lookup(ctx)
	if err != nil || c.ttl <= 0 {
		return u, err // a failure is never kept
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.gen != began {
		return u, nil
	}
	if c.entries == nil {
		c.entries = map[[sha256.Size]byte]entry[U]{}
	}
	if len(c.entries) >= c.max {
		c.evict()
	}
	c.entries[key] = entry[U]{user: u, at: at}
	return u, nil
}

// evict makes room: the expired entries, else any one.
func (c *Cache[U]) evict() {
	now := c.now()
	for k, e := range c.entries {
		if now.Sub(e.at) >= c.ttl {
			delete(c.entries, k)
		}
	}
	for k := range c.entries {
		if len(c.entries) < c.max {
			return
		}
		delete(c.entries, k)
	}
}

// Drop forgets every entry and any lookup in flight.
func (c *Cache[U]) Drop() {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.gen++
	c.entries = nil
}

// Len is how many entries the cache holds.
func (c *Cache[U]) Len() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.entries)
}
