// Package guard is the first stage of the serving pipeline: it turns a request's
// verified client certificate into a Caller — the grant it binds, checked live — or a
// refusal (401: the certificate does not authenticate; 403: its grant does not
// authorise). It writes nothing; the pipeline audits what it decides.
package guard

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/asn1"
	"errors"
	"math/big"
	"slices"
	"time"

	"github.com/mosaic-federation/mosaic/gateway/api"
	"github.com/mosaic-federation/mosaic/gateway/internal/errs"
	"github.com/mosaic-federation/mosaic/gateway/internal/fedstore"
	"github.com/mosaic-federation/mosaic/gateway/internal/identity"
)

// Caller is who a guarded request speaks for: the grant its certificate binds.
type Caller struct {
	Grant    fedstore.Grant
	Identity identity.Identity
	// Serial is the client certificate's serial (decimal): the grant's current one or,
	// inside its overlap, the previous one.
	Serial string
}

// Grants reads a grant as it is now: the guard never caches it, so a revocation
// applies to the next request.
type Grants interface {
	GuardGrant(ctx context.Context, id string) (fedstore.Grant, error)
	// PreviousSerial is until when a grant's previous certificate (one a renewal
	// replaced) is accepted, fedstore.ErrNotFound for a serial that is none.
	PreviousSerial(ctx context.Context, grantID, serial string) (time.Time, error)
}

// Guard checks certificates and grants.
type Guard struct {
	Grants      Grants
	Provisioner string // the provisioner federation certificates must come from
	// ProvisionerKID is that provisioner's key id, which step-ca records as the
	// credential id: a provisioner of the same name with another key does not pass.
	// Required: an empty one matches no certificate.
	ProvisionerKID string
	// Revoked reports a serial listed in the CA's CRL (revocation.List); nil only in
	// tests: the gateway always sets it.
	Revoked interface{ Revoked(serial *big.Int) bool }
	Now     func() time.Time // nil: time.Now
}

func unauthorized(code, message string) error {
	return errs.New(errs.Unauthenticated, code, "%s", message)
}
func forbidden(code, message string) error { return errs.New(errs.Forbidden, code, "%s", message) }

// Check authenticates the connection's client certificate and authorises its grant.
// On a refusal the returned Caller holds what was learnt before it (the identity, the
// grant), for the audit row.
func (g *Guard) Check(ctx context.Context, state *tls.ConnectionState) (Caller, error) {
	if state == nil || len(state.VerifiedChains) == 0 || len(state.VerifiedChains[0]) == 0 {
		return Caller{}, unauthorized(api.CodeClientCertificateRequired, "present the client certificate your enrollment issued")
	}
	leaf := state.VerifiedChains[0][0]
	now := time.Now
	if g.Now != nil {
		now = g.Now
	}
	id, err := g.authenticate(leaf, now())
	if err != nil {
		return Caller{Identity: id}, err
	}
	c := Caller{Identity: id, Serial: leaf.SerialNumber.String()}
	grant, err := g.Grants.GuardGrant(ctx, id.GrantID)
	switch {
	case errors.Is(err, fedstore.ErrNotFound):
		return c, forbidden(api.CodeGrantUnknown, "no such grant")
	case err != nil:
		return c, errs.Wrap(errs.Internal, api.CodeInternal, "the grant could not be checked", err)
	}
	c.Grant = grant
	if err := authorize(grant, id, now()); err != nil {
		return c, err
	}
	if err := g.currentOrPrevious(ctx, grant, c.Serial, now()); err != nil {
		return c, err
	}
	// After the grant, whose own refusal (revoked, say) tells the peer more: a
	// certificate revoked at the CA behind a grant that still reads active.
	if g.Revoked != nil && g.Revoked.Revoked(leaf.SerialNumber) {
		return c, unauthorized(api.CodeCertificateRevoked, "the client certificate was revoked: the serving site must grant access again")
	}
	return c, nil
}

// authenticate is the 401 half: an unexpired client certificate of the federation
// provisioner that carries a well-formed identity. An expired one that is otherwise
// such a certificate is refused with its identity, so the audit row names its grant.
func (g *Guard) authenticate(leaf *x509.Certificate, now time.Time) (identity.Identity, error) {
	id, err := g.federationIdentity(leaf)
	// TLS checks validity at the handshake only; a kept-alive connection outlives it.
	if !now.Before(leaf.NotAfter) {
		if err != nil {
			id = identity.Identity{}
		}
		return id, unauthorized(api.CodeCertificateExpired,
			"the client certificate has expired: the serving site must grant access again (a new grant, then peer add --replace)")
	}
	if err != nil {
		return identity.Identity{}, err
	}
	return id, nil
}

// federationIdentity is the identity of a client certificate of the federation
// provisioner, or why the certificate is none.
func (g *Guard) federationIdentity(leaf *x509.Certificate) (identity.Identity, error) {
	if !slices.Contains(leaf.ExtKeyUsage, x509.ExtKeyUsageClientAuth) {
		return identity.Identity{}, unauthorized(api.CodeNotAClientCertificate, "the certificate is not for client authentication")
	}
	if name, kid := provisionerOf(leaf); name != g.Provisioner || g.ProvisionerKID == "" || kid != g.ProvisionerKID {
		return identity.Identity{}, unauthorized(api.CodeWrongProvisioner, "the certificate was not issued for federation")
	}
	id, err := identity.FromCertificate(leaf)
	switch {
	case errors.Is(err, identity.ErrMissing):
		return id, unauthorized(api.CodeIdentityMissing, "the certificate carries no federation identity")
	case err != nil:
		return id, unauthorized(api.CodeIdentityMalformed, "the certificate's federation identity is malformed")
	}
	return id, nil
}

// authorize is the 403 half: the grant is active, unexpired, of an active peer, and
// for the certificate's subject.
func authorize(grant fedstore.Grant, id identity.Identity, now time.Time) error {
	switch {
	case grant.Status == "pending":
		return forbidden(api.CodeGrantPending, "the grant is not active")
	case grant.Status == "revoked":
		return forbidden(api.CodeGrantRevoked, "the grant was revoked")
	case grant.Status == "expired" || !now.Before(grant.ExpiresAt):
		return forbidden(api.CodeGrantExpired, "the grant has expired")
	case grant.Status != "active":
		return forbidden(api.CodeGrantInactive, "the grant is not active")
	case grant.PeerState != "active":
		return forbidden(api.CodePeerNotActive, "the peer is not active")
	case grant.SubjectUserID != id.SubjectUserID:
		return forbidden(api.CodeSubjectMismatch, "the certificate's subject is not the grant's")
	}
	return nil
}

var errStale = forbidden(api.CodeStaleCertificate, "the certificate is not the grant's current one: use the one your last enrollment or renewal issued")

// currentOrPrevious accepts the grant's current certificate, and the one its last
// renewal replaced until that one's overlap ends (requests in flight with it, and a
// renewal whose answer was lost); every other certificate of the grant is stale. The
// current one is on the grant's row; only another serial costs a read.
func (g *Guard) currentOrPrevious(ctx context.Context, grant fedstore.Grant, serial string, now time.Time) error {
	if grant.CertSerial != "" && serial == grant.CertSerial {
		return nil
	}
	until, err := g.Grants.PreviousSerial(ctx, grant.ID, serial)
	switch {
	case errors.Is(err, fedstore.ErrNotFound):
		return errStale
	case err != nil:
		return errs.Wrap(errs.Internal, api.CodeInternal, "the certificate could not be checked", err)
	case !now.Before(until):
		return errStale
	}
	return nil
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
