package admin

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/mosaic-federation/mosaic/gateway/api"
	"github.com/mosaic-federation/mosaic/gateway/internal/enrollment"
	"github.com/mosaic-federation/mosaic/gateway/internal/fedstore"
	"github.com/mosaic-federation/mosaic/gateway/internal/renewal"
	"github.com/mosaic-federation/mosaic/gateway/internal/scope"
)

// The serving site's side: inbound peers, grants and their enrollment tokens.

// CreatePeer registers an inbound peer, pending until it enrolls.
func (a *Admin) CreatePeer(ctx context.Context, name string) (api.Peer, error) {
	if !ValidName(name) {
		return api.Peer{}, errName
	}
	p, err := a.Fed.CreateInboundPeer(ctx, name)
	if err != nil {
		_ = a.audit(ctx, "peer.create", api.OutcomeFailed, api.ReasonConflict, "", "", "name "+name)
		return api.Peer{}, err
	}
	if err := a.audit(ctx, "peer.create", api.OutcomeAllowed, api.ReasonCreated, "", p.ID, "name "+name); err != nil {
		return api.Peer{}, err
	}
	return peerOf(p), nil
}

// Peers lists every peer, both directions, newest first.
func (a *Admin) Peers(ctx context.Context) ([]api.Peer, error) {
	rows, err := a.Fed.Peers(ctx, "")
	if err != nil {
		return nil, err
	}
	states, err := a.Fed.RenewalStates(ctx)
	if err != nil {
		return nil, err
	}
	out := make([]api.Peer, len(rows))
	for i, p := range rows {
		out[i] = withRenewal(peerOf(p), p, states[p.ID], time.Now())
	}
	return out, nil
}

// withRenewal adds an outbound peer's certificate lifecycle: its end, its renew_at,
// and its last renewal failure; an expired certificate says so and what fixes it even
// before the renewer tried.
func withRenewal(out api.Peer, p fedstore.Peer, st fedstore.RenewalState, now time.Time) api.Peer {
	leaf := renewal.Leaf(p.CertPEM)
	if p.Direction != "outbound" || leaf == nil {
		return out
	}
	notAfter, renewAt := leaf.NotAfter.UTC(), renewal.RenewAt(leaf).UTC()
	out.NotAfter, out.RenewAt, out.RenewalError = &notAfter, &renewAt, st.Error
	if !now.Before(notAfter) && !strings.HasPrefix(st.Error, api.CodeCertificateExpired) {
		out.RenewalError = api.CodeCertificateExpired + ": the certificate expired; ask the serving site for a new grant, then run peer add --replace"
	}
	return out
}

// GrantRequest is what `grant create` asks for.
type GrantRequest struct {
	Peer        string
	SubjectUser string // email or id
	Scope       []byte // the scope document
	ExpiresIn   time.Duration
	Rate        string // the grant's own rate limit ("5/s"); "" for the site's
}

// CreateGrant makes a pending grant and its first enrollment token.
func (a *Admin) CreateGrant(ctx context.Context, req GrantRequest) (api.GrantCreated, error) {
	if req.Rate != "" {
		if _, err := api.ParseRate(req.Rate); err != nil {
			return api.GrantCreated{}, fmt.Errorf("--rate: %w", err)
		}
	}
	sc, err := scope.Parse(req.Scope)
	if err != nil {
		_ = a.audit(ctx, "grant.create", api.OutcomeDenied, api.ReasonInvalidScope, "", "", err.Error())
		return api.GrantCreated{}, err
	}
	p, err := a.Fed.InboundPeer(ctx, req.Peer)
	if err != nil {
		return api.GrantCreated{}, fmt.Errorf("--peer %q: no inbound peer of that name (create it with `federation peer create`)", req.Peer)
	}
	uid, err := a.userID(ctx, req.SubjectUser)
	if err != nil {
		return api.GrantCreated{}, fmt.Errorf("--subject-user: %w", err)
	}
	expiresIn := req.ExpiresIn
	if expiresIn <= 0 {
		expiresIn = a.GrantTTL
	}
	g, err := a.Fed.CreateGrant(ctx, p.ID, uid, sc, a.now().Add(expiresIn), req.Rate)
	if err != nil {
		return api.GrantCreated{}, err
	}
	if err := a.audit(ctx, "grant.create", api.OutcomeAllowed, api.ReasonCreated, g.ID, p.ID, "subject "+uid); err != nil {
		return api.GrantCreated{}, err
	}
	return a.newToken(ctx, g)
}

