package config

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

const federated = `{"tier": "federated", "site": "work",
 "listen": {"api": "127.0.0.1:8080", "federation": "127.0.0.1:8443"},
 "federation": {"public_url": "https://127.0.0.1:8443"},
 "storage": {"postgres_url_file": "secrets/pg.url"},
 "valkey": {"url": "redis://127.0.0.1:6379/0"},
 "ca": {"url": "https://127.0.0.1:9000", "root": "ca/root_ca.crt",
        "provisioner": "federation", "provisioner_password_file": "secrets/ca.pass"},
 "sealing_key_file": "secrets/sealing.key", "audit_key_file": "secrets/audit.key"}`

func write(t *testing.T, body string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "gateway.json")
	if err := os.WriteFile(p, []byte(body), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

func env(m map[string]string) func(string) (string, bool) {
	return func(k string) (string, bool) { v, ok := m[k]; return v, ok }
}

func TestLoadFederatedExample(t *testing.T) {
	p := write(t, federated)
	cfg, err := Load(p, env(nil))
	if err != nil {
		t.Fatal(err)
	}
	dir := filepath.Dir(p)
	checks := []struct{ name, got, want string }{
		{"tier", cfg.Tier, TierFederated},
		{"postgres_url_file resolved", cfg.Storage.PostgresURLFile, filepath.Join(dir, "secrets/pg.url")},
		{"ca.root resolved", cfg.CA.Root, filepath.Join(dir, "ca/root_ca.crt")},
		{"listener provisioner default", cfg.CA.ListenerProvisioner, "gateway"},
		{"valkey url kept", cfg.Valkey.URL, "redis://127.0.0.1:6379/0"},
	}
	for _, c := range checks {
		if c.got != c.want {
			t.Errorf("%s: got %q, want %q", c.name, c.got, c.want)
		}
	}
	if cfg.Federation.EnrollmentTokenTTL.Duration != 15*time.Minute || cfg.Federation.GrantTTL.Duration != 2160*time.Hour {
		t.Errorf("defaults: got %v / %v", cfg.Federation.EnrollmentTokenTTL, cfg.Federation.GrantTTL)
	}
	if cfg.Federation.ClientCertLifetime.Duration != 24*time.Hour || cfg.Federation.RenewalOverlap.Duration != 5*time.Minute {
		t.Errorf("lifetime defaults: got %v / %v", cfg.Federation.ClientCertLifetime, cfg.Federation.RenewalOverlap)
	}
}

func TestShortLifetimeWithItsOverlap(t *testing.T) {
	body := strings.Replace(federated, `"public_url": "https://127.0.0.1:8443"`,
		`"public_url": "https://127.0.0.1:8443", "client_cert_lifetime": "3m", "renewal_overlap": "30s"`, 1)
	cfg, err := Load(write(t, body), env(nil))
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Federation.ClientCertLifetime.Duration != 3*time.Minute || cfg.Federation.RenewalOverlap.Duration != 30*time.Second {
		t.Fatalf("got %v / %v", cfg.Federation.ClientCertLifetime, cfg.Federation.RenewalOverlap)
	}
}

func TestLoadErrorsNameTheField(t *testing.T) {
	tests := []struct {
		name, body string
		env        map[string]string
		want       string
	}{
		{"unknown field", `{"tier":"local","colour":"blue"}`, nil, `unknown field "colour"`},
		{"unknown nested field", `{"tier":"local","listen":{"apii":"x"}}`, nil, `unknown field "apii"`},
		{"unknown tier", `{"tier":"cluster"}`, nil, `field "tier": unknown tier "cluster"`},
		{"wrong type", `{"tier": 3}`, nil, `field "tier"`},
		{"missing ca.url", strings.Replace(federated, `"url": "https://127.0.0.1:9000", `, "", 1), nil, `field "ca.url"`},
		{"missing valkey", strings.Replace(federated, `"valkey": {"url": "redis://127.0.0.1:6379/0"},`, "", 1), nil, `"valkey.url"`},
		{"standalone needs postgres", `{"tier":"standalone","site":"x","listen":{"api":"127.0.0.1:1"}}`, nil, `field "storage.postgres_url_file"`},
		{"bad duration", `{"federation":{"grant_ttl":"soon"}}`, nil, `"soon" is not a positive duration`},
		{"bad env duration", `{}`, map[string]string{"GATEWAY_FEDERATION_GRANT_TTL": "-1h"}, `GATEWAY_FEDERATION_GRANT_TTL (field "federation.grant_ttl")`},
		{"env unknown tier", `{}`, map[string]string{"GATEWAY_TIER": "nope"}, `unknown tier "nope"`},
		{"trailing data", `{} {}`, nil, "trailing data"},
		{"lifetime too short", `{"federation":{"client_cert_lifetime":"1m"}}`, nil, `field "federation.client_cert_lifetime" must be from "2m"`},
		{"lifetime too long", `{"federation":{"client_cert_lifetime":"721h"}}`, nil, `field "federation.client_cert_lifetime"`},
		{"overlap a third", `{"federation":{"client_cert_lifetime":"3m","renewal_overlap":"1m"}}`, nil, `"federation.renewal_overlap" (1m0s) must be under a third`},
		{"default overlap over a short lifetime", `{"federation":{"client_cert_lifetime":"10m"}}`, nil, `"federation.renewal_overlap" (5m0s)`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Load(write(t, tc.body), env(tc.env))
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("got error %v, want it to contain %q", err, tc.want)
			}
		})
	}
}

