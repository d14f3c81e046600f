package fedstore

import (
	"context"
	"errors"
	"os"
	"slices"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/mosaic-federation/mosaic/gateway/internal/pgtest"
	"github.com/mosaic-federation/mosaic/gateway/internal/scope"
	"github.com/mosaic-federation/mosaic/gateway/internal/store"
)

func TestMain(m *testing.M) { os.Exit(pgtest.Main(m)) }

// fedStore is a migrated database of the test's own with one user.
func fedStore(t *testing.T) (*Store, string) {
	t.Helper()
	ctx := context.Background()
	url := pgtest.Database(t)
	st, err := store.OpenPostgres(ctx, store.PostgresOptions{URL: url, RequireVector: true})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = st.Close() })
	user := uuid.NewString()
	if err := st.UpsertUser(ctx, store.User{ID: user, Email: "s@example.test", DisplayName: "S", Role: "member", CreatedAt: time.Now()}); err != nil {
		t.Fatal(err)
	}
	pool, err := pgxpool.New(ctx, url)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(pool.Close)
	return New(pool), user
}

// activeGrant is an enrolled grant whose certificate has the given serial and expiry.
func activeGrant(t *testing.T, s *Store, user, serial string, notAfter time.Time) Grant {
	t.Helper()
	ctx := context.Background()
	p, err := s.CreateInboundPeer(ctx, "peer-"+serial)
	if err != nil {
		t.Fatal(err)
	}
	sc := scope.Scope{Resources: []string{"tasks"}, IncludePersonal: true, MaxRowsPerQuery: 10}
	g, err := s.CreateGrant(ctx, p.ID, user, sc, time.Now().Add(time.Hour), "")
	if err != nil {
		t.Fatal(err)
	}
	if err := s.ActivateGrant(ctx, g.ID, serial, notAfter); err != nil {
		t.Fatal(err)
	}
	return g
}

// A revoked grant's serials are revoked at the CA once each: a serial the CA refused
// is tried again on the next run, an expired one is recorded without a call, and a
// live grant's serial is never touched.
func TestRevokeAtCAReachesEverySerialOfARevokedGrant(t *testing.T) {
	ctx := context.Background()
	s, user := fedStore(t)
	live := activeGrant(t, s, user, "100", time.Now().Add(time.Hour))
	refused := activeGrant(t, s, user, "200", time.Now().Add(time.Hour))
	taken := activeGrant(t, s, user, "300", time.Now().Add(time.Hour))
	expired := activeGrant(t, s, user, "400", time.Now().Add(-time.Minute))
	for _, g := range []Grant{refused, taken, expired} {
		if _, err := s.RevokeGrant(ctx, g.ID, "test"); err != nil {
			t.Fatal(err)
		}
	}
	var calls []string
	caDown := true
	revoke := func(_ context.Context, serial string, superseded bool) error {
		if superseded {
			t.Errorf("serial %s of a revoked grant revoked as superseded", serial)
		}
		calls = append(calls, serial)
		if serial == "200" && caDown {
			return errors.New("the CA is down")
		}
		return nil
	}
	got, err := s.RevokeAtCA(ctx, revoke)
	if err == nil || !slices.Equal(got, []string{"300"}) || !slices.Equal(calls, []string{"200", "300"}) {
		t.Fatalf("first run: revoked %v, called %v, err %v", got, calls, err)
	}
	caDown, calls = false, nil
	if got, err := s.RevokeAtCA(ctx, revoke); err != nil || !slices.Equal(got, []string{"200"}) || !slices.Equal(calls, []string{"200"}) {
		t.Fatalf("second run: revoked %v, called %v, err %v", got, calls, err)
	}
	calls = nil
	if got, err := s.RevokeAtCA(ctx, revoke); err != nil || len(got) != 0 || len(calls) != 0 {
		t.Fatalf("third run: revoked %v, called %v, err %v", got, calls, err)
	}
	serials, err := s.Serials(ctx, live.ID)
	if err != nil || len(serials) != 1 || serials[0].State != "current" || serials[0].CARevokedAt != nil {
		t.Errorf("the live grant's serials: %+v %v", serials, err)
	}
	serials, err = s.Serials(ctx, expired.ID)
	if err != nil || len(serials) != 1 || serials[0].State != "revoked" || serials[0].CARevokedAt == nil {
		t.Errorf("the expired certificate's serials: %+v %v", serials, err)
	}
}
