package fedclient

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/mosaic-federation/mosaic/gateway/api"
)

func TestSafeCode(t *testing.T) {
	for in, want := range map[string]string{"unknown_token": "unknown_token", "<script>": "unknown", strings.Repeat("a", 65): "unknown", "": ""} {
		if got := safeCode(in); got != want {
			t.Errorf("safeCode(%q) = %q", in, got)
		}
	}
}

// A peer's answer is untrusted: whatever it sends, the client returns an error with a
// code, never a panic or the peer's text.
func TestUntrustedAnswers(t *testing.T) {
	tests := []struct {
		name, body string
		status     int
		code       string
	}{
		{"a null item", `{"items": [null]}`, 200, api.CodeInvalidResponse},
		{"not JSON", `<html>`, 200, api.CodeInvalidResponse},
		{"items not an array", `{"items": {"a": 1}}`, 200, api.CodeInvalidResponse},
		{"a refusal with a message", `{"error": {"code": "grant_revoked", "message": "SECRET peer text"}}`, 403, "grant_revoked"},
		{"a code that is not one", `{"error": {"code": "<script>alert(1)</script>"}}`, 500, api.CodeUnknown},
	}
	for _, tc := range tests {
		srv := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
			w.WriteHeader(tc.status)
			_, _ = w.Write([]byte(tc.body))
		}))
		c := NewClient("work", srv.URL, srv.Client().Transport.(*http.Transport).TLSClientConfig)
		_, err := c.List(context.Background(), "tasks", api.FedListRequest{})
		var pe *PeerError
		if !errors.As(err, &pe) || pe.Code != tc.code || strings.Contains(err.Error(), "SECRET") {
			t.Errorf("%s: got %v, want code %s", tc.name, err, tc.code)
		}
		srv.Close()
	}
	srv := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		_, _ = w.Write([]byte(`{"item": null}`))
	}))
	defer srv.Close()
	c := NewClient("work", srv.URL, srv.Client().Transport.(*http.Transport).TLSClientConfig)
	if _, err := c.Get(context.Background(), "tasks", "x"); Code(err) != api.CodeInvalidResponse {
		t.Errorf("a null item from get: %v", err)
	}
}
