package fedstore

import (
	"context"
	"errors"
	"fmt"
	"hash/fnv"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/mosaic-federation/mosaic/gateway/internal/changes"
)

// RenewalState is an outbound peer's last renewal failure ("" when the last one
// succeeded or none failed yet).
type RenewalState struct {
	Error    string
	FailedAt *time.Time
}

// RenewalStates is every outbound peer's renewal state, by peer id.
func (s *Store) RenewalStates(ctx context.Context) (map[string]RenewalState, error) {
	rows, err := s.pool.Query(ctx, `SELECT id::text, coalesce(renewal_error, ''), renewal_failed_at FROM federation_peers
		WHERE direction = 'outbound'`)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	out := map[string]RenewalState{}
	for rows.Next() {
		var id string
		var st RenewalState
		if err := rows.Scan(&id, &st.Error, &st.FailedAt); err != nil {
			return nil, err
		}
		out[id] = st
	}
	return out, rows.Err()
}

// RenewablePeers lists every active outbound peer, of every local user: the renewer's
// work list.
func (s *Store) RenewablePeers(ctx context.Context) ([]Peer, error) {
	rows, err := s.pool.Query(ctx, `SELECT `+peerCols+` FROM federation_peers
		WHERE direction = 'outbound' AND state = 'active' ORDER BY id`)
	return collect(rows, err, scanPeer)
}

// ErrRenewedElsewhere is a peer whose certificate changed while a renewal ran (another
// process renewed it, or `peer add --replace`).
var ErrRenewedElsewhere = errors.New("the peer's certificate changed meanwhile")

// PeerRenewal is one renewal of an outbound peer, under the peer's advisory lock: only
// one process renews a peer at a time, and the lock is held until Store or Close.
type PeerRenewal struct {
	tx   pgx.Tx
	s    *Store
	Peer Peer // as it is under the lock
}

// LockPeerRenewal takes the peer's advisory lock (transaction-scoped) and re-reads the
// peer; ok is false when another process holds it (it is renewing that peer now).
func (s *Store) LockPeerRenewal(ctx context.Context, peerID string) (*PeerRenewal, bool, error) {
	tx, err := s.pool.Begin(ctx)
	if err != nil {
		return nil, false, err
	}
	var got bool
	if err := tx.QueryRow(ctx, `SELECT pg_try_advisory_xact_lock($1)`, renewalLockKey(peerID)).Scan(&got); err != nil || !got {
		_ = tx.Rollback(ctx)
		return nil, false, err
	}
	p, err := scanPeer(tx.QueryRow(ctx, `SELECT `+peerCols+` FROM federation_peers WHERE id = $1 AND direction = 'outbound'`, peerID))
	if err != nil {
		_ = tx.Rollback(ctx)
		return nil, false, err
	}
	return &PeerRenewal{tx: tx, s: s, Peer: p}, true, nil
}

// renewalLockKey is the advisory lock key of a peer's renewal.
func renewalLockKey(peerID string) int64 {
	h := fnv.New64a()
	_, _ = h.Write([]byte("federation_peer_renewal:" + peerID))
	return int64(h.Sum64()) //nolint:gosec // a lock key: any 64 bits do
}

// Store records the renewed certificate and its sealed key (sealed for this row) and
// clears the renewal error, then releases the lock and tells the site's processes (so
// their clients switch to it).
func (r *PeerRenewal) Store(ctx context.Context, certPEM, chainPEM string, keySealed []byte) error {
	defer func() { _ = r.tx.Rollback(ctx) }() // a no-op after Commit
	tag, err := r.tx.Exec(ctx, `UPDATE federation_peers SET cert_pem = $2, chain_pem = $3, key_sealed = $4,
		renewal_error = NULL, renewal_failed_at = NULL, updated_at = now() WHERE id = $1 AND cert_pem = $5`,
		r.Peer.ID, certPEM, chainPEM, keySealed, r.Peer.CertPEM)
	if err != nil {
		return err
	}
	if tag.RowsAffected() != 1 {
		return fmt.Errorf("peer %s: %w", r.Peer.Name, ErrRenewedElsewhere)
	}
	if err := r.tx.Commit(ctx); err != nil {
		return err
	}
	r.s.announce(ctx, changes.Peer, r.Peer.ID)
	return nil
}

// Fail records why the renewal failed (an error code and its message, never a secret)
// and releases the lock.
func (r *PeerRenewal) Fail(ctx context.Context, reason string) error {
	defer func() { _ = r.tx.Rollback(ctx) }()
	if _, err := r.tx.Exec(ctx, `UPDATE federation_peers SET renewal_error = $2, renewal_failed_at = now() WHERE id = $1`,
		r.Peer.ID, reason); err != nil {
		return err
	}
	return r.tx.Commit(ctx)
}

// Close releases the lock without recording anything.
func (r *PeerRenewal) Close(ctx context.Context) { _ = r.tx.Rollback(ctx) }
