package api

// Reason codes: the stable, snake_case "code" of every error body and the "reason" of
// every audit row. A client, a peer and an auditor may match on them; their messages
// are for people and may change.
const (
	// Everywhere.
	CodeNotFound         = "not_found"
	CodeMethodNotAllowed = "method_not_allowed"
	CodeInternal         = "internal_error"
	CodeUnavailable      = "unavailable"
	CodeInvalidBody      = "invalid_body"
	CodeBodyTooLarge     = "body_too_large"
	CodeInvalidRequest   = "invalid_request"
	CodeInvalidID        = "invalid_id"
	CodeInvalidCursor    = "invalid_cursor"
	CodeAuditUnavailable = "audit_unavailable"
	CodeRateLimited      = "rate_limited"

	// The local API.
	CodeUnauthenticated     = "unauthenticated"
	CodeInvalidSource       = "invalid_source"
	CodeInvalidLimit        = "invalid_limit"
	CodeInvalidStatus       = "invalid_status"
	CodeInvalidUpdatedSince = "invalid_updated_since"
	CodeInvalidTeamID       = "invalid_team_id"
	CodeInvalidDueAt        = "invalid_due_at"
	CodeInvalidTitle        = "invalid_title"
	CodeInvalidContent      = "invalid_content"
	CodeNotATeamMember      = "not_a_team_member"
	CodeUnknownPeer         = "unknown_peer"
	CodePeerUnavailable     = "peer_unavailable"
	CodeInvalidResource     = "invalid_resource"

	// Search, on both sides (SearchRequest.Validate, SearchModeFor).
	CodeEmptyQuery       = "empty_query"
	CodeQueryTooLong     = "query_too_long"
	CodeInvalidQuery     = "invalid_query"
	CodeInvalidMode      = "invalid_mode"
	CodeModeNotSupported = "mode_not_supported"

	// The auth guard: 401, the certificate does not authenticate.
	CodeClientCertificateRequired = "client_certificate_required"
	CodeCertificateExpired        = "certificate_expired"
	CodeNotAClientCertificate     = "not_a_client_certificate"
	CodeWrongProvisioner          = "wrong_provisioner"
	CodeIdentityMissing           = "identity_missing"
	CodeIdentityMalformed         = "identity_malformed"
	// CodeCertificateRevoked: the serial is in the site CA's CRL (a connection opened
	// before the revocation is refused on its next request).
	CodeCertificateRevoked = "certificate_revoked"
	// The auth guard: 403, the grant does not authorise.
	CodeGrantUnknown       = "grant_unknown"
	CodeGrantPending       = "grant_pending"
	CodeGrantRevoked       = "grant_revoked"
	CodeGrantExpired       = "grant_expired"
	CodeGrantInactive      = "grant_inactive"
	CodePeerNotActive      = "peer_not_active"
	CodeSubjectMismatch    = "subject_mismatch"
	CodeStaleCertificate   = "stale_certificate"
	CodeResourceNotInScope = "resource_not_in_scope"

	// Enrollment.
	CodeInvalidToken        = "invalid_token"
	CodeInvalidCSR          = "invalid_csr"
	CodeUnknownToken        = "unknown_token"
	CodeTokenSpentOrExpired = "token_spent_or_expired"
	CodeGrantNotPending     = "grant_not_pending"
	CodeIssuanceFailed      = "issuance_failed"
	// CodeKeyReused: a renewal's CSR is for the key of the certificate it renews.
	CodeKeyReused = "key_reused"

	// The requesting side's transport reasons for a peer that gave no answer.
	CodeTimeout               = "timeout"
	CodeCanceled              = "canceled"
	CodeUnreachable           = "unreachable"
	CodeTLSVerificationFailed = "tls_verification_failed"
	CodeReadFailed            = "read_failed"
	CodeInvalidResponse       = "invalid_response"
	CodePeerError             = "peer_error"
	// CodePeerCredentialsUnusable: the peer's stored key does not open or does not
	// match its certificate (tampered, or sealed under a key no longer in the file).
	CodePeerCredentialsUnusable = "peer_credentials_unusable"
	CodeUnknown                 = "unknown"
)

// Audit-only reasons (no HTTP answer carries them).
const (
	ReasonOK                = "ok"
	ReasonCreated           = "created"
	ReasonRevoked           = "revoked"
	ReasonRemoved           = "removed"
	ReasonEnrolled          = "enrolled"
	ReasonConflict          = "conflict"
	ReasonInvalidScope      = "invalid_scope"
	ReasonInvalidTransition = "invalid_transition"
)
