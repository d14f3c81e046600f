package localapi

import (
	"context"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"testing"
	"time"

	"github.com/gorilla/mux"

	"github.com/mosaic-federation/mosaic/gateway/internal/apitoken"
	"github.com/mosaic-federation/mosaic/gateway/internal/changes"
	"github.com/mosaic-federation/mosaic/gateway/internal/store"
)

const (
	tokAlice = "0a0a0a0a-0000-4000-8000-0000000000a1"
	tokBob   = "0a0a0a0a-0000-4000-8000-0000000000b2"
)

// countingStore counts token lookups.
type countingStore struct {
	store.Store
	lookups int
}

func (s *countingStore) UserByTokenHash(ctx context.Context, hash []byte) (store.User, error) {
	s.lookups++
	return s.Store.UserByTokenHash(ctx, hash)
}

// tokenWorld is the API with a token cache of ttl over a SQLite store with alice and
// bob, each with a token; other is a second handle on the same database, as the CLI
// would write it from another process.
type tokenWorld struct {
	api        *API
	h          http.Handler
	st         *countingStore
	other      store.Store
	alice, bob string
}

func newTokenWorld(t *testing.T, ttl time.Duration) *tokenWorld {
	t.Helper()
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "api.db")
	st, err := store.OpenSQLite(ctx, path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	other, err := store.OpenSQLite(ctx, path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { other.Close() })
	w := &tokenWorld{st: &countingStore{Store: st}, other: other}
	for _, u := range []struct {
		id, email string
		tok       *string
	}{{tokAlice, "alice@example.test", &w.alice}, {tokBob, "bob@example.test", &w.bob}} {
		*u.tok, _ = apitoken.New()
		if err := st.UpsertUser(ctx, store.User{ID: u.id, Email: u.email, DisplayName: u.email, Role: "member", CreatedAt: time.Now()}); err != nil {
			t.Fatal(err)
		}
		if err := st.SetTokenHash(ctx, u.id, apitoken.Hash(*u.tok)); err != nil {
			t.Fatal(err)
		}
	}
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	w.api = New(Config{Store: w.st, Log: log, Tokens: apitoken.NewCache[store.User](ttl, 100)})
	r := mux.NewRouter()
	w.api.Register(r)
	w.h = r
	return w
}

func (w *tokenWorld) status(token string) int {
	req := httptest.NewRequest(http.MethodGet, "/api/v1/tasks", nil)
	req.Header.Set("Authorization", "Bearer "+token)
	rec := httptest.NewRecorder()
	w.h.ServeHTTP(rec, req)
	return rec.Code
}

// A token replaced by another process stops working as soon as the change is
// announced, and at worst once the cache's TTL has passed.
func TestARevokedTokenIsRefusedAfterItsNotification(t *testing.T) {
	w := newTokenWorld(t, time.Hour)
	for range 3 {
		if c := w.status(w.alice); c != 200 {
			t.Fatalf("alice: %d", c)
		}
	}
	if w.st.lookups != 1 {
		t.Errorf("%d token lookups for three requests, want 1", w.st.lookups)
	}
	fresh, _ := apitoken.New()
	if err := w.other.SetTokenHash(context.Background(), tokAlice, apitoken.Hash(fresh)); err != nil {
		t.Fatal(err)
	}
	if c := w.status(w.alice); c != 200 {
		t.Fatalf("before the notification the cache answers (is it in use?): %d", c)
	}
	w.api.Forget(changes.Change{Kind: changes.User, ID: tokAlice})
	if c := w.status(w.alice); c != http.StatusUnauthorized {
		t.Errorf("the old token after the notification: %d, want 401", c)
	}
	if c := w.status(fresh); c != 200 {
		t.Errorf("the new token: %d", c)
	}
	_ = w.status(w.bob) // "all" (missed notifications) drops every entry too
	if err := w.other.SetTokenHash(context.Background(), tokBob, nil); err != nil {
		t.Fatal(err)
	}
	w.api.Forget(changes.Change{Kind: changes.All})
	if c := w.status(w.bob); c != http.StatusUnauthorized {
		t.Errorf("bob's revoked token after an all notification: %d", c)
	}
}

func TestARevokedTokenIsRefusedAfterTheTTL(t *testing.T) {
	const ttl = 200 * time.Millisecond
	w := newTokenWorld(t, ttl)
	if c := w.status(w.alice); c != 200 {
		t.Fatal(c)
	}
	revoked := time.Now()
	if err := w.other.SetTokenHash(context.Background(), tokAlice, nil); err != nil { // no notification
		t.Fatal(err)
	}
	for w.status(w.alice) == 200 {
		if time.Since(revoked) > ttl+100*time.Millisecond {
			t.Fatalf("still accepted %v after its revocation, TTL %v", time.Since(revoked), ttl)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// A refused token is not remembered: once it is valid, it works on its next request.
func TestARefusedTokenIsNotCached(t *testing.T) {
	w := newTokenWorld(t, time.Hour)
	later, _ := apitoken.New()
	if c := w.status(later); c != http.StatusUnauthorized {
		t.Fatal(c)
	}
	if err := w.other.SetTokenHash(context.Background(), tokBob, apitoken.Hash(later)); err != nil {
		t.Fatal(err)
	}
	if c := w.status(later); c != 200 {
		t.Errorf("a token refused once, valid now: %d", c)
	}
}

// Each token resolves to its own user, cached or not.
func TestTokensNeverMixUsers(t *testing.T) {
	w := newTokenWorld(t, time.Hour)
	for range 2 {
		for tok, want := range map[string]string{w.alice: tokAlice, w.bob: tokBob} {
			if u, err := w.api.userOf(context.Background(), tok); err != nil || u.ID != want {
				t.Errorf("got %q %v, want %s", u.ID, err, want)
			}
		}
	}
}
