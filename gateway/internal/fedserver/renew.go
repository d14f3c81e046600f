package fedserver

import (
	"context"
	"crypto"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"log/slog"
	"net/http"
	"time"

	"github.com/mosaic-federation/mosaic/gateway/api"
	"github.com/mosaic-federation/mosaic/gateway/internal/caclient"
	"github.com/mosaic-federation/mosaic/gateway/internal/errs"
	"github.com/mosaic-federation/mosaic/gateway/internal/fedstore"
	"github.com/mosaic-federation/mosaic/gateway/internal/guard"
	"github.com/mosaic-federation/mosaic/gateway/internal/httpx"
	"github.com/mosaic-federation/mosaic/gateway/internal/identity"
	"github.com/mosaic-federation/mosaic/gateway/internal/ratelimit"
)

// Issuer issues and revokes federation certificates (caclient).
type Issuer interface {
	IssueFederation(ctx context.Context, csrPEM []byte, id identity.Identity, notAfter time.Time) (*caclient.Signed, error)
	Revoke(ctx context.Context, serial string, code caclient.ReasonCode, reason string) error
}

// Renewals records a renewal's serials (fedstore).
type Renewals interface {
	Renew(ctx context.Context, grantID, presented, serial string, notAfter time.Time, overlap time.Duration) (fedstore.Renewed, error)
}

// Renewer serves POST /renew (SPEC §6d): a peer trades the certificate it presents —
// its grant's current one, or the previous one inside its overlap when the answer to
// its last renewal was lost — for a new certificate of a new key. It runs behind the
// guard, so the grant is checked live as for every verb.
type Renewer struct {
	Fed Renewals
	CA  Issuer
	// Lifetime of a new certificate (capped at the grant's expiry), and how long the
	// one it replaces is still accepted.
	Lifetime, Overlap time.Duration
	// Superseded runs when a renewal left a certificate to revoke at the CA (the
	// sweeper's Kick); nil: the next sweep takes it.
	Superseded func()
	Log        *slog.Logger
}

// RenewalLimit bounds renewals per grant on top of the grant's request limit: each one
// costs the CA a signature, and a peer renews once per ⅔ of a lifetime.
var RenewalLimit = ratelimit.Limit{Rate: api.Rate{Count: 12, Period: time.Minute}, Burst: 6}

// renewal takes one renewal of a grant's renewal limit.
func (l *Limits) renewal(ctx context.Context, g fedstore.Grant) error {
	if l == nil {
		return nil
	}
	return refusal(l.Limiter.Allow(ctx, "rl:renew:"+g.ID, RenewalLimit), "the grant's renewal limit")
}

// renew serves POST /renew through the guard and the limits, and audits it once.
func (s *Server) renew(w http.ResponseWriter, r *http.Request) {
	start := time.Now()
	caller, err := s.admit(r)
	if err == nil {
		err = s.Limits.renewal(r.Context(), caller.Grant)
	}
	var resp *api.EnrollResponse
	var detail string
	if err == nil {
		// Once the CA signed, a client hanging up must not cancel the bookkeeping.
		ctx, cancel := context.WithTimeout(context.WithoutCancel(r.Context()), 45*time.Second)
		resp, detail, err = s.Renew.renew(ctx, r, caller)
		cancel()
	}
	s.finish(w, r, done{verb: "renew", caller: caller, err: err, detail: detail, start: start},
		func() { httpx.JSON(w, http.StatusCreated, resp) })
}

var errKeyReused = errs.New(errs.Invalid, api.CodeKeyReused, "a renewal needs a CSR for a new key, not the key of the certificate it renews")

// renew checks the CSR, has the CA sign it with the grant's identity, and makes the
// new certificate the grant's current one; one that cannot be recorded is revoked.
func (rn *Renewer) renew(ctx context.Context, r *http.Request, c guard.Caller) (*api.EnrollResponse, string, error) {
	var req api.RenewRequest
	if err := httpx.Decode(r, &req); err != nil {
		return nil, "", err
	}
	csrPEM, err := checkCSR(req.CSRPEM)
	if err != nil {
		return nil, "", err
	}
	if sameKeyAsPresented(csrPEM, r) {
		return nil, "", errKeyReused
	}
	g, rid := c.Grant, httpx.ID(r.Context())
	ictx, cancel := context.WithTimeout(ctx, 15*time.Second)
	defer cancel()
	signed, err := rn.CA.IssueFederation(ictx, csrPEM, identity.Identity{GrantID: g.ID, SubjectUserID: g.SubjectUserID},
		notAfterFor(time.Now(), rn.Lifetime, g.ExpiresAt))
	if err != nil {
		rn.Log.Error("renewal: certificate issuance failed", "request_id", rid, "grant_id", g.ID, "err", err)
		return nil, "", errs.Wrap(errs.BadGateway, api.CodeIssuanceFailed,
			"the site's CA did not issue a valid federation certificate; retry later, the site's administrator has the details", err)
	}
	serial := signed.Leaf.SerialNumber.String()
	detail := "serial " + serial + " replaces " + c.Serial
	renewed, err := rn.Fed.Renew(ctx, g.ID, c.Serial, serial, signed.Leaf.NotAfter, rn.Overlap)
	if err != nil {
		detail += ", not recorded: " + rn.discard(ctx, rid, serial)
		switch {
		case errors.Is(err, fedstore.ErrStaleSerial):
			return nil, detail, errs.New(errs.Forbidden, api.CodeStaleCertificate,
				"the certificate is no longer the grant's current one: renew with the one your last renewal issued")
		case errors.Is(err, fedstore.ErrTransition), errors.Is(err, fedstore.ErrNotFound):
			return nil, detail, errs.New(errs.Forbidden, api.CodeGrantInactive, "the grant is no longer active")
		}
		return nil, detail, err
	}
	if renewed.Unclaimed != "" {
		detail += ", unclaimed " + renewed.Unclaimed + " revoked"
		if rn.Superseded != nil {
			rn.Superseded()
		}
	}
	rn.Log.Info("renewed", "request_id", rid, "grant_id", g.ID, "serial", serial, "previous", c.Serial,
		"previous_until", renewed.PreviousUntil, "unclaimed", renewed.Unclaimed)
	resp := &api.EnrollResponse{GrantID: g.ID, NotAfter: signed.Leaf.NotAfter.UTC().Format(time.RFC3339),
		CertificatePEM: string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: signed.Leaf.Raw}))}
	for _, ic := range signed.Chain {
		resp.ChainPEM += string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: ic.Raw}))
	}
	return resp, detail, nil
}

// discard revokes a renewal's certificate that will not be used, and says how that
// went for the audit row.
func (rn *Renewer) discard(ctx context.Context, rid, serial string) string {
	if err := rn.CA.Revoke(ctx, serial, caclient.Superseded, "renewal not recorded"); err != nil {
		rn.Log.Error("renewal: revoking the discarded certificate failed", "request_id", rid, "serial", serial, "err", err)
		return "NOT revoked (see the gateway log)"
	}
	return "revoked"
}

// sameKeyAsPresented reports a CSR (checked) for the key of the client certificate
// the request came with.
func sameKeyAsPresented(csrPEM []byte, r *http.Request) bool {
	block, _ := pem.Decode(csrPEM)
	csr, err := x509.ParseCertificateRequest(block.Bytes)
	if err != nil || r.TLS == nil || len(r.TLS.PeerCertificates) == 0 {
		return false
	}
	pub, ok := csr.PublicKey.(interface{ Equal(crypto.PublicKey) bool })
	return ok && pub.Equal(r.TLS.PeerCertificates[0].PublicKey)
}
