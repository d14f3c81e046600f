package api

import (
	"fmt"
	"strings"
	"unicode/utf8"
)

// Search modes (SPEC §6b).
const (
	ModeText   = "text"
	ModeVector = "vector"
	ModeHybrid = "hybrid"
)

// MaxQuery is the longest search query, in characters.
const MaxQuery = 1000

// SearchRequest is POST /api/federation/v1/search/{resource}. The serving site embeds
// the query itself: a peer never sends a vector.
type SearchRequest struct {
	Query string `json:"query"`
	Mode  string `json:"mode"`
	Limit int    `json:"limit,omitempty"`
}

// FedSearchOf is the federation search body with items of type T, best first, each
// with _source and _score (higher is better, comparable within one answer only).
// Truncated says the grant's cap lowered the requested limit.
type FedSearchOf[T any] struct {
	Items     []T  `json:"items"`
	Truncated bool `json:"truncated"`
}

// FedSearchResponse is the federation search body as the gateway writes it.
type FedSearchResponse = FedSearchOf[Item]

// Validate checks a search request's own fields, in this order: the query (not
// empty, at most MaxQuery characters of UTF-8 without NUL), the mode, the limit.
// Whether the resource supports the mode is SearchModeFor's to say.
func (r SearchRequest) Validate() error {
	switch {
	case strings.TrimSpace(r.Query) == "":
		return &FieldError{Field: "query", Code: CodeEmptyQuery, Message: "query must hold at least one non-blank character"}
	case !utf8.ValidString(r.Query) || strings.ContainsRune(r.Query, 0):
		return &FieldError{Field: "query", Code: CodeInvalidQuery, Message: "query must be UTF-8 text without NUL characters"}
	case utf8.RuneCountInString(r.Query) > MaxQuery:
		return &FieldError{Field: "query", Code: CodeQueryTooLong, Message: fmt.Sprintf("query must be at most %d characters", MaxQuery)}
	case r.Mode != ModeText && r.Mode != ModeVector && r.Mode != ModeHybrid:
		return &FieldError{Field: "mode", Code: CodeInvalidMode, Message: "mode must be text, vector or hybrid"}
	case r.Limit < 0:
		return &FieldError{Field: "limit", Code: CodeInvalidLimit, Message: "limit must not be negative (0 or none means the grant's cap)"}
	}
	return nil
}

// HasEmbeddings reports whether a resource's rows carry embeddings (memories only).
func HasEmbeddings(resource string) bool { return resource == ResourceMemories }

// SearchModeFor checks that a resource supports a (valid) mode: vector and hybrid
// need embeddings.
func SearchModeFor(resource, mode string) error {
	if mode != ModeText && !HasEmbeddings(resource) {
		return &FieldError{Field: "mode", Code: CodeModeNotSupported, Message: fmt.Sprintf("%s have no embeddings: use mode text", resource)}
	}
	return nil
}

// DefaultMode is the requesting side's mode when the caller names none: hybrid
// where the resource has embeddings, text elsewhere.
func DefaultMode(resource string) string {
	if HasEmbeddings(resource) {
		return ModeHybrid
	}
	return ModeText
}
