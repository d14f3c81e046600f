package world

import (
	"encoding/json"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"
)

func TestArgvBuilders(t *testing.T) {
	pg := postgresArgs("/run/work/postgres/data", "/run/work/postgres", 5433)
	for _, want := range [][]string{{"-D", "/run/work/postgres/data"}, {"-p", "5433"}, {"-c", "listen_addresses=127.0.0.1"}} {
		if i := slices.Index(pg, want[0]); i < 0 || !slices.Contains(pg, want[1]) {
			t.Errorf("postgres argv %v lacks %v", pg, want)
		}
	}
	vk := valkeyArgs("/run/work/valkey", 6380)
	pairs := map[string]string{}
	for i := 0; i+1 < len(vk); i += 2 {
		pairs[vk[i]] = vk[i+1]
	}
	want := map[string]string{"--bind": "127.0.0.1", "--port": "6380", "--save": "", "--appendonly": "no"}
	for k, v := range want {
		if pairs[k] != v {
			t.Errorf("valkey %s = %q, want %q (argv %v)", k, pairs[k], v, vk)
		}
	}
	ca := stepCAInitArgs("work", "/s/ca.pass", "/s/prov.pass")
	for _, flag := range []string{"--deployment-type", "--password-file", "--provisioner-password-file", "--provisioner"} {
		if !slices.Contains(ca, flag) {
			t.Errorf("step ca init argv %v lacks %s", ca, flag)
		}
	}
}

func TestPostgresURLEscapes(t *testing.T) {
	got := postgresURL("p@ss/word", 5432, "gateway")
	if got != "postgres://mosaic:p%40ss%2Fword@127.0.0.1:5432/gateway?sslmode=disable" {
		t.Fatal(got)
	}
}

func TestGatewayConfigHasEveryFederatedField(t *testing.T) {
	cfg := gatewayConfig("work", 8080, 8443, "https://127.0.0.1:9000", "redis://127.0.0.1:6379/0")
	b, _ := json.Marshal(cfg)
	var back map[string]any
	_ = json.Unmarshal(b, &back)
	for _, path := range [][]string{{"tier"}, {"site"}, {"listen", "api"}, {"listen", "federation"},
		{"federation", "public_url"}, {"storage", "postgres_url_file"}, {"valkey", "url"}, {"ca", "url"},
		{"ca", "root"}, {"ca", "provisioner"}, {"ca", "provisioner_password_file"}, {"sealing_key_file"}} {
		var v any = back
		for _, k := range path {
			v = v.(map[string]any)[k]
		}
		if s, _ := v.(string); s == "" {
			t.Errorf("field %v is empty", path)
		}
	}
}

func TestMergeIsDeep(t *testing.T) {
	dst := map[string]any{"a": 1, "storage": map[string]any{"postgres_url_file": "x", "keep": "y"}}
	got := merge(dst, map[string]any{"storage": map[string]any{"postgres_url_file": "z"}, "b": 2})
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
	for _, name := range []string{ListenerProvisioner, BrokenProvisioner} {
		write(filepath.Join(dir, name+".pub.json"), `{"kty":"EC","kid":"k"}`)
		write(filepath.Join(dir, name+".key.json"), `{"protected":"p","encrypted_key":"k","iv":"i","ciphertext":"c","tag":"t"}`)
	}
	if err := configureCA(caJSON, filepath.Join(dir, "templates"), dir); err != nil {
		t.Fatal(err)
	}
	var cfg struct {
		Authority struct {
			Provisioners []struct {
				Name         string
				EncryptedKey string
				Claims       map[string]string
				Options      struct{ X509 struct{ TemplateFile string } }
			}
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
