// Package api holds the wire types shared by the gateway, the harness and the
// acceptance suite: the error envelope, reason codes, health bodies and the OIDs that
// bind a grant into a federation client certificate. Standard library only.
package api

import (
	"crypto/sha256"
	"encoding/asn1"
	"encoding/hex"
)

// The custom X.509 extensions of a federation client certificate. Each value is the DER
// UTF8String of a canonical lowercase UUID. 99999 is a placeholder private enterprise
// number: a deployment registers its own.
var (
	OIDGrantID       = asn1.ObjectIdentifier{1, 3, 6, 1, 4, 1, 99999, 1}
	OIDSubjectUserID = asn1.ObjectIdentifier{1, 3, 6, 1, 4, 1, 99999, 2}
	// OIDStepProvisioner is step-ca's own extension naming the provisioner that issued
	// a certificate.
	OIDStepProvisioner = asn1.ObjectIdentifier{1, 3, 6, 1, 4, 1, 37476, 9000, 64, 1}
)

// ErrorBody is the envelope of every error response.
type ErrorBody struct {
	Error Error `json:"error"`
}

// Error is a stable, safe reason code with a message meant for the caller.
type Error struct {
	Code      string `json:"code"`
	Message   string `json:"message"`
	RequestID string `json:"request_id"`
}

// Health is the body of /healthz and /readyz.
type Health struct {
	Status string  `json:"status"` // ok | ready | unavailable
	Checks []Check `json:"checks,omitempty"`
}

// Check is one dependency's state in a readiness answer.
type Check struct {
	Name      string `json:"name"`
	Status    string `json:"status"` // up | down
	LatencyMS int64  `json:"latency_ms"`
}

// EnrollRequest is POST /api/federation/v1/enroll.
type EnrollRequest struct {
	Token  string `json:"token"`
	CSRPEM string `json:"csr_pem"`
}

// EnrollResponse is its 201 answer: the client certificate and the intermediate(s).
type EnrollResponse struct {
	CertificatePEM string `json:"certificate_pem"`
	ChainPEM       string `json:"chain_pem"`
	GrantID        string `json:"grant_id"`
	NotAfter       string `json:"not_after"`
}

// RenewRequest is POST /api/federation/v1/renew, sent over mTLS with the grant's
// current certificate: a CSR for a new key. Its 201 answer is an EnrollResponse.
type RenewRequest struct {
	CSRPEM string `json:"csr_pem"`
}

// Capabilities is GET /api/federation/v1/capabilities: the grant as the peer may use it.
type Capabilities struct {
	GrantID           string   `json:"grant_id"`
	SubjectUserID     string   `json:"subject_user_id"`
	Resources         []string `json:"resources"`
	ExcludedResources []string `json:"excluded_resources"`
	MaxRowsPerQuery   int      `json:"max_rows_per_query"`
	SupportedVerbs    []string `json:"supported_verbs"`
}

// FedListRequest is POST /api/federation/v1/list/{resource}. After is the keyset
// alternative to Cursor (only rows strictly after it in the list's order); a request
// has one or the other, never both.
type FedListRequest struct {
	Limit  int     `json:"limit,omitempty"`
	Cursor string  `json:"cursor,omitempty"`
	After  *Keyset `json:"after,omitempty"`
	Filter Filter  `json:"filter,omitempty"`
}

// FedListResponse answers it; Truncated says the cap lowered the requested limit.
type FedListResponse = FedListOf[Item]

// FedListOf is the federation list body with items of type T (a client that does not
// know the resource decodes FedListOf[map[string]any]).
type FedListOf[T any] struct {
	Items      []T    `json:"items"`
	NextCursor string `json:"next_cursor,omitempty"`
	Truncated  bool   `json:"truncated"`
}

// RootFingerprint is how an enrollment URL names a site's root certificate: the
// lowercase hex SHA-256 of its DER.
func RootFingerprint(der []byte) string {
	sum := sha256.Sum256(der)
	return hex.EncodeToString(sum[:])
}
