package fedserver

import (
	"context"
	"crypto/x509"
	"encoding/asn1"
	"encoding/pem"
	"errors"
	"log/slog"
	"net/http"
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
	audit := func(outcome, reason, grantID, detail string) {
		if err := e.Fed.Append(ctx, fedstore.Entry{RequestID: rid, Actor: "enroll", Action: "enroll", Outcome: outcome,
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
	if req.Token == "" || len(req.Token) > 256 {
		audit("denied", "malformed_token", "", "")
		return nil, httpx.Errorf(http.StatusBadRequest, "invalid_token", "token must be a non-empty string of at most 256 characters")
	}
	csrPEM, err := checkCSR(req.CSRPEM)
	if err != nil {
		audit("denied", "invalid_csr", "", "token "+prefix(req.Token))
		return nil, err
	}
	grantID, err := e.Fed.SpendToken(ctx, fedstore.HashToken(req.Token))
	switch {
	case errors.Is(err, fedstore.ErrTokenUnknown):
		audit("denied", "unknown_token", "", "token "+prefix(req.Token))
		return nil, httpx.Errorf(http.StatusNotFound, "unknown_token", "no such enrollment token")
	case errors.Is(err, fedstore.ErrTokenSpent):
		audit("denied", "token_spent_or_expired", "", "token "+prefix(req.Token))
		return nil, httpx.Errorf(http.StatusGone, "token_spent_or_expired", "the enrollment token was already used or has expired: ask for a new one")
	case err != nil:
		return nil, err
	}
	grant, err := e.Fed.Grant(ctx, grantID)
	if err != nil {
		return nil, err
	}
	if grant.Status != "pending" { // revoked or expired since the token was made: no certificate at all
		audit("denied", "grant_not_pending", grant.ID, "grant "+grant.Status)
		return nil, httpx.Errorf(http.StatusConflict, "grant_not_pending", "the grant is no longer pending")
	}
	signed, err := e.CA.IssueFederation(ctx, csrPEM, identity.Identity{GrantID: grant.ID, SubjectUserID: grant.SubjectUserID})
	if err != nil {
		audit("failed", "issuance_failed", grant.ID, "")
		e.Log.Error("enrollment: certificate issuance failed", "request_id", rid, "grant_id", grant.ID, "err", err)
		return nil, &httpx.Error{Status: http.StatusBadGateway, Code: "issuance_failed",
			Message: "the site's CA did not issue a valid federation certificate; the site's administrator has the details", Cause: err}
	}
	serial := signed.Leaf.SerialNumber.String()
	if err := e.Fed.ActivateGrant(ctx, grant.ID, serial, signed.Leaf.NotAfter); err != nil {
		if rerr := e.CA.Revoke(context.WithoutCancel(ctx), serial, "grant no longer pending"); rerr != nil {
			e.Log.Error("enrollment: revoking the discarded certificate failed", "request_id", rid, "serial", serial, "err", rerr)
		}
		if errors.Is(err, fedstore.ErrTransition) {
			audit("denied", "grant_not_pending", grant.ID, "serial "+serial+" revoked")
			return nil, httpx.Errorf(http.StatusConflict, "grant_not_pending", "the grant is no longer pending")
		}
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

// prefix is all of a token that may be logged.
func prefix(token string) string {
	if len(token) > 8 {
		return token[:8] + "…"
	}
	return token
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