func TestEnvOverridesEveryLevel(t *testing.T) {
	cfg, err := Load(write(t, federated), env(map[string]string{
		"GATEWAY_LISTEN_API":                   "127.0.0.1:9999",
		"GATEWAY_CA_PROVISIONER_PASSWORD_FILE": "/abs/pass",
		"GATEWAY_FEDERATION_GRANT_TTL":         "1h",
		"GATEWAY_SITE":                         "office",
	}))
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Listen.API != "127.0.0.1:9999" || cfg.CA.ProvisionerPasswordFile != "/abs/pass" ||
		cfg.Federation.GrantTTL.Duration != time.Hour || cfg.Site != "office" {
		t.Fatalf("overrides not applied: %+v", cfg)
	}
}

func TestTeamIsADeprecatedAliasOfStandalone(t *testing.T) {
	cfg, err := Load(write(t, `{"tier":"team","site":"x","listen":{"api":"127.0.0.1:1"},"storage":{"postgres_url_file":"pg"}}`), env(nil))
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Tier != TierStandalone || len(cfg.Warnings) != 1 || !strings.Contains(cfg.Warnings[0], "deprecated") {
		t.Fatalf("tier %q warnings %v", cfg.Tier, cfg.Warnings)
	}
}

func TestNoFileIsTheLocalTier(t *testing.T) {
	cfg, err := Load("", env(nil))
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Tier != TierLocal || !strings.HasSuffix(cfg.Storage.SQLitePath, filepath.Join("data", "gateway.db")) {
		t.Fatalf("got %+v", cfg)
	}
}

func TestValkeyCredentialsMustComeFromAFile(t *testing.T) {
	body := strings.Replace(federated, `redis://127.0.0.1:6379/0`, `redis://:hunter2@127.0.0.1:6379/0`, 1)
	_, err := Load(write(t, body), env(nil))
	if err == nil || !strings.Contains(err.Error(), "valkey.url_file") || strings.Contains(err.Error(), "hunter2") {
		t.Fatalf("got %v", err)
	}
}

