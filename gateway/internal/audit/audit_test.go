package audit

import (
	"strings"
	"testing"
	"unicode/utf8"
)

func TestEntriesAreBounded(t *testing.T) {
	huge := strings.Repeat("é", 40000)
	e := Entry{RequestID: huge, Actor: huge, Action: huge, Outcome: huge, Reason: huge, Detail: huge + "\xff"}.bounded()
	total := 0
	for _, f := range []string{e.RequestID, e.Actor, e.Action, e.Outcome, e.Reason, e.Detail} {
		if !utf8.ValidString(f) {
			t.Errorf("a field is not valid UTF-8 after cutting: %q", f[len(f)-8:])
		}
		total += len(f)
	}
	if total > 1100 {
		t.Errorf("a bounded entry holds %d bytes of text", total)
	}
	if short := (Entry{Action: "POST /api/federation/v1/list/{resource}"}).bounded(); short.Action != "POST /api/federation/v1/list/{resource}" {
		t.Errorf("a short field was changed: %q", short.Action)
	}
}
