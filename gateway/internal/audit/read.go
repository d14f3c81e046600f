package audit

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/mosaic-federation/mosaic/gateway/api"
)

const readColumns = `seq, version, at, direction, request_id, peer_request_id, traceparent, actor, action, peer,
	coalesce(grant_id::text, ''), coalesce(peer_id::text, ''), coalesce(subject_user_id::text, ''),
	coalesce(local_user_id::text, ''), verb, resource, outcome, reason, status, row_count, duration_us, client_addr,
	detail, count, window_start, window_end, prev_hash, hash`

func scanStored(row pgx.Row) (stored, error) {
	var s stored
	var us int64
	var ws, we *time.Time
	e := &s.Entry
	err := row.Scan(&s.Seq, &s.Version, &s.At, &e.Direction, &e.RequestID, &e.PeerRequestID, &e.Traceparent, &e.Actor,
		&e.Action, &e.Peer, &e.GrantID, &e.PeerID, &e.SubjectUserID, &e.LocalUserID, &e.Verb, &e.Resource, &e.Outcome,
		&e.Reason, &e.Status, &e.Rows, &us, &e.ClientAddr, &e.Detail, &e.Count, &ws, &we, &s.PrevHash, &s.Hash)
	e.Duration = time.Duration(us) * time.Microsecond
	if ws != nil {
		e.WindowStart = ws.UTC()
	}
	if we != nil {
		e.WindowEnd = we.UTC()
	}
	s.At = s.At.UTC()
	return s, err
}

// Filter narrows a listing; zero fields do not filter.
type Filter struct {
	Peer    string // the peer's name
	GrantID string
	Outcome string
	Since   time.Time
	Limit   int
}

