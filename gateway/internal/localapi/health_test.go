package localapi

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/mosaic-federation/mosaic/gateway/api"
)

func TestReadyz(t *testing.T) {
	secret := errors.New("dial postgres://mosaic:hunter2@10.0.0.1/db failed")
	tests := []struct {
		name       string
		pgErr      error
		valkeyErr  error
		wantStatus int
		wantBody   string
	}{
		{"all up", nil, nil, http.StatusOK, "ready"},
		{"postgres down", secret, nil, http.StatusServiceUnavailable, "unavailable"},
		{"valkey down: limits in memory", nil, secret, http.StatusOK, "degraded"},
		{"both down", secret, secret, http.StatusServiceUnavailable, "unavailable"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, readyz := Health(slog.New(slog.NewTextHandler(io.Discard, nil)), []Checker{
				{Name: "postgres", Check: func(context.Context) error { return tc.pgErr }},
				{Name: "valkey", Check: func(context.Context) error { return tc.valkeyErr }, Soft: true},
			})
			rec := httptest.NewRecorder()
			readyz.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/readyz", nil))
			if rec.Code != tc.wantStatus {
				t.Fatalf("status %d, want %d", rec.Code, tc.wantStatus)
			}
			if strings.Contains(rec.Body.String(), "hunter2") {
				t.Fatal("a dependency's error reached the response")
			}
			var h api.Health
			if err := json.Unmarshal(rec.Body.Bytes(), &h); err != nil || h.Status != tc.wantBody || len(h.Checks) != 2 {
				t.Fatalf("body %s (%v)", rec.Body, err)
			}
		})
	}
}
