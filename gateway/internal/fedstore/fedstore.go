// Package fedstore keeps the federated tier's federation data in PostgreSQL (SPEC §5):
// peers in both directions, grants and single-use enrollment tokens (hashes only).
// The schema is migrated with the native tables (store); the audit log is package
// audit's.
package fedstore

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/mosaic-federation/mosaic/gateway/internal/changes"
	"github.com/mosaic-federation/mosaic/gateway/internal/scope"
)

// Errors the callers map to statuses.
var (
	ErrNotFound     = errors.New("not found")
	ErrConflict     = errors.New("already exists")
	ErrTransition   = errors.New("invalid status transition")
	ErrTokenUnknown = errors.New("enrollment token unknown")
	ErrTokenSpent   = errors.New("enrollment token spent or expired")
)

// Store is the federation data of one site.
type Store struct{ pool *pgxpool.Pool }

// New is the federation data over the site's one pool.
func New(pool *pgxpool.Pool) *Store { return &Store{pool: pool} }

// Peer is a federation peer, inbound or outbound.
type Peer struct {
	ID          string
	Direction   string
	Name        string
	State       string
	OwnerUserID string
	URL         string
	GrantID     string
	CreatedAt   time.Time
	// Outbound credentials: never leave the gateway (the CLI prints api.Peer).
	CARootPEM string
	CertPEM   string
	ChainPEM  string
	KeySealed []byte
}

// Grant binds a peer to one subject user and a scope.
type Grant struct {
	ID            string
	PeerID        string
	Peer          string
	PeerState     string
	SubjectUserID string
	Scope         scope.Scope
	Status        string
	CertSerial    string
	CertNotAfter  *time.Time
	ExpiresAt     time.Time
	RevokedReason string
	RateLimit     string // the grant's own rate ("5/s"), "" for the site's
	CreatedAt     time.Time
	UpdatedAt     time.Time
}

func uniqueViolation(err error) bool {
	var pg *pgconn.PgError
	return errors.As(err, &pg) && pg.Code == "23505"
}

// CreateInboundPeer registers a peer (pending until its first enrollment).
func (s *Store) CreateInboundPeer(ctx context.Context, name string) (Peer, error) {
	now := time.Now().UTC()
	p := Peer{ID: uuid.NewString(), Direction: "inbound", Name: name, State: "pending", CreatedAt: now}
	_, err := s.pool.Exec(ctx, `INSERT INTO federation_peers (id, direction, name, state, created_at, updated_at)
		VALUES ($1, 'inbound', $2, 'pending', $3, $3)`, p.ID, name, now)
	if uniqueViolation(err) {
		return Peer{}, fmt.Errorf("%w: an inbound peer named %q", ErrConflict, name)
	}
	if err == nil {
		s.announce(ctx, changes.Peer, p.ID)
	}
	return p, err
}

// announce tells the site's other processes (changes); a notification that cannot be
// sent is covered by their caches' short lifetime.
func (s *Store) announce(ctx context.Context, kind, id string) {
	_ = changes.Announce(ctx, s.pool, changes.Change{Kind: kind, ID: id})
}

const peerCols = `id::text, direction, name, state, coalesce(owner_user_id::text, ''), coalesce(url, ''),
	coalesce(grant_id::text, ''), created_at, coalesce(ca_root_pem, ''), coalesce(cert_pem, ''), coalesce(chain_pem, ''), key_sealed`

func scanPeer(row pgx.Row) (Peer, error) {
	var p Peer
	err := row.Scan(&p.ID, &p.Direction, &p.Name, &p.State, &p.OwnerUserID, &p.URL, &p.GrantID, &p.CreatedAt,
		&p.CARootPEM, &p.CertPEM, &p.ChainPEM, &p.KeySealed)
	if errors.Is(err, pgx.ErrNoRows) {
		return Peer{}, ErrNotFound
	}
	return p, err
}

