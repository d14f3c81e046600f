package admin

import (
	"context"
	"errors"
	"fmt"

	"github.com/mosaic-federation/mosaic/gateway/api"
	"github.com/mosaic-federation/mosaic/gateway/internal/fedclient"
	"github.com/mosaic-federation/mosaic/gateway/internal/fedstore"
)

// The demo's enrollment as re-runnable steps (`federation enroll-demo`, the compose
// one-shots): each brings the site to the state asked for and says what it did, so a
// second run on the same database changes nothing that was done.

// Offered is what Offer did. It never holds the enrollment URL (a token).
type Offered struct {
	Peer    string `json:"peer"`
	GrantID string `json:"grant_id"`
	Status  string `json:"status"` // the grant's: pending (a URL to hand over) or active
	Action  string `json:"action"` // created | new_token | already_enrolled
}

// ErrNothingOffered is wrapped by Offer's refusals: the peer or its grant was ended
// by an administrator, and a re-run must not undo that by granting again.
var ErrNothingOffered = errors.New("nothing offered")

// Offer registers the peer and grants it the subject user unless it has a grant. It
// returns the enrollment URL to hand over: a fresh token while the newest grant is
// pending (the last URL may have expired or been lost), "" once the peer has enrolled.
// A grant or peer an administrator ended stays ended: when the peer is suspended or
// revoked, or its newest grant is revoked or expired, Offer refuses (ErrNothingOffered)
// and says what to run instead; re-running `compose up` never grants again.
func (a *Admin) Offer(ctx context.Context, req GrantRequest) (Offered, string, error) {
	res := Offered{Peer: req.Peer}
	p, err := a.Fed.InboundPeer(ctx, req.Peer)
	switch {
	case errors.Is(err, fedstore.ErrNotFound):
		if _, err := a.CreatePeer(ctx, req.Peer); err != nil {
			return res, "", err
		}
		return a.offerNewGrant(ctx, req, res)
	case err != nil:
		return res, "", err
	case p.State == "suspended":
		return res, "", fmt.Errorf("peer %s is suspended: %w; resume it with `gateway federation peer resume %s` first", req.Peer, ErrNothingOffered, req.Peer)
	case p.State != "pending" && p.State != "active":
		return res, "", fmt.Errorf("peer %s is %s: %w (that is final); register the site again under a new name with `gateway federation peer create`", req.Peer, p.State, ErrNothingOffered)
	}
	grants, err := a.Fed.Grants(ctx)
	if err != nil {
		return res, "", err
	}
	g, ok := newestGrant(grants, p.ID)
	if !ok {
		return a.offerNewGrant(ctx, req, res)
	}
	switch g.Status {
	case "active":
		res.GrantID, res.Status, res.Action = g.ID, g.Status, "already_enrolled"
		return res, "", nil
	case "pending":
		out, err := a.newToken(ctx, g)
		if err != nil {
			return res, "", err
		}
		res.GrantID, res.Status, res.Action = out.GrantID, out.Status, "new_token"
		return res, out.EnrollmentURL, nil
	}
	return res, "", fmt.Errorf("grant %s for peer %s is %s: %w; create a new one with `gateway federation grant create --peer %s`", g.ID, req.Peer, g.Status, ErrNothingOffered, req.Peer)
}

func (a *Admin) offerNewGrant(ctx context.Context, req GrantRequest, res Offered) (Offered, string, error) {
	out, err := a.CreateGrant(ctx, req)
	if err != nil {
		return res, "", err
	}
	res.GrantID, res.Status, res.Action = out.GrantID, out.Status, "created"
	return res, out.EnrollmentURL, nil
}

// newestGrant is the peer's most recent grant (Grants lists newest first; CreatedAt
// decides should a store not).
func newestGrant(grants []fedstore.Grant, peerID string) (fedstore.Grant, bool) {
	var newest fedstore.Grant
	found := false
	for _, g := range grants {
		if g.PeerID == peerID && (!found || g.CreatedAt.After(newest.CreatedAt)) {
			newest, found = g, true
		}
	}
	return newest, found
}

// Accepted is what Accept did.
type Accepted struct {
	Peer    string `json:"peer"`
	ID      string `json:"id"`
	GrantID string `json:"grant_id"`
	URL     string `json:"url"`
	Action  string `json:"action"` // enrolled | already_enrolled
}

// Accept enrolls the local user at the serving site with the URL enrollmentURL returns,
// unless the user has a peer of that name already (then the URL is not even read).
// After a deliberate `peer remove` a re-run does not enroll again: the serving site's
// offer hands out no new URL while its grant is active, and the one left in the file
// was spent by the first enrollment, which the serving site refuses (the error says
// so). Only a new grant there, and so a new URL, enrolls the user again.
func (a *Admin) Accept(ctx context.Context, req AddPeerRequest, enrollmentURL func() (string, error)) (Accepted, error) {
	owner, err := a.userID(ctx, req.LocalUser)
	if err != nil {
		return Accepted{}, fmt.Errorf("--local-user: %w", err)
	}
	p, err := a.Fed.OutboundPeer(ctx, owner, req.Name)
	if err == nil {
		return Accepted{Peer: p.Name, ID: p.ID, GrantID: p.GrantID, URL: p.URL, Action: "already_enrolled"}, nil
	}
	if !errors.Is(err, fedstore.ErrNotFound) {
		return Accepted{}, err
	}
	if req.URL, err = enrollmentURL(); err != nil {
		return Accepted{}, err
	}
	out, err := a.AddPeer(ctx, req)
	if err != nil && fedclient.Code(err) == api.CodeTokenSpentOrExpired {
		return Accepted{}, fmt.Errorf("%w: the enrollment URL was used already or has expired, so nothing was enrolled (after a deliberate `peer remove %s` that is what keeps it removed); to enroll again, ask the serving site for a new grant", err, req.Name)
	}
	if err != nil {
		return Accepted{}, err
	}
	return Accepted{Peer: out.Peer, ID: out.ID, GrantID: out.GrantID, URL: out.URL, Action: "enrolled"}, nil
}
