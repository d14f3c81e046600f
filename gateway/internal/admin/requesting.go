package admin

import (
	"context"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"time"

	"github.com/google/uuid"

	"github.com/mosaic-federation/mosaic/gateway/api"
	"github.com/mosaic-federation/mosaic/gateway/internal/enrollment"
	"github.com/mosaic-federation/mosaic/gateway/internal/fedclient"
	"github.com/mosaic-federation/mosaic/gateway/internal/fedstore"
	"github.com/mosaic-federation/mosaic/gateway/internal/peers"
)

// The requesting site's side: enrolling at another site, and checking what it left.

// AddPeerRequest is what `peer add` asks for.
type AddPeerRequest struct {
	URL       string // the enrollment URL (it holds the token: never quoted in an error)
	Name      string // what the local user calls the remote site
	LocalUser string // email or id of the local user who owns the peer
	// Replace swaps a fresh enrollment into the user's existing peer of that name,
	// once the new one succeeded (the old certificate stays until then).
	Replace bool
}

// AddPeer enrolls at a remote site: it pins the site's root by the URL's fingerprint,
// enrolls over a connection verified against it, and stores the certificate with its
// key sealed to the new row.
func (a *Admin) AddPeer(ctx context.Context, req AddPeerRequest) (api.PeerAdded, error) {
	if !ValidName(req.Name) {
		return api.PeerAdded{}, errName
	}
	owner, err := a.userID(ctx, req.LocalUser)
	if err != nil {
		return api.PeerAdded{}, fmt.Errorf("--local-user: %w", err)
	}
	if a.Keys == nil {
		return api.PeerAdded{}, errors.New("sealing_key_file: no sealing keys to keep the peer's key with")
	}
	// Before the token is spent, not after.
	existing, err := a.Fed.OutboundPeer(ctx, owner, req.Name)
	switch {
	case err == nil && !req.Replace:
		return api.PeerAdded{}, fmt.Errorf("--name: %s already has a peer named %q: add --replace to swap in this enrollment", req.LocalUser, req.Name)
	case errors.Is(err, fedstore.ErrNotFound) && req.Replace:
		return api.PeerAdded{}, fmt.Errorf("--replace: %s has no peer named %q to replace: drop --replace to add it", req.LocalUser, req.Name)
	case err != nil && !errors.Is(err, fedstore.ErrNotFound):
		return api.PeerAdded{}, err
	}
	inv, err := enrollment.Parse(req.URL)
	if err != nil {
		return api.PeerAdded{}, err
	}
	enroller := a.Enroller
	if enroller == nil {
		enroller = fedclientEnroller{}
	}
	root, err := enroller.FetchRoot(ctx, inv)
	if err != nil {
		return api.PeerAdded{}, err
	}
	enrolled, err := enroller.Enroll(ctx, inv, root)
	if err != nil {
		return api.PeerAdded{}, err
	}
	der, err := x509.MarshalPKCS8PrivateKey(enrolled.Key)
	if err != nil {
		return api.PeerAdded{}, err
	}
	id := uuid.NewString()
	if req.Replace {
		id = existing.ID // the key is sealed to the row it is stored in
	}
	sealed, err := peers.SealKey(a.Keys, id, owner, der)
	if err != nil {
		return api.PeerAdded{}, err
	}
	p := fedstore.Peer{ID: id, Name: req.Name, OwnerUserID: owner, URL: inv.Base, GrantID: enrolled.GrantID, KeySealed: sealed,
		CARootPEM: string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: root.Raw})),
		CertPEM:   enrolled.CertPEM, ChainPEM: enrolled.ChainPEM}
	store, action := a.Fed.AddOutboundPeer, "peer.add"
	if req.Replace {
		store, action = a.Fed.ReplaceOutboundPeer, "peer.replace"
	}
	if err := store(ctx, p); err != nil {
		return api.PeerAdded{}, err
	}
	if err := a.audit(ctx, action, api.OutcomeAllowed, api.ReasonEnrolled, "", id, "name "+req.Name); err != nil {
		return api.PeerAdded{}, err
	}
	return api.PeerAdded{Peer: req.Name, ID: id, State: "active", URL: inv.Base, GrantID: enrolled.GrantID,
		NotAfter: enrolled.Cert.NotAfter.UTC().Format(time.RFC3339)}, nil
}

// VerifyPeer unseals a peer's key and checks it is the stored certificate's; it never
// returns the key.
func (a *Admin) VerifyPeer(ctx context.Context, name, localUser string) (api.PeerVerified, error) {
	owner, err := a.userID(ctx, localUser)
	if err != nil {
		return api.PeerVerified{}, fmt.Errorf("--local-user: %w", err)
	}
	p, err := a.Fed.OutboundPeer(ctx, owner, name)
	if err != nil {
		return api.PeerVerified{}, fmt.Errorf("no peer %q of %s", name, localUser)
	}
	if a.Keys == nil {
		return api.PeerVerified{}, errors.New("sealing_key_file: no sealing keys to open the peer's key with")
	}
	cert, err := peers.Credentials(a.Keys, p)
	if err != nil {
		return api.PeerVerified{}, err
	}
	return api.PeerVerified{Peer: p.Name, KeyMatches: true, Serial: cert.Leaf.SerialNumber.String(),
		NotAfter: cert.Leaf.NotAfter.UTC().Format(time.RFC3339)}, nil
}

// fedclientEnroller enrolls over the network.
type fedclientEnroller struct{}

func (fedclientEnroller) FetchRoot(ctx context.Context, inv enrollment.Invitation) (*x509.Certificate, error) {
	return fedclient.FetchRoot(ctx, inv)
}

func (fedclientEnroller) Enroll(ctx context.Context, inv enrollment.Invitation, root *x509.Certificate) (*fedclient.Enrolled, error) {
	return fedclient.Enroll(ctx, inv, root)
}

// RemovePeer deletes a local user's outbound peer with its certificate and sealed key.
// The grant at the other site stays until its administrator revokes it.
func (a *Admin) RemovePeer(ctx context.Context, name, localUser string) (api.Peer, error) {
	owner, err := a.userID(ctx, localUser)
	if err != nil {
		return api.Peer{}, fmt.Errorf("--local-user: %w", err)
	}
	p, err := a.Fed.RemoveOutboundPeer(ctx, owner, name)
	if errors.Is(err, fedstore.ErrNotFound) {
		return api.Peer{}, fmt.Errorf("%s has no peer named %q (see `federation peer list`)", localUser, name)
	}
	if err != nil {
		return api.Peer{}, err
	}
	if err := a.audit(ctx, "peer.remove", api.OutcomeAllowed, api.ReasonRemoved, "", p.ID, "name "+name); err != nil {
		return api.Peer{}, err
	}
	out := peerOf(p)
	out.State = "removed"
	return out, nil
}