// InboundPeer finds an inbound peer by name.
func (s *Store) InboundPeer(ctx context.Context, name string) (Peer, error) {
	return scanPeer(s.pool.QueryRow(ctx, `SELECT `+peerCols+` FROM federation_peers WHERE direction = 'inbound' AND name = $1`, name))
}

// OutboundPeer finds a local user's outbound peer by name.
func (s *Store) OutboundPeer(ctx context.Context, ownerUserID, name string) (Peer, error) {
	return scanPeer(s.pool.QueryRow(ctx, `SELECT `+peerCols+` FROM federation_peers
		WHERE direction = 'outbound' AND owner_user_id = $1 AND name = $2`, ownerUserID, name))
}

// Peers lists peers of one direction ("" for both), newest first.
func (s *Store) Peers(ctx context.Context, direction string) ([]Peer, error) {
	rows, err := s.pool.Query(ctx, `SELECT `+peerCols+` FROM federation_peers WHERE $1 = '' OR direction = $1
		ORDER BY created_at DESC`, direction)
	return collect(rows, err, scanPeer)
}

// collect scans every row with scan.
func collect[T any](rows pgx.Rows, err error, scan func(pgx.Row) (T, error)) ([]T, error) {
	if err != nil {
		return nil, err
	}
	return pgx.CollectRows(rows, func(r pgx.CollectableRow) (T, error) { return scan(r) })
}

// AddOutboundPeer stores an enrolled remote site with our credentials for it.
func (s *Store) AddOutboundPeer(ctx context.Context, p Peer) error {
	now := time.Now().UTC()
	_, err := s.pool.Exec(ctx, `INSERT INTO federation_peers (id, direction, name, state, owner_user_id, url,
		ca_root_pem, cert_pem, chain_pem, key_sealed, grant_id, created_at, updated_at)
		VALUES ($1, 'outbound', $2, 'active', $3, $4, $5, $6, $7, $8, $9, $10, $10)`,
		p.ID, p.Name, p.OwnerUserID, p.URL, p.CARootPEM, p.CertPEM, p.ChainPEM, p.KeySealed, p.GrantID, now)
	if uniqueViolation(err) {
		return fmt.Errorf("%w: you already have a peer named %q", ErrConflict, p.Name)
	}
	if err == nil {
		s.announce(ctx, changes.Peer, p.ID)
	}
	return err
}

// CreateGrant makes a pending grant for an inbound peer.
func (s *Store) CreateGrant(ctx context.Context, peerID, subjectUserID string, sc scope.Scope, expiresAt time.Time, rateLimit string) (Grant, error) {
	b, err := json.Marshal(sc)
	if err != nil {
		return Grant{}, err
	}
	now := time.Now().UTC()
	id := uuid.NewString()
	if _, err := s.pool.Exec(ctx, `INSERT INTO federation_grants (id, peer_id, subject_user_id, scope, status, expires_at, created_at, updated_at, rate_limit)
		VALUES ($1, $2, $3, $4, 'pending', $5, $6, $6, nullif($7, ''))`, id, peerID, subjectUserID, b, expiresAt, now, rateLimit); err != nil {
		return Grant{}, err
	}
	s.announce(ctx, changes.Grant, id)
	return s.Grant(ctx, id)
}

const grantCols = `g.id::text, g.peer_id::text, p.name, p.state, g.subject_user_id::text, g.scope, g.status, coalesce(g.cert_serial, ''),
	g.cert_not_after, g.expires_at, coalesce(g.revoked_reason, ''), coalesce(g.rate_limit, ''), g.created_at, g.updated_at`

func scanGrant(row pgx.Row) (Grant, error) {
	var g Grant
	var raw []byte
	err := row.Scan(&g.ID, &g.PeerID, &g.Peer, &g.PeerState, &g.SubjectUserID, &raw, &g.Status, &g.CertSerial, &g.CertNotAfter,
		&g.ExpiresAt, &g.RevokedReason, &g.RateLimit, &g.CreatedAt, &g.UpdatedAt)
	if errors.Is(err, pgx.ErrNoRows) {
		return Grant{}, ErrNotFound
	}
	if err == nil {
		err = json.Unmarshal(raw, &g.Scope)
	}
	if err == nil {
		// A stored scope is checked on every read, so a row edited in the database
		// (credentials added, say) fails closed instead of widening a grant.
		if verr := g.Scope.Validate(); verr != nil {
			err = fmt.Errorf("grant %s: the stored scope is not valid: %w", g.ID, verr)
		}
	}
	return g, err
}

