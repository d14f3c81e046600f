package api

import "time"

// What the admin CLI prints with --json. The acceptance suite and scripts decode these.

// Peer is a federation peer as `peer create|list` print it. Credentials never appear.
type Peer struct {
	ID          string    `json:"id"`
	Direction   string    `json:"direction"` // inbound | outbound
	Name        string    `json:"name"`
	State       string    `json:"state"`
	OwnerUserID string    `json:"owner_user_id,omitempty"`
	URL         string    `json:"url,omitempty"`
	GrantID     string    `json:"grant_id,omitempty"`
	CreatedAt   time.Time `json:"created_at"`
	// An outbound peer's certificate: when it ends, when it renews, and why its last
	// renewal failed (none since it last succeeded: "").
	NotAfter     *time.Time `json:"not_after,omitempty"`
	RenewAt      *time.Time `json:"renew_at,omitempty"`
	RenewalError string     `json:"renewal_error,omitempty"`
}

// Scope is a grant's scope document (SPEC §6); internal/scope parses and checks it.
type Scope struct {
	Resources         []string `json:"resources"`
	ExcludedResources []string `json:"excluded_resources"`
	IncludeTeams      []string `json:"include_teams"`
	IncludePersonal   bool     `json:"include_personal"`
	MaxRowsPerQuery   int      `json:"max_rows_per_query"`
}

// Grant is a grant as `grant list|show|revoke` print it.
type Grant struct {
	ID            string     `json:"grant_id"`
	PeerID        string     `json:"peer_id"`
	Peer          string     `json:"peer"`
	PeerState     string     `json:"peer_state"`
	SubjectUserID string     `json:"subject_user_id"`
	Scope         Scope      `json:"scope"`
	Status        string     `json:"status"`
	CertSerial    string     `json:"cert_serial,omitempty"`
	CertNotAfter  *time.Time `json:"cert_not_after,omitempty"`
	ExpiresAt     time.Time  `json:"expires_at"`
	RevokedReason string     `json:"revoked_reason,omitempty"`
	RateLimit     string     `json:"rate_limit,omitempty"` // the grant's own; none: the site's
	CreatedAt     time.Time  `json:"created_at"`
	UpdatedAt     time.Time  `json:"updated_at"`
}

// GrantCreated is what `grant create` and `token create` print: the enrollment URL
// holds the token and the root's fingerprint in its fragment.
type GrantCreated struct {
	GrantID        string `json:"grant_id"`
	Peer           string `json:"peer"`
	SubjectUserID  string `json:"subject_user_id"`
	Status         string `json:"status"`
	EnrollmentURL  string `json:"enrollment_url"`
	TokenExpiresAt string `json:"token_expires_at"`
}

// PeerAdded is what `peer add` prints.
type PeerAdded struct {
	Peer     string `json:"peer"`
	ID       string `json:"id"`
	State    string `json:"state"`
	URL      string `json:"url"`
	GrantID  string `json:"grant_id"`
	NotAfter string `json:"not_after"`
}

// PeerVerified is what `peer verify` prints (never the key).
type PeerVerified struct {
	Peer       string `json:"peer"`
	KeyMatches bool   `json:"key_matches"`
	Serial     string `json:"serial"`
	NotAfter   string `json:"not_after"`
}

