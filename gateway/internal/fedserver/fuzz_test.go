package fedserver

import (
	"bytes"
	"context"
	"crypto/x509"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/mosaic-federation/mosaic/gateway/api"
	"github.com/mosaic-federation/mosaic/gateway/internal/store"
)

// goWords would show that a message was written from Go's own errors.
var goWords = []string{"Go struct", "Go value", "json: ", "unmarshal", "api.", "[]string", "*time."}

// FuzzFederationHandler sends random methods, paths, headers and bodies through the
// real router, runner and verbs over a real SQLite store, as a caller the guard let
// through: never a 5xx, never a panic, every error in the envelope, no Go in a message.
func FuzzFederationHandler(f *testing.F) {
	ctx := context.Background()
	st, err := store.OpenSQLite(ctx, filepath.Join(f.TempDir(), "fuzz.db"))
	if err != nil {
		f.Fatal(err)
	}
	f.Cleanup(func() { st.Close() })
	if err := st.UpsertUser(ctx, store.User{ID: subject, Email: "s@example.test", DisplayName: "S", Role: "member", CreatedAt: time.Now()}); err != nil {
		f.Fatal(err)
	}
	if err := st.PutTask(ctx, api.Task{ID: rowID, OwnerUserID: subject, Title: "t", Status: "open", CreatedAt: time.Now(), UpdatedAt: time.Now()}); err != nil {
		f.Fatal(err)
	}
	s := &Server{Site: "work", Root: &x509.Certificate{Raw: []byte("root")}, Guard: fakeGuard{caller: activeCaller()},
		Store: st, Audit: &fakeAudit{}, Log: slog.New(slog.NewTextHandler(io.Discard, nil))}
	h := s.Handler()
	seeds := []struct{ method, path, ctype, body string }{
		{"POST", Prefix + "/list/tasks", "application/json", `{"limit": 5, "filter": {"status": "open"}}`},
		{"POST", Prefix + "/list/tasks", "", `{"cursor": "!!!"}`},
		{"POST", Prefix + "/list/tasks", "", `{"cursor": "MjAyNi0wMS0wMlQwMzowNDowNVp8eA"}`},
		{"POST", Prefix + "/list/notes", "", `{"filter": {"updated_since": "2026-01-02T03:04:05Z", "team_id": "` + rowID + `"}}`},
		{"POST", Prefix + "/list/memories", "", `{"filter": {"status": "open"}}`},
		{"POST", Prefix + "/get/tasks/" + rowID, "", ``},
		{"POST", Prefix + "/get/tasks/" + rowID, "", `{"x": 1}`},
		{"POST", Prefix + "/get/tasks/%00", "", ``},
		{"GET", Prefix + "/capabilities", "", ``},
		{"GET", Prefix + "/list/tasks", "", ``},
		{"DELETE", Prefix + "//list/./tasks", "text/plain", `[]`},
		{"POST", Prefix + "/list/tasks", "", `{"limit": 1e999}`},
		{"POST", Prefix + "/list/tasks", "", `{"limit": 1, "limit": 2}`},
		{"PATCH", "/", "", ``},
		{"POST", Prefix + "/search/tasks", "", `{"query": "NEAR( \"t* AND -x OR title:t", "mode": "text", "limit": 2}`},
		{"POST", Prefix + "/search/tasks", "", `{"query": "t", "mode": "vector"}`},
		{"POST", Prefix + "/search/notes", "", `{"query": "\u00e9!!", "mode": "text"}`},
		{"POST", Prefix + "/search/memories", "", `{"query": "m", "mode": "hybrid"}`},
	}
	for _, sd := range seeds {
		f.Add(sd.method, sd.path, sd.ctype, []byte(sd.body))
	}
	f.Fuzz(func(t *testing.T, method, path, ctype string, body []byte) {
		req := fuzzRequest(t, method, path, ctype, body)
		if req == nil {
			return
		}
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		checkAnswer(t, rec)
	})
}

// fuzzRequest builds a request the way net/http would have parsed one, or nil for
// input no server would hand a handler.
func fuzzRequest(t *testing.T, method, path, ctype string, body []byte) *http.Request {
	t.Helper()
	if method == "" || strings.ContainsAny(method, " \t\r\n()<>@,;:\\\"/[]?={}") || !strings.HasPrefix(path, "/") ||
		strings.ContainsAny(path, " \t\r\n#") || len(path) > 4096 {
		return nil
	}
	req, err := http.NewRequest(method, "https://work.example"+path, bytes.NewReader(body))
	if err != nil {
		return nil
	}
	req.RequestURI = path
	if ctype != "" && !strings.ContainsAny(ctype, "\r\n") {
		req.Header.Set("Content-Type", ctype)
	}
	return req
}

func checkAnswer(t *testing.T, rec *httptest.ResponseRecorder) {
	t.Helper()
	if rec.Code >= 500 {
		t.Fatalf("%d: %s", rec.Code, rec.Body)
	}
	if rec.Code < 400 {
		return
	}
	var e api.ErrorBody
	dec := json.NewDecoder(bytes.NewReader(rec.Body.Bytes()))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&e); err != nil || e.Error.Code == "" || e.Error.Message == "" || e.Error.RequestID == "" {
		t.Fatalf("%d without the error envelope: %s", rec.Code, rec.Body)
	}
	for _, w := range goWords {
		if strings.Contains(e.Error.Message, w) {
			t.Fatalf("the message speaks Go (%q): %s", w, e.Error.Message)
		}
	}
}
