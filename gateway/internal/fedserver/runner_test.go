package fedserver

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/mosaic-federation/mosaic/gateway/api"
	"github.com/mosaic-federation/mosaic/gateway/internal/audit"
	"github.com/mosaic-federation/mosaic/gateway/internal/errs"
	"github.com/mosaic-federation/mosaic/gateway/internal/fedstore"
	"github.com/mosaic-federation/mosaic/gateway/internal/guard"
	"github.com/mosaic-federation/mosaic/gateway/internal/identity"
	"github.com/mosaic-federation/mosaic/gateway/internal/scope"
	"github.com/mosaic-federation/mosaic/gateway/internal/store"
)

const (
	grantID = "11111111-1111-4111-8111-111111111111"
	subject = "22222222-2222-4222-8222-222222222222"
	rowID   = "3a3a3a3a-3333-4333-8333-33333333333a"
)

// fakeGuard lets a request through as its caller, or refuses it.
type fakeGuard struct {
	caller guard.Caller
	err    error
}

func (g fakeGuard) Check(context.Context, *tls.ConnectionState) (guard.Caller, error) {
	return g.caller, g.err
}

// fakeStore answers granted reads and records what it was asked.
type fakeStore struct {
	store.Store // any other method panics: the verbs must not call it
	rows        []scope.Rows
	lists       []store.ListOptions
	searches    []store.SearchOptions
	err         error
}

func (s *fakeStore) ListGranted(_ context.Context, rows scope.Rows, o store.ListOptions) (store.Page, error) {
	s.rows, s.lists = append(s.rows, rows), append(s.lists, o)
	if s.err != nil {
		return store.Page{}, s.err
	}
	var items []api.Item
	for range o.Limit {
		items = append(items, api.Task{ID: rowID, OwnerUserID: subject, Title: "t", Status: "open"})
	}
	return store.Page{Items: items}, nil
}

func (s *fakeStore) GetGranted(_ context.Context, rows scope.Rows, _ string) (api.Item, error) {
	s.rows = append(s.rows, rows)
	if s.err != nil {
		return nil, s.err
	}
	return api.Note{ID: rowID, OwnerUserID: subject, Title: "n"}, nil
}

// fakeAudit records rows, or fails.
type fakeAudit struct {
	entries []audit.Entry
	err     error
}

func (a *fakeAudit) Append(_ context.Context, e audit.Entry) error {
	if a.err != nil {
		return a.err
	}
	a.entries = append(a.entries, e)
	return nil
}

func activeCaller() guard.Caller {
	return guard.Caller{Identity: identity.Identity{GrantID: grantID, SubjectUserID: subject},
		Grant: fedstore.Grant{ID: grantID, Peer: "home", PeerID: "4b4b4b4b-4444-4444-8444-444444444444", SubjectUserID: subject, Status: "active",
			ExpiresAt: time.Now().Add(time.Hour),
			Scope: scope.Scope{Resources: []string{"tasks", "notes", "memories"}, ExcludedResources: []string{"memories"},
				IncludePersonal: true, MaxRowsPerQuery: 3}}}
}

type exchange struct {
	method, path, body string
}

type result struct {
	status int
	header http.Header
	body   []byte
	audit  *fakeAudit
	store  *fakeStore
}

func serve(t *testing.T, g Guard, st *fakeStore, au *fakeAudit, x exchange) result {
	t.Helper()
	s := &Server{Site: "work", Root: &x509.Certificate{Raw: []byte("root")}, Guard: g, Store: st, Audit: au,
		Log: slog.New(slog.NewTextHandler(io.Discard, nil))}
	var body io.Reader
	if x.body != "" {
		body = strings.NewReader(x.body)
	}
	rec := httptest.NewRecorder()
	s.Handler().ServeHTTP(rec, httptest.NewRequest(x.method, x.path, body))
	return result{status: rec.Code, header: rec.Header(), body: rec.Body.Bytes(), audit: au, store: st}
}

func errorCode(t *testing.T, b []byte) string {
	t.Helper()
	var e api.ErrorBody
	if err := json.Unmarshal(b, &e); err != nil {
		t.Fatalf("not an error envelope: %s", b)
	}
	return e.Error.Code
}

