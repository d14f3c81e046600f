package fedstore

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/mosaic-federation/mosaic/gateway/internal/changes"
)

// Inbound peer transitions (SPEC §6d): suspend and resume take effect on the guard's
// next check (it reads the peer's state live); revoke is final and revokes every grant
// of the peer with it.
var inboundTransitions = map[string][]string{
	"suspended": {"active"},
	"active":    {"suspended"},
	"revoked":   {"pending", "active", "suspended"},
}

// SetInboundPeerState moves an inbound peer to state ("suspended", "active" to resume,
// or "revoked") from a state that allows it, else ErrTransition. Revoking also revokes
// the peer's pending and active grants and marks their certificates for revocation at
// the CA, in the same transaction; it returns the grants it revoked.
func (s *Store) SetInboundPeerState(ctx context.Context, name, state string) (Peer, []string, error) {
	from, ok := inboundTransitions[state]
	if !ok {
		return Peer{}, nil, fmt.Errorf("fedstore: no such peer state %q", state)
	}
	tx, err := s.pool.Begin(ctx)
	if err != nil {
		return Peer{}, nil, err
	}
	defer func() { _ = tx.Rollback(ctx) }() // a no-op after Commit
	var id string
	err = tx.QueryRow(ctx, `UPDATE federation_peers SET state = $2, updated_at = now()
		WHERE direction = 'inbound' AND name = $1 AND state = ANY($3) RETURNING id::text`, name, state, from).Scan(&id)
	if errors.Is(err, pgx.ErrNoRows) {
		p, ferr := s.InboundPeer(ctx, name)
		if ferr != nil {
			return Peer{}, nil, ferr
		}
		return p, nil, fmt.Errorf("%w: peer %s is %s", ErrTransition, name, p.State)
	}
	if err != nil {
		return Peer{}, nil, err
	}
	var grants []string
	if state == "revoked" {
		if grants, err = revokeGrantsOf(ctx, tx, id); err != nil {
			return Peer{}, nil, err
		}
	}
	if err := tx.Commit(ctx); err != nil {
		return Peer{}, nil, err
	}
	s.announce(ctx, changes.Peer, id)
	for _, g := range grants {
		s.announce(ctx, changes.Grant, g)
	}
	p, err := s.InboundPeer(ctx, name)
	return p, grants, err
}

func revokeGrantsOf(ctx context.Context, tx pgx.Tx, peerID string) ([]string, error) {
	rows, err := tx.Query(ctx, `UPDATE federation_grants SET status = 'revoked', revoked_reason = 'peer revoked', updated_at = now()
		WHERE peer_id = $1 AND status IN ('pending', 'active') RETURNING id::text`, peerID)
	if err != nil {
		return nil, err
	}
	grants, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		return nil, err
	}
	_, err = tx.Exec(ctx, `UPDATE federation_cert_serials SET state = 'revoked' WHERE grant_id = ANY($1) AND state <> 'revoked'`, grants)
	return grants, err
}

// RemoveOutboundPeer deletes a local user's outbound peer: its certificate and sealed
// key go with the row.
func (s *Store) RemoveOutboundPeer(ctx context.Context, ownerUserID, name string) (Peer, error) {
	p, err := scanPeer(s.pool.QueryRow(ctx, `DELETE FROM federation_peers
		WHERE direction = 'outbound' AND owner_user_id = $1 AND name = $2 RETURNING `+peerCols, ownerUserID, name))
	if err == nil {
		s.announce(ctx, changes.Peer, p.ID)
	}
	return p, err
}

// ReplaceOutboundPeer swaps a fresh enrollment into an existing outbound peer's row
// (p.ID, its key sealed to that row): the old certificate and key are gone once it
// returns, and never before the new ones are stored; a failed renewal of the old one
// is forgotten.
func (s *Store) ReplaceOutboundPeer(ctx context.Context, p Peer) error {
	tag, err := s.pool.Exec(ctx, `UPDATE federation_peers SET url = $3, ca_root_pem = $4, cert_pem = $5, chain_pem = $6,
		key_sealed = $7, grant_id = $8, state = 'active', updated_at = $9,
		renewal_error = NULL, renewal_failed_at = NULL
		WHERE id = $1 AND direction = 'outbound' AND owner_user_id = $2`,
		p.ID, p.OwnerUserID, p.URL, p.CARootPEM, p.CertPEM, p.ChainPEM, p.KeySealed, p.GrantID, time.Now().UTC())
	if err == nil && tag.RowsAffected() == 0 {
		err = ErrNotFound
	}
	if err == nil {
		s.announce(ctx, changes.Peer, p.ID)
	}
	return err
}
