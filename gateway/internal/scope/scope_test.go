package scope

import (
	"encoding/json"
	"errors"
	"reflect"
	"strings"
	"testing"
)

const team = "36511728-11cc-42f6-bf5f-388934aa06d0"

func TestParseValid(t *testing.T) {
	s, err := Parse([]byte(`{"resources": ["tasks", "notes", "memories"], "excluded_resources": ["notes"],
		"include_teams": ["` + team + `"], "include_personal": true, "max_rows_per_query": 100}`))
	if err != nil {
		t.Fatal(err)
	}
	if !s.Allows("tasks") || s.Allows("notes") || s.Allows("credentials") {
		t.Errorf("allows: %+v", s)
	}
	if got := s.Effective(); !reflect.DeepEqual(got, []string{"tasks", "memories"}) {
		t.Errorf("effective %v", got)
	}
	for in, want := range map[int]int{0: 100, -5: 100, 7: 7, 100: 100, 101: 100, 1 << 30: 100} {
		if got := s.Cap(in); got != want {
			t.Errorf("Cap(%d) = %d, want %d", in, got, want)
		}
	}
}

func TestParseErrorsNameTheField(t *testing.T) {
	base := func(over string) string {
		return `{"resources": ["tasks"], "include_personal": true, "max_rows_per_query": 10` + over + `}`
	}
	tests := []struct{ name, doc, field string }{
		{"credentials", `{"resources": ["tasks", "credentials"], "max_rows_per_query": 10}`, "resources[1]"},
		{"unknown resource", `{"resources": ["calendars"], "max_rows_per_query": 10}`, "resources[0]"},
		{"empty resources", `{"resources": [], "max_rows_per_query": 10}`, "resources"},
		{"missing resources", `{"max_rows_per_query": 10}`, "resources"},
		{"cap 0", `{"resources": ["tasks"], "max_rows_per_query": 0}`, "max_rows_per_query"},
		{"cap 10001", `{"resources": ["tasks"], "max_rows_per_query": 10001}`, "max_rows_per_query"},
		{"cap missing", `{"resources": ["tasks"]}`, "max_rows_per_query"},
		{"unknown field", base(`, "include_everything": true`), "include_everything"},
		{"bad team", base(`, "include_teams": ["Team-A"]`), "include_teams[0]"},
		{"duplicate team", base(`, "include_teams": ["` + team + `", "` + team + `"]`), "include_teams[1]"},
		{"excluded credentials", base(`, "excluded_resources": ["credentials"]`), "excluded_resources[0]"},
		{"wrong type", `{"resources": "tasks", "max_rows_per_query": 10}`, "resources"},
		{"bool as string", base(`, "include_personal": "yes"`), "include_personal"},
		{"duplicate resource", `{"resources": ["tasks", "tasks"], "max_rows_per_query": 10}`, "resources[1]"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Parse([]byte(tc.doc))
			var se *Error
			if !errors.As(err, &se) || se.Field != tc.field {
				t.Fatalf("got %v, want an error on field %q", err, tc.field)
			}
			if !strings.Contains(err.Error(), tc.field) {
				t.Fatalf("message %q does not name %q", err, tc.field)
			}
		})
	}
}

// FuzzParse: no input panics; whatever parses is valid, never allows credentials and
// survives a round trip unchanged.
func FuzzParse(f *testing.F) {
	f.Add([]byte(`{"resources": ["tasks"], "include_personal": true, "max_rows_per_query": 100}`))
	f.Add([]byte(`{"resources": ["credentials"], "max_rows_per_query": 1}`))
	f.Add([]byte(`{"resources": ["notes"], "include_teams": ["` + team + `"], "max_rows_per_query": 10000}`))
	f.Fuzz(func(t *testing.T, doc []byte) {
		s, err := Parse(doc)
		if err != nil {
			return
		}
		if s.Validate() != nil || s.Allows("credentials") || s.Cap(1<<40) > MaxRows || len(s.Effective()) > 3 {
			t.Fatalf("accepted an invalid scope %+v", s)
		}
		b, _ := json.Marshal(s)
		again, err := Parse(b)
		if err != nil || !reflect.DeepEqual(normal(again), normal(s)) {
			t.Fatalf("round trip: %v %+v %+v", err, again, s)
		}
	})
}

func normal(s Scope) Scope {
	for _, p := range []*[]string{&s.Resources, &s.ExcludedResources, &s.IncludeTeams} {
		if len(*p) == 0 {
			*p = nil
		}
	}
	return s
}

func TestAuthorize(t *testing.T) {
	s := Scope{Resources: []string{"tasks", "notes"}, ExcludedResources: []string{"notes"},
		IncludeTeams: []string{team}, IncludePersonal: true, MaxRowsPerQuery: 10}
	const subject = "0b0c0d0e-0000-4000-8000-000000000001"
	rows, err := s.Authorize(subject, "tasks")
	if err != nil || rows.Subject() != subject || rows.Resource() != "tasks" || !rows.Personal() ||
		!reflect.DeepEqual(rows.Teams(), []string{team}) {
		t.Fatalf("Authorize(tasks) = %+v, %v", rows, err)
	}
	rows.Teams()[0] = "changed"
	if rows.Teams()[0] != team {
		t.Error("Teams must return a copy: a caller must not widen the rows")
	}
	for _, denied := range []string{"notes", "memories", "credentials", ""} {
		if _, err := s.Authorize(subject, denied); err == nil || !strings.Contains(err.Error(), "does not cover") {
			t.Errorf("Authorize(%q) = %v, want a refusal", denied, err)
		}
	}
	var zero Rows
	if zero.Subject() != "" || zero.Personal() || len(zero.Teams()) != 0 {
		t.Error("the zero Rows must read nothing")
	}
}