// TestRunnerRefuses walks every deny branch of the pipeline: each is answered with its
// status and code, audited once with that code, and reaches no store read.
func TestRunnerRefuses(t *testing.T) {
	refused := fakeGuard{err: errs.New(errs.Unauthenticated, api.CodeIdentityMissing, "no identity")}
	revoked := fakeGuard{caller: activeCaller(), err: errs.New(errs.Forbidden, api.CodeGrantRevoked, "revoked")}
	ok := fakeGuard{caller: activeCaller()}
	tests := []struct {
		name    string
		guard   Guard
		x       exchange
		status  int
		code    string
		outcome string
	}{
		{"guard 401", refused, exchange{"POST", Prefix + "/list/tasks", `{}`}, 401, api.CodeIdentityMissing, api.OutcomeDenied},
		{"guard 403", revoked, exchange{"POST", Prefix + "/get/notes/" + rowID, ""}, 403, api.CodeGrantRevoked, api.OutcomeDenied},
		{"guard 401 on capabilities", refused, exchange{"GET", Prefix + "/capabilities", ""}, 401, api.CodeIdentityMissing, api.OutcomeDenied},
		{"guard 401 on an unknown path", refused, exchange{"GET", Prefix + "/nothing/here", ""}, 401, api.CodeIdentityMissing, api.OutcomeDenied},
		{"guard 401 on a wrong method", refused, exchange{"DELETE", Prefix + "/list/tasks", ""}, 401, api.CodeIdentityMissing, api.OutcomeDenied},
		{"excluded resource", ok, exchange{"POST", Prefix + "/list/memories", `{}`}, 403, api.CodeResourceNotInScope, api.OutcomeDenied},
		{"credentials", ok, exchange{"POST", Prefix + "/list/credentials", `{}`}, 403, api.CodeResourceNotInScope, api.OutcomeDenied},
		{"scope before the body", ok, exchange{"POST", Prefix + "/list/memories", `not json`}, 403, api.CodeResourceNotInScope, api.OutcomeDenied},
		{"scope before the id", ok, exchange{"POST", Prefix + "/get/credentials/x", ""}, 403, api.CodeResourceNotInScope, api.OutcomeDenied},
		{"malformed id", ok, exchange{"POST", Prefix + "/get/notes/NOT-A-UUID", ""}, 400, api.CodeInvalidID, api.OutcomeDenied},
		{"upper-case id", ok, exchange{"POST", Prefix + "/get/notes/" + strings.ToUpper(rowID), ""}, 400, api.CodeInvalidID, api.OutcomeDenied},
		{"malformed body", ok, exchange{"POST", Prefix + "/list/tasks", `{"limit": "x"}`}, 400, api.CodeInvalidBody, api.OutcomeDenied},
		{"unknown field", ok, exchange{"POST", Prefix + "/list/tasks", `{"scope": {}}`}, 400, api.CodeInvalidBody, api.OutcomeDenied},
		{"a fractional limit", ok, exchange{"POST", Prefix + "/list/tasks", `{"limit": 1.5}`}, 400, api.CodeInvalidBody, api.OutcomeDenied},
		{"an array body", ok, exchange{"POST", Prefix + "/list/tasks", `[]`}, 400, api.CodeInvalidBody, api.OutcomeDenied},
		{"a field twice", ok, exchange{"POST", Prefix + "/list/tasks", `{"limit": 1, "limit": 2}`}, 400, api.CodeInvalidBody, api.OutcomeDenied},
		{"a status not of the list", ok, exchange{"POST", Prefix + "/list/tasks", `{"filter": {"status": "DONE"}}`}, 400, api.CodeInvalidStatus, api.OutcomeDenied},
		{"a team that is not a uuid", ok, exchange{"POST", Prefix + "/list/tasks", `{"filter": {"team_id": "core"}}`}, 400, api.CodeInvalidTeamID, api.OutcomeDenied},
		{"a keyset and a cursor", ok, exchange{"POST", Prefix + "/list/tasks", `{"cursor": "x", "after": {"created_at": "2026-11-01T00:00:00Z", "id": "` + rowID + `"}}`}, 400, api.CodeInvalidCursor, api.OutcomeDenied},
		{"a keyset with a bad id", ok, exchange{"POST", Prefix + "/list/tasks", `{"after": {"created_at": "2026-11-01T00:00:00Z", "id": "1 OR 1=1"}}`}, 400, api.CodeInvalidCursor, api.OutcomeDenied},
		{"a keyset without a time", ok, exchange{"POST", Prefix + "/list/tasks", `{"after": {"id": "` + rowID + `"}}`}, 400, api.CodeInvalidCursor, api.OutcomeDenied},
		{"a negative limit", ok, exchange{"POST", Prefix + "/list/tasks", `{"limit": -1}`}, 400, api.CodeInvalidLimit, api.OutcomeDenied},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r := serve(t, tc.guard, &fakeStore{}, &fakeAudit{}, tc.x)
			if r.status != tc.status || errorCode(t, r.body) != tc.code {
				t.Fatalf("got %d %s, want %d %s", r.status, r.body, tc.status, tc.code)
			}
			if len(r.store.rows) != 0 {
				t.Errorf("a refused request read the store")
			}
			if len(r.audit.entries) != 1 || r.audit.entries[0].Reason != tc.code || r.audit.entries[0].Outcome != tc.outcome {
				t.Errorf("audit rows %+v, want one %s %s", r.audit.entries, tc.outcome, tc.code)
			}
		})
	}
}

