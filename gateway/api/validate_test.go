package api

import (
	"errors"
	"strings"
	"testing"
	"time"
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
		{"after", FedListRequest{After: &Keyset{CreatedAt: time.Unix(1, 0), ID: "0b0c0d0e-0000-4000-8000-000000000001"}}, ""},
		{"after and cursor", FedListRequest{Cursor: "x", After: &Keyset{CreatedAt: time.Unix(1, 0), ID: "0b0c0d0e-0000-4000-8000-000000000001"}}, CodeInvalidCursor},
		{"after without a time", FedListRequest{After: &Keyset{ID: "0b0c0d0e-0000-4000-8000-000000000001"}}, CodeInvalidCursor},
		{"after in year 0 in UTC", FedListRequest{After: &Keyset{CreatedAt: time.Date(1, 1, 1, 0, 0, 0, 0, time.FixedZone("", 3600)), ID: "0b0c0d0e-0000-4000-8000-000000000001"}}, CodeInvalidCursor},
		{"after with a bad id", FedListRequest{After: &Keyset{CreatedAt: time.Unix(1, 0), ID: "1"}}, CodeInvalidCursor},
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

func TestKeysetOrder(t *testing.T) {
	at := time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC)
	a := Keyset{CreatedAt: at, ID: "00000000-0000-4000-8000-00000000000b"}
	b := Keyset{CreatedAt: at, ID: "00000000-0000-4000-8000-00000000000a"}
	c := Keyset{CreatedAt: at.Add(-time.Microsecond), ID: "00000000-0000-4000-8000-00000000000f"}
	if !a.Before(b) || !b.Before(c) || !a.Before(c) || c.Before(a) || a.Before(a) {
		t.Fatal("keyset order is not newest first with the greater id first")
	}
}
