package changes_test

import (
	"context"
	"io"
	"log/slog"
	"os"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/mosaic-federation/mosaic/gateway/internal/apitoken"
	"github.com/mosaic-federation/mosaic/gateway/internal/changes"
	"github.com/mosaic-federation/mosaic/gateway/internal/pgtest"
	"github.com/mosaic-federation/mosaic/gateway/internal/store"
)

func TestMain(m *testing.M) { os.Exit(pgtest.Main(m)) }

// Every write to a user row — a new token, an upsert, a token removed, the row
// deleted — is announced by the database itself (migration 00009), whoever made it:
// the token cache of every gateway drops at once. A write rolled back announces
// nothing.
func TestUserChangesAreAnnounced(t *testing.T) {
	ctx := context.Background()
	url := pgtest.Database(t)
	st, err := store.OpenPostgres(ctx, store.PostgresOptions{URL: url})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = st.Close() })
	pool, err := pgxpool.New(ctx, url)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(pool.Close)
	got := make(chan changes.Change, 16)
	lctx, stop := context.WithCancel(ctx)
	defer stop()
	go changes.Listen(lctx, pool, slog.New(slog.NewTextHandler(io.Discard, nil)), func(c changes.Change) { got <- c })
	next := func(what string) changes.Change {
		t.Helper()
		select {
		case c := <-got:
			return c
		case <-time.After(5 * time.Second):
			t.Fatalf("%s: no notification", what)
		}
		return changes.Change{}
	}
	if c := next("listening"); c.Kind != changes.All {
		t.Fatalf("first report %+v, want all once listening", c)
	}

	id := uuid.NewString()
	u := store.User{ID: id, Email: "u@example.test", DisplayName: "U", Role: "member", CreatedAt: time.Now()}
	if err := st.UpsertUser(ctx, u); err != nil { // an insert: nothing cached to drop
		t.Fatal(err)
	}
	tok, _ := apitoken.New()
	if err := st.SetTokenHash(ctx, id, apitoken.Hash(tok)); err != nil {
		t.Fatal(err)
	}
	if c := next("a new token"); c.Kind != changes.User || c.ID != id {
		t.Errorf("a new token: %+v", c)
	}
	u.Role = "admin"
	if err := st.UpsertUser(ctx, u); err != nil {
		t.Fatal(err)
	}
	if c := next("an upsert"); c.Kind != changes.User || c.ID != id {
		t.Errorf("an upsert: %+v", c)
	}
	tx, err := pool.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := tx.Exec(ctx, `UPDATE users SET api_token_hash = NULL WHERE id = $1`, id); err != nil {
		t.Fatal(err)
	}
	_ = tx.Rollback(ctx)
	if _, err := pool.Exec(ctx, `DELETE FROM users WHERE id = $1`, id); err != nil {
		t.Fatal(err)
	}
	if c := next("a delete"); c.Kind != changes.User || c.ID != id {
		t.Errorf("after a rollback and a delete: %+v (the rolled-back update announced?)", c)
	}
	select {
	case c := <-got:
		t.Errorf("one more notification: %+v", c)
	case <-time.After(200 * time.Millisecond):
	}
}

// listen starts a listener on a database of its own and returns its reports and the
// pool (whose connections the test may end).
func listen(t *testing.T) (<-chan changes.Change, *pgxpool.Pool) {
	t.Helper()
	ctx := context.Background()
	pool, err := pgxpool.New(ctx, pgtest.Database(t))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(pool.Close)
	got := make(chan changes.Change, 16)
	lctx, stop := context.WithCancel(ctx)
	t.Cleanup(stop)
	go changes.Listen(lctx, pool, slog.New(slog.NewTextHandler(io.Discard, nil)), func(c changes.Change) { got <- c })
	return got, pool
}

func expect(t *testing.T, got <-chan changes.Change, kind, what string) {
	t.Helper()
	select {
	case c := <-got:
		if c.Kind != kind {
			t.Fatalf("%s: got %+v, want %s", what, c, kind)
		}
	case <-time.After(10 * time.Second):
		t.Fatalf("%s: nothing reported, want %s", what, kind)
	}
}

// "all" is reported once LISTEN is in place, at start and after every reconnection,
// never before it: a change made right after it is heard, so nothing falls between
// the drop and the listening.
func TestAllComesOnceListening(t *testing.T) {
	ctx := context.Background()
	got, pool := listen(t)
	expect(t, got, changes.All, "at start")
	must(t, changes.Announce(ctx, pool, changes.Change{Kind: changes.Peer, ID: "p1"}))
	expect(t, got, changes.Peer, "a change right after the first all")

	_, err := pool.Exec(ctx, `SELECT pg_terminate_backend(pid) FROM pg_stat_activity
		WHERE query = 'LISTEN `+changes.Channel+`' AND pid <> pg_backend_pid()`)
	must(t, err)
	expect(t, got, changes.All, "after the listening connection ended")
	must(t, changes.Announce(ctx, pool, changes.Change{Kind: changes.Peer, ID: "p2"}))
	expect(t, got, changes.Peer, "a change right after the reconnection's all")
}

// An idle listener checks its connection now and then and, while it answers, goes on
// listening on it: no reconnection, no "all", notifications still heard.
func TestAnIdleListenerKeepsItsConnection(t *testing.T) {
	old := *changes.IdleCheck
	*changes.IdleCheck = 50 * time.Millisecond
	t.Cleanup(func() { *changes.IdleCheck = old })
	ctx := context.Background()
	got, pool := listen(t)
	expect(t, got, changes.All, "at start")
	select {
	case c := <-got:
		t.Fatalf("idle for ten checks: %+v reported", c)
	case <-time.After(500 * time.Millisecond):
	}
	must(t, changes.Announce(ctx, pool, changes.Change{Kind: changes.Grant, ID: "g1"}))
	expect(t, got, changes.Grant, "a change after ten idle checks")
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}
