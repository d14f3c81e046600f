package fedclient

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/mosaic-federation/mosaic/gateway/api"
)

func TestSafeCode(t *testing.T) {
	for in, want := range map[string]string{"unknown_token": "unknown_token", "<script>": "unknown", strings.Repeat("a", 65): "unknown", "": ""} {
		if got := safeCode(in); got != want {
			t.Errorf("safeCode(%q) = %q", in, got)
		}
	}
}

const (
	taskID  = "0191d3a8-0000-7000-8000-000000000001"
	ownerID = "0191d3a8-0000-7000-8000-0000000000aa"
)

// task is a well-formed task row as a peer sends it, with fields replaced by kv.
func task(kv ...string) string {
	f := map[string]string{"id": `"` + taskID + `"`, "owner_user_id": `"` + ownerID + `"`, "team_id": "null",
		"title": `"t"`, "status": `"open"`, "due_at": "null", "created_at": `"2026-01-02T03:04:05Z"`,
		"updated_at": `"2026-01-02T03:04:05Z"`, "_source": `"work"`}
	for i := 0; i+1 < len(kv); i += 2 {
		f[kv[i]] = kv[i+1]
	}
	var parts []string
	for k, v := range f {
		if v != "" { // "" leaves the field out
			parts = append(parts, fmt.Sprintf("%q: %s", k, v))
		}
	}
	return "{" + strings.Join(parts, ", ") + "}"
}

// peerAnswering is a TLS peer that answers every call with status and body.
func peerAnswering(t *testing.T, status int, body string) *Client {
	t.Helper()
	srv := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.WriteHeader(status)
		_, _ = w.Write([]byte(body))
	}))
	t.Cleanup(srv.Close)
	return NewClient("work", srv.URL, srv.Client().Transport.(*http.Transport).TLSClientConfig.Clone())
}

// A peer's answer is untrusted: whatever it sends, the client returns decoded, checked
// rows or an error with a code — never a panic, never the peer's text.
func TestUntrustedListAnswers(t *testing.T) {
	tests := []struct {
		name, body string
		status     int
		code       string // "" = accepted
	}{
		{"a well-formed row", `{"items": [` + task() + `]}`, 200, ""},
		{"unknown fields are dropped", `{"items": [` + task("secret_column", `"x"`) + `]}`, 200, ""},
		{"as many rows as asked", `{"items": [` + task() + `,` + task() + `]}`, 200, ""},
		{"a null item", `{"items": [null]}`, 200, api.CodeInvalidResponse},
		{"not JSON", `<html>`, 200, api.CodeInvalidResponse},
		{"items not an array", `{"items": {"a": 1}}`, 200, api.CodeInvalidResponse},
		{"an id that is not a UUID", `{"items": [` + task("id", `"1; drop"`) + `]}`, 200, api.CodeInvalidResponse},
		{"an upper-case UUID", `{"items": [` + task("id", `"`+strings.ToUpper(taskID)+`"`) + `]}`, 200, api.CodeInvalidResponse},
		{"an id that is a number", `{"items": [` + task("id", `7`) + `]}`, 200, api.CodeInvalidResponse},
		{"a malformed owner", `{"items": [` + task("owner_user_id", `"me"`) + `]}`, 200, api.CodeInvalidResponse},
		{"a malformed team", `{"items": [` + task("team_id", `"everyone"`) + `]}`, 200, api.CodeInvalidResponse},
		{"a time that is not RFC 3339", `{"items": [` + task("created_at", `"yesterday"`) + `]}`, 200, api.CodeInvalidResponse},
		{"no created_at", `{"items": [` + task("created_at", "") + `]}`, 200, api.CodeInvalidResponse},
		{"no updated_at", `{"items": [` + task("updated_at", "") + `]}`, 200, api.CodeInvalidResponse},
		{"a status of no task", `{"items": [` + task("status", `"pwned"`) + `]}`, 200, api.CodeInvalidResponse},
		{"more rows than asked", `{"items": [` + task() + `,` + task() + `,` + task() + `]}`, 200, api.CodeInvalidResponse},
		{"a cursor over 1 KiB", `{"items": [], "next_cursor": "` + strings.Repeat("c", api.MaxCursor+1) + `"}`, 200, api.CodeInvalidResponse},
		{"a duplicate member name", `{"items": [` + strings.Replace(task(), `"title"`, `"id": "`+taskID+`", "title"`, 1) + `]}`, 200, api.CodeInvalidResponse},
		{"a case variant of a field", `{"items": [` + task("ID", `"0191d3a8-0000-7000-8000-000000000002"`) + `]}`, 200, api.CodeInvalidResponse},
		{"a case variant of _source", `{"items": [` + task("_Source", `"local"`) + `]}`, 200, api.CodeInvalidResponse},
		{"a case variant of items", `{"items": [], "Items": [` + task() + `]}`, 200, api.CodeInvalidResponse},
		{"items twice", `{"items": [], "items": [` + task() + `]}`, 200, api.CodeInvalidResponse},
		{"invalid UTF-8 in a title", `{"items": [` + task("title", "\"a\xffb\"") + `]}`, 200, api.CodeInvalidResponse},
		{"invalid UTF-8 in an unknown member", `{"items": [` + task("extra", "\"\xc3\"") + `]}`, 200, api.CodeInvalidResponse},
		{"a second JSON value", `{"items": []} {"items": [` + task() + `]}`, 200, api.CodeInvalidResponse},
		{"a null title", `{"items": [` + task("title", "null") + `]}`, 200, api.CodeInvalidResponse},
		{"a _source that is not a string", `{"items": [` + task("_source", `{"x": 1}`) + `]}`, 200, api.CodeInvalidResponse},
		{"a cursor that is not a string", `{"items": [], "next_cursor": 5}`, 200, api.CodeInvalidResponse},
		{"escaped names decode as themselves", `{"items": [` + strings.Replace(task(), `"title"`, `"title"`, 1) + `]}`, 200, ""},
		{"a refusal with a message", `{"error": {"code": "grant_revoked", "message": "SECRET peer text"}}`, 403, "grant_revoked"},
		{"a code that is not one", `{"error": {"code": "<script>alert(1)</script>"}}`, 500, api.CodeUnknown},
	}
	for _, tc := range tests {
		c := peerAnswering(t, tc.status, tc.body)
		res, err := c.List(context.Background(), "tasks", api.FedListRequest{Limit: 2})
		if tc.code == "" {
			if err != nil || len(res.Items) == 0 {
				t.Errorf("%s: %v", tc.name, err)
				continue
			}
			if got := res.Items[0].(api.Task); got.Source != "federated:work" || got.ID != taskID {
				t.Errorf("%s: _source %q, id %q: the client sets _source itself", tc.name, got.Source, got.ID)
			}
			continue
		}
		var pe *PeerError
		if !errors.As(err, &pe) || pe.Code != tc.code || strings.Contains(err.Error(), "SECRET") || res.Items != nil {
			t.Errorf("%s: got %v, want code %s", tc.name, err, tc.code)
		}
	}
}

