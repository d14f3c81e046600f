// Package revocation is the serving site's half of certificate revocation (SPEC §6d):
// Sweeper revokes at step-ca the serials the database marks revoked, and List keeps
// step-ca's CRL in force on the federation listener, in the TLS handshake and in the
// guard (a connection opened before a revocation is refused on its next request).
package revocation

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"math/big"
	"sync"
	"sync/atomic"
	"time"
)

// List is the CA's CRL as last fetched and verified: a CRL that cannot be fetched or
// does not verify leaves the last good one in force.
type List struct {
	issuer *x509.Certificate // the intermediate that signs the CRL
	fetch  func(context.Context) ([]byte, error)
	log    *slog.Logger
	cur    atomic.Pointer[crl]
	kick   chan struct{}

	mu      sync.Mutex
	lastErr error // of the latest refresh, nil after a good one
}

type crl struct {
	number     *big.Int
	nextUpdate time.Time
	revoked    map[string]bool // serial numbers, decimal
}

// NewList is a list of the CRLs issuer signs, fetched by fetch; it holds nothing until
// the first Refresh succeeds.
func NewList(issuer *x509.Certificate, fetch func(context.Context) ([]byte, error), log *slog.Logger) *List {
	return &List{issuer: issuer, fetch: fetch, log: log, kick: make(chan struct{}, 1)}
}

// Refresh fetches the CRL, verifies it and puts it in force. It refuses one not signed
// by the issuer, one of another issuer, one without a number and one whose number is
// below the one in force (a replayed, older CRL would un-revoke certificates).
func (l *List) Refresh(ctx context.Context) error {
	err := l.refresh(ctx)
	l.mu.Lock()
	l.lastErr = err
	l.mu.Unlock()
	return err
}

func (l *List) refresh(ctx context.Context) error {
	der, err := l.fetch(ctx)
	if err != nil {
		return err
	}
	rl, err := x509.ParseRevocationList(der)
	if err != nil {
		return fmt.Errorf("revocation: the CA's CRL does not parse: %w", err)
	}
	if !bytes.Equal(rl.RawIssuer, l.issuer.RawSubject) {
		return errors.New("revocation: the CRL is not the CA intermediate's")
	}
	if err := rl.CheckSignatureFrom(l.issuer); err != nil {
		return fmt.Errorf("revocation: the CRL's signature does not verify against the CA's intermediate: %w", err)
	}
	if rl.Number == nil {
		return errors.New("revocation: the CRL has no number")
	}
	if cur := l.cur.Load(); cur != nil && rl.Number.Cmp(cur.number) < 0 {
		return fmt.Errorf("revocation: the CRL's number went backwards (%s after %s): an old CRL, refused", rl.Number, cur.number)
	}
	next := &crl{number: rl.Number, nextUpdate: rl.NextUpdate, revoked: make(map[string]bool, len(rl.RevokedCertificateEntries))}
	for _, e := range rl.RevokedCertificateEntries {
		next.revoked[e.SerialNumber.String()] = true
	}
	l.cur.Store(next)
	return nil
}

// Revoked reports whether the CRL in force lists serial.
func (l *List) Revoked(serial *big.Int) bool {
	cur := l.cur.Load()
	return cur != nil && serial != nil && cur.revoked[serial.String()]
}

// VerifyConnection is the tls.Config hook: a listed client certificate fails the
// handshake (connections without one go on to the guard, which asks for one).
func (l *List) VerifyConnection(cs tls.ConnectionState) error {
	if len(cs.PeerCertificates) > 0 && l.Revoked(cs.PeerCertificates[0].SerialNumber) {
		return errors.New("the client certificate is revoked")
	}
	return nil
}

// Status is the CRL in force: its NextUpdate (zero before the first good refresh)
// and the latest refresh's error.
func (l *List) Status() (nextUpdate time.Time, lastErr error) {
	if cur := l.cur.Load(); cur != nil {
		nextUpdate = cur.nextUpdate
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	return nextUpdate, l.lastErr
}

// Kick asks Run for a refresh now (a revocation was announced).
func (l *List) Kick() {
	select {
	case l.kick <- struct{}{}:
	default: // one is already due
	}
}

// Run refreshes every period and on each Kick until ctx ends, logging a failure when
// it starts and the recovery when it ends (not every attempt).
func (l *List) Run(ctx context.Context, every time.Duration) {
	t := time.NewTicker(every)
	defer t.Stop()
	failing := false
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		case <-l.kick:
		}
		rctx, cancel := context.WithTimeout(ctx, every)
		err := l.Refresh(rctx)
		cancel()
		switch {
		case err != nil && !failing && ctx.Err() == nil:
			l.log.Warn("CRL refresh failed: the last good CRL stays in force", "err", err)
		case err == nil && failing:
			l.log.Info("CRL refreshed again")
		}
		failing = err != nil
	}
}
