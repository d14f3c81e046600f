package fedserver

import (
	"context"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/rsa"
	"crypto/x509"
	"encoding/asn1"
	"encoding/pem"
	"errors"
	"log/slog"
	"net/http"
	"strings"
	"time"

	"github.com/mosaic-federation/mosaic/gateway/api"
	"github.com/mosaic-federation/mosaic/gateway/internal/audit"
	"github.com/mosaic-federation/mosaic/gateway/internal/caclient"
	"github.com/mosaic-federation/mosaic/gateway/internal/enrollment"
	"github.com/mosaic-federation/mosaic/gateway/internal/errs"
	"github.com/mosaic-federation/mosaic/gateway/internal/fedstore"
	"github.com/mosaic-federation/mosaic/gateway/internal/httpx"
	"github.com/mosaic-federation/mosaic/gateway/internal/identity"
)

// Enroller redeems enrollment tokens for client certificates (SPEC §6 steps 4–5).
type Enroller struct {
	Fed   *fedstore.Store
	CA    *caclient.Client // the federation provisioner
	Audit audit.Writer
	Log   *slog.Logger
	// Lifetime is how long the certificates issued live (federation.client_cert_lifetime),
	// never past their grant's expiry.
	Lifetime time.Duration
}

// reservedOIDs may never arrive in a CSR: the identity comes from the grant alone.
var reservedOIDs = []asn1.ObjectIdentifier{api.OIDGrantID, api.OIDSubjectUserID, api.OIDStepProvisioner}

// trail is what an enrollment's audit row records beside its outcome.
type trail struct {
	grantID, detail string
}

// ServeHTTP handles POST /enroll and audits it once, whatever the outcome.
func (e *Enroller) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	// Once a token is spent, a client hanging up must not cancel the issuance's
	// bookkeeping: the work runs on a context of its own, bounded.
	ctx, cancel := context.WithTimeout(context.WithoutCancel(r.Context()), 45*time.Second)
	defer cancel()
	resp, t, err := e.enroll(ctx, r)
	entry := audit.Entry{RequestID: httpx.ID(r.Context()), Actor: "enroll", Action: "enroll",
		Outcome: api.OutcomeAllowed, Reason: api.ReasonEnrolled, GrantID: t.grantID, Detail: t.detail}
	if err != nil {
		f := errs.From(err)
		entry.Outcome, entry.Reason = f.Kind.Outcome(), f.Code
	}
	if aerr := e.Audit.Append(ctx, entry); aerr != nil {
		e.Log.Error("audit write failed", "request_id", entry.RequestID, "err", aerr)
	}
	if err != nil {
		httpx.WriteError(w, r, e.Log, err)
		return
	}
	httpx.JSON(w, http.StatusCreated, resp)
}

func (e *Enroller) enroll(ctx context.Context, r *http.Request) (*api.EnrollResponse, trail, error) {
	var req api.EnrollRequest
	if err := httpx.Decode(r, &req); err != nil {
		return nil, trail{}, err
	}
	// The body and the CSR are checked before the token is spent: a bad request
	// leaves the token usable.
	if err := req.Validate(); err != nil {
		return nil, trail{}, err
	}
	t := trail{detail: "token " + enrollment.Loggable(req.Token)}
	csrPEM, err := checkCSR(req.CSRPEM)
	if err != nil {
		return nil, t, err
	}
	grantID, err := e.Fed.SpendToken(ctx, enrollment.HashToken(req.Token))
	switch {
	case errors.Is(err, fedstore.ErrTokenUnknown):
		return nil, t, errs.New(errs.NotFound, api.CodeUnknownToken, "no such enrollment token")
	case errors.Is(err, fedstore.ErrTokenSpent):
		return nil, t, errs.New(errs.Gone, api.CodeTokenSpentOrExpired, "the enrollment token was already used or has expired: ask for a new one")
	case err != nil:
		t.detail += ", token lookup failed"
		return nil, t, err
	}
	t.grantID = grantID
	grant, err := e.Fed.Grant(ctx, grantID)
	if err != nil {
		t.detail = "grant lookup failed"
		return nil, t, err
	}
	// Revoked, expired, or its peer suspended or revoked since the token was made: no
	// certificate at all.
	if grant.Status != "pending" || grant.PeerState == "suspended" || grant.PeerState == "revoked" {
		t.detail = "grant " + grant.Status + ", peer " + grant.PeerState
		return nil, t, errNotPending
	}
	signed, err := e.issue(ctx, httpx.ID(r.Context()), csrPEM, grant)
	if err != nil {
		t.detail = ""
		return nil, t, err
	}
	serial := signed.Leaf.SerialNumber.String()
	t.detail = "serial " + serial
	if err := e.Fed.ActivateGrant(ctx, grant.ID, serial, signed.Leaf.NotAfter); err != nil {
		t.detail += " " + e.discard(ctx, httpx.ID(r.Context()), serial)
		if errors.Is(err, fedstore.ErrTransition) {
			return nil, t, errNotPending
		}
		t.detail += ", activation failed"
		return nil, t, err
	}
	e.Log.Info("enrolled", "request_id", httpx.ID(r.Context()), "grant_id", grant.ID, "serial", serial, "token", enrollment.Loggable(req.Token))
	resp := &api.EnrollResponse{GrantID: grant.ID, NotAfter: signed.Leaf.NotAfter.UTC().Format(time.RFC3339),
		CertificatePEM: string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: signed.Leaf.Raw}))}
	for _, c := range signed.Chain {
		resp.ChainPEM += string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: c.Raw}))
	}
	return resp, t, nil
}

