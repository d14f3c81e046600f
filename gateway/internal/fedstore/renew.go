package fedstore

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/mosaic-federation/mosaic/gateway/internal/changes"
)

// ErrStaleSerial is a certificate that is neither its grant's current one nor the
// previous one inside its overlap.
var ErrStaleSerial = errors.New("the certificate is not the grant's current one, nor the previous one inside its overlap")

// PreviousSerial is until when a grant's previous certificate (one a renewal
// replaced) is still accepted; ErrNotFound when serial is no previous certificate of
// the grant (never issued for it, revoked, or still current).
func (s *Store) PreviousSerial(ctx context.Context, grantID, serial string) (time.Time, error) {
	var until time.Time
	err := s.pool.QueryRow(ctx, `SELECT valid_until FROM federation_cert_serials
		WHERE serial = $1 AND grant_id = $2 AND state = 'previous' AND valid_until IS NOT NULL`, serial, grantID).Scan(&until)
	if errors.Is(err, pgx.ErrNoRows) {
		return time.Time{}, ErrNotFound
	}
	return until, err
}

// Renewed is what a renewal changed.
type Renewed struct {
	// Previous is the certificate the new one replaces, accepted until PreviousUntil.
	Previous      string
	PreviousUntil time.Time
	// Unclaimed is the current certificate a renewal with the previous one found (its
	// answer was lost), now revoked; "" when there was none.
	Unclaimed string
}

// Renew makes serial (just issued, valid until notAfter) the current certificate of an
// active grant, for a renewal presented with the certificate presented:
//   - presented is the current one: it becomes previous, accepted for overlap more;
//     any older previous one ends now, so at most one previous is ever accepted;
//   - presented is the previous one inside its overlap (the renewal that made the
//     current one never got its answer back): the current one, never claimed, is
//     revoked (RevokeAtCA takes it to the CA), and the previous keeps its end;
//   - anything else is ErrStaleSerial, and a grant no longer active ErrTransition.
//
// All in one transaction with the grant's row locked, so concurrent renewals of one
// grant are serialised.
func (s *Store) Renew(ctx context.Context, grantID, presented, serial string, notAfter time.Time, overlap time.Duration) (Renewed, error) {
	tx, err := s.pool.Begin(ctx)
	if err != nil {
		return Renewed{}, err
	}
	defer func() { _ = tx.Rollback(ctx) }() // a no-op after Commit
	var status, current string
	var live bool
	err = tx.QueryRow(ctx, `SELECT status, coalesce(cert_serial, ''), expires_at > now() FROM federation_grants
		WHERE id = $1 FOR UPDATE`, grantID).Scan(&status, &current, &live)
	if errors.Is(err, pgx.ErrNoRows) {
		return Renewed{}, ErrNotFound
	}
	if err != nil {
		return Renewed{}, err
	}
	if status != "active" || !live {
		return Renewed{}, fmt.Errorf("%w: grant %s is %s", ErrTransition, grantID, status)
	}
	var state string
	var inOverlap bool
	err = tx.QueryRow(ctx, `SELECT state, coalesce(valid_until > now(), false) FROM federation_cert_serials
		WHERE serial = $1 AND grant_id = $2`, presented, grantID).Scan(&state, &inOverlap)
	if errors.Is(err, pgx.ErrNoRows) {
		return Renewed{}, ErrStaleSerial
	}
	if err != nil {
		return Renewed{}, err
	}
	var r Renewed
	switch {
	case presented == current && state == "current":
		if _, err := tx.Exec(ctx, `UPDATE federation_cert_serials SET valid_until = least(valid_until, now())
			WHERE grant_id = $1 AND state = 'previous'`, grantID); err != nil {
			return Renewed{}, err
		}
		err = tx.QueryRow(ctx, `UPDATE federation_cert_serials SET state = 'previous', valid_until = now() + $2 * interval '1 microsecond'
			WHERE serial = $1 RETURNING valid_until`, presented, overlap.Microseconds()).Scan(&r.PreviousUntil)
		if err != nil {
			return Renewed{}, err
		}
	case state == "previous" && inOverlap:
		tag, err := tx.Exec(ctx, `UPDATE federation_cert_serials SET state = 'revoked'
			WHERE serial = $1 AND grant_id = $2 AND state = 'current'`, current, grantID)
		if err != nil {
			return Renewed{}, err
		}
		if tag.RowsAffected() == 1 {
			r.Unclaimed = current
		}
		if err := tx.QueryRow(ctx, `SELECT valid_until FROM federation_cert_serials WHERE serial = $1`, presented).Scan(&r.PreviousUntil); err != nil {
			return Renewed{}, err
		}
	default:
		return Renewed{}, ErrStaleSerial
	}
	r.Previous = presented
	if _, err := tx.Exec(ctx, `INSERT INTO federation_cert_serials (serial, grant_id, not_after, state) VALUES ($1, $2, $3, 'current')`,
		serial, grantID, notAfter); err != nil {
		return Renewed{}, err
	}
	if _, err := tx.Exec(ctx, `UPDATE federation_grants SET cert_serial = $2, cert_not_after = $3, updated_at = now() WHERE id = $1`,
		grantID, serial, notAfter); err != nil {
		return Renewed{}, err
	}
	if err := tx.Commit(ctx); err != nil {
		return Renewed{}, err
	}
	s.announce(ctx, changes.Grant, grantID)
	return r, nil
}
