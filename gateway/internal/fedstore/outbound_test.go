package fedstore

import (
	"context"
	"errors"
	"testing"

	"github.com/google/uuid"
)

// One process at a time renews a peer: the lock is exclusive until stored or closed; a
// certificate changed meanwhile is not overwritten; a failure is shown until a renewal
// succeeds.
func TestPeerRenewalLockStoreAndFail(t *testing.T) {
	ctx := context.Background()
	s, user := fedStore(t)
	p := Peer{ID: uuid.NewString(), Name: "work", OwnerUserID: user, URL: "https://work.example", GrantID: uuid.NewString(),
		CARootPEM: "root", CertPEM: "cert-1", ChainPEM: "chain", KeySealed: []byte{1, 2}}
	if err := s.AddOutboundPeer(ctx, p); err != nil {
		t.Fatal(err)
	}
	first, ok, err := s.LockPeerRenewal(ctx, p.ID)
	if err != nil || !ok || first.Peer.CertPEM != "cert-1" {
		t.Fatalf("first lock: %v %v %+v", ok, err, first)
	}
	if _, ok, err := s.LockPeerRenewal(ctx, p.ID); err != nil || ok {
		t.Fatalf("a second process got the lock: %v %v", ok, err)
	}
	if err := first.Fail(ctx, "unreachable: peer work could not be reached: unreachable"); err != nil {
		t.Fatal(err)
	}
	if st, err := s.RenewalStates(ctx); err != nil || st[p.ID].Error == "" || st[p.ID].FailedAt == nil {
		t.Fatalf("failure not recorded: %+v %v", st, err)
	}

	second, ok, err := s.LockPeerRenewal(ctx, p.ID)
	if err != nil || !ok {
		t.Fatalf("the lock was not released by Fail: %v %v", ok, err)
	}
	if err := second.Store(ctx, "cert-2", "chain-2", []byte{3}); err != nil {
		t.Fatal(err)
	}
	got, err := s.OutboundPeer(ctx, user, "work")
	if err != nil || got.CertPEM != "cert-2" || got.ChainPEM != "chain-2" || string(got.KeySealed) != "\x03" {
		t.Fatalf("stored %+v %v", got, err)
	}
	if st, _ := s.RenewalStates(ctx); st[p.ID].Error != "" || st[p.ID].FailedAt != nil {
		t.Errorf("the failure outlived a renewal: %+v", st[p.ID])
	}

	stale, ok, err := s.LockPeerRenewal(ctx, p.ID)
	if err != nil || !ok {
		t.Fatal(ok, err)
	}
	stale.Peer.CertPEM = "cert-1" // as read before another process renewed it
	if err := stale.Store(ctx, "cert-3", "chain-3", []byte{4}); !errors.Is(err, ErrRenewedElsewhere) {
		t.Errorf("overwrote a certificate renewed elsewhere: %v", err)
	}
	if got, _ := s.OutboundPeer(ctx, user, "work"); got.CertPEM != "cert-2" {
		t.Errorf("certificate %q", got.CertPEM)
	}
}
