// Package admin is the federation administration of one site — peers, grants,
// enrollment tokens, enrolling at another site, the audit log — as plain operations
// that return gateway/api values. The CLI only parses flags and renders; every change
// is audited here, and a change that cannot be audited fails.
package admin

import (
	"context"
	"crypto/x509"
	"errors"
	"fmt"
	"time"

	"github.com/mosaic-federation/mosaic/gateway/api"
	"github.com/mosaic-federation/mosaic/gateway/internal/audit"
	"github.com/mosaic-federation/mosaic/gateway/internal/enrollment"
	"github.com/mosaic-federation/mosaic/gateway/internal/fedclient"
	"github.com/mosaic-federation/mosaic/gateway/internal/fedstore"
	"github.com/mosaic-federation/mosaic/gateway/internal/scope"
	"github.com/mosaic-federation/mosaic/gateway/internal/sealing"
	"github.com/mosaic-federation/mosaic/gateway/internal/store"
)

// Federation is the federation data admin works on (fedstore.Store).
type Federation interface {
	CreateInboundPeer(ctx context.Context, name string) (fedstore.Peer, error)
	InboundPeer(ctx context.Context, name string) (fedstore.Peer, error)
	OutboundPeer(ctx context.Context, ownerUserID, name string) (fedstore.Peer, error)
	Peers(ctx context.Context, direction string) ([]fedstore.Peer, error)
	AddOutboundPeer(ctx context.Context, p fedstore.Peer) error
	CreateGrant(ctx context.Context, peerID, subjectUserID string, sc scope.Scope, expiresAt time.Time, rateLimit string) (fedstore.Grant, error)
	Grant(ctx context.Context, id string) (fedstore.Grant, error)
	Grants(ctx context.Context) ([]fedstore.Grant, error)
	RevokeGrant(ctx context.Context, id, reason string) (fedstore.Grant, error)
	AddToken(ctx context.Context, grantID string, tokenHash []byte, expiresAt time.Time) error
	SetInboundPeerState(ctx context.Context, name, state string) (fedstore.Peer, []string, error)
	RemoveOutboundPeer(ctx context.Context, ownerUserID, name string) (fedstore.Peer, error)
	ReplaceOutboundPeer(ctx context.Context, p fedstore.Peer) error
	RenewalStates(ctx context.Context) (map[string]fedstore.RenewalState, error)
}

// Users resolves the site's users (store.Store).
type Users interface {
	UserByEmail(ctx context.Context, email string) (store.User, error)
	UserByID(ctx context.Context, id string) (store.User, error)
}

// Enroller is the requesting side of an enrollment (package fedclient).
type Enroller interface {
	FetchRoot(ctx context.Context, inv enrollment.Invitation) (*x509.Certificate, error)
	Enroll(ctx context.Context, inv enrollment.Invitation, root *x509.Certificate) (*fedclient.Enrolled, error)
}

// AuditLog is the audit log admin writes to and reads (audit.Log).
type AuditLog interface {
	audit.Writer
	List(ctx context.Context, f audit.Filter) ([]api.AuditEntry, error)
	Head(ctx context.Context) (audit.Head, error)
	Verify(ctx context.Context, since *audit.Head) (api.AuditVerify, error)
}

// Admin is one site's administration, acting as one CLI invocation.
type Admin struct {
	Fed   Federation
	Users Users
	Audit AuditLog
	Keys  *sealing.Keyring // seals enrolled keys at the requesting site
	// Enroller enrolls at another site (nil: fedclient's).
	Enroller Enroller
	// PublicURL and RootDER make enrollment URLs: the federation listener's public
	// address and the site's root certificate.
	PublicURL          string
	RootDER            []byte
	EnrollmentTokenTTL time.Duration
	GrantTTL           time.Duration
	// RequestID ties this invocation's audit rows together.
	RequestID string
	Now       func() time.Time // nil: time.Now
}

