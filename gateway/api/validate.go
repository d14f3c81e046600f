package api

import "fmt"

// FieldError is a request value that breaks its wire type's rules: the field, a
// reason code naming the problem, and a message for the caller. Both sides validate
// with the same methods, so home and work refuse the same input the same way.
type FieldError struct {
	Field   string
	Code    string
	Message string
}

func (e *FieldError) Error() string { return fmt.Sprintf("%s: %s", e.Field, e.Message) }

// MaxCursor is the longest cursor either side accepts.
const MaxCursor = 1024

// ValidStatus reports whether s is a task status.
func ValidStatus(s string) bool {
	return s == StatusOpen || s == StatusInProgress || s == StatusDone
}

// CanonicalUUID reports whether s is a UUID in canonical lowercase form, the only form
// ids travel in.
func CanonicalUUID(s string) bool {
	if len(s) != 36 {
		return false
	}
	for i := range len(s) {
		c := s[i]
		switch i {
		case 8, 13, 18, 23:
			if c != '-' {
				return false
			}
		default:
			if (c < '0' || c > '9') && (c < 'a' || c > 'f') {
				return false
			}
		}
	}
	return true
}

// Validate checks a filter's values: a status of the list, a canonical team id.
// (Whether a resource has a status or an updated_at is the store's to say.)
func (f Filter) Validate() error {
	if f.Status != "" && !ValidStatus(f.Status) {
		return &FieldError{Field: "filter.status", Code: CodeInvalidStatus, Message: "status must be open, in_progress or done"}
	}
	if f.TeamID != "" && !CanonicalUUID(f.TeamID) {
		return &FieldError{Field: "filter.team_id", Code: CodeInvalidTeamID, Message: "team_id must be a canonical lowercase UUID"}
	}
	return nil
}

// Validate checks a federation list request.
func (r FedListRequest) Validate() error {
	if r.Limit < 0 {
		return &FieldError{Field: "limit", Code: CodeInvalidLimit, Message: "limit must not be negative (0 or none means the grant's cap)"}
	}
	if len(r.Cursor) > MaxCursor {
		return &FieldError{Field: "cursor", Code: CodeInvalidCursor, Message: fmt.Sprintf("cursor must be at most %d bytes", MaxCursor)}
	}
	if r.After != nil {
		if r.Cursor != "" {
			return &FieldError{Field: "after", Code: CodeInvalidCursor, Message: "send cursor or after, not both"}
		}
		if err := r.After.Validate(); err != nil {
			return err
		}
	}
	return r.Filter.Validate()
}

// Validate checks an enrollment request before anything is looked up or spent.
func (r EnrollRequest) Validate() error {
	if r.Token == "" {
		return &FieldError{Field: "token", Code: CodeInvalidToken, Message: "token must be a non-empty string"}
	}
	return nil
}
