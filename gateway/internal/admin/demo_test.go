package admin

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/google/uuid"

	"github.com/mosaic-federation/mosaic/gateway/api"
	"github.com/mosaic-federation/mosaic/gateway/internal/enrollment"
	"github.com/mosaic-federation/mosaic/gateway/internal/fedclient"
)

func TestOfferIsSafeToRerun(t *testing.T) {
	ctx := context.Background()
	a, fed, _ := newAdmin(t)
	req := GrantRequest{Peer: "home", SubjectUser: ada.Email, Scope: []byte(goodScope)}
	first, url1, err := a.Offer(ctx, req)
	if err != nil || first.Action != "created" || first.Status != "pending" || url1 == "" {
		t.Fatalf("first offer %+v %v", first, err)
	}
	// Re-run while pending: the same grant, a fresh URL (the last one may be lost).
	again, url2, err := a.Offer(ctx, req)
	if err != nil || again.Action != "new_token" || again.GrantID != first.GrantID || url2 == "" || url2 == url1 {
		t.Fatalf("second offer %+v %v", again, err)
	}
	if len(fed.inbound) != 1 || len(fed.grants) != 1 {
		t.Fatalf("a re-run made another peer or grant: %d peers, %d grants", len(fed.inbound), len(fed.grants))
	}
	g := fed.grants[first.GrantID]
	g.Status = "active" // home enrolled
	fed.grants[g.ID] = g
	done, url3, err := a.Offer(ctx, req)
	if err != nil || done.Action != "already_enrolled" || url3 != "" {
		t.Fatalf("offer after enrollment %+v %q %v", done, url3, err)
	}
}

// What an administrator ended stays ended: a re-run of the offer (compose up again)
// must not grant the peer again after `grant revoke`, an expiry, `peer suspend` or
// `peer revoke`. Each refuses with what to run, makes no grant and hands out no URL.
func TestOfferRefusesWhatAnAdministratorEnded(t *testing.T) {
	ctx := context.Background()
	req := GrantRequest{Peer: "home", SubjectUser: ada.Email, Scope: []byte(goodScope)}
	for name, tc := range map[string]struct {
		end  func(t *testing.T, a *Admin, fed *fakeFed, grantID string)
		want string
	}{
		"grant revoked": {func(t *testing.T, a *Admin, _ *fakeFed, id string) {
			if _, err := a.RevokeGrant(ctx, id, "admin"); err != nil {
				t.Fatal(err)
			}
		}, "is revoked: nothing offered; create a new one with `gateway federation grant create --peer home`"},
		"grant expired": {func(_ *testing.T, _ *Admin, fed *fakeFed, id string) {
			g := fed.grants[id]
			g.Status = "expired"
			fed.grants[id] = g
		}, "is expired: nothing offered; create a new one"},
		"peer suspended": {func(t *testing.T, a *Admin, _ *fakeFed, _ string) {
			if _, err := a.SetPeerState(ctx, "home", "suspended"); err != nil {
				t.Fatal(err)
			}
		}, "peer home is suspended: nothing offered; resume it with `gateway federation peer resume home`"},
		"peer revoked": {func(t *testing.T, a *Admin, _ *fakeFed, _ string) {
			if _, err := a.SetPeerState(ctx, "home", "revoked"); err != nil {
				t.Fatal(err)
			}
		}, "peer home is revoked: nothing offered (that is final)"},
	} {
		for _, enrolled := range []bool{false, true} {
			t.Run(fmt.Sprintf("%s, enrolled %v", name, enrolled), func(t *testing.T) {
				a, fed, _ := newAdmin(t)
				first, _, err := a.Offer(ctx, req)
				if err != nil {
					t.Fatal(err)
				}
				if enrolled {
					g := fed.grants[first.GrantID]
					g.Status = "active"
					fed.grants[g.ID] = g
				}
				tc.end(t, a, fed, first.GrantID)
				tokens := len(fed.tokens)
				res, url, err := a.Offer(ctx, req)
				if !errors.Is(err, ErrNothingOffered) || !strings.Contains(err.Error(), tc.want) || url != "" {
					t.Fatalf("re-run %+v, url %q: %v (want %q)", res, url, err, tc.want)
				}
				if len(fed.grants) != 1 || len(fed.inbound) != 1 {
					t.Errorf("granted again: %d grants, %d peers", len(fed.grants), len(fed.inbound))
				}
				if len(fed.tokens) != tokens {
					t.Error("a refused offer made a token")
				}
			})
		}
	}
}

// After a revocation the administrator creates a new grant; the offer then hands out
// that grant's URLs (the newest grant decides, not the revoked one).
func TestOfferFollowsTheNewestGrant(t *testing.T) {
	ctx := context.Background()
	a, fed, _ := newAdmin(t)
	req := GrantRequest{Peer: "home", SubjectUser: ada.Email, Scope: []byte(goodScope)}
	first, _, err := a.Offer(ctx, req)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := a.RevokeGrant(ctx, first.GrantID, "admin"); err != nil {
		t.Fatal(err)
	}
	second, err := a.CreateGrant(ctx, req)
	if err != nil {
		t.Fatal(err)
	}
	res, url, err := a.Offer(ctx, req)
	if err != nil || res.GrantID != second.GrantID || res.Action != "new_token" || url == "" {
		t.Fatalf("offer after a new grant %+v %q %v", res, url, err)
	}
	// A peer registered by hand without a grant yet: the offer grants.
	b, _, err := a.Offer(ctx, GrantRequest{Peer: "lab", SubjectUser: ada.Email, Scope: []byte(goodScope)})
	if err != nil || b.Action != "created" {
		t.Fatalf("first offer for lab: %+v %v", b, err)
	}
	if _, err := a.CreatePeer(ctx, "solo"); err != nil {
		t.Fatal(err)
	}
	c, url, err := a.Offer(ctx, GrantRequest{Peer: "solo", SubjectUser: ada.Email, Scope: []byte(goodScope)})
	if err != nil || c.Action != "created" || url == "" || len(fed.grants) != 4 {
		t.Fatalf("a peer without a grant: %+v %v (%d grants)", c, err, len(fed.grants))
	}
}