// ExpireDue moves pending and active grants past their expiry to expired. Every read
// of a grant goes through it, so an expired grant is never seen as usable.
func (s *Store) ExpireDue(ctx context.Context) error {
	_, err := s.pool.Exec(ctx, `UPDATE federation_grants SET status = 'expired', updated_at = now()
		WHERE status IN ('pending', 'active') AND expires_at <= now()`)
	return err
}

// Grant loads one grant.
func (s *Store) Grant(ctx context.Context, id string) (Grant, error) {
	if _, err := uuid.Parse(id); err != nil {
		return Grant{}, fmt.Errorf("%w: %q is not a grant id", ErrNotFound, id)
	}
	if err := s.ExpireDue(ctx); err != nil {
		return Grant{}, err
	}
	return scanGrant(s.pool.QueryRow(ctx, `SELECT `+grantCols+` FROM federation_grants g
		JOIN federation_peers p ON p.id = g.peer_id WHERE g.id = $1`, id))
}

// Grants lists grants, newest first.
func (s *Store) Grants(ctx context.Context) ([]Grant, error) {
	if err := s.ExpireDue(ctx); err != nil {
		return nil, err
	}
	rows, err := s.pool.Query(ctx, `SELECT `+grantCols+` FROM federation_grants g
		JOIN federation_peers p ON p.id = g.peer_id ORDER BY g.created_at DESC`)
	return collect(rows, err, scanGrant)
}

// RevokeGrant moves a pending or active grant to revoked.
func (s *Store) RevokeGrant(ctx context.Context, id, reason string) (Grant, error) {
	if err := s.ExpireDue(ctx); err != nil {
		return Grant{}, err
	}
	// The grant and every certificate issued for it, in one transaction: the serials
	// are then revoked at the CA from the database (RevokeAtCA), even after a crash.
	tx, err := s.pool.Begin(ctx)
	if err != nil {
		return Grant{}, err
	}
	defer func() { _ = tx.Rollback(ctx) }() // a no-op after Commit
	tag, err := tx.Exec(ctx, `UPDATE federation_grants SET status = 'revoked', revoked_reason = $2, updated_at = now()
		WHERE id = $1 AND status IN ('pending', 'active')`, id, reason)
	if err != nil {
		return Grant{}, err
	}
	if _, err := tx.Exec(ctx, `UPDATE federation_cert_serials SET state = 'revoked' WHERE grant_id = $1 AND state <> 'revoked'`, id); err != nil {
		return Grant{}, err
	}
	if err := tx.Commit(ctx); err != nil {
		return Grant{}, err
	}
	g, err := s.Grant(ctx, id)
	if err == nil && tag.RowsAffected() == 0 {
		return g, fmt.Errorf("%w: grant %s is %s", ErrTransition, id, g.Status)
	}
	if err == nil {
		s.announce(ctx, changes.Grant, id)
	}
	return g, err
}

