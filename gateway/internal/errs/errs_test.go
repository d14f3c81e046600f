package errs

import (
	"errors"
	"fmt"
	"net/http"
	"strings"
	"testing"

	"github.com/mosaic-federation/mosaic/gateway/api"
)

func TestFromSendsOnlyOurMessage(t *testing.T) {
	invalid := New(Invalid, api.CodeInvalidRequest, "invalid input: limit must be positive")
	secret := errors.New("pq: password authentication failed for user app; postgres://app:hunter2@db")
	tests := []struct {
		name   string
		err    error
		status int
		code   string
		msg    string
	}{
		{"ours", invalid, 400, api.CodeInvalidRequest, "invalid input: limit must be positive"},
		{"wrapped with text", fmt.Errorf("query SELECT * FROM x dsn=%s: %w", "postgres://app:hunter2@db", invalid), 400, api.CodeInvalidRequest, "invalid input: limit must be positive"},
		{"joined with a cause", errors.Join(invalid, secret), 400, api.CodeInvalidRequest, "invalid input: limit must be positive"},
		{"with a cause", Wrap(Invalid, api.CodeInvalidCSR, "the CSR does not parse", secret), 400, api.CodeInvalidCSR, "the CSR does not parse"},
		{"a field error", &api.FieldError{Field: "filter.status", Code: api.CodeInvalidStatus, Message: "status must be open, in_progress or done"}, 400, api.CodeInvalidStatus, "status must be open, in_progress or done"},
		{"too big", fmt.Errorf("read: %w", &http.MaxBytesError{Limit: 10}), 413, api.CodeBodyTooLarge, "the request body is over 10 bytes"},
		{"anything else", secret, 500, api.CodeInternal, "internal error: the gateway's log has the cause under this request id"},
	}
	for _, tc := range tests {
		e := From(tc.err)
		if e.Status() != tc.status || e.Code != tc.code || e.Message != tc.msg {
			t.Errorf("%s: got %d %s %q", tc.name, e.Status(), e.Code, e.Message)
		}
		if strings.Contains(e.Message, "hunter2") || strings.Contains(e.Message, "SELECT") {
			t.Errorf("%s: the message leaks: %q", tc.name, e.Message)
		}
	}
}

func TestOutcomes(t *testing.T) {
	for k, want := range map[Kind]string{Invalid: api.OutcomeDenied, Unauthenticated: api.OutcomeDenied, Forbidden: api.OutcomeDenied,
		NotFound: api.OutcomeDenied, Conflict: api.OutcomeDenied, Internal: api.OutcomeFailed, BadGateway: api.OutcomeFailed, Unavailable: api.OutcomeFailed} {
		if got := k.Outcome(); got != want {
			t.Errorf("kind %d: outcome %s, want %s", k, got, want)
		}
	}
}

func TestIsMatchesKindAndCode(t *testing.T) {
	sentinel := New(Invalid, api.CodeInvalidRequest, "invalid input")
	if !errors.Is(fmt.Errorf("x: %w", New(Invalid, api.CodeInvalidRequest, "invalid input: no table")), sentinel) {
		t.Error("a detailed invalid error must still be the sentinel")
	}
	if errors.Is(New(Invalid, api.CodeInvalidID, "bad id"), sentinel) || errors.Is(New(NotFound, api.CodeInvalidRequest, "x"), sentinel) {
		t.Error("another code or kind must not match")
	}
}
