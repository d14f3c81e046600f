package api

// ReasonCodes is every reason code of codes.go: the fixed set a metric label may take
// a code from (a peer's code outside it is counted as "other"). A test keeps it whole.
var ReasonCodes = []string{
	CodeNotFound, CodeMethodNotAllowed, CodeInternal, CodeUnavailable, CodeInvalidBody, CodeBodyTooLarge,
	CodeInvalidRequest, CodeInvalidID, CodeInvalidCursor, CodeAuditUnavailable, CodeRateLimited,
	CodeUnauthenticated, CodeInvalidSource, CodeInvalidLimit, CodeInvalidStatus, CodeInvalidUpdatedSince,
	CodeInvalidTeamID, CodeInvalidDueAt, CodeInvalidTitle, CodeInvalidContent, CodeNotATeamMember,
	CodeUnknownPeer, CodePeerUnavailable, CodeInvalidResource,
	CodeEmptyQuery, CodeQueryTooLong, CodeInvalidQuery, CodeInvalidMode, CodeModeNotSupported,
	CodeClientCertificateRequired, CodeCertificateExpired, CodeNotAClientCertificate, CodeWrongProvisioner,
	CodeIdentityMissing, CodeIdentityMalformed, CodeCertificateRevoked,
	CodeGrantUnknown, CodeGrantPending, CodeGrantRevoked, CodeGrantExpired, CodeGrantInactive,
	CodePeerNotActive, CodeSubjectMismatch, CodeStaleCertificate, CodeResourceNotInScope,
	CodeInvalidToken, CodeInvalidCSR, CodeUnknownToken, CodeTokenSpentOrExpired, CodeGrantNotPending,
	CodeIssuanceFailed,
	CodeTimeout, CodeCanceled, CodeUnreachable, CodeTLSVerificationFailed, CodeReadFailed,
	CodeInvalidResponse, CodePeerError, CodeUnknown, CodePeerCredentialsUnusable, CodeKeyReused,
	ReasonOK, ReasonCreated, ReasonRevoked, ReasonRemoved, ReasonEnrolled, ReasonConflict, ReasonInvalidScope,
	ReasonInvalidTransition,
}
