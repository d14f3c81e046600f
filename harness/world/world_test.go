package world

import (
	"encoding/json"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

func TestPostgresURLEscapes(t *testing.T) {
	got := PostgresURL("p@ss/word", 5432, "gateway")
	if got != "postgres://mosaic:p%40ss%2Fword@127.0.0.1:5432/gateway?sslmode=disable" {
		t.Fatal(got)
	}
}

func TestGatewayConfigHasEveryFederatedField(t *testing.T) {
	cfg := GatewayConfig("work", "127.0.0.1:8080", "127.0.0.1:8443", "https://127.0.0.1:9000", "redis://127.0.0.1:6379/0")
	b, _ := json.Marshal(cfg)
	var back map[string]any
	_ = json.Unmarshal(b, &back)
	for _, path := range [][]string{{"tier"}, {"site"}, {"listen", "api"}, {"listen", "federation"},
		{"federation", "public_url"}, {"storage", "postgres_url_file"}, {"valkey", "url"}, {"ca", "url"},
		{"ca", "root"}, {"ca", "provisioner"}, {"ca", "provisioner_password_file"}, {"sealing_key_file"}, {"audit_key_file"}} {
		var v any = back
		for _, k := range path {
			v = v.(map[string]any)[k]
		}
		if s, _ := v.(string); s == "" {
			t.Errorf("field %v is empty", path)
		}
	}
	if got := back["federation"].(map[string]any)["public_url"]; got != "https://127.0.0.1:8443" {
		t.Errorf("public_url %v: the peer reaches the federation listener there", got)
	}
	// The files the config names are the ones the world and its backend write.
	for _, f := range []string{PostgresURLFile, ProvisionerPasswordFile, SealingKeyFile, AuditKeyFile, CARootFile} {
		if !strings.Contains(string(b), `"`+f+`"`) {
			t.Errorf("config does not name %s", f)
		}
	}
}

func TestMergeIsDeep(t *testing.T) {
	dst := map[string]any{"a": 1, "storage": map[string]any{"postgres_url_file": "x", "keep": "y"}}
	got := Merge(dst, map[string]any{"storage": map[string]any{"postgres_url_file": "z"}, "b": 2})
	want := map[string]any{"a": 1, "b": 2, "storage": map[string]any{"postgres_url_file": "z", "keep": "y"}}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("got %v, want %v", got, want)
	}
}

func TestSiteNames(t *testing.T) {
	for _, tc := range []struct {
		name string
		ok   bool
	}{{"home", true}, {"lab-2", true}, {"", false}, {"Work", false}, {"a/b", false}, {"../x", false}} {
		if got := validSiteName(tc.name); got != tc.ok {
			t.Errorf("validSiteName(%q) = %v", tc.name, got)
		}
	}
}

func TestEnsureSealingKeyKeepsTheFirstKey(t *testing.T) {
	path := filepath.Join(t.TempDir(), "sealing.key")
	if err := ensureKey(path); err != nil {
		t.Fatal(err)
	}
	first, _ := os.ReadFile(path)
	if err := ensureKey(path); err != nil {
		t.Fatal(err)
	}
	again, _ := os.ReadFile(path)
	if len(first) != 45 || string(first) != string(again) {
		t.Fatalf("key %q then %q", first, again)
	}
	if st, _ := os.Stat(path); st.Mode().Perm() != 0o600 {
		t.Errorf("mode %v", st.Mode().Perm())
	}
}
