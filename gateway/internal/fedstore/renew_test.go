package fedstore

import (
	"context"
	"errors"
	"maps"
	"slices"
	"testing"
	"time"
)

// stateOf is each serial's state of a grant, by serial.
func stateOf(t *testing.T, s *Store, grantID string) map[string]string {
	t.Helper()
	serials, err := s.Serials(context.Background(), grantID)
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]string{}
	for _, x := range serials {
		out[x.Serial] = x.State
	}
	return out
}

// A renewal with the current certificate makes the new one current and the old one
// previous for the overlap; one with the previous (its answer lost) revokes the
// unclaimed current; everything else is stale.
func TestRenewMovesTheSerials(t *testing.T) {
	ctx := context.Background()
	s, user := fedStore(t)
	g := activeGrant(t, s, user, "1001", time.Now().Add(time.Hour))
	other := activeGrant(t, s, user, "2001", time.Now().Add(time.Hour))
	notAfter := time.Now().Add(time.Hour)

	r, err := s.Renew(ctx, g.ID, "1001", "1002", notAfter, time.Minute)
	if err != nil || r.Previous != "1001" || r.Unclaimed != "" || time.Until(r.PreviousUntil) < 50*time.Second {
		t.Fatalf("renewal with the current one: %+v %v", r, err)
	}
	if got, _ := s.Grant(ctx, g.ID); got.CertSerial != "1002" {
		t.Fatalf("the grant's serial is %s", got.CertSerial)
	}
	if until, err := s.PreviousSerial(ctx, g.ID, "1001"); err != nil || !until.Equal(r.PreviousUntil) {
		t.Fatalf("previous serial: %v %v", until, err)
	}
	for _, serial := range []string{"1002", "9999", "2001"} {
		if _, err := s.PreviousSerial(ctx, g.ID, serial); !errors.Is(err, ErrNotFound) {
			t.Errorf("PreviousSerial(%s): %v, want ErrNotFound", serial, err)
		}
	}

	// The answer of that renewal was lost: the peer renews with 1001 again.
	lost, err := s.Renew(ctx, g.ID, "1001", "1003", notAfter, time.Minute)
	if err != nil || lost.Unclaimed != "1002" || !lost.PreviousUntil.Equal(r.PreviousUntil) {
		t.Fatalf("renewal with the previous one: %+v %v (the overlap must not be extended)", lost, err)
	}
	want := map[string]string{"1001": "previous", "1002": "revoked", "1003": "current"}
	if got := stateOf(t, s, g.ID); !maps.Equal(got, want) {
		t.Fatalf("states %v, want %v", got, want)
	}

	for _, tc := range []struct{ name, presented string }{
		{"the revoked unclaimed one", "1002"},
		{"a serial never issued", "9999"},
		{"another grant's current one", "2001"},
	} {
		if _, err := s.Renew(ctx, g.ID, tc.presented, "1100", notAfter, time.Minute); !errors.Is(err, ErrStaleSerial) {
			t.Errorf("%s: %v, want ErrStaleSerial", tc.name, err)
		}
	}

	// Renewing the current one again ends the older previous now: one previous at most.
	if _, err := s.Renew(ctx, g.ID, "1003", "1004", notAfter, time.Minute); err != nil {
		t.Fatal(err)
	}
	if until, err := s.PreviousSerial(ctx, g.ID, "1001"); err != nil || until.After(time.Now()) {
		t.Fatalf("the older previous is still accepted until %v (%v)", until, err)
	}
	if _, err := s.Renew(ctx, g.ID, "1001", "1101", notAfter, time.Minute); !errors.Is(err, ErrStaleSerial) {
		t.Errorf("a previous one past its overlap renewed: %v", err)
	}

	if _, err := s.RevokeGrant(ctx, other.ID, "test"); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Renew(ctx, other.ID, "2001", "2002", notAfter, time.Minute); !errors.Is(err, ErrTransition) {
		t.Errorf("a revoked grant renewed: %v", err)
	}
}

// When a previous certificate's overlap ends, the sweep takes it to the CA as
// superseded, as it does the unclaimed current one of a lost renewal.
func TestRevokeAtCAEndsPreviousSerialsAfterTheirOverlap(t *testing.T) {
	ctx := context.Background()
	s, user := fedStore(t)
	g := activeGrant(t, s, user, "3001", time.Now().Add(time.Hour))
	notAfter := time.Now().Add(time.Hour)
	if _, err := s.Renew(ctx, g.ID, "3001", "3002", notAfter, time.Hour); err != nil {
		t.Fatal(err)
	}
	revoked := map[string]bool{}
	revoke := func(_ context.Context, serial string, superseded bool) error {
		revoked[serial] = superseded
		return nil
	}
	if got, err := s.RevokeAtCA(ctx, revoke); err != nil || len(got) != 0 {
		t.Fatalf("a previous serial inside its overlap was revoked: %v %v", got, err)
	}
	if _, err := s.Renew(ctx, g.ID, "3001", "3003", notAfter, time.Hour); err != nil { // 3002 unclaimed
		t.Fatal(err)
	}
	if _, err := s.Renew(ctx, g.ID, "3003", "3004", notAfter, 0); err != nil { // 3001 ends now, 3003's overlap is nil
		t.Fatal(err)
	}
	got, err := s.RevokeAtCA(ctx, revoke)
	slices.Sort(got)
	if err != nil || !slices.Equal(got, []string{"3001", "3002", "3003"}) {
		t.Fatalf("revoked %v (%v)", got, err)
	}
	for serial, superseded := range revoked {
		if !superseded {
			t.Errorf("%s revoked as withdrawn, want superseded", serial)
		}
	}
	want := map[string]string{"3001": "revoked", "3002": "revoked", "3003": "revoked", "3004": "current"}
	if states := stateOf(t, s, g.ID); !maps.Equal(states, want) {
		t.Errorf("states %v, want %v", states, want)
	}
}