// AddToken stores a token's hash for a pending grant, valid until expiresAt or the
// grant's own expiry, whichever is sooner; the grant's earlier unused tokens stop
// working (a new URL replaces, not adds to, a leaked one).
func (s *Store) AddToken(ctx context.Context, grantID string, tokenHash []byte, expiresAt time.Time) error {
	if err := s.ExpireDue(ctx); err != nil {
		return err
	}
	tx, err := s.pool.Begin(ctx)
	if err != nil {
		return err
	}
	defer func() { _ = tx.Rollback(ctx) }() // a no-op after Commit
	if _, err := tx.Exec(ctx, `UPDATE federation_enrollment_tokens SET used_at = now() WHERE grant_id = $1 AND used_at IS NULL`, grantID); err != nil {
		return err
	}
	tag, err := tx.Exec(ctx, `INSERT INTO federation_enrollment_tokens (token_hash, grant_id, expires_at, created_at)
		SELECT $1, id, least($3::timestamptz, expires_at), now() FROM federation_grants
		WHERE id = $2 AND status = 'pending' AND expires_at > now()`, tokenHash, grantID, expiresAt)
	if err != nil {
		return err
	}
	if tag.RowsAffected() == 1 {
		if err := tx.Commit(ctx); err != nil {
			return err
		}
		s.announce(ctx, changes.Token, grantID)
		return nil
	}
	_ = tx.Rollback(ctx)
	g, err := s.Grant(ctx, grantID)
	if err != nil {
		return err
	}
	return fmt.Errorf("%w: grant %s is %s; tokens are only for pending grants", ErrTransition, grantID, g.Status)
}

// SpendToken spends a token atomically: of any number of concurrent calls with the same
// token, exactly one gets the grant id.
func (s *Store) SpendToken(ctx context.Context, tokenHash []byte) (string, error) {
	var grantID string
	err := s.pool.QueryRow(ctx, `UPDATE federation_enrollment_tokens SET used_at = now()
		WHERE token_hash = $1 AND used_at IS NULL AND expires_at > now() RETURNING grant_id::text`, tokenHash).Scan(&grantID)
	if errors.Is(err, pgx.ErrNoRows) {
		var exists bool
		if err := s.pool.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM federation_enrollment_tokens WHERE token_hash = $1)`, tokenHash).Scan(&exists); err != nil {
			return "", err
		}
		if exists {
			return "", ErrTokenSpent
		}
		return "", ErrTokenUnknown
	}
	return grantID, err
}

// ActivateGrant makes a pending grant active with its certificate, and its peer active
// if still pending. A grant no longer pending is ErrTransition.
func (s *Store) ActivateGrant(ctx context.Context, grantID, serial string, notAfter time.Time) error {
	tx, err := s.pool.Begin(ctx)
	if err != nil {
		return err
	}
	defer func() { _ = tx.Rollback(ctx) }() // a no-op after Commit
	var peerID string
	err = tx.QueryRow(ctx, `UPDATE federation_grants SET status = 'active', cert_serial = $2, cert_not_after = $3, updated_at = now()
		WHERE id = $1 AND status = 'pending' AND expires_at > now() RETURNING peer_id::text`, grantID, serial, notAfter).Scan(&peerID)
	if errors.Is(err, pgx.ErrNoRows) {
		return fmt.Errorf("%w: grant %s is no longer pending", ErrTransition, grantID)
	}
	if err != nil {
		return err
	}
	if _, err := tx.Exec(ctx, `UPDATE federation_peers SET state = 'active', updated_at = now() WHERE id = $1 AND state = 'pending'`, peerID); err != nil {
		return err
	}
	if _, err := tx.Exec(ctx, `INSERT INTO federation_cert_serials (serial, grant_id, not_after, state) VALUES ($1, $2, $3, 'current')`,
		serial, grantID, notAfter); err != nil {
		return err
	}
	return tx.Commit(ctx)
}

// GuardGrant loads a grant for the auth guard: a plain read (no expiry write on the hot
// path; the guard compares expires_at itself).
func (s *Store) GuardGrant(ctx context.Context, id string) (Grant, error) {
	return scanGrant(s.pool.QueryRow(ctx, `SELECT `+grantCols+` FROM federation_grants g
		JOIN federation_peers p ON p.id = g.peer_id WHERE g.id = $1`, id))
}

// OutboundPeers lists one local user's active outbound peers, by name.
func (s *Store) OutboundPeers(ctx context.Context, ownerUserID string) ([]Peer, error) {
	rows, err := s.pool.Query(ctx, `SELECT `+peerCols+` FROM federation_peers
		WHERE direction = 'outbound' AND owner_user_id = $1 AND state = 'active' ORDER BY name`, ownerUserID)
	return collect(rows, err, scanPeer)
}