func TestUntrustedGetAnswers(t *testing.T) {
	for _, tc := range []struct{ name, body, code string }{
		{"the row asked for", `{"item": ` + task() + `}`, ""},
		{"a null item", `{"item": null}`, api.CodeInvalidResponse},
		{"no item", `{}`, api.CodeInvalidResponse},
		{"another row", `{"item": ` + task("id", `"0191d3a8-0000-7000-8000-000000000002"`) + `}`, api.CodeInvalidResponse},
		{"a malformed row", `{"item": ` + task("created_at", `"soon"`) + `}`, api.CodeInvalidResponse},
	} {
		item, err := peerAnswering(t, 200, tc.body).Get(context.Background(), "tasks", taskID)
		if tc.code == "" {
			if err != nil || item.(api.Task).Source != "federated:work" {
				t.Errorf("%s: %v %+v", tc.name, err, item)
			}
			continue
		}
		if Code(err) != tc.code || item != nil {
			t.Errorf("%s: got %v, want code %s", tc.name, err, tc.code)
		}
	}
}

// The client speaks HTTP/2 to a peer that offers it (pings keep the connection warm).
func TestSpeaksHTTP2(t *testing.T) {
	var proto string
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		proto = r.Proto
		_, _ = w.Write([]byte(`{"items": []}`))
	}))
	srv.EnableHTTP2 = true
	srv.StartTLS()
	defer srv.Close()
	roots := srv.Client().Transport.(*http.Transport).TLSClientConfig.RootCAs
	c := NewClient("work", srv.URL, &tls.Config{RootCAs: roots, MinVersion: tls.VersionTLS13})
	if _, err := c.List(context.Background(), "tasks", api.FedListRequest{}); err != nil || proto != "HTTP/2.0" {
		t.Errorf("proto %q, err %v", proto, err)
	}
}

// A merged list resumes a peer from the rows it answered: a row at or before the
// keyset asked for would make the list repeat rows, so it makes the answer invalid.
func TestListRowsMustLieAfterTheKeyset(t *testing.T) {
	at := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC) // task()'s created_at
	tests := []struct {
		name  string
		after api.Keyset
		ok    bool
	}{
		{"a row after the keyset", api.Keyset{CreatedAt: at.Add(time.Second), ID: taskID}, true},
		{"as old, a smaller id", api.Keyset{CreatedAt: at, ID: "0191d3a8-0000-7000-8000-000000000002"}, true},
		{"the keyset's own row", api.Keyset{CreatedAt: at, ID: taskID}, false},
		{"a row before the keyset", api.Keyset{CreatedAt: at.Add(-time.Second), ID: taskID}, false},
	}
	c := peerAnswering(t, 200, `{"items": [`+task()+`]}`)
	for _, tc := range tests {
		_, err := c.List(context.Background(), "tasks", api.FedListRequest{Limit: 2, After: &tc.after})
		var pe *PeerError
		if tc.ok != (err == nil) || (!tc.ok && (!errors.As(err, &pe) || pe.Code != api.CodeInvalidResponse)) {
			t.Errorf("%s: %v", tc.name, err)
		}
	}
}

// Answers are read into pooled buffers: the rows and cursor of one call keep their
// values whatever the calls after it read.
func TestRowsOutliveTheirReadBuffer(t *testing.T) {
	first := peerAnswering(t, 200, `{"items": [`+task("title", `"first title"`)+`], "next_cursor": "cursor-one"}`)
	second := peerAnswering(t, 200, `{"items": [`+task("title", `"XXXXXXXXXXXXXXX"`, "id", `"0191d3a8-0000-7000-8000-000000000009"`)+`], "next_cursor": "YYYYYYYYYY"}`)
	res, err := first.List(context.Background(), "tasks", api.FedListRequest{Limit: 2})
	if err != nil {
		t.Fatal(err)
	}
	for range 20 {
		if _, err := second.List(context.Background(), "tasks", api.FedListRequest{Limit: 2}); err != nil {
			t.Fatal(err)
		}
	}
	if got := res.Items[0].(api.Task); got.Title != "first title" || got.ID != taskID || res.NextCursor != "cursor-one" {
		t.Errorf("the first answer changed under later reads: %+v, cursor %q", got, res.NextCursor)
	}
}
