package config

import (
	"net/url"
	"path/filepath"
	"reflect"
	"testing"

	"github.com/mosaic-federation/mosaic/gateway/api"
)

// envKeys are the overrides the fuzzer may set, one per input.
var envKeys = []string{"GATEWAY_TIER", "GATEWAY_LISTEN_API", "GATEWAY_LISTEN_IDLE_TIMEOUT",
	"GATEWAY_FEDERATION_GRANT_TTL", "GATEWAY_FEDERATION_RATE_LIMIT_PER_GRANT",
	"GATEWAY_FEDERATION_RATE_LIMIT_REFUSAL_HOLD", "GATEWAY_VALKEY_URL", "GATEWAY_STORAGE_SQLITE_PATH"}

// FuzzLoad decodes random documents with one random override, as Load does: never a
// panic, and a config it accepts holds every invariant the gateway relies on.
func FuzzLoad(f *testing.F) {
	f.Add([]byte(federated), uint8(0), "federated")
	f.Add([]byte(`{"tier":"team","site":"s","listen":{"api":"127.0.0.1:1","max_conns":256},"storage":{"postgres_url_file":"pg"}}`), uint8(2), "3s")
	f.Add([]byte(`{"federation":{"rate_limit":{"per_grant":"5/m","burst":1,"refusal_hold":"0s"}}}`), uint8(5), "10s")
	f.Add([]byte(`{"valkey":{"url":"redis://u:p@h/0"}}`), uint8(6), "redis://h/0")
	f.Add([]byte(`{"listen":{"max_conns":-1}}`), uint8(1), "")
	f.Add([]byte(`{} {}`), uint8(3), "-1h")
	f.Fuzz(func(t *testing.T, doc []byte, key uint8, value string) {
		k := envKeys[int(key)%len(envKeys)]
		cfg := &Config{}
		if err := decode(doc, cfg); err != nil {
			return
		}
		lookup := func(name string) (string, bool) { return value, name == k }
		if err := applyEnv(reflect.ValueOf(cfg).Elem(), EnvPrefix, "", lookup); err != nil {
			return
		}
		if err := cfg.normalise("/etc/mosaic"); err != nil {
			return
		}
		if cfg.Tier != TierLocal && cfg.Tier != TierStandalone && cfg.Tier != TierFederated {
			t.Fatalf("accepted tier %q", cfg.Tier)
		}
		if cfg.Listen.MaxConns < 1 || cfg.Storage.MaxConns < 1 || cfg.Federation.RateLimit.Burst < 1 {
			t.Fatalf("accepted bounds %+v %+v", cfg.Listen, cfg.Storage)
		}
		for _, d := range []Duration{cfg.Listen.ReadHeaderTimeout, cfg.Listen.IdleTimeout, cfg.Federation.GrantTTL, cfg.Federation.EnrollmentTokenTTL} {
			if d.Duration <= 0 {
				t.Fatalf("accepted a duration of %v", d)
			}
		}
		if h := cfg.Federation.RateLimit.Hold(); h < 0 || h > maxRefusalHold {
			t.Fatalf("accepted refusal_hold %v", h)
		}
		for _, r := range []string{cfg.Federation.RateLimit.PerGrant, cfg.Federation.RateLimit.PerAddress} {
			if _, err := api.ParseRate(r); err != nil {
				t.Fatalf("accepted rate %q", r)
			}
		}
		if u, err := url.Parse(cfg.Valkey.URL); err == nil && u.User != nil {
			t.Fatal("accepted credentials in valkey.url")
		}
		for _, p := range []string{cfg.Storage.SQLitePath, cfg.Storage.PostgresURLFile, cfg.CA.Root, cfg.SealingKeyFile, cfg.AuditKeyFile} {
			if p != "" && !filepath.IsAbs(p) {
				t.Fatalf("left path %q relative", p)
			}
		}
		for _, field := range cfg.required() {
			if field.value == "" {
				t.Fatalf("accepted the %s tier without %s", cfg.Tier, field.name)
			}
		}
	})
}
