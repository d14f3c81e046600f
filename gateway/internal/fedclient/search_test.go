package fedclient

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/mosaic-federation/mosaic/gateway/api"
)

func TestSearchSendsTheQueryAndChecksScores(t *testing.T) {
	tests := []struct {
		name, body string
		status     int
		code       string
	}{
		{"scored items", `{"items": [` + task("_score", "0.5") + `,` + task("_score", "0") + `], "truncated": false}`, 200, ""},
		{"no items", `{"items": [], "truncated": true}`, 200, ""},
		{"a null item", `{"items": [null]}`, 200, api.CodeInvalidResponse},
		{"an item without a score", `{"items": [` + task() + `]}`, 200, api.CodeInvalidResponse},
		{"a score that is not a number", `{"items": [` + task("_score", `"9"`) + `]}`, 200, api.CodeInvalidResponse},
		{"more items than asked", `{"items": [` + strings.Repeat(task("_score", "1")+",", 7) + task("_score", "1") + `]}`, 200, api.CodeInvalidResponse},
		{"a malformed row", `{"items": [` + task("_score", "1", "id", `"x"`) + `]}`, 200, api.CodeInvalidResponse},
		{"a refusal, its text dropped", `{"error": {"code": "mode_not_supported", "message": "SECRET peer text"}}`, 400, api.CodeModeNotSupported},
	}
	for _, tc := range tests {
		var got struct {
			path string
			body api.SearchRequest
		}
		srv := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			b, _ := io.ReadAll(r.Body)
			got.path = r.URL.Path
			_ = json.Unmarshal(b, &got.body)
			w.WriteHeader(tc.status)
			_, _ = w.Write([]byte(tc.body))
		}))
		c := NewClient("work", srv.URL, srv.Client().Transport.(*http.Transport).TLSClientConfig)
		req := api.SearchRequest{Query: "vpn", Mode: api.ModeHybrid, Limit: 7}
		res, err := c.Search(context.Background(), "tasks", req)
		srv.Close()
		if got.path != "/api/federation/v1/search/tasks" || got.body != req {
			t.Errorf("%s: sent %s %+v", tc.name, got.path, got.body)
		}
		if tc.code == "" {
			if err != nil {
				t.Errorf("%s: %v", tc.name, err)
			}
			continue
		}
		var pe *PeerError
		if !errors.As(err, &pe) || pe.Code != tc.code || strings.Contains(err.Error(), "SECRET") || res.Items != nil {
			t.Errorf("%s: got %v, want code %s", tc.name, err, tc.code)
		}
	}
}
