package peers

import (
	"context"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/mosaic-federation/mosaic/gateway/internal/changes"
	"github.com/mosaic-federation/mosaic/gateway/internal/fedclient"
	"github.com/mosaic-federation/mosaic/gateway/internal/fedstore"
)

const (
	alice = "0191d3a8-0000-7000-8000-0000000000a1"
	bob   = "0191d3a8-0000-7000-8000-0000000000b2"
)

// fakeOutbound is federation_peers: rows by owner, and how often they were read.
// block, when set, holds the next read until it is closed.
type fakeOutbound struct {
	mu    sync.Mutex
	rows  []fedstore.Peer
	reads int
	block chan struct{}
}

func (f *fakeOutbound) OutboundPeers(_ context.Context, owner string) ([]fedstore.Peer, error) {
	f.mu.Lock()
	f.reads++
	block := f.block
	f.block = nil
	var out []fedstore.Peer
	for _, r := range f.rows {
		if r.OwnerUserID == owner && r.State == "active" {
			out = append(out, r)
		}
	}
	f.mu.Unlock()
	if block != nil {
		<-block
	}
	return out, nil
}

func (f *fakeOutbound) set(rows ...fedstore.Peer) { f.mu.Lock(); f.rows = rows; f.mu.Unlock() }
func (f *fakeOutbound) count() int                { f.mu.Lock(); defer f.mu.Unlock(); return f.reads }

// A peer row whose certificate expired: the directory makes it a peer without
// unsealing anything (certificate_expired), which is all these tests need of it.
func peerRow(t *testing.T, id, name, owner string) fedstore.Peer {
	return fedstore.Peer{ID: id, Name: name, OwnerUserID: owner, State: "active", Direction: "outbound",
		CertPEM: certUntil(t, time.Now().Add(-time.Hour))}
}

func names(ps []fedclient.Peer) []string {
	var out []string
	for _, p := range ps {
		out = append(out, p.Name())
	}
	return out
}

func owned(t *testing.T, d *Directory, owner string) []string {
	t.Helper()
	return ownedFresh(t, d, owner, false)
}

func ownedFresh(t *testing.T, d *Directory, owner string, fresh bool) []string {
	t.Helper()
	ps, err := d.Owned(context.Background(), owner, fresh)
	if err != nil {
		t.Fatal(err)
	}
	return names(ps)
}

// settable is a clock for the owners' entries.
type settable struct {
	mu sync.Mutex
	t  time.Time
}