// NewToken makes a fresh enrollment token for a pending grant; the grant's earlier
// unused tokens stop working.
func (a *Admin) NewToken(ctx context.Context, grantID string) (api.GrantCreated, error) {
	g, err := a.Fed.Grant(ctx, grantID)
	if err != nil {
		return api.GrantCreated{}, fmt.Errorf("--grant: %w", err)
	}
	return a.newToken(ctx, g)
}

// newToken stores only the token's hash and audits only its first 8 characters; the
// token itself leaves in the enrollment URL, once.
func (a *Admin) newToken(ctx context.Context, g fedstore.Grant) (api.GrantCreated, error) {
	tok, err := enrollment.NewToken()
	if err != nil {
		return api.GrantCreated{}, err
	}
	expires := a.now().Add(a.EnrollmentTokenTTL).UTC()
	if g.ExpiresAt.Before(expires) {
		expires = g.ExpiresAt.UTC() // never outlives its grant
	}
	if err := a.Fed.AddToken(ctx, g.ID, enrollment.HashToken(tok), expires); err != nil {
		_ = a.audit(ctx, "token.create", api.OutcomeDenied, api.CodeGrantNotPending, g.ID, g.PeerID, "")
		return api.GrantCreated{}, err
	}
	if err := a.audit(ctx, "token.create", api.OutcomeAllowed, api.ReasonCreated, g.ID, g.PeerID, "token "+enrollment.Loggable(tok)); err != nil {
		return api.GrantCreated{}, err
	}
	return api.GrantCreated{GrantID: g.ID, Peer: g.Peer, SubjectUserID: g.SubjectUserID, Status: g.Status,
		EnrollmentURL: enrollment.URL(a.PublicURL, tok, a.RootDER), TokenExpiresAt: expires.Format(time.RFC3339)}, nil
}

// Grants lists every grant, newest first.
func (a *Admin) Grants(ctx context.Context) ([]api.Grant, error) {
	rows, err := a.Fed.Grants(ctx)
	if err != nil {
		return nil, err
	}
	out := make([]api.Grant, len(rows))
	for i, g := range rows {
		out[i] = grantOf(g)
	}
	return out, nil
}

// Grant shows one grant.
func (a *Admin) Grant(ctx context.Context, id string) (api.Grant, error) {
	g, err := a.Fed.Grant(ctx, id)
	return grantOf(g), err
}

// RevokeGrant revokes a pending or active grant: the guard refuses its next request.
func (a *Admin) RevokeGrant(ctx context.Context, id, reason string) (api.Grant, error) {
	g, err := a.Fed.RevokeGrant(ctx, id, reason)
	if err != nil {
		_ = a.audit(ctx, "grant.revoke", api.OutcomeDenied, api.ReasonInvalidTransition, "", "", "grant "+id)
		return api.Grant{}, err
	}
	if err := a.audit(ctx, "grant.revoke", api.OutcomeAllowed, api.ReasonRevoked, g.ID, g.PeerID, ""); err != nil {
		return api.Grant{}, err
	}
	return grantOf(g), nil
}

// SetPeerState suspends, resumes or revokes an inbound peer ("suspended", "active",
// "revoked"). The guard reads the peer's state on every request, so it applies to the
// next one; revoking also revokes every grant of the peer and, through the sweeper,
// their certificates at the CA.
func (a *Admin) SetPeerState(ctx context.Context, name, state string) (api.Peer, error) {
	action := map[string]string{"suspended": "peer.suspend", "active": "peer.resume", "revoked": "peer.revoke"}[state]
	if action == "" {
		return api.Peer{}, fmt.Errorf("no such peer state %q", state)
	}
	p, grants, err := a.Fed.SetInboundPeerState(ctx, name, state)
	if errors.Is(err, fedstore.ErrNotFound) {
		return api.Peer{}, fmt.Errorf("no inbound peer named %q (see `federation peer list`)", name)
	}
	if err != nil {
		_ = a.audit(ctx, action, api.OutcomeDenied, api.ReasonInvalidTransition, "", p.ID, "name "+name)
		return api.Peer{}, err
	}
	if err := a.audit(ctx, action, api.OutcomeAllowed, api.ReasonOK, "", p.ID, "name "+name); err != nil {
		return api.Peer{}, err
	}
	for _, g := range grants {
		if err := a.audit(ctx, "grant.revoke", api.OutcomeAllowed, api.ReasonRevoked, g, p.ID, "peer revoked"); err != nil {
			return api.Peer{}, err
		}
	}
	return peerOf(p), nil
}
