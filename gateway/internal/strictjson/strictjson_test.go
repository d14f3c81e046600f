package strictjson

import (
	"errors"
	"net/http"
	"strings"
	"testing"
	"time"
)

type body struct {
	Token  string     `json:"token"`
	Limit  int        `json:"limit,omitempty"`
	Filter filter     `json:"filter,omitempty"`
	IDs    []string   `json:"ids,omitempty"`
	Since  *time.Time `json:"since,omitempty"`
}

type filter struct {
	Status string `json:"status,omitempty"`
}

func TestDecodeRefuses(t *testing.T) {
	tests := []struct {
		in, want string
	}{
		{`{"limit": 1.5}`, `field "/limit" must be a whole number`},
		{`{"limit": "5"}`, `field "/limit" must be a whole number`},
		{`[]`, `the body must be a JSON object`},
		{`"x"`, `the body must be a JSON object`},
		{`{"token": "a", "token": "b"}`, `field "/token" appears more than once`},
		{`{"Token": "a"}`, `field "/Token" is not a known field`},
		{`{"scope": {}}`, `field "/scope" is not a known field`},
		{`{"filter": {"status": 3}}`, `field "/filter/status" must be a string`},
		{`{"filter": {"x": 1}}`, `field "/filter/x" is not a known field`},
		{`{"ids": "a"}`, `field "/ids" must be an array`},
		{`{"since": "yesterday"}`, `field "/since" must be an RFC 3339 time as a string`},
		{`{} {}`, `the body holds more than one JSON value`},
		{`{"token": "a"`, `the body ends before the JSON value does`},
		{``, `the body is empty: send a JSON object`},
		{`{"token": "` + "\xff" + `"}`, `is not valid UTF-8`},
		{`{token: 1}`, `the body is not valid JSON`},
	}
	for _, tc := range tests {
		var b body
		err := Decode(strings.NewReader(tc.in), &b)
		var e *Error
		if !errors.As(err, &e) || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%q: got %v, want %q", tc.in, err, tc.want)
			continue
		}
		for _, goName := range []string{"strictjson.", "int", "[]string", "struct", "Go "} {
			if strings.Contains(err.Error(), goName) && !strings.Contains(tc.want, goName) {
				t.Errorf("%q: the message names Go's types: %v", tc.in, err)
			}
		}
	}
}

func TestDecodeAccepts(t *testing.T) {
	var b body
	if err := Decode(strings.NewReader(` {"token": "a", "limit": 3, "filter": {"status": "done"}, "since": "2026-01-02T03:04:05Z"} `), &b); err != nil {
		t.Fatal(err)
	}
	if b.Token != "a" || b.Limit != 3 || b.Filter.Status != "done" || b.Since == nil {
		t.Errorf("%+v", b)
	}
}

func TestDecodeKeepsReaderErrors(t *testing.T) {
	big := `{"token": "` + strings.Repeat("a", 2000) + `"}`
	r := http.MaxBytesReader(nil, nopCloser{strings.NewReader(big)}, 100)
	var b body
	err := Decode(r, &b)
	var tooBig *http.MaxBytesError
	if !errors.As(err, &tooBig) {
		t.Fatalf("a body over its limit must stay a *http.MaxBytesError (413), got %T %v", err, err)
	}
}

type nopCloser struct{ *strings.Reader }

func (nopCloser) Close() error { return nil }
