// Package errs is the gateway's one mapping from an error to what a client and an
// auditor see: an HTTP status, a stable reason code (gateway/api) and an audit
// outcome. Two messages per error: Message is safe to send; Cause goes to the log only.
package errs

import (
	"errors"
	"fmt"
	"net/http"

	"github.com/mosaic-federation/mosaic/gateway/api"
)

// Kind is the class of a failure; it alone decides the status and the audit outcome.
type Kind int

// Kinds, each with one status (see the table below).
const (
	Internal Kind = iota
	Invalid
	Unauthenticated
	Forbidden
	NotFound
	MethodNotAllowed
	Conflict
	Gone
	TooLarge
	TooMany
	BadGateway
	Unavailable
)

// kinds is the table: status per kind. A 4xx is the caller's (outcome denied), a 5xx
// ours or a dependency's (outcome failed).
var kinds = map[Kind]int{
	Internal:         http.StatusInternalServerError,
	Invalid:          http.StatusBadRequest,
	Unauthenticated:  http.StatusUnauthorized,
	Forbidden:        http.StatusForbidden,
	NotFound:         http.StatusNotFound,
	MethodNotAllowed: http.StatusMethodNotAllowed,
	Conflict:         http.StatusConflict,
	Gone:             http.StatusGone,
	TooLarge:         http.StatusRequestEntityTooLarge,
	TooMany:          http.StatusTooManyRequests,
	BadGateway:       http.StatusBadGateway,
	Unavailable:      http.StatusServiceUnavailable,
}

// Status is the HTTP status of a kind.
func (k Kind) Status() int { return kinds[k] }

// Outcome is the audit outcome of a kind: denied for the caller's mistakes and
// refusals, failed for ours.
func (k Kind) Outcome() string {
	if k.Status() >= 500 {
		return api.OutcomeFailed
	}
	return api.OutcomeDenied
}

// Error is a failure with its kind, reason code and a message meant for the caller.
type Error struct {
	Kind    Kind
	Code    string // a reason code of gateway/api
	Message string // safe to send: never a secret, a DSN, SQL or a peer's text
	Cause   error  // logged, never sent
	// Header goes with the answer (Retry-After of a 429, Allow of a 405).
	Header http.Header
}

func (e *Error) Error() string {
	if e.Cause != nil {
		return e.Message + ": " + e.Cause.Error()
	}
	return e.Message
}

func (e *Error) Unwrap() error { return e.Cause }

// Is makes errors of one kind and code the same error for errors.Is, so a message
// can say what was wrong without breaking a comparison with a sentinel.
func (e *Error) Is(target error) bool {
	t, ok := target.(*Error)
	return ok && t.Kind == e.Kind && t.Code == e.Code
}

// Status is the error's HTTP status.
func (e *Error) Status() int { return e.Kind.Status() }

// New makes an *Error with a formatted message.
func New(kind Kind, code, format string, args ...any) *Error {
	return &Error{Kind: kind, Code: code, Message: fmt.Sprintf(format, args...)}
}

// Wrap makes an *Error that keeps its cause for the log.
func Wrap(kind Kind, code, message string, cause error) *Error {
	return &Error{Kind: kind, Code: code, Message: message, Cause: cause}
}

// From maps any error to what a client may see. An *Error anywhere in the chain
// decides, with its own Message only: text that wraps it (fmt.Errorf, errors.Join) is
// never sent, so no cause can reach a client by accident. A wire type's
// *api.FieldError is 400 with its code. A request body over its limit is 413.
// Anything else is a 500 whose message points at the log.
func From(err error) *Error {
	var e *Error
	var field *api.FieldError
	var tooBig *http.MaxBytesError
	switch {
	case errors.As(err, &e):
		return e
	case errors.As(err, &field):
		return New(Invalid, field.Code, "%s", field.Message)
	case errors.As(err, &tooBig):
		return New(TooLarge, api.CodeBodyTooLarge, "the request body is over %d bytes", tooBig.Limit)
	}
	return Wrap(Internal, api.CodeInternal, "internal error: the gateway's log has the cause under this request id", err)
}