func TestRateLimitDefaultsAndErrors(t *testing.T) {
	var r RateLimit
	if err := r.normalise(); err != nil || r.PerGrant != "20/s" || r.Burst != 40 || r.PerAddress != "10/s" || r.Hold() != time.Second {
		t.Fatalf("%+v %v", r, err)
	}
	for _, bad := range []RateLimit{{PerGrant: "fast"}, {PerGrant: "0/s"}, {PerAddress: "10/d"}, {Burst: -1},
		{RefusalHold: "-1s"}, {RefusalHold: "11s"}, {RefusalHold: "soon"}} {
		if err := bad.normalise(); err == nil || !strings.Contains(err.Error(), "federation.rate_limit.") {
			t.Errorf("%+v: %v", bad, err)
		}
	}
}

func TestPeerCacheDefaultsAndErrors(t *testing.T) {
	var c PeerCache
	if err := c.normalise(); err != nil || c.MaxBytes != 64<<20 {
		t.Fatalf("%+v %v", c, err)
	}
	if ttl, stale := c.Durations(); ttl != 5*time.Second || stale != 10*time.Minute {
		t.Errorf("defaults: ttl %v, max_staleness %v", ttl, stale)
	}
	off := PeerCache{TTL: "0s"}
	if err := off.normalise(); err != nil {
		t.Errorf("ttl 0 turns fresh hits off: %v", err)
	}
	for _, bad := range []PeerCache{{TTL: "61s"}, {TTL: "-1s"}, {TTL: "soon"}, {MaxStaleness: "-1m"},
		{MaxStaleness: "25h"}, {MaxBytes: 1024}, {MaxBytes: 5 << 30}} {
		if err := bad.normalise(); err == nil || !strings.Contains(err.Error(), "federation.cache.") {
			t.Errorf("%+v: %v", bad, err)
		}
	}
}

func TestPeerTimeoutAndBreakerDefaults(t *testing.T) {
	cfg, err := Load(write(t, federated), env(nil))
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Federation.PeerTimeout.Duration != 3*time.Second || cfg.Federation.Breaker.OpenFor.Duration != 10*time.Second {
		t.Errorf("peer_timeout %v, breaker.open_for %v", cfg.Federation.PeerTimeout, cfg.Federation.Breaker.OpenFor)
	}
	cfg, err = Load(write(t, federated), env(map[string]string{"GATEWAY_FEDERATION_CACHE_TTL": "0s",
		"GATEWAY_FEDERATION_PEER_TIMEOUT": "1s"}))
	if err != nil || cfg.Federation.Cache.TTL != "0s" || cfg.Federation.PeerTimeout.Duration != time.Second {
		t.Errorf("environment overrides: %v %+v", err, cfg.Federation)
	}
	if _, err := Load(write(t, federated), env(map[string]string{"GATEWAY_FEDERATION_PEER_TIMEOUT": "31s"})); err == nil ||
		!strings.Contains(err.Error(), "federation.peer_timeout") {
		t.Errorf("a peer timeout over the request deadline: %v", err)
	}
}

func TestListenLimitsDefaultsAndErrors(t *testing.T) {
	var l Listen
	if err := l.normalise(); err != nil || l.MaxConns != 4096 || l.ReadHeaderTimeout.Duration != 5*time.Second || l.IdleTimeout.Duration != 120*time.Second {
		t.Fatalf("%+v %v", l, err)
	}
	for _, bad := range []Listen{{MaxConns: -1}, {MaxConns: 1_000_001}} {
		if err := bad.normalise(); err == nil || !strings.Contains(err.Error(), `"listen.max_conns"`) {
			t.Errorf("%+v: %v", bad, err)
		}
	}
	cfg, err := Load(write(t, `{"listen":{"max_conns":256}}`), env(map[string]string{"GATEWAY_LISTEN_IDLE_TIMEOUT": "3s"}))
	if err != nil || cfg.Listen.MaxConns != 256 || cfg.Listen.IdleTimeout.Duration != 3*time.Second {
		t.Fatalf("%+v %v", cfg.Listen, err)
	}
}
