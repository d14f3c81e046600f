// Package audit is the federation audit log (SPEC §6b): append-only rows, each chained
// to the one before it, written by the serving pipeline, the enrollment endpoint and
// the admin CLI, and listed newest first.
package audit

import (
	"context"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/mosaic-federation/mosaic/gateway/api"
)

// Entry is one audit row to write: every outcome (allowed, denied, failed) with its
// reason code.
type Entry struct {
	RequestID string
	Actor     string // "cli", "peer", "peer:<name>", "enroll"
	Action    string // peer.create, grant.create, token.create, enroll, "<METHOD> <route>", …
	Outcome   string // api.Outcome*
	Reason    string // a reason code of gateway/api, never free text from a peer
	GrantID   string
	PeerID    string
	Detail    string // never a secret, nor a token beyond its first 8 characters
}

// Bounds of each field: whatever a client managed to put into an entry, a row costs
// the site at most about a kilobyte.
const (
	maxShort  = 64  // request id, outcome, reason
	maxAction = 128 // "<METHOD> <route template>" or an admin action
	maxDetail = 512
)

// bounded cuts every field to its bound, on a UTF-8 boundary.
func (e Entry) bounded() Entry {
	e.RequestID, e.Outcome, e.Reason = cut(e.RequestID, maxShort), cut(e.Outcome, maxShort), cut(e.Reason, maxShort)
	e.Actor, e.Action = cut(e.Actor, maxAction), cut(e.Action, maxAction)
	e.Detail = cut(e.Detail, maxDetail)
	return e
}

func cut(s string, n int) string {
	s = strings.ToValidUTF8(s, "?")
	if len(s) <= n {
		return s
	}
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n] + "…"
}

// Writer appends entries; the serving pipeline refuses what it cannot audit.
type Writer interface {
	Append(ctx context.Context, e Entry) error
}

// Log is the audit log of one site, in its PostgreSQL.
type Log struct {
	pool *pgxpool.Pool
	// writers bounds the appends holding a connection: they queue behind one lock
	// anyway, so more would only take connections from everything else on the pool
	// (a flood of refusals must not starve the API).
	writers chan struct{}
}

// maxWriters is how many appends of a process hold a connection at once.
const maxWriters = 2

// New is the log over the site's pool (the schema is migrated with the native tables).
func New(pool *pgxpool.Pool) *Log { return &Log{pool: pool, writers: make(chan struct{}, maxWriters)} }

// auditLock serialises appends so each row chains to the one before it.
const auditLock = 0x61756474 // "audt"

// Append writes an entry, chained to the previous row's hash.
func (l *Log) Append(ctx context.Context, e Entry) error {
	e = e.bounded()
	select {
	case l.writers <- struct{}{}:
		defer func() { <-l.writers }()
	case <-ctx.Done():
		return ctx.Err()
	}
	tx, err := l.pool.Begin(ctx)
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
	at := time.Now().UTC().Truncate(time.Microsecond)
	hash := chainHash(prev, at, e)
	if _, err := tx.Exec(ctx, `INSERT INTO federation_audit_log (at, request_id, actor, action, outcome, reason, grant_id, peer_id, detail, prev_hash, hash)
		VALUES ($1, $2, $3, $4, $5, $6, nullif($7, '')::uuid, nullif($8, '')::uuid, $9, $10, $11)`,
		at, e.RequestID, e.Actor, e.Action, e.Outcome, e.Reason, e.GrantID, e.PeerID, e.Detail, prev, hash); err != nil {
		return err
	}
	return tx.Commit(ctx)
}

// chainHash covers the previous hash and every field of the entry but its sequence
// number (assigned by the database) and its own hash.
func chainHash(prev []byte, at time.Time, e Entry) []byte {
	fields, _ := json.Marshal([]string{at.Format(time.RFC3339Nano), e.RequestID, e.Actor, e.Action, e.Outcome,
		e.Reason, e.GrantID, e.PeerID, e.Detail})
	h := sha256.New()
	h.Write(prev)
	h.Write(fields)
	return h.Sum(nil)
}

// List returns the newest entries first.
func (l *Log) List(ctx context.Context, limit int) ([]api.AuditEntry, error) {
	rows, err := l.pool.Query(ctx, `SELECT seq, at, request_id, actor, action, outcome, reason, coalesce(grant_id::text, ''),
		coalesce(peer_id::text, ''), detail, hash FROM federation_audit_log ORDER BY at DESC, seq DESC LIMIT $1`, limit)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	out := []api.AuditEntry{}
	for rows.Next() {
		var e api.AuditEntry
		if err := rows.Scan(&e.Seq, &e.At, &e.RequestID, &e.Actor, &e.Action, &e.Outcome, &e.Reason, &e.GrantID, &e.PeerID, &e.Detail, &e.Hash); err != nil {
			return nil, err
		}
		e.At = e.At.UTC()
		out = append(out, e)
	}
	return out, rows.Err()
}
