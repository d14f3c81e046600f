package fedclient

import (
	"strings"
	"testing"
)

const fp = "9f487e9f12263f1517e359d50548686019759d65557cab96d256d7c7f1161160"

func TestParseEnrollmentURL(t *testing.T) {
	good := "https://127.0.0.1:8443/api/federation/v1/enroll#token=met_abc&ca-sha256=" + fp
	inv, err := ParseEnrollmentURL("  " + good + "\n")
	if err != nil || inv.Base != "https://127.0.0.1:8443" || inv.Token != "met_abc" || inv.Fingerprint != fp {
		t.Fatalf("%+v %v", inv, err)
	}
	bad := map[string]string{
		"http":             strings.Replace(good, "https://", "http://", 1),
		"userinfo":         strings.Replace(good, "https://", "https://evil@", 1),
		"other path":       strings.Replace(good, "/enroll", "/enrol", 1),
		"query":            strings.Replace(good, "/enroll#", "/enroll?x=1#", 1),
		"no token":         strings.Replace(good, "token=met_abc&", "", 1),
		"two tokens":       strings.Replace(good, "token=met_abc", "token=met_abc&token=met_def", 1),
		"short print":      strings.Replace(good, fp, fp[:60], 1),
		"not hex":          strings.Replace(good, fp, strings.Repeat("z", 64), 1),
		"bad port":         strings.Replace(good, ":8443", ":99999", 1),
		"double-encoded &": "https://h/api/federation/v1/enroll#token=a%2526ca-sha256=" + fp,
	}
	for name, u := range bad {
		if _, err := ParseEnrollmentURL(u); err == nil {
			t.Errorf("%s: accepted %q", name, u)
		} else if strings.Contains(err.Error(), "met_abc") {
			t.Errorf("%s: the error quotes the token: %v", name, err)
		}
	}
}

func TestSafeCode(t *testing.T) {
	for in, want := range map[string]string{"unknown_token": "unknown_token", "<script>": "unknown", strings.Repeat("a", 65): "unknown", "": ""} {
		if got := safeCode(in); got != want {
			t.Errorf("safeCode(%q) = %q", in, got)
		}
	}
}