func TestRunnerStoreFailures(t *testing.T) {
	ok := fakeGuard{caller: activeCaller()}
	secret := errors.New(`pq: relation "x" does not exist; postgres://u:hunter2@db/x`)
	tests := []struct {
		name    string
		err     error
		status  int
		code    string
		outcome string
	}{
		{"a row outside the effective rows", store.ErrNotFound, 404, api.CodeNotFound, api.OutcomeDenied},
		{"an internal error", secret, 500, api.CodeInternal, api.OutcomeFailed},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r := serve(t, ok, &fakeStore{err: tc.err}, &fakeAudit{}, exchange{"POST", Prefix + "/get/notes/" + rowID, ""})
			if r.status != tc.status || errorCode(t, r.body) != tc.code {
				t.Fatalf("got %d %s", r.status, r.body)
			}
			if strings.Contains(string(r.body), "hunter2") || strings.Contains(string(r.body), "relation") {
				t.Errorf("the cause reached the client: %s", r.body)
			}
			if len(r.audit.entries) != 1 || r.audit.entries[0].Outcome != tc.outcome || r.audit.entries[0].Reason != tc.code {
				t.Errorf("audit rows %+v", r.audit.entries)
			}
		})
	}
}

func TestRunnerRefusesWhatItCannotAudit(t *testing.T) {
	r := serve(t, fakeGuard{caller: activeCaller()}, &fakeStore{}, &fakeAudit{err: errors.New("db down")},
		exchange{"POST", Prefix + "/list/tasks", `{}`})
	if r.status != http.StatusServiceUnavailable || errorCode(t, r.body) != api.CodeAuditUnavailable {
		t.Fatalf("got %d %s, want 503 %s", r.status, r.body, api.CodeAuditUnavailable)
	}
	if strings.Contains(string(r.body), "items") {
		t.Error("rows were sent unaudited")
	}
}

func TestRunnerAllows(t *testing.T) {
	st, au := &fakeStore{}, &fakeAudit{}
	r := serve(t, fakeGuard{caller: activeCaller()}, st, au, exchange{"POST", Prefix + "/list/tasks", `{"limit": 50}`})
	if r.status != 200 {
		t.Fatalf("got %d %s", r.status, r.body)
	}
	var page api.FedListOf[map[string]any]
	if err := json.Unmarshal(r.body, &page); err != nil {
		t.Fatal(err)
	}
	if len(page.Items) != 3 || !page.Truncated {
		t.Errorf("the cap of 3 must lower a limit of 50 and say so: %d items, truncated %v", len(page.Items), page.Truncated)
	}
	for _, it := range page.Items {
		if it["_source"] != "work" {
			t.Errorf("an item without the site's _source: %v", it)
		}
	}
	if len(st.rows) != 1 || st.rows[0].Resource() != "tasks" || st.rows[0].Subject() != subject || !st.rows[0].Personal() {
		t.Errorf("the store read %+v, want the grant's effective rows of tasks", st.rows)
	}
	if len(au.entries) != 1 || au.entries[0].Outcome != api.OutcomeAllowed || au.entries[0].Rows != 3 || au.entries[0].Verb != "list" ||
		au.entries[0].Action != "POST /api/federation/v1/list/{resource}" || au.entries[0].Actor != "peer:home" {
		t.Errorf("audit rows %+v", au.entries)
	}
}

