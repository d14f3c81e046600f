package fedstore

import (
	"context"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"time"

	"github.com/jackc/pgx/v5"
)

// Entry is one audit row: every outcome (allowed, denied, failed) with its reason code.
type Entry struct {
	Seq       int64     `json:"seq"`
	At        time.Time `json:"at"`
	RequestID string    `json:"request_id"`
	Actor     string    `json:"actor"`   // "cli", "peer:<name>", "enroll"
	Action    string    `json:"action"`  // peer.create, grant.create, token.create, enroll, …
	Outcome   string    `json:"outcome"` // allowed | denied | failed
	Reason    string    `json:"reason"`  // a reason code, never free text from a peer
	GrantID   string    `json:"grant_id,omitempty"`
	PeerID    string    `json:"peer_id,omitempty"`
	Detail    string    `json:"detail,omitempty"` // never a secret or a token beyond 8 characters
	Hash      []byte    `json:"hash"`
}

// auditLock serialises appends so each row chains to the one before it.
const auditLock = 0x61756474 // "audt"

// Append writes an entry, chained to the previous row's hash.
func (s *Store) Append(ctx context.Context, e Entry) error {
	tx, err := s.pool.Begin(ctx)
	if err != nil {
		return err
	}
	defer func() { _ = tx.Rollback(ctx) }() // a no-op after Commit
	if _, err := tx.Exec(ctx, `SELECT pg_advisory_xact_lock($1)`, auditLock); err != nil {
		return err
	}
	prev := make([]byte, sha256.Size)
	err = tx.QueryRow(ctx, `SELECT hash FROM federation_audit_log ORDER BY seq DESC LIMIT 1`).Scan(&prev)
	if err != nil && !errors.Is(err, pgx.ErrNoRows) {
		return err
	}
	e.At = time.Now().UTC().Truncate(time.Microsecond)
	e.Hash = chainHash(prev, e)
	if _, err := tx.Exec(ctx, `INSERT INTO federation_audit_log (at, request_id, actor, action, outcome, reason, grant_id, peer_id, detail, prev_hash, hash)
		VALUES ($1, $2, $3, $4, $5, $6, nullif($7, '')::uuid, nullif($8, '')::uuid, $9, $10, $11)`,
		e.At, e.RequestID, e.Actor, e.Action, e.Outcome, e.Reason, e.GrantID, e.PeerID, e.Detail, prev, e.Hash); err != nil {
		return err
	}
	return tx.Commit(ctx)
}

// chainHash covers the previous hash and every field of the entry but its sequence
// number (assigned by the database) and its own hash.
func chainHash(prev []byte, e Entry) []byte {
	fields, _ := json.Marshal([]string{e.At.Format(time.RFC3339Nano), e.RequestID, e.Actor, e.Action, e.Outcome,
		e.Reason, e.GrantID, e.PeerID, e.Detail})
	h := sha256.New()
	h.Write(prev)
	h.Write(fields)
	return h.Sum(nil)
}

// Audit lists the newest entries first.
func (s *Store) Audit(ctx context.Context, limit int) ([]Entry, error) {
	rows, err := s.pool.Query(ctx, `SELECT seq, at, request_id, actor, action, outcome, reason, coalesce(grant_id::text, ''),
		coalesce(peer_id::text, ''), detail, hash FROM federation_audit_log ORDER BY at DESC, seq DESC LIMIT $1`, limit)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []Entry
	for rows.Next() {
		var e Entry
		if err := rows.Scan(&e.Seq, &e.At, &e.RequestID, &e.Actor, &e.Action, &e.Outcome, &e.Reason, &e.GrantID, &e.PeerID, &e.Detail, &e.Hash); err != nil {
			return nil, err
		}
		e.At = e.At.UTC()
		out = append(out, e)
	}
	return out, rows.Err()
}
