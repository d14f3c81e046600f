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
	// Listen has no ready signal: announce until the first one comes back.
	for ready := false; !ready; {
		_ = changes.Announce(ctx, pool, changes.Change{Kind: changes.CRL})
		select {
		case <-got:
			ready = true
		case <-time.After(100 * time.Millisecond):
		}
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
