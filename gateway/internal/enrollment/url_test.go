package enrollment

import (
	"strings"
	"testing"
)

const fp = "9f487e9f12263f1517e359d50548686019759d65557cab96d256d7c7f1161160"

func TestParse(t *testing.T) {
	good := "https://127.0.0.1:8443/api/federation/v1/enroll#token=met_abc&ca-sha256=" + fp
	inv, err := Parse("  " + good + "\n")
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
		if _, err := Parse(u); err == nil {
			t.Errorf("%s: accepted %q", name, u)
		} else if strings.Contains(err.Error(), "met_abc") {
			t.Errorf("%s: the error quotes the token: %v", name, err)
		}
	}
}

func TestTokens(t *testing.T) {
	tok, err := NewToken()
	if err != nil {
		t.Fatal(err)
	}
	if got := Loggable(tok); got != tok[:8]+"…" {
		t.Errorf("Loggable(%q) = %q", tok, got)
	}
	for _, bad := range []string{"", "met_short", "x" + tok[1:], tok + "A", strings.Repeat("a", 100)} {
		if got := Loggable(bad); got != "(malformed)" {
			t.Errorf("Loggable(%q) = %q: a token not of our shape must never be quoted", bad, got)
		}
	}
	if string(HashToken(tok)) == string(HashToken(tok+"x")) || len(HashToken(tok)) != 32 {
		t.Error("HashToken must be SHA-256")
	}
}

func TestURLRoundTripAndPins(t *testing.T) {
	der := []byte("a root certificate's DER")
	u := URL("https://work.example:8443/", "met_abc", der)
	inv, err := Parse(u)
	if err != nil || inv.Token != "met_abc" || inv.Base != "https://work.example:8443" {
		t.Fatalf("%q: %+v %v", u, inv, err)
	}
	if !inv.Pins(der) || inv.Pins([]byte("another root")) {
		t.Error("Pins must accept exactly the root whose fingerprint the URL carries")
	}
}

func TestPrefixNeverQuotesMoreThanEightCharacters(t *testing.T) {
	good := "met_" + "AbCdEfGhIjKlMnOpQrStUvWxYz0123456789-_abcde"
	if got := Loggable(good); got != "met_AbCd…" {
		t.Fatalf("got %q", got)
	}
	for _, bad := range []string{"met_\u00e9\u00e9\u00e9\u00e9\u00e9", "x\x00y", "short", good + "x"} {
		if got := Loggable(bad); got != "(malformed)" {
			t.Errorf("Loggable(%q) = %q", bad, got)
		}
	}
}