func (a *Admin) now() time.Time {
	if a.Now != nil {
		return a.Now()
	}
	return time.Now()
}

// audit writes one row as the CLI.
func (a *Admin) audit(ctx context.Context, action, outcome, reason, grantID, peerID, detail string) error {
	return a.Audit.Append(ctx, audit.Entry{Direction: audit.Admin, RequestID: a.RequestID, Actor: "cli", Action: action,
		Outcome: outcome, Reason: reason, GrantID: grantID, PeerID: peerID, Detail: detail})
}

// userID resolves a user of this site by email or id.
func (a *Admin) userID(ctx context.Context, emailOrID string) (string, error) {
	u, err := a.Users.UserByEmail(ctx, emailOrID)
	if errors.Is(err, store.ErrNotFound) {
		u, err = a.Users.UserByID(ctx, emailOrID)
	}
	if errors.Is(err, store.ErrNotFound) {
		return "", fmt.Errorf("no user %q on this site", emailOrID)
	}
	return u.ID, err
}

// ValidName is a peer name: 1-64 letters, digits, '-' or '_'.
func ValidName(s string) bool {
	if len(s) == 0 || len(s) > 64 {
		return false
	}
	for _, r := range s {
		letter := r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z'
		if !letter && (r < '0' || r > '9') && r != '-' && r != '_' {
			return false
		}
	}
	return true
}

var errName = errors.New("--name: use 1-64 letters, digits, '-' or '_'")

func peerOf(p fedstore.Peer) api.Peer {
	return api.Peer{ID: p.ID, Direction: p.Direction, Name: p.Name, State: p.State, OwnerUserID: p.OwnerUserID,
		URL: p.URL, GrantID: p.GrantID, CreatedAt: p.CreatedAt}
}

func grantOf(g fedstore.Grant) api.Grant {
	return api.Grant{ID: g.ID, PeerID: g.PeerID, Peer: g.Peer, PeerState: g.PeerState, SubjectUserID: g.SubjectUserID,
		Scope: api.Scope(g.Scope), Status: g.Status, CertSerial: g.CertSerial, CertNotAfter: g.CertNotAfter,
		ExpiresAt: g.ExpiresAt, RevokedReason: g.RevokedReason, RateLimit: g.RateLimit, CreatedAt: g.CreatedAt, UpdatedAt: g.UpdatedAt}
}

// AuditList returns the newest audit entries first.
func (a *Admin) AuditList(ctx context.Context, f audit.Filter) ([]api.AuditEntry, error) {
	if f.Limit < 1 || f.Limit > 100000 {
		return nil, errors.New("--limit: must be from 1 to 100000")
	}
	if f.Outcome != "" && f.Outcome != api.OutcomeAllowed && f.Outcome != api.OutcomeDenied && f.Outcome != api.OutcomeFailed {
		return nil, errors.New("--outcome: must be allowed, denied or failed")
	}
	if f.GrantID != "" && !api.CanonicalUUID(f.GrantID) {
		return nil, errors.New("--grant: must be a grant id (a canonical lowercase UUID)")
	}
	return a.Audit.List(ctx, f)
}

// AuditHead is the newest row, to record now and verify against later.
func (a *Admin) AuditHead(ctx context.Context) (api.AuditHead, error) {
	h, err := a.Audit.Head(ctx)
	if err != nil {
		return api.AuditHead{}, err
	}
	return api.AuditHead{Seq: h.Seq, MAC: fmt.Sprintf("%x", h.MAC), Head: h.String()}, nil
}

// AuditVerify walks the chain; since, when not empty, is a head `audit head` printed
// earlier, which must still be in the chain.
func (a *Admin) AuditVerify(ctx context.Context, since string) (api.AuditVerify, error) {
	var head *audit.Head
	if since != "" {
		h, err := audit.ParseHead(since)
		if err != nil {
			return api.AuditVerify{}, err
		}
		head = &h
	}
	return a.Audit.Verify(ctx, head)
}
