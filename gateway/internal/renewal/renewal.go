// Package renewal is the requesting side's certificate renewal (SPEC §6d): every active
// outbound peer's client certificate is renewed at its renew_at through the serving
// site's POST /renew, one process at a time per peer (an advisory lock), the new
// certificate and its sealed key stored before anything switches to them; the peers'
// clients then switch (the change notification drops the old client).
package renewal

import (
	"context"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"log/slog"
	"math/big"
	"net/http"
	"sync"
	"time"

	"github.com/mosaic-federation/mosaic/gateway/api"
	"github.com/mosaic-federation/mosaic/gateway/internal/audit"
	"github.com/mosaic-federation/mosaic/gateway/internal/fedclient"
	"github.com/mosaic-federation/mosaic/gateway/internal/fedstore"
	"github.com/mosaic-federation/mosaic/gateway/internal/httpx"
	"github.com/mosaic-federation/mosaic/gateway/internal/peers"
	"github.com/mosaic-federation/mosaic/gateway/internal/sealing"
)

// RenewAt is when a certificate renews: at ⅔ of its lifetime from issuance, minus a
// jitter of up to a twentieth of it. The jitter comes from the serial, so every replica
// computes the same instant (the lock decides who renews) and peers enrolled at once
// do not all renew at once.
func RenewAt(leaf *x509.Certificate) time.Time {
	life := leaf.NotAfter.Sub(leaf.NotBefore)
	spread := int64(life / 20)
	var j int64
	if spread > 0 {
		j = new(big.Int).Mod(leaf.SerialNumber, big.NewInt(spread)).Int64()
	}
	return leaf.NotBefore.Add(life*2/3 - time.Duration(j))
}

// Leaf is the certificate a stored PEM holds, or nil.
func Leaf(certPEM string) *x509.Certificate {
	block, _ := pem.Decode([]byte(certPEM))
	if block == nil {
		return nil
	}
	cert, err := x509.ParseCertificate(block.Bytes)
	if err != nil {
		return nil
	}
	return cert
}

// Backoff bounds the retries of a failed renewal: from the first delay, doubling, to
// the last.
var Backoff = struct{ First, Max time.Duration }{First: 5 * time.Second, Max: 5 * time.Minute}

// Renewer renews the outbound peers' certificates.
type Renewer struct {
	Fed   *fedstore.Store
	Keys  *sealing.Keyring
	Audit interface{ Enqueue(audit.Entry) } // nil: no rows (tests)
	Log   *slog.Logger

	mu    sync.Mutex
	retry map[string]attempt // by peer id: this process's backoff after a failure
}

// attempt is a failed peer's next try.
type attempt struct {
	at    time.Time
	delay time.Duration
}

// Run checks every period which peers are due, until ctx ends.
func (r *Renewer) Run(ctx context.Context, every time.Duration) {
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		r.Sweep(ctx)
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// Sweep renews every peer due now (one after the other: renewals are rare).
func (r *Renewer) Sweep(ctx context.Context) {
	rows, err := r.Fed.RenewablePeers(ctx)
	if err != nil {
		if ctx.Err() == nil {
			r.Log.Warn("renewal: listing the peers failed; retried on the next sweep", "err", err)
		}
		return
	}
	now := time.Now()
	for _, p := range rows {
		leaf := Leaf(p.CertPEM)
		if leaf == nil || now.Before(RenewAt(leaf)) || !r.mayTry(p.ID, now) {
			continue
		}
		r.renew(ctx, p.ID)
	}
}

// mayTry says whether a peer's backoff allows a try now.
func (r *Renewer) mayTry(id string, now time.Time) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	a, ok := r.retry[id]
	return !ok || !now.Before(a.at)
}

// failed pushes a peer's next try back (doubling the delay); succeeded clears it.
func (r *Renewer) failed(id string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.retry == nil {
		r.retry = map[string]attempt{}
	}
	d := Backoff.First
	if a, ok := r.retry[id]; ok {
		d = min(a.delay*2, Backoff.Max)
	}
	r.retry[id] = attempt{at: time.Now().Add(d), delay: d}
}

func (r *Renewer) succeeded(id string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	delete(r.retry, id)
}

