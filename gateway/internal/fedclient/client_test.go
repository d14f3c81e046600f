package fedclient

import (
	"strings"
	"testing"
)

func TestSafeCode(t *testing.T) {
	for in, want := range map[string]string{"unknown_token": "unknown_token", "<script>": "unknown", strings.Repeat("a", 65): "unknown", "": ""} {
		if got := safeCode(in); got != want {
			t.Errorf("safeCode(%q) = %q", in, got)
		}
	}
}
