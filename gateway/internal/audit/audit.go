// Package audit is the federation audit log (SPEC §6b): one row per federation request
// on the serving side, one per peer call on the requesting side, and every admin
// action; append-only and chained, each row's MAC (HMAC-SHA-256, key outside the
// database) covering its fields and the previous row's MAC, so a database user who
// edits, deletes or reorders rows breaks the chain. One writer per process commits
// the rows of concurrent requests together (group commit).
package audit

import (
	"context"
	"strings"
	"time"
	"unicode/utf8"
)

// Directions of a row.
const (
	Inbound  = "inbound"  // a federation request this site served (or refused)
	Outbound = "outbound" // a call this site made to a peer
	Admin    = "admin"    // an administrator's action
)

// Entry is one audit row to write. Never row content, never a peer's message text,
// never a secret, nor a token beyond its first 8 characters.
type Entry struct {
	Direction     string
	RequestID     string // this site's id of the request
	PeerRequestID string // inbound: the caller's X-Request-Id (its claim, well-formed only)
	Traceparent   string // W3C trace context the two sites' rows share
	Actor         string // "cli", "peer", "peer:<name>", "enroll", "user:<id>"
	Action        string // "<METHOD> <route template>", peer.create, grant.create, enroll, …
	Peer          string // the peer's name
	GrantID       string
	PeerID        string
	SubjectUserID string // inbound: whose rows
	LocalUserID   string // outbound: who asked
	Verb          string // capabilities, list, get, search, enroll
	Resource      string
	Outcome       string // api.Outcome*
	Reason        string // a reason code of gateway/api, or a transport reason
	Status        int    // the HTTP status answered (inbound) or received (outbound; 0: none)
	Rows          int
	Duration      time.Duration
	ClientAddr    string // inbound: the TCP peer address, never a header
	Detail        string
	// A summary row of aggregated refusals: how many, over which window.
	Count                  int
	WindowStart, WindowEnd time.Time
}

// Writer appends entries; Append returns once the row is durable.
type Writer interface {
	Append(ctx context.Context, e Entry) error
}

// Bounds of each field: whatever a client managed to put into an entry, a row costs
// the site at most about two kilobytes.
const (
	maxShort  = 64  // ids, codes, names
	maxAction = 128 // "<METHOD> <route template>" or an admin action
	maxDetail = 512
)

// bounded cuts every field to its bound, on a UTF-8 boundary.
func (e Entry) bounded() Entry {
	for _, f := range []*string{&e.Direction, &e.RequestID, &e.PeerRequestID, &e.Peer, &e.Verb, &e.Resource,
		&e.Outcome, &e.Reason, &e.ClientAddr} {
		*f = cut(*f, maxShort)
	}
	e.Traceparent, e.Actor, e.Action = cut(e.Traceparent, maxAction), cut(e.Actor, maxAction), cut(e.Action, maxAction)
	e.Detail = cut(e.Detail, maxDetail)
	if e.Direction == "" {
		e.Direction = Admin
	}
	if e.Count < 1 {
		e.Count = 1
	}
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