// A keyset reaches the store with the grant's effective rows: the scope still
// decides which rows exist, the keyset only where the list resumes.
func TestListPassesTheKeysetUnderTheScope(t *testing.T) {
	st := &fakeStore{}
	r := serve(t, fakeGuard{caller: activeCaller()}, st, &fakeAudit{},
		exchange{"POST", Prefix + "/list/tasks", `{"limit": 2, "after": {"created_at": "2026-11-01T10:00:00.123456+01:00", "id": "` + rowID + `"}}`})
	if r.status != 200 {
		t.Fatalf("got %d %s", r.status, r.body)
	}
	want := api.Keyset{CreatedAt: time.Date(2026, 11, 1, 9, 0, 0, 123456000, time.UTC), ID: rowID}
	if len(st.lists) != 1 || st.lists[0].After == nil || !st.lists[0].After.CreatedAt.Equal(want.CreatedAt) ||
		st.lists[0].After.ID != want.ID || st.lists[0].Cursor != "" || st.lists[0].Limit != 2 {
		t.Fatalf("the store was asked %+v, want after %+v", st.lists, want)
	}
	if st.rows[0].Resource() != "tasks" || st.rows[0].Subject() != subject {
		t.Errorf("the keyset read %+v, not the grant's effective rows", st.rows)
	}
}

func TestUnknownEndpointBehindAPassingGuard(t *testing.T) {
	r := serve(t, fakeGuard{caller: activeCaller()}, &fakeStore{}, &fakeAudit{}, exchange{"GET", Prefix + "/nothing", ""})
	if r.status != 404 || errorCode(t, r.body) != api.CodeNotFound || len(r.store.rows) != 0 {
		t.Fatalf("got %d %s", r.status, r.body)
	}
	if len(r.audit.entries) != 1 || r.audit.entries[0].Reason != api.CodeNotFound {
		t.Errorf("audit rows %+v, want one not_found", r.audit.entries)
	}
}

func TestWrongMethodBehindAPassingGuard(t *testing.T) {
	r := serve(t, fakeGuard{caller: activeCaller()}, &fakeStore{}, &fakeAudit{}, exchange{"GET", Prefix + "/list/tasks", ""})
	if r.status != 405 || errorCode(t, r.body) != api.CodeMethodNotAllowed || r.header.Get("Allow") != "POST" {
		t.Fatalf("got %d %v %s", r.status, r.header, r.body)
	}
	if len(r.store.rows) != 0 {
		t.Error("a wrong method read the store")
	}
	if len(r.audit.entries) != 1 || r.audit.entries[0].Reason != api.CodeMethodNotAllowed {
		t.Errorf("audit rows %+v, want one method_not_allowed", r.audit.entries)
	}
}

func TestMessagesNameTheFieldNotGoTypes(t *testing.T) {
	ok := fakeGuard{caller: activeCaller()}
	for body, field := range map[string]string{`{"limit": 1.5}`: "/limit", `[]`: "body", `{"filter": {"status": 1}}`: "/filter/status"} {
		r := serve(t, ok, &fakeStore{}, &fakeAudit{}, exchange{"POST", Prefix + "/list/tasks", body})
		var e api.ErrorBody
		_ = json.Unmarshal(r.body, &e)
		if !strings.Contains(e.Error.Message, field) {
			t.Errorf("%s: %q does not name %s", body, e.Error.Message, field)
		}
		for _, goWord := range []string{"Go ", "int", "api.", "struct", "unmarshal"} {
			if strings.Contains(e.Error.Message, goWord) {
				t.Errorf("%s: %q speaks Go (%q)", body, e.Error.Message, goWord)
			}
		}
	}
}

func TestAnAttackerSizedMethodIsNotAudited(t *testing.T) {
	au := &fakeAudit{}
	refused := fakeGuard{err: errs.New(errs.Unauthenticated, api.CodeClientCertificateRequired, "no certificate")}
	r := serve(t, refused, &fakeStore{}, au, exchange{strings.Repeat("A", 60000), Prefix + "/list/tasks", ""})
	if r.status != 401 || len(au.entries) != 1 {
		t.Fatalf("got %d, %d rows", r.status, len(au.entries))
	}
	if a := au.entries[0].Action; !strings.HasPrefix(a, "other ") || len(a) > 100 {
		t.Errorf("the audit action is %d bytes: %.40q…", len(a), a)
	}
}

func TestAGetRecordsTheRowIDItRead(t *testing.T) {
	au := &fakeAudit{}
	serve(t, fakeGuard{caller: activeCaller()}, &fakeStore{}, au, exchange{"POST", Prefix + "/get/notes/" + rowID, ""})
	if len(au.entries) != 1 || !strings.Contains(au.entries[0].Detail, rowID) {
		t.Errorf("audit rows %+v", au.entries)
	}
}
