package admin

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/google/uuid"

	"github.com/mosaic-federation/mosaic/gateway/internal/enrollment"
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
