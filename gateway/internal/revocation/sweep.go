package revocation

import (
	"context"
	"errors"
	"log/slog"
	"time"

	"github.com/mosaic-federation/mosaic/gateway/internal/caclient"
)

// Serials is where revoked serials wait to be revoked at the CA (fedstore).
type Serials interface {
	RevokeAtCA(ctx context.Context, revoke func(ctx context.Context, serial string, superseded bool) error) ([]string, error)
}

// CA revokes a serial at step-ca (caclient).
type CA interface {
	Revoke(ctx context.Context, serial string, code caclient.ReasonCode, reason string) error
}

// Sweeper revokes at the CA every serial the database marks revoked (a revoked grant's
// certificates, a renewed certificate's predecessor once its overlap ended, a renewal's
// unclaimed certificate), so the CRL lists them; driven by the database, it retries what the CA
// missed and survives restarts, and replicas share the work.
type Sweeper struct {
	Serials Serials
	CA      CA
	// Revoked runs after the CA revoked serials: it refreshes this listener's CRL and
	// tells the site's other processes to refresh theirs.
	Revoked func(ctx context.Context, serials []string)
	Log     *slog.Logger

	kick chan struct{}
}

// NewSweeper is a sweeper; Run starts it.
func NewSweeper(serials Serials, ca CA, revoked func(context.Context, []string), log *slog.Logger) *Sweeper {
	return &Sweeper{Serials: serials, CA: ca, Revoked: revoked, Log: log, kick: make(chan struct{}, 1)}
}

// Kick asks Run for a sweep now (a grant changed).
func (s *Sweeper) Kick() {
	select {
	case s.kick <- struct{}{}:
	default:
	}
}

// Run sweeps at once, then every period and on each Kick, until ctx ends.
func (s *Sweeper) Run(ctx context.Context, every time.Duration) {
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		s.Sweep(ctx)
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		case <-s.kick:
		}
	}
}

// Sweep revokes what is due, batch by batch, until nothing is or the CA fails.
func (s *Sweeper) Sweep(ctx context.Context) {
	revoke := func(ctx context.Context, serial string, superseded bool) error {
		code, reason := caclient.PrivilegeWithdrawn, "federation grant revoked"
		if superseded {
			code, reason = caclient.Superseded, "federation certificate renewed"
		}
		err := s.CA.Revoke(ctx, serial, code, reason)
		if errors.Is(err, caclient.ErrAlreadyRevoked) {
			return nil // a sweep that revoked it but did not record it
		}
		return err
	}
	for ctx.Err() == nil {
		sctx, cancel := context.WithTimeout(ctx, time.Minute)
		done, err := s.Serials.RevokeAtCA(sctx, revoke)
		cancel()
		if len(done) > 0 {
			s.Log.Info("revoked at the CA", "serials", done)
			s.Revoked(ctx, done)
		}
		if err != nil {
			if ctx.Err() == nil {
				s.Log.Warn("revoking at the CA failed; retried on the next sweep", "err", err)
			}
			return
		}
		if len(done) == 0 {
			return
		}
	}
}