var errNotPending = errs.New(errs.Conflict, api.CodeGrantNotPending, "the grant is no longer pending")

// issue has step-ca sign the CSR with the grant's identity in signed token claims.
func (e *Enroller) issue(ctx context.Context, rid string, csrPEM []byte, grant fedstore.Grant) (*caclient.Signed, error) {
	ictx, cancel := context.WithTimeout(ctx, 15*time.Second) // well inside the requesting side's patience
	defer cancel()
	signed, err := e.CA.IssueFederation(ictx, csrPEM, identity.Identity{GrantID: grant.ID, SubjectUserID: grant.SubjectUserID},
		notAfterFor(time.Now(), e.Lifetime, grant.ExpiresAt))
	if err != nil {
		e.Log.Error("enrollment: certificate issuance failed", "request_id", rid, "grant_id", grant.ID, "err", err)
		return nil, errs.Wrap(errs.BadGateway, api.CodeIssuanceFailed,
			"the site's CA did not issue a valid federation certificate; the site's administrator has the details", err)
	}
	return signed, nil
}

// notAfterFor is when a certificate issued now ends: after its lifetime, or when its
// grant expires if that is sooner (a certificate never outlives its grant).
func notAfterFor(now time.Time, lifetime time.Duration, grantExpires time.Time) time.Time {
	end := now.Add(lifetime)
	if grantExpires.Before(end) {
		return grantExpires
	}
	return end
}

// discard revokes a certificate that was issued but will not be used, and says how
// that went for the audit row.
func (e *Enroller) discard(ctx context.Context, rid, serial string) string {
	if err := e.CA.Revoke(ctx, serial, caclient.PrivilegeWithdrawn, "grant no longer pending"); err != nil {
		e.Log.Error("enrollment: revoking the discarded certificate failed", "request_id", rid, "serial", serial, "err", err)
		return "NOT revoked (see the gateway log)"
	}
	return "revoked"
}

// checkCSR refuses a malformed CSR, one with SANs, and one carrying the reserved OIDs.
// A subject is accepted and ignored (SPEC §6d): `openssl req -subj` and `step` always
// put one there, and the CA's template names the certificate after the grant from the
// token's signed claims alone, which IssueFederation verifies on the issued leaf.
func checkCSR(p string) ([]byte, error) {
	bad := func(format string, args ...any) error {
		return errs.New(errs.Invalid, api.CodeInvalidCSR, format, args...)
	}
	block, rest := pem.Decode([]byte(p))
	if block == nil || block.Type != "CERTIFICATE REQUEST" || strings.TrimSpace(string(rest)) != "" {
		return nil, bad("csr_pem must hold exactly one PEM CERTIFICATE REQUEST")
	}
	csr, err := x509.ParseCertificateRequest(block.Bytes)
	if err != nil {
		return nil, bad("the CSR does not parse")
	}
	if err := csr.CheckSignature(); err != nil {
		return nil, bad("the CSR's signature does not verify")
	}
	if !acceptableKey(csr.PublicKey) {
		return nil, bad("the CSR's key must be ECDSA P-256, P-384 or P-521, Ed25519, or RSA of at least 2048 bits")
	}
	if len(csr.DNSNames)+len(csr.IPAddresses)+len(csr.URIs)+len(csr.EmailAddresses) > 0 {
		return nil, bad("the CSR must carry no SANs")
	}
	for _, ext := range csr.Extensions {
		for _, oid := range reservedOIDs {
			if ext.Id.Equal(oid) {
				return nil, bad("the CSR carries the reserved extension %s", oid)
			}
		}
	}
	return pem.EncodeToMemory(block), nil
}

// acceptableKey mirrors what the CA signs, so a key it would refuse fails here, before
// the token is spent.
func acceptableKey(k any) bool {
	switch key := k.(type) {
	case *ecdsa.PublicKey:
		n := key.Curve.Params().Name
		return n == "P-256" || n == "P-384" || n == "P-521"
	case ed25519.PublicKey:
		return true
	case *rsa.PublicKey:
		return key.N.BitLen() >= 2048
	}
	return false
}
