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

func TestConfigureCA(t *testing.T) {
	dir := t.TempDir()
	caJSON := filepath.Join(dir, "ca.json")
	write := func(p, s string) {
		if err := os.WriteFile(p, []byte(s), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	write(caJSON, `{"address":"127.0.0.1:9000","authority":{"provisioners":[{"type":"JWK","name":"federation","key":{},"encryptedKey":"e"}]}}`)
	for _, name := range ExtraProvisioners() {
		write(filepath.Join(dir, name+".pub.json"), `{"kty":"EC","kid":"k"}`)
		write(filepath.Join(dir, name+".key.json"), `{"protected":"p","encrypted_key":"k","iv":"i","ciphertext":"c","tag":"t"}`)
	}
	if err := ConfigureCA(caJSON, filepath.Join(dir, "templates"), dir); err != nil {
		t.Fatal(err)
	}
	var cfg struct {
		Authority struct {
			Provisioners []struct {
				Name         string
				EncryptedKey string
				Claims       map[string]any
				Options      struct{ X509 struct{ TemplateFile string } }
			}
		}
		CRL struct {
			Enabled, GenerateOnRevoke bool
		}
	}
	b, _ := os.ReadFile(caJSON)
	if err := json.Unmarshal(b, &cfg); err != nil {
		t.Fatal(err)
	}
	p := cfg.Authority.Provisioners
	if len(p) != 3 || p[0].Name != FederationProvisioner {
		t.Fatalf("provisioners: %+v", p)
	}
	if p[1].EncryptedKey != "p.k.i.c.t" || p[0].Claims["defaultTLSCertDuration"] != "720h" {
		t.Errorf("listener key %q, claims %v", p[1].EncryptedKey, p[0].Claims)
	}
	// step-ca's own /renew would copy our OIDs without the grant check (SPEC §6d).
	if p[0].Claims["minTLSCertDuration"] != "1m" {
		t.Errorf("the federation provisioner must allow certificates of minutes: %v", p[0].Claims)
	}
	if p[0].Claims["disableRenewal"] != true {
		t.Errorf("renewal at step-ca is not disabled for the federation provisioner: %v", p[0].Claims)
	}
	if !cfg.CRL.Enabled || !cfg.CRL.GenerateOnRevoke {
		t.Errorf("the CRL is not enabled and regenerated on revocation: %+v", cfg.CRL)
	}
	tpl, err := os.ReadFile(p[0].Options.X509.TemplateFile)
	if err != nil {
		t.Fatal(err)
	}
	for _, must := range []string{".Token.grant_id", ".Token.subject_user_id", "1.3.6.1.4.1.99999.1", "1.3.6.1.4.1.99999.2", "clientAuth", "fail", "regexMatch"} {
		if !strings.Contains(string(tpl), must) {
			t.Errorf("federation template lacks %q", must)
		}
	}
	if strings.Contains(string(tpl), ".Insecure") {
		t.Error("federation template reads unsigned .Insecure data")
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

func TestSetCAAddress(t *testing.T) {
	stepPath := t.TempDir()
	cfgDir := filepath.Join(stepPath, "config")
	if err := os.MkdirAll(cfgDir, 0o700); err != nil {
		t.Fatal(err)
	}
	for name, body := range map[string]string{"ca.json": `{"address":"127.0.0.1:9000","root":"r","crl":{"enabled":true}}`, "defaults.json": `{"ca-url":"https://127.0.0.1:9000","fingerprint":"f"}`} {
		if err := os.WriteFile(filepath.Join(cfgDir, name), []byte(body), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	url, err := SetCAAddress(stepPath, "127.0.0.1:4242")
	if err != nil || url != "https://127.0.0.1:4242" {
		t.Fatalf("url %q, err %v", url, err)
	}
	var ca map[string]any
	var defaults map[string]string
	if err := readJSON(filepath.Join(cfgDir, "ca.json"), &ca); err != nil {
		t.Fatal(err)
	}
	if err := readJSON(filepath.Join(cfgDir, "defaults.json"), &defaults); err != nil {
		t.Fatal(err)
	}
	// step-ca's default distribution point would omit the port.
	if crl, _ := ca["crl"].(map[string]any); crl["idpURL"] != "https://127.0.0.1:4242/1.0/crl" {
		t.Errorf("the CRL's distribution point: %v", ca["crl"])
	}
	if ca["address"] != "127.0.0.1:4242" || ca["root"] != "r" {
		t.Errorf("ca.json %v", ca)
	}
	if defaults["ca-url"] != url || defaults["fingerprint"] != "f" {
		t.Errorf("defaults.json %v", defaults)
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
