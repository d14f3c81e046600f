package admin

import (
	"context"
	"errors"
	"fmt"

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

// Offer registers the peer and grants it the subject user unless the peer has a
// pending or active grant. It returns the enrollment URL to hand over: a fresh token
// while the grant is pending (the last URL may have expired or been lost), "" once the
// peer has enrolled.
func (a *Admin) Offer(ctx context.Context, req GrantRequest) (Offered, string, error) {
	res := Offered{Peer: req.Peer}
	grants, err := a.Fed.Grants(ctx)
	if err != nil {
		return res, "", err
	}
	for _, g := range grants {
		if g.Peer != req.Peer {
			continue
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
	}
	if _, err := a.Fed.InboundPeer(ctx, req.Peer); errors.Is(err, fedstore.ErrNotFound) {
		if _, err := a.CreatePeer(ctx, req.Peer); err != nil {
			return res, "", err
		}
	} else if err != nil {
		return res, "", err
	}
	out, err := a.CreateGrant(ctx, req)
	if err != nil {
		return res, "", err
	}
	res.GrantID, res.Status, res.Action = out.GrantID, out.Status, "created"
	return res, out.EnrollmentURL, nil
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
	if err != nil {
		return Accepted{}, err
	}
	return Accepted{Peer: out.Peer, ID: out.ID, GrantID: out.GrantID, URL: out.URL, Action: "enrolled"}, nil
}
