package apitoken

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"
)

type clock struct{ t time.Time }

func (c *clock) now() time.Time { return c.t }

// users is a token table: token → user, and how often it was read.
type users struct {
	byToken map[string]string
	reads   int
}

var errNotFound = errors.New("not found")

func (u *users) lookup(token string) func(context.Context) (string, error) {
	return func(context.Context) (string, error) {
		u.reads++
		if id, ok := u.byToken[token]; ok {
			return id, nil
		}
		return "", errNotFound
	}
}

func newTestCache() (*Cache[string], *clock) {
	c := NewCache[string](5*time.Second, 100)
	clk := &clock{t: time.Now()}
	c.now = clk.now
	return c, clk
}

func userOf(c *Cache[string], u *users, token string) (string, error) {
	return c.User(context.Background(), Key(token), u.lookup(token))
}

// A found token is read once per TTL; a revoked one stops working at once after Drop,
// and at worst when its entry is TTL old.
func TestARevokedTokenStopsWorking(t *testing.T) {
	c, clk := newTestCache()
	u := &users{byToken: map[string]string{"tok-a": "alice"}}
	for range 3 {
		if id, err := userOf(c, u, "tok-a"); id != "alice" || err != nil {
			t.Fatalf("%q %v", id, err)
		}
	}
	if u.reads != 1 {
		t.Errorf("%d reads, want 1", u.reads)
	}
	delete(u.byToken, "tok-a") // revoked (a new token, or the user gone)
	c.Drop()                   // ... and announced
	if _, err := userOf(c, u, "tok-a"); !errors.Is(err, errNotFound) {
		t.Errorf("after the notification: %v", err)
	}

	// Revoked without a notification: refused once the entry is TTL old.
	u.byToken["tok-b"] = "bob"
	if _, err := userOf(c, u, "tok-b"); err != nil {
		t.Fatal(err)
	}
	delete(u.byToken, "tok-b")
	clk.t = clk.t.Add(5*time.Second - time.Nanosecond)
	if id, _ := userOf(c, u, "tok-b"); id != "bob" {
		t.Fatalf("inside the TTL: %q (is the cache in use?)", id)
	}
	clk.t = clk.t.Add(time.Nanosecond)
	if _, err := userOf(c, u, "tok-b"); !errors.Is(err, errNotFound) {
		t.Errorf("at the TTL: %v", err)
	}
}

// A token that failed is not kept: once it is valid, it works on the next request.
func TestFailuresAreNotCached(t *testing.T) {
	c, _ := newTestCache()
	u := &users{byToken: map[string]string{}}
	if _, err := userOf(c, u, "tok-a"); err == nil {
		t.Fatal("an unknown token was found")
	}
	u.byToken["tok-a"] = "alice"
	if id, err := userOf(c, u, "tok-a"); id != "alice" || err != nil {
		t.Errorf("%q %v: a failure was kept", id, err)
	}
	if c.Len() != 1 {
		t.Errorf("%d entries", c.Len())
	}
}

// A lookup in flight when a change is dropped is not kept.
func TestALookupRacingADropIsNotKept(t *testing.T) {
	c, _ := newTestCache()
	u := &users{byToken: map[string]string{"tok-a": "alice"}}
	_, _ = c.User(context.Background(), Key("tok-a"), func(ctx context.Context) (string, error) {
		id, err := u.lookup("tok-a")(ctx)
		delete(u.byToken, "tok-a")
		c.Drop() // the revocation lands while the lookup runs
		return id, err
	})
	if _, err := userOf(c, u, "tok-a"); !errors.Is(err, errNotFound) {
		t.Errorf("the lookup from before the revocation was kept: %v", err)
	}
}

// Two tokens never share an entry: each resolves to its own user, cached or not, and
// the key is the token's SHA-256, not the token.
func TestKeysNeverMixUsers(t *testing.T) {
	c, _ := newTestCache()
	u := &users{byToken: map[string]string{"tok-a": "alice", "tok-b": "bob"}}
	for range 2 {
		for tok, want := range u.byToken {
			if id, err := userOf(c, u, tok); id != want || err != nil {
				t.Errorf("%s: %q %v, want %s", tok, id, err, want)
			}
		}
	}
	for k := range c.entries {
		if string(k[:]) == "tok-a" || string(k[:5]) == "tok-a"[:5] {
			t.Error("the key holds the token")
		}
	}
}

// The entries stay bounded.
func TestCacheIsBounded(t *testing.T) {
	c, _ := newTestCache()
	u := &users{byToken: map[string]string{}}
	for i := range 250 {
		tok := fmt.Sprint("tok-", i)
		u.byToken[tok] = tok
		_, _ = userOf(c, u, tok)
	}
	if c.Len() > 100 {
		t.Errorf("%d entries, bound 100", c.Len())
	}
}
