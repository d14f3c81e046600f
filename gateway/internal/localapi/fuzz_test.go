package localapi

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/mux"

	"github.com/mosaic-federation/mosaic/gateway/api"
	"github.com/mosaic-federation/mosaic/gateway/internal/apitoken"
	"github.com/mosaic-federation/mosaic/gateway/internal/embed"
	"github.com/mosaic-federation/mosaic/gateway/internal/httpx"
	"github.com/mosaic-federation/mosaic/gateway/internal/store"
)

const fuzzUser = "0a0a0a0a-0000-4000-8000-00000000000a"

// testAPI is the local API's real router over a fresh SQLite store with one user, and
// that user's token.
func testAPI(tb testing.TB) (http.Handler, string) {
	tb.Helper()
	ctx := context.Background()
	st, err := store.OpenSQLite(ctx, filepath.Join(tb.TempDir(), "api.db"))
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { st.Close() })
	token, _ := apitoken.New()
	if err := st.UpsertUser(ctx, store.User{ID: fuzzUser, Email: "a@example.test", DisplayName: "A", Role: "member", CreatedAt: time.Now()}); err != nil {
		tb.Fatal(err)
	}
	if err := st.SetTokenHash(ctx, fuzzUser, apitoken.Hash(token)); err != nil {
		tb.Fatal(err)
	}
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	r := mux.NewRouter()
	New(Config{Store: st, Embedder: embed.Hashing{}, Log: log}).Register(r)
	r.NotFoundHandler, r.MethodNotAllowedHandler = httpx.NotFound(log), httpx.MethodNotAllowed(log)
	return httpx.RequestID(httpx.LimitBody(log, r)), token
}

func TestWrongMethodIs405WithAllow(t *testing.T) {
	h, token := testAPI(t)
	for target, allow := range map[string]string{"/api/v1/tasks": "GET, POST", "/api/v1/notes/" + fuzzUser: "GET"} {
		req := httptest.NewRequest(http.MethodDelete, target, nil)
		req.Header.Set("Authorization", "Bearer "+token)
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		if rec.Code != http.StatusMethodNotAllowed || rec.Header().Get("Allow") != allow {
			t.Errorf("DELETE %s: %d, Allow %q, want 405 with %q", target, rec.Code, rec.Header().Get("Allow"), allow)
		}
	}
}

// FuzzLocalAPI sends random methods, paths, query strings and bodies, with a valid
// token or none, through the real router over a real SQLite store: never a 5xx,
// never a panic, every error in the envelope, no Go in a message.
func FuzzLocalAPI(f *testing.F) {
	h, token := testAPI(f)
	for _, sd := range []struct {
		method, target, body string
		auth                 bool
	}{
		{"GET", "/api/v1/tasks?limit=5&status=open", "", true},
		{"GET", "/api/v1/tasks?limit=-1&cursor=%ZZ", "", true},
		{"GET", "/api/v1/tasks?source=federated:nobody", "", true},
		{"GET", "/api/v1/notes?updated_since=yesterday&team_id=x", "", true},
		{"GET", "/api/v1/memories/" + fuzzUser, "", true},
		{"POST", "/api/v1/tasks", `{"title": "t", "status": "done", "due_at": "2026-01-02T03:04:05Z"}`, true},
		{"POST", "/api/v1/notes", `{"title": "t", "body": "b", "team_id": "` + fuzzUser + `"}`, true},
		{"POST", "/api/v1/memories", `{"content": "` + strings.Repeat("x", 70000) + `"}`, true},
		{"POST", "/api/v1/tasks", `[]`, true},
		{"DELETE", "/api/v1/tasks", ``, false},
		{"GET", "/api/v1/search?q=%22NEAR(+a*+AND&resource=tasks&limit=3", "", true},
		{"GET", "/api/v1/search?q=x&resource=memories&mode=vector&source=all", "", true},
		{"GET", "/api/v1/search?q=%00&resource=notes", "", true},
		{"GET", "/api/v1/tasks?source=all&limit=2&cursor=eyJ2IjoxLCJzb3VyY2VzIjp7ImxvY2FsIjp7ImFmdGVyIjp7ImNyZWF0ZWRfYXQiOiIyMDI2LTExLTAxVDA5OjAwOjAwWiIsImlkIjoiMDAwMDAwMDAtMDAwMC00MDAwLTgwMDAtMDAwMDAwMDAwMTAwIn19fX0", "", true},
		{"GET", "/api/v1/tasks?source=all&cursor=eyJ2IjoxLCJzb3VyY2VzIjp7ImxvY2FsIjp7ImRvbmUiOnRydWV9fX0", "", true},
	} {
		f.Add(sd.method, sd.target, []byte(sd.body), sd.auth)
	}
	f.Fuzz(func(t *testing.T, method, target string, body []byte, auth bool) {
		if method == "" || strings.ContainsAny(method, " \t\r\n()<>@,;:\\\"/[]?={}") || !strings.HasPrefix(target, "/") ||
			strings.ContainsAny(target, " \t\r\n#") || len(target) > 4096 {
			return
		}
		req, err := http.NewRequest(method, "http://home.example"+target, bytes.NewReader(body))
		if err != nil {
			return
		}
		req.RequestURI = target
		if auth {
			req.Header.Set("Authorization", "Bearer "+token)
		}
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		if rec.Code >= 500 {
			t.Fatalf("%s %s: %d %s", method, target, rec.Code, rec.Body)
		}
		if rec.Code < 400 {
			return
		}
		var e api.ErrorBody
		if err := json.Unmarshal(rec.Body.Bytes(), &e); err != nil || e.Error.Code == "" || e.Error.RequestID == "" {
			t.Fatalf("%d without the error envelope: %s", rec.Code, rec.Body)
		}
		for _, w := range []string{"Go struct", "Go value", "json: ", "unmarshal", "api."} {
			if strings.Contains(e.Error.Message, w) {
				t.Fatalf("the message speaks Go (%q): %s", w, e.Error.Message)
			}
		}
	})
}
