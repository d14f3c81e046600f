package fedstore

import (
	"context"
	"errors"
	"time"
)

// RevokeBatch is the most serials one RevokeAtCA call takes on.
const RevokeBatch = 100

// RevokeAtCA revokes at the CA the serials marked revoked in the database and not yet
// revoked there, and records each one the CA took. A previous certificate whose
// overlap ended is marked revoked first (superseded by its renewal). Rows are claimed
// with SKIP LOCKED, so replicas running it at once share the work instead of revoking
// a serial twice; one the CA refuses stays for the next run. A certificate already
// expired needs no revocation and is only recorded. revoke is told whether the
// certificate was superseded (a renewal replaced it) rather than withdrawn (its grant
// revoked). It returns the serials revoked.
func (s *Store) RevokeAtCA(ctx context.Context, revoke func(ctx context.Context, serial string, superseded bool) error) ([]string, error) {
	tx, err := s.pool.Begin(ctx)
	if err != nil {
		return nil, err
	}
	defer func() { _ = tx.Rollback(ctx) }() // a no-op after Commit
	if _, err := tx.Exec(ctx, `UPDATE federation_cert_serials SET state = 'revoked'
		WHERE state = 'previous' AND valid_until <= now()`); err != nil {
		return nil, err
	}
	rows, err := tx.Query(ctx, `SELECT s.serial, s.not_after, g.status <> 'revoked' FROM federation_cert_serials s
		JOIN federation_grants g ON g.id = s.grant_id
		WHERE s.state = 'revoked' AND s.ca_revoked_at IS NULL ORDER BY s.created_at LIMIT $1 FOR UPDATE OF s SKIP LOCKED`, RevokeBatch)
	if err != nil {
		return nil, err
	}
	type due struct {
		serial     string
		notAfter   time.Time
		superseded bool
	}
	var todo []due
	for rows.Next() {
		var d due
		if err := rows.Scan(&d.serial, &d.notAfter, &d.superseded); err != nil {
			rows.Close()
			return nil, err
		}
		todo = append(todo, d)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return nil, err
	}
	var revoked []string
	var failed []error
	for _, d := range todo {
		if time.Now().Before(d.notAfter) {
			if err := revoke(ctx, d.serial, d.superseded); err != nil {
				failed = append(failed, err)
				continue
			}
			revoked = append(revoked, d.serial)
		}
		if _, err := tx.Exec(ctx, `UPDATE federation_cert_serials SET ca_revoked_at = now() WHERE serial = $1`, d.serial); err != nil {
			return nil, err
		}
	}
	if err := tx.Commit(ctx); err != nil {
		return nil, err
	}
	return revoked, errors.Join(failed...)
}

// Serial is one certificate issued for a grant.
type Serial struct {
	Serial      string
	GrantID     string
	NotAfter    time.Time
	State       string
	ValidUntil  *time.Time
	CARevokedAt *time.Time
}

// Serials lists the certificates issued for a grant, oldest first.
func (s *Store) Serials(ctx context.Context, grantID string) ([]Serial, error) {
	rows, err := s.pool.Query(ctx, `SELECT serial, grant_id::text, not_after, state, valid_until, ca_revoked_at
		FROM federation_cert_serials WHERE grant_id = $1 ORDER BY created_at, serial`, grantID)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []Serial
	for rows.Next() {
		var x Serial
		if err := rows.Scan(&x.Serial, &x.GrantID, &x.NotAfter, &x.State, &x.ValidUntil, &x.CARevokedAt); err != nil {
			return nil, err
		}
		out = append(out, x)
	}
	return out, rows.Err()
}