func TestOfferRefusals(t *testing.T) {
	ctx := context.Background()
	for name, req := range map[string]GrantRequest{
		"bad peer name":   {Peer: "a b", SubjectUser: ada.Email, Scope: []byte(goodScope)},
		"unknown subject": {Peer: "home", SubjectUser: "eve@work.example", Scope: []byte(goodScope)},
		"bad scope":       {Peer: "home", SubjectUser: ada.Email, Scope: []byte(`{"resources": ["secrets"]}`)},
	} {
		t.Run(name, func(t *testing.T) {
			a, fed, _ := newAdmin(t)
			if _, url, err := a.Offer(ctx, req); err == nil || url != "" {
				t.Fatalf("accepted (url %q)", url)
			}
			if len(fed.grants) != 0 {
				t.Error("a refused offer made a grant")
			}
		})
	}
}

func TestAcceptIsSafeToRerun(t *testing.T) {
	ctx := context.Background()
	a, fed, _ := newAdmin(t)
	a.Enroller = fakeEnroller{grantID: uuid.NewString()}
	reads := 0
	url := func() (string, error) {
		reads++
		return enrollment.URL("https://work.example:8443", "met_secret", []byte("root der")), nil
	}
	req := AddPeerRequest{Name: "work", LocalUser: ada.Email}
	first, err := a.Accept(ctx, req, url)
	if err != nil || first.Action != "enrolled" || first.URL != "https://work.example:8443" {
		t.Fatalf("first accept %+v %v", first, err)
	}
	again, err := a.Accept(ctx, req, url)
	if err != nil || again.Action != "already_enrolled" || again.ID != first.ID {
		t.Fatalf("second accept %+v %v", again, err)
	}
	if reads != 1 || len(fed.outbound) != 1 {
		t.Errorf("the re-run read the URL (%d reads) or added a peer (%d)", reads, len(fed.outbound))
	}
}

// After a deliberate `peer remove`, a re-run finds the spent URL of the first
// enrollment: the serving site refuses it, nothing is stored, and the error says why.
func TestAcceptAfterARemovalDoesNotEnrollAgain(t *testing.T) {
	ctx := context.Background()
	a, fed, _ := newAdmin(t)
	a.Enroller = fakeEnroller{grantID: uuid.NewString()}
	url := func() (string, error) {
		return enrollment.URL("https://work.example:8443", "met_secret", []byte("root der")), nil
	}
	req := AddPeerRequest{Name: "work", LocalUser: ada.Email}
	if _, err := a.Accept(ctx, req, url); err != nil {
		t.Fatal(err)
	}
	if _, err := a.RemovePeer(ctx, "work", ada.Email); err != nil {
		t.Fatal(err)
	}
	a.Enroller = fakeEnroller{enrollErr: &fedclient.PeerError{Status: 410, Code: api.CodeTokenSpentOrExpired}}
	_, err := a.Accept(ctx, req, url)
	if err == nil || !strings.Contains(err.Error(), "peer remove work") || !strings.Contains(err.Error(), "new grant") || strings.Contains(err.Error(), "met_secret") {
		t.Fatalf("re-run after a removal: %v", err)
	}
	if len(fed.outbound) != 0 {
		t.Error("enrolled again after a removal")
	}
	// Any other refusal is passed on as it is.
	a.Enroller = fakeEnroller{enrollErr: &fedclient.PeerError{Status: 403, Code: api.CodeGrantNotPending}}
	if _, err := a.Accept(ctx, req, url); err == nil || strings.Contains(err.Error(), "peer remove") {
		t.Fatalf("another refusal: %v", err)
	}
}

func TestAcceptRefusals(t *testing.T) {
	ctx := context.Background()
	a, fed, _ := newAdmin(t)
	a.Enroller = fakeEnroller{}
	noFile := func() (string, error) { return "", errors.New("--url-file: no such file") }
	if _, err := a.Accept(ctx, AddPeerRequest{Name: "work", LocalUser: ada.Email}, noFile); err == nil || !strings.Contains(err.Error(), "--url-file") {
		t.Errorf("a missing URL file: %v", err)
	}
	if _, err := a.Accept(ctx, AddPeerRequest{Name: "work", LocalUser: "eve"}, noFile); err == nil || !strings.Contains(err.Error(), "--local-user") {
		t.Errorf("an unknown local user: %v", err)
	}
	bad := func() (string, error) { return "https://work.example/#token=met_secret", nil }
	_, err := a.Accept(ctx, AddPeerRequest{Name: "work", LocalUser: ada.Email}, bad)
	if err == nil || strings.Contains(err.Error(), "met_secret") {
		t.Errorf("a bad URL: %v (must fail without quoting the token)", err)
	}
	if len(fed.outbound) != 0 {
		t.Error("a refused accept stored a peer")
	}
}