// List returns the newest entries first.
func (l *Log) List(ctx context.Context, f Filter) ([]api.AuditEntry, error) {
	var where []string
	var args []any
	add := func(cond string, v any) {
		args = append(args, v)
		where = append(where, strings.ReplaceAll(cond, "?", "$"+strconv.Itoa(len(args))))
	}
	if f.Peer != "" {
		add("peer = ?", f.Peer)
	}
	if f.GrantID != "" {
		add("grant_id::text = ?", f.GrantID)
	}
	if f.Outcome != "" {
		add("outcome = ?", f.Outcome)
	}
	if !f.Since.IsZero() {
		add("at >= ?", f.Since)
	}
	q := `SELECT ` + readColumns + ` FROM federation_audit_log`
	if len(where) > 0 {
		q += ` WHERE ` + strings.Join(where, " AND ")
	}
	args = append(args, f.Limit)
	q += ` ORDER BY at DESC, seq DESC LIMIT $` + strconv.Itoa(len(args))
	rows, err := l.pool.Query(ctx, q, args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	out := []api.AuditEntry{}
	for rows.Next() {
		s, err := scanStored(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, entryOf(s))
	}
	return out, rows.Err()
}

func entryOf(s stored) api.AuditEntry {
	e := s.Entry
	a := api.AuditEntry{Seq: s.Seq, At: s.At, Version: s.Version, Direction: e.Direction, RequestID: e.RequestID,
		PeerRequestID: e.PeerRequestID, Traceparent: e.Traceparent, Actor: e.Actor, Action: e.Action, Peer: e.Peer,
		GrantID: e.GrantID, PeerID: e.PeerID, SubjectUserID: e.SubjectUserID, LocalUserID: e.LocalUserID, Verb: e.Verb,
		Resource: e.Resource, Outcome: e.Outcome, Reason: e.Reason, Status: e.Status, Rows: e.Rows,
		DurationMS: float64(e.Duration.Microseconds()) / 1000, ClientAddr: e.ClientAddr, Detail: e.Detail, Count: e.Count,
		Hash: s.Hash}
	if !e.WindowStart.IsZero() {
		a.WindowStart, a.WindowEnd = &e.WindowStart, &e.WindowEnd
	}
	return a
}

// Head is the newest row's sequence number and MAC, to record now and hand to
// Verify later: it proves no row up to it was cut off.
type Head struct {
	Seq int64
	MAC []byte
}

func (h Head) String() string { return strconv.FormatInt(h.Seq, 10) + ":" + hex.EncodeToString(h.MAC) }

// ParseHead reads "SEQ:MAC" (MAC in hex) as `audit head` prints it.
func ParseHead(s string) (Head, error) {
	seq, mac, ok := strings.Cut(s, ":")
	n, err := strconv.ParseInt(seq, 10, 64)
	b, herr := hex.DecodeString(mac)
	if !ok || err != nil || herr != nil || n < 1 || len(b) != sha256.Size {
		return Head{}, fmt.Errorf("--since-head %q: write SEQ:MAC as `gateway federation audit head` prints it", s)
	}
	return Head{Seq: n, MAC: b}, nil
}

// Head returns the newest row's head (ErrEmpty when there is none).
func (l *Log) Head(ctx context.Context) (Head, error) {
	var h Head
	err := l.pool.QueryRow(ctx, `SELECT seq, hash FROM federation_audit_log ORDER BY seq DESC LIMIT 1`).Scan(&h.Seq, &h.MAC)
	if errors.Is(err, pgx.ErrNoRows) {
		return Head{}, ErrEmpty
	}
	return h, err
}

// ErrEmpty is an audit log with no row.
var ErrEmpty = errors.New("the audit log has no rows")

// Why a row breaks the chain.
const (
	BadMAC      = "mac_mismatch" // the row is not what its MAC covers: edited, or its MAC recomputed without the key
	BadLink     = "broken_link"  // the row does not follow the one before it: a row deleted, moved or inserted
	HeadMissing = "head_missing" // the recorded head is not in the chain: rows up to it were cut off or changed
)

// Verify walks the whole chain in sequence order by linkage: each row must link to
// the one before it and carry its own MAC (gaps in sequence numbers are rolled-back
// batches, not breaks). Given a head recorded earlier, that row must still be there
// with its MAC. It returns the number of rows and the first bad one.
func (l *Log) Verify(ctx context.Context, since *Head) (api.AuditVerify, error) {
	rows, err := l.pool.Query(ctx, `SELECT `+readColumns+` FROM federation_audit_log ORDER BY seq`)
	if err != nil {
		return api.AuditVerify{}, err
	}
	defer rows.Close()
	res := api.AuditVerify{OK: true}
	prev := make([]byte, sha256.Size)
	headSeen := since == nil
	newest := 0 // the newest formula seen: a row of an older one after it is a downgrade
	for rows.Next() {
		s, err := scanStored(rows)
		if err != nil {
			return api.AuditVerify{}, err
		}
		res.Rows++
		if !res.OK {
			continue // count the rest
		}
		mac, err := l.key.mac(s.Version, s.PrevHash, s.At, s.Entry)
		switch {
		case !bytes.Equal(s.PrevHash, prev):
			res.OK, res.FirstBad = false, &api.AuditBad{Seq: s.Seq, Reason: BadLink}
		case err != nil || !bytes.Equal(mac, s.Hash) || s.Version < newest:
			res.OK, res.FirstBad = false, &api.AuditBad{Seq: s.Seq, Reason: BadMAC}
		}
		newest = max(newest, s.Version)
		if s.Version == version1 {
			res.LegacyRows++
		}
		if since != nil && s.Seq == since.Seq && bytes.Equal(s.Hash, since.MAC) {
			headSeen = true
		}
		prev = s.Hash
	}
	if err := rows.Err(); err != nil {
		return api.AuditVerify{}, err
	}
	if res.OK && !headSeen {
		res.OK, res.FirstBad = false, &api.AuditBad{Seq: since.Seq, Reason: HeadMissing}
	}
	return res, nil
}
