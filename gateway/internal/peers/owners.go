package peers

import (
	"context"
	"sync"
	"time"

	"github.com/mosaic-federation/mosaic/gateway/internal/changes"
	"github.com/mosaic-federation/mosaic/gateway/internal/fedstore"
)

// owners keeps each local user's outbound peers as last read, so a request does not
// read them again (nor parse their certificates) while nothing changed: an entry
// answers for at most changes.MaxAge, and every peer or grant change announced (and
// "all", after notifications may have been missed) drops every entry at once. A read
// that began before a drop is not kept, so a peer removed or suspended while its
// owner's peers were being read is not served from here. Keyed by the owner's user
// id alone: an entry holds only rows whose owner is that user.
type owners struct {
	mu      sync.Mutex
	gen     uint64 // drops so far
	entries map[string]ownersEntry
	now     func() time.Time // nil: time.Now
	ttl     time.Duration    // 0: changes.MaxAge
}

// ownersEntry is one user's peers and when they were read.
type ownersEntry struct {
	at   time.Time
	rows []ownedRow
}

// ownedRow is a peer's row and its stored certificate's notAfter (zero: it does not
// parse, and the call will say so).
type ownedRow struct {
	fedstore.Peer
	notAfter time.Time
}

// maxOwners bounds the entries: a site's users with a recent request.
const maxOwners = 10_000

func (o *owners) clock() time.Time {
	if o.now == nil {
		return time.Now()
	}
	return o.now()
}

func (o *owners) maxAge() time.Duration {
	if o.ttl <= 0 || o.ttl > changes.MaxAge {
		return changes.MaxAge
	}
	return o.ttl
}

// get returns owner's peers from a fresh entry or from fed (always from fed when
// reread is set; the entry is then replaced).
func (o *owners) get(ctx context.Context, fed Outbound, owner string, reread bool) ([]ownedRow, error) {
	o.mu.Lock()
	e, ok := o.entries[owner]
	began := o.gen
	o.mu.Unlock()
	if ok && !reread && o.clock().Sub(e.at) < o.maxAge() {
		return e.rows, nil
	}
	at := o.clock()
	rows, err := fed.OutboundPeers(ctx, owner)
	if err != nil {
		return nil, err
	}
	out := make([]ownedRow, 0, len(rows))
	for _, r := range rows {
		if r.OwnerUserID != owner { // never another user's peer, whatever the query did
			continue
		}
		out = append(out, ownedRow{Peer: r, notAfter: notAfter(r.CertPEM)})
	}
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.gen == began { // nothing dropped since the read began
		if o.entries == nil {
			o.entries = map[string]ownersEntry{}
		}
		if len(o.entries) >= maxOwners {
			o.evict()
		}
		o.entries[owner] = ownersEntry{at: at, rows: out}
	}
	return out, nil
}

// evict makes room: the expired entries, else any one.
func (o *owners) evict() {
	now := o.clock()
	for k, e := range o.entries {
		if now.Sub(e.at) >= o.maxAge() {
			delete(o.entries, k)
		}
	}
	for k := range o.entries {
		if len(o.entries) < maxOwners {
			break
		}
		delete(o.entries, k)
	}
}

// drop forgets every user's peers, and any read in flight.
func (o *owners) drop() {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.gen++
	o.entries = nil
}