// AuditEntry is one row of the federation audit log as `audit list` prints it.
type AuditEntry struct {
	Seq           int64      `json:"seq"`
	At            time.Time  `json:"at"`
	Version       int        `json:"version"`   // the MAC formula: 1 legacy SHA-256, 2 HMAC-SHA-256
	Direction     string     `json:"direction"` // inbound | outbound | admin
	RequestID     string     `json:"request_id"`
	PeerRequestID string     `json:"peer_request_id,omitempty"`
	Traceparent   string     `json:"traceparent,omitempty"`
	Actor         string     `json:"actor"`  // cli | peer | peer:<name> | enroll | user:<id>
	Action        string     `json:"action"` // peer.create, grant.create, token.create, enroll, <METHOD route>, …
	Peer          string     `json:"peer,omitempty"`
	GrantID       string     `json:"grant_id,omitempty"`
	PeerID        string     `json:"peer_id,omitempty"`
	SubjectUserID string     `json:"subject_user_id,omitempty"`
	LocalUserID   string     `json:"local_user_id,omitempty"`
	Verb          string     `json:"verb,omitempty"`
	Resource      string     `json:"resource,omitempty"`
	Outcome       string     `json:"outcome"` // allowed | denied | failed
	Reason        string     `json:"reason"`  // a reason code, never free text from a peer
	Status        int        `json:"status,omitempty"`
	Rows          int        `json:"rows"`
	DurationMS    float64    `json:"duration_ms"`
	ClientAddr    string     `json:"client_addr,omitempty"`
	Detail        string     `json:"detail,omitempty"`
	Count         int        `json:"count"` // more than 1: a summary of aggregated refusals
	WindowStart   *time.Time `json:"window_start,omitempty"`
	WindowEnd     *time.Time `json:"window_end,omitempty"`
	Hash          []byte     `json:"hash"`
}

// AuditVerify is what `audit verify` prints: exit 0 when OK, 1 with the first bad row.
type AuditVerify struct {
	OK         bool      `json:"ok"`
	Rows       int64     `json:"rows"`
	LegacyRows int64     `json:"legacy_rows"` // rows of the unkeyed formula, written before the audit key
	FirstBad   *AuditBad `json:"first_bad,omitempty"`
}

// AuditBad is the first row that breaks the chain, and why.
type AuditBad struct {
	Seq    int64  `json:"seq"`
	Reason string `json:"reason"` // mac_mismatch | broken_link | head_missing
}

// AuditHead is what `audit head` prints: the newest row, to record and pass to
// `audit verify --since-head` later.
type AuditHead struct {
	Seq  int64  `json:"seq"`
	MAC  string `json:"mac"`  // hex
	Head string `json:"head"` // SEQ:MAC
}

// Audit outcomes.
const (
	OutcomeAllowed = "allowed"
	OutcomeDenied  = "denied"
	OutcomeFailed  = "failed"
)

// DoctorReport is `gateway doctor --json` (SPEC §4).
type DoctorReport struct {
	Tier     string          `json:"tier"`
	Overall  string          `json:"overall"` // green | yellow | red
	Services []ServiceHealth `json:"services"`
	PGVector PGVector        `json:"pgvector"`
	// Problems holds one actionable message per failed requirement (redacted).
	Problems []string `json:"problems"`
}

// ServiceHealth is one required service in a doctor report.
type ServiceHealth struct {
	Name      string `json:"name"`
	Status    string `json:"status"` // up | down
	LatencyMS int64  `json:"latency_ms"`
	Detail    string `json:"detail"`
}

// PGVector is what doctor reports of pgvector.
type PGVector struct {
	Installed bool   `json:"installed"`
	Version   string `json:"version"`
}

// MigrateReport is `gateway storage migrate-tier --json`.
type MigrateReport struct {
	Source   string         `json:"source"`
	Target   string         `json:"target"` // redacted
	DryRun   bool           `json:"dry_run"`
	Tables   []MigrateTable `json:"tables"`
	Verified bool           `json:"verified"`
	Seconds  float64        `json:"seconds"`
}

// MigrateTable is one table of a migration.
type MigrateTable struct {
	Table  string `json:"table"`
	Rows   int64  `json:"rows"`
	Copied int64  `json:"copied"`
}

// SeedResult is `gateway seed load --json`: new API tokens are shown once.
type SeedResult struct {
	Users  []SeedUser     `json:"users"`
	Counts map[string]int `json:"counts"`
}

// SeedUser is one seeded user; Token is empty when it was not changed.
type SeedUser struct {
	ID    string `json:"id"`
	Email string `json:"email"`
	Token string `json:"token,omitempty"`
}

// SeedGenerated is `gateway seed generate --json`: how many synthetic rows were added,
// and how long it took.
type SeedGenerated struct {
	Counts     map[string]int `json:"counts"`
	Seconds    float64        `json:"seconds"`
	RowsPerSec float64        `json:"rows_per_second"`
}