func (c *settable) now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *settable) add(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

func newDirectory(t *testing.T, rows ...fedstore.Peer) (*Directory, *fakeOutbound, *settable) {
	fed := &fakeOutbound{}
	fed.set(rows...)
	clk := &settable{t: time.Now()}
	d := &Directory{Fed: fed}
	d.owners.now = clk.now
	return d, fed, clk
}

// A user's peers are read once per changes.MaxAge, not once per request.
func TestOwnedPeersAreReadOnceAWhile(t *testing.T) {
	d, fed, clk := newDirectory(t, peerRow(t, "p1", "work", alice))
	for range 3 {
		if got := owned(t, d, alice); !slices.Equal(got, []string{"work"}) {
			t.Fatalf("peers %v", got)
		}
	}
	if fed.count() != 1 {
		t.Errorf("%d reads for three requests, want 1", fed.count())
	}
	clk.add(changes.MaxAge)
	owned(t, d, alice)
	if fed.count() != 2 {
		t.Errorf("%d reads, want 2: an entry answers for less than changes.MaxAge", fed.count())
	}
}

// A removed or suspended peer, or one whose grant was revoked, is not served from the
// cache once its change is announced; without the announcement (a missed
// notification), not after changes.MaxAge.
func TestAChangedPeerIsNotServedFromTheCache(t *testing.T) {
	for _, tc := range []struct {
		name   string
		change func(fed *fakeOutbound, row fedstore.Peer)
		kind   string
	}{
		{"removed", func(fed *fakeOutbound, _ fedstore.Peer) { fed.set() }, changes.Peer},
		{"suspended", func(fed *fakeOutbound, row fedstore.Peer) { row.State = "suspended"; fed.set(row) }, changes.Peer},
		{"grant revoked", func(fed *fakeOutbound, row fedstore.Peer) { row.State = "revoked"; fed.set(row) }, changes.Grant},
		{"notifications missed", func(fed *fakeOutbound, _ fedstore.Peer) { fed.set() }, changes.All},
	} {
		t.Run(tc.name, func(t *testing.T) {
			row := peerRow(t, "p1", "work", alice)
			d, fed, _ := newDirectory(t, row)
			owned(t, d, alice)
			tc.change(fed, row)
			d.Forget(changes.Change{Kind: tc.kind, ID: "p1"})
			if got := owned(t, d, alice); len(got) != 0 {
				t.Errorf("after the notification: still %v", got)
			}

			// No notification at all: the entry ends at changes.MaxAge.
			d, fed, clk := newDirectory(t, row)
			owned(t, d, alice)
			tc.change(fed, row)
			clk.add(changes.MaxAge - time.Millisecond)
			if got := owned(t, d, alice); len(got) != 1 {
				t.Fatalf("inside the TTL: %v (the cache is not in use?)", got)
			}
			clk.add(time.Millisecond)
			if got := owned(t, d, alice); len(got) != 0 {
				t.Errorf("at changes.MaxAge without a notification: still %v", got)
			}
		})
	}
}

// A read in flight when a change is announced is not kept: the next request reads
// again and does not see the peer that went away meanwhile.
func TestAReadInFlightAtAChangeIsNotKept(t *testing.T) {
	d, fed, _ := newDirectory(t, peerRow(t, "p1", "work", alice))
	fed.block = make(chan struct{})
	release := fed.block
	done := make(chan []string)
	go func() { done <- owned(t, d, alice) }()
	for fed.count() == 0 {
		time.Sleep(time.Millisecond)
	}
	fed.set()
	d.Forget(changes.Change{Kind: changes.Peer, ID: "p1"})
	close(release)
	<-done // that request saw the peer: its read began before the change
	if got := owned(t, d, alice); len(got) != 0 {
		t.Errorf("the read from before the change was kept: %v", got)
	}
}

// Entries are one user's each: bob never gets alice's peers, cached or not, and a
// row of another owner that a read returned is not served to the one who asked.
func TestOwnedNeverMixesUsers(t *testing.T) {
	d, fed, _ := newDirectory(t, peerRow(t, "p1", "work", alice), peerRow(t, "p2", "lab", bob))
	if got := owned(t, d, alice); !slices.Equal(got, []string{"work"}) {
		t.Errorf("alice: %v", got)
	}
	if got := owned(t, d, bob); !slices.Equal(got, []string{"lab"}) {
		t.Errorf("bob: %v", got)
	}
	if got := owned(t, d, alice); !slices.Equal(got, []string{"work"}) {
		t.Errorf("alice again: %v", got)
	}
	d.Fed = leaky{fed}
	d.Forget(changes.Change{Kind: changes.All})
	if got := owned(t, d, bob); !slices.Equal(got, []string{"lab"}) {
		t.Errorf("bob through a read that returns every row: %v", got)
	}
}

// leaky returns every user's rows, as a broken query would.
type leaky struct{ f *fakeOutbound }

func (l leaky) OutboundPeers(context.Context, string) ([]fedstore.Peer, error) {
	l.f.mu.Lock()
	defer l.f.mu.Unlock()
	return slices.Clone(l.f.rows), nil
}

// The entries stay bounded however many users ask.
func TestOwnersAreBounded(t *testing.T) {
	d, _, _ := newDirectory(t)
	for i := range maxOwners + 50 {
		owned(t, d, "user-"+string(rune('a'+i%26))+time.Duration(i).String())
	}
	if n := len(d.owners.entries); n > maxOwners {
		t.Errorf("%d entries, bound %d", n, maxOwners)
	}
}

// A fresh read goes to the database whatever is kept, and what it read is kept: a
// peer added a moment ago is found before its change arrives.
func TestAFreshReadSeesAPeerAddedBeforeItsChange(t *testing.T) {
	d, fed, _ := newDirectory(t, peerRow(t, "p1", "work", alice))
	owned(t, d, alice)
	fed.set(peerRow(t, "p1", "work", alice), peerRow(t, "p2", "lab", alice))
	if got := owned(t, d, alice); !slices.Equal(got, []string{"work"}) {
		t.Fatalf("kept peers %v, want the entry as read", got)
	}
	if got := ownedFresh(t, d, alice, true); !slices.Equal(got, []string{"work", "lab"}) {
		t.Errorf("fresh read %v, want both peers", got)
	}
	if got := owned(t, d, alice); !slices.Equal(got, []string{"work", "lab"}) || fed.count() != 2 {
		t.Errorf("after a fresh read: %v in %d reads, want both peers kept from 2 reads", got, fed.count())
	}
}
