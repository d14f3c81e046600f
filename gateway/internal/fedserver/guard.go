package fedserver

import (
	"context"
	"crypto/x509"
	"encoding/asn1"
	"errors"
	"log/slog"
	"net/http"
	"slices"
	"time"

	"github.com/mosaic-federation/mosaic/gateway/api"
	"github.com/mosaic-federation/mosaic/gateway/internal/fedstore"
	"github.com/mosaic-federation/mosaic/gateway/internal/httpx"
	"github.com/mosaic-federation/mosaic/gateway/internal/identity"
)

// Caller is who a guarded request speaks for: the grant its certificate binds, checked.
type Caller struct {
	Grant    fedstore.Grant
	Identity identity.Identity
}

type callerKey struct{}

// CallerFrom returns the guard's caller; verbs only run behind the guard.
func CallerFrom(ctx context.Context) (Caller, bool) {
	c, ok := ctx.Value(callerKey{}).(Caller)
	return c, ok
}

// Guard authenticates the client certificate (401) and authorises its grant (403) on
// every request, so a revocation takes effect on the next one. Every denial is audited.
type Guard struct {
	Fed         *fedstore.Store
	Provisioner string // the provisioner federation certificates must come from
	// ProvisionerKID is that provisioner's key id, which step-ca records as the
	// credential id: a provisioner of the same name with another key does not pass.
	ProvisionerKID string
	Log            *slog.Logger
	Now            func() time.Time
}

// deny is a guard refusal: status, reason code, message.
type deny struct {
	status       int
	code, reason string
}

// Wrap puts the guard in front of next.
func (g *Guard) Wrap(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		caller, d := g.check(r)
		if d != nil {
			g.audit(r, caller, "denied", d.code)
			httpx.WriteError(w, r, g.Log, &httpx.Error{Status: d.status, Code: d.code, Message: d.reason})
			return
		}
		next.ServeHTTP(w, r.WithContext(context.WithValue(r.Context(), callerKey{}, caller)))
	})
}

func (g *Guard) check(r *http.Request) (Caller, *deny) {
	unauth := func(code, reason string) *deny { return &deny{http.StatusUnauthorized, code, reason} }
	forbid := func(code, reason string) *deny { return &deny{http.StatusForbidden, code, reason} }
	if r.TLS == nil || len(r.TLS.VerifiedChains) == 0 || len(r.TLS.VerifiedChains[0]) == 0 {
		return Caller{}, unauth("client_certificate_required", "present the client certificate your enrollment issued")
	}
	leaf := r.TLS.VerifiedChains[0][0]
	now := time.Now
	if g.Now != nil {
		now = g.Now
	}
	// TLS checks validity at the handshake only; a kept-alive connection outlives it.
	if !now().Before(leaf.NotAfter) {
		return Caller{}, unauth("certificate_expired", "the client certificate has expired: renew it")
	}
	if !slices.Contains(leaf.ExtKeyUsage, x509.ExtKeyUsageClientAuth) {
		return Caller{}, unauth("not_a_client_certificate", "the certificate is not for client authentication")
	}
	if name, kid := provisionerOf(leaf); name != g.Provisioner || (g.ProvisionerKID != "" && kid != g.ProvisionerKID) {
		return Caller{}, unauth("wrong_provisioner", "the certificate was not issued for federation")
	}
	id, err := identity.FromCertificate(leaf)
	switch {
	case errors.Is(err, identity.ErrMissing):
		return Caller{}, unauth("identity_missing", "the certificate carries no federation identity")
	case err != nil:
		return Caller{}, unauth("identity_malformed", "the certificate's federation identity is malformed")
	}
	c := Caller{Identity: id}
	grant, err := g.Fed.GuardGrant(r.Context(), id.GrantID)
	switch {
	case errors.Is(err, fedstore.ErrNotFound):
		return c, forbid("grant_unknown", "no such grant")
	case err != nil:
		return c, &deny{http.StatusInternalServerError, api.CodeInternal, "the grant could not be checked"}
	}
	c.Grant = grant
	switch {
	case grant.Status == "pending":
		return c, forbid("grant_pending", "the grant is not active")
	case grant.Status == "revoked":
		return c, forbid("grant_revoked", "the grant was revoked")
	case grant.Status == "expired" || !now().Before(grant.ExpiresAt):
		return c, forbid("grant_expired", "the grant has expired")
	case grant.Status != "active":
		return c, forbid("grant_inactive", "the grant is not active")
	case grant.PeerState != "active":
		return c, forbid("peer_not_active", "the peer is not active")
	case grant.SubjectUserID != id.SubjectUserID:
		return c, forbid("subject_mismatch", "the certificate's subject is not the grant's")
	case grant.CertSerial != leaf.SerialNumber.String():
		return c, forbid("stale_certificate", "the certificate is not the grant's current one")
	}
	return c, nil
}

// jwkProvisionerType is step-ca's type number for JWK provisioners.
const jwkProvisionerType = 1

// provisionerOf reads step-ca's provisioner extension: SEQUENCE { type INTEGER,
// name OCTET STRING, credentialID OCTET STRING, … }, returning the name and the
// credential id of a JWK provisioner ("" when absent or malformed).
func provisionerOf(cert *x509.Certificate) (name, credentialID string) {
	for _, e := range cert.Extensions {
		if !e.Id.Equal(api.OIDStepProvisioner) {
			continue
		}
		var p struct {
			Type         int
			Name         []byte
			CredentialID []byte
			Rest         asn1.RawValue `asn1:"optional"`
		}
		rest, err := asn1.Unmarshal(e.Value, &p)
		if err != nil || len(rest) != 0 || p.Type != jwkProvisionerType {
			return "", ""
		}
		return string(p.Name), string(p.CredentialID)
	}
	return "", ""
}

func (g *Guard) audit(r *http.Request, c Caller, outcome, reason string) {
	actor := "peer"
	if c.Grant.Peer != "" {
		actor = "peer:" + c.Grant.Peer
	}
	ctx, cancel := context.WithTimeout(context.WithoutCancel(r.Context()), 5*time.Second)
	defer cancel()
	if err := g.Fed.Append(ctx, fedstore.Entry{RequestID: httpx.ID(r.Context()), Actor: actor, Action: r.Method + " " + routeOf(r),
		Outcome: outcome, Reason: reason, GrantID: c.Identity.GrantID, PeerID: c.Grant.PeerID}); err != nil {
		g.Log.Error("audit write failed", "request_id", httpx.ID(r.Context()), "err", err)
	}
}
