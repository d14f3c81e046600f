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
	"regexp"
	"strings"
	"time"

	"github.com/mosaic-federation/mosaic/gateway/api"
	"github.com/mosaic-federation/mosaic/gateway/internal/caclient"
	"github.com/mosaic-federation/mosaic/gateway/internal/fedstore"
	"github.com/mosaic-federation/mosaic/gateway/internal/httpx"
	"github.com/mosaic-federation/mosaic/gateway/internal/identity"
)

// Enroller redeems enrollment tokens for client certificates (SPEC §6 steps 4–5).
type Enroller struct {
	Fed *fedstore.Store
	CA  *caclient.Client // the federation provisioner
	Log *slog.Logger
}

// reservedOIDs may never arrive in a CSR: the identity comes from the grant alone.
var reservedOIDs = []asn1.ObjectIdentifier{api.OIDGrantID, api.OIDSubjectUserID, api.OIDStepProvisioner}

// ServeHTTP handles POST /enroll.
func (e *Enroller) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	resp, err := e.enroll(r.Context(), r)
	if err != nil {
		httpx.WriteError(w, r, e.Log, err)
		return
	}
	httpx.JSON(w, http.StatusCreated, resp)
}

func (e *Enroller) enroll(ctx context.Context, r *http.Request) (*api.EnrollResponse, error) {
	rid := httpx.ID(ctx)
	// Once a token is spent, a client hanging up must not cancel the issuance's
	// bookkeeping: the rest runs on a context of its own, bounded.
	work, cancel := context.WithTimeout(context.WithoutCancel(ctx), 45*time.Second)
	defer cancel()
	audit := func(outcome, reason, grantID, detail string) {
		if err := e.Fed.Append(work, fedstore.Entry{RequestID: rid, Actor: "enroll", Action: "enroll", Outcome: outcome,
			Reason: reason, GrantID: grantID, Detail: detail}); err != nil {
			e.Log.Error("audit write failed", "request_id", rid, "err", err)
		}
	}
	var req api.EnrollRequest
	if err := httpx.Decode(r, &req); err != nil {
		audit("denied", "malformed_body", "", "")
		return nil, err
	}
	// The body and the CSR are checked before the token is spent: a bad request
	// leaves the token usable.
	if req.Token == "" {
		audit("denied", "malformed_token", "", "")
		return nil, httpx.Errorf(http.StatusBadRequest, "invalid_token", "token must be a non-empty string")
	}
	csrPEM, err := checkCSR(req.CSRPEM)
	if err != nil {
		audit("denied", "invalid_csr", "", "token "+prefix(req.Token))
		return nil, err
	}
	grantID, err := e.Fed.SpendToken(work, fedstore.HashToken(req.Token))
	switch {
	case errors.Is(err, fedstore.ErrTokenUnknown):
		audit("denied", "unknown_token", "", "token "+prefix(req.Token))
		return nil, httpx.Errorf(http.StatusNotFound, "unknown_token", "no such enrollment token")
	case errors.Is(err, fedstore.ErrTokenSpent):
		audit("denied", "token_spent_or_expired", "", "token "+prefix(req.Token))
		return nil, httpx.Errorf(http.StatusGone, "token_spent_or_expired", "the enrollment token was already used or has expired: ask for a new one")
	case err != nil:
		audit("failed", "token_lookup_failed", "", "token "+prefix(req.Token))
		return nil, err
	}
	grant, err := e.Fed.Grant(work, grantID)
	if err != nil {
		audit("failed", "grant_lookup_failed", grantID, "")
		return nil, err
	}
	// Revoked, expired, or its peer suspended or revoked since the token was made: no
	// certificate at all.
	if grant.Status != "pending" || grant.PeerState == "suspended" || grant.PeerState == "revoked" {
		audit("denied", "grant_not_pending", grant.ID, "grant "+grant.Status+", peer "+grant.PeerState)
		return nil, httpx.Errorf(http.StatusConflict, "grant_not_pending", "the grant is no longer pending")
	}
	ictx, icancel := context.WithTimeout(work, 15*time.Second) // well inside the requesting side's patience
	defer icancel()
	signed, err := e.CA.IssueFederation(ictx, csrPEM, identity.Identity{GrantID: grant.ID, SubjectUserID: grant.SubjectUserID})
	if err != nil {
		audit("failed", "issuance_failed", grant.ID, "")
		e.Log.Error("enrollment: certificate issuance failed", "request_id", rid, "grant_id", grant.ID, "err", err)
		return nil, &httpx.Error{Status: http.StatusBadGateway, Code: "issuance_failed",
			Message: "the site's CA did not issue a valid federation certificate; the site's administrator has the details", Cause: err}
	}
	serial := signed.Leaf.SerialNumber.String()
	if err := e.Fed.ActivateGrant(work, grant.ID, serial, signed.Leaf.NotAfter); err != nil {
		revoked := "revoked"
		if rerr := e.CA.Revoke(work, serial, "grant no longer pending"); rerr != nil {
			revoked = "NOT revoked (see the gateway log)"
			e.Log.Error("enrollment: revoking the discarded certificate failed", "request_id", rid, "serial", serial, "err", rerr)
		}
		if errors.Is(err, fedstore.ErrTransition) {
			audit("denied", "grant_not_pending", grant.ID, "serial "+serial+" "+revoked)
			return nil, httpx.Errorf(http.StatusConflict, "grant_not_pending", "the grant is no longer pending")
		}
		audit("failed", "activation_failed", grant.ID, "serial "+serial+" "+revoked)
		return nil, err
	}
	audit("allowed", "enrolled", grant.ID, "serial "+serial)
	e.Log.Info("enrolled", "request_id", rid, "grant_id", grant.ID, "serial", serial, "token", prefix(req.Token))
	resp := &api.EnrollResponse{GrantID: grant.ID, NotAfter: signed.Leaf.NotAfter.UTC().Format(time.RFC3339),
		CertificatePEM: string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: signed.Leaf.Raw}))}
	for _, c := range signed.Chain {
		resp.ChainPEM += string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: c.Raw}))
	}
	return resp, nil
}

// tokenShape is what the CLI mints: anything else is logged as malformed, never quoted.
var tokenShape = regexp.MustCompile(`^met_[A-Za-z0-9_-]{43}$`)

// prefix is all of a token that may be logged: its first 8 characters, when it has
// the shape of a real token.
func prefix(token string) string {
	if !tokenShape.MatchString(token) {
		return "(malformed)"
	}
	return token[:8] + "…"
}

// checkCSR refuses a malformed CSR, one with SANs or a subject, and one carrying the
// reserved OIDs.
func checkCSR(p string) ([]byte, error) {
	bad := func(format string, args ...any) error {
		return httpx.Errorf(http.StatusBadRequest, "invalid_csr", format, args...)
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
	if csr.Subject.String() != "" {
		return nil, bad("the CSR's subject must be empty: the CA names the certificate after the grant")
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
