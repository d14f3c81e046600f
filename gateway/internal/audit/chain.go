package audit

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"
	"time"
)

// The MAC formulas, one per row version. Version 1 is the unkeyed SHA-256 chain of
// the rows written before the audit key existed; they keep it and still verify.
// Version 2 is HMAC-SHA-256 under the audit key over every field.
const (
	version1 = 1
	version2 = 2
)

// Key is the audit chain's MAC key.
type Key []byte

// LoadKey reads audit_key_file: the base64 of 32 random bytes on its first line, as
// `openssl rand -base64 32` prints it. The error names the file, never its content.
func LoadKey(path string) (Key, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("audit_key_file: %w", err)
	}
	line, _, _ := strings.Cut(string(b), "\n")
	k, err := base64.StdEncoding.DecodeString(strings.TrimSpace(line))
	if err != nil || len(k) != 32 {
		return nil, fmt.Errorf("audit_key_file %s: the first line must be the base64 of 32 random bytes (openssl rand -base64 32)", path)
	}
	return Key(k), nil
}

// stored is a row as the database holds it, everything its MAC covers.
type stored struct {
	Seq      int64
	Version  int
	At       time.Time
	Entry    Entry
	PrevHash []byte
	Hash     []byte
}

func ts(t time.Time) string {
	if t.IsZero() {
		return ""
	}
	return t.UTC().Format(time.RFC3339Nano)
}

// mac computes a row's MAC by its version; the sequence number is not covered (the
// chain's order is its linkage, and sequence gaps from rolled-back batches are fine).
func (k Key) mac(version int, prev []byte, at time.Time, e Entry) ([]byte, error) {
	switch version {
	case version1:
		fields, _ := json.Marshal([]string{ts(at), e.RequestID, e.Actor, e.Action, e.Outcome, e.Reason, e.GrantID, e.PeerID, e.Detail})
		h := sha256.New()
		h.Write(prev)
		h.Write(fields)
		return h.Sum(nil), nil
	case version2:
		if len(k) == 0 {
			return nil, errors.New("audit: no audit key")
		}
		fields, _ := json.Marshal([]string{ts(at), e.Direction, e.RequestID, e.PeerRequestID, e.Traceparent, e.Actor,
			e.Action, e.Peer, e.GrantID, e.PeerID, e.SubjectUserID, e.LocalUserID, e.Verb, e.Resource, e.Outcome, e.Reason,
			strconv.Itoa(e.Status), strconv.Itoa(e.Rows), strconv.FormatInt(e.Duration.Microseconds(), 10), e.ClientAddr,
			e.Detail, strconv.Itoa(e.Count), ts(e.WindowStart), ts(e.WindowEnd)})
		m := hmac.New(sha256.New, k)
		m.Write([]byte("mosaic-audit-v2\x00"))
		m.Write(prev)
		m.Write(fields)
		return m.Sum(nil), nil
	}
	return nil, fmt.Errorf("audit: unknown row version %d", version)
}