// renew renews one peer under its lock; a peer another process is renewing, or that
// it renewed meanwhile, is left alone.
func (r *Renewer) renew(ctx context.Context, id string) {
	lock, ok, err := r.Fed.LockPeerRenewal(ctx, id)
	if err != nil || !ok {
		if err != nil && ctx.Err() == nil {
			r.Log.Warn("renewal: the peer's lock could not be taken; retried on the next sweep", "peer_id", id, "err", err)
		}
		return
	}
	defer lock.Close(ctx)
	p, start, rid := lock.Peer, time.Now(), httpx.NewID()
	ctx = fedclient.WithRequestID(ctx, rid)
	leaf := Leaf(p.CertPEM)
	if leaf == nil || p.State != "active" || start.Before(RenewAt(leaf)) {
		return // renewed (or replaced) by another process since the sweep read it
	}
	detail, err := r.renewLocked(ctx, lock, leaf)
	r.audit(rid, p, leaf, detail, err, time.Since(start))
	if err == nil {
		r.succeeded(id)
		r.Log.Info("renewal: renewed", "peer", p.Name, "peer_id", p.ID, "grant_id", p.GrantID, "detail", detail)
		return
	}
	r.failed(id)
	reason := failure(err)
	r.Log.Warn("renewal: failed; retried with backoff", "peer", p.Name, "peer_id", p.ID, "grant_id", p.GrantID, "err", reason)
	if ferr := lock.Fail(ctx, reason); ferr != nil && ctx.Err() == nil {
		r.Log.Warn("renewal: recording the failure failed", "peer_id", p.ID, "err", ferr)
	}
}

// errExpired is a certificate that expired before it could be renewed: the serving
// site refuses it, so only a new grant helps.
var errExpired = &fedclient.PeerError{Code: api.CodeCertificateExpired}

// renewLocked has the serving site renew the certificate, then stores the new one with
// its key sealed for the peer's row, still under the lock. It returns the audit
// detail.
func (r *Renewer) renewLocked(ctx context.Context, lock *fedstore.PeerRenewal, leaf *x509.Certificate) (string, error) {
	p := lock.Peer
	if !time.Now().Before(leaf.NotAfter) {
		return "", errExpired
	}
	cert, err := peers.Credentials(r.Keys, p)
	if err != nil {
		return "", err
	}
	roots := x509.NewCertPool()
	if !roots.AppendCertsFromPEM([]byte(p.CARootPEM)) {
		return "", fmt.Errorf("peer %s: the stored root does not parse", p.Name)
	}
	enrolled, err := fedclient.Renew(ctx, p.Name, p.URL, roots, cert, p.GrantID)
	if err != nil {
		return "", err
	}
	detail := "serial " + enrolled.Cert.SerialNumber.String() + " replaces " + leaf.SerialNumber.String()
	der, err := x509.MarshalPKCS8PrivateKey(enrolled.Key)
	if err != nil {
		return detail, err
	}
	sealed, err := peers.SealKey(r.Keys, p.ID, p.OwnerUserID, der)
	if err != nil {
		return detail, err
	}
	// If this fails the serving site holds a current certificate we never stored: the
	// next try renews with the old one, inside its overlap, and the site revokes the
	// unclaimed one.
	return detail, lock.Store(ctx, enrolled.CertPEM, enrolled.ChainPEM, sealed)
}

// failure is what peer list shows of a failed renewal: the code, and for an expired
// certificate the fix. Never a secret: peers' errors carry only their code.
func failure(err error) string {
	var pe *fedclient.PeerError
	switch {
	case errors.Is(err, errExpired):
		return api.CodeCertificateExpired + ": the certificate expired before it was renewed; ask the serving site for a new grant, then run peer add --replace"
	case errors.As(err, &pe):
		return pe.Code + ": " + pe.Error()
	}
	s := err.Error()
	if len(s) > 300 {
		s = s[:300]
	}
	return s
}

// audit writes the renewal's outbound row.
func (r *Renewer) audit(rid string, p fedstore.Peer, leaf *x509.Certificate, detail string, err error, took time.Duration) {
	if r.Audit == nil {
		return
	}
	e := audit.Entry{Direction: audit.Outbound, RequestID: rid, Actor: "gateway", Action: "renew", Peer: p.Name, GrantID: p.GrantID,
		PeerID: p.ID, LocalUserID: p.OwnerUserID, Verb: "renew", Outcome: api.OutcomeAllowed, Reason: api.ReasonOK,
		Status: http.StatusCreated, Duration: took, Detail: detail}
	if detail == "" {
		e.Detail = "serial " + leaf.SerialNumber.String()
	}
	var pe *fedclient.PeerError
	switch {
	case errors.As(err, &pe):
		e.Outcome, e.Reason, e.Status = api.OutcomeFailed, pe.Code, pe.Status
		if pe.Status >= 400 && pe.Status < 500 {
			e.Outcome = api.OutcomeDenied
		}
	case err != nil:
		e.Outcome, e.Reason, e.Status = api.OutcomeFailed, api.CodeInternal, 0
	}
	r.Audit.Enqueue(e)
}
