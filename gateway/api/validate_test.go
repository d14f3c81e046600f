package api

import (
	"errors"
	"strings"
	"testing"
)

func TestCanonicalUUID(t *testing.T) {
	for s, want := range map[string]bool{
		"0b0c0d0e-0000-4000-8000-000000000001":   true,
		"0B0C0D0E-0000-4000-8000-000000000001":   false,
		"0b0c0d0e000040008000000000000001":       false,
		"{0b0c0d0e-0000-4000-8000-000000000001}": false,
		"0b0c0d0e-0000-4000-8000-00000000000g":   false,
		"":                                       false,
	} {
		if CanonicalUUID(s) != want {
			t.Errorf("CanonicalUUID(%q) != %v", s, want)
		}
	}
}

func TestValidate(t *testing.T) {
	tests := []struct {
		name string
		v    interface{ Validate() error }
		code string
	}{
		{"ok", FedListRequest{Limit: 5, Filter: Filter{Status: StatusDone}}, ""},
		{"upper-case status", FedListRequest{Filter: Filter{Status: "DONE"}}, CodeInvalidStatus},
		{"unknown status", Filter{Status: "later"}, CodeInvalidStatus},
		{"team not a uuid", Filter{TeamID: "core"}, CodeInvalidTeamID},
		{"negative limit", FedListRequest{Limit: -1}, CodeInvalidLimit},
		{"long cursor", FedListRequest{Cursor: strings.Repeat("a", MaxCursor+1)}, CodeInvalidCursor},
		{"no token", EnrollRequest{CSRPEM: "x"}, CodeInvalidToken},
	}
	for _, tc := range tests {
		err := tc.v.Validate()
		var fe *FieldError
		switch {
		case tc.code == "" && err != nil:
			t.Errorf("%s: %v", tc.name, err)
		case tc.code != "" && (!errors.As(err, &fe) || fe.Code != tc.code):
			t.Errorf("%s: got %v, want code %s", tc.name, err, tc.code)
		}
	}
}
