// Package config loads gateway.json (SPEC §4): strict decoding, GATEWAY_* environment
// overrides, per-tier validation that names the offending field, and relative paths
// resolved against the file's own folder. Secrets are never held here, only the paths
// of the files that hold them.
package config

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"time"

	"github.com/mosaic-federation/mosaic/gateway/api"
)

// Tiers.
const (
	TierLocal      = "local"
	TierStandalone = "standalone"
	TierFederated  = "federated"
)

// Config is the whole of gateway.json.
type Config struct {
	Tier           string     `json:"tier"`
	Site           string     `json:"site"`
	Listen         Listen     `json:"listen"`
	Federation     Federation `json:"federation"`
	Storage        Storage    `json:"storage"`
	Valkey         Valkey     `json:"valkey"`
	CA             CA         `json:"ca"`
	SealingKeyFile string     `json:"sealing_key_file"`
	// AuditKeyFile holds the key of the audit chain's MACs, outside the database.
	AuditKeyFile string    `json:"audit_key_file"`
	Telemetry    Telemetry `json:"telemetry"`

	// Warnings collects deprecations met while loading (the caller logs them).
	Warnings []string `json:"-"`
}

type Listen struct {
	API        string `json:"api"`
	Federation string `json:"federation"`
	// Limits of both listeners (SPEC §7 M7-4). MaxConns (default 4096) caps each
	// listener's open connections: at the cap the oldest idle one is closed.
	MaxConns          int      `json:"max_conns"`
	ReadHeaderTimeout Duration `json:"read_header_timeout"` // default "5s"
	IdleTimeout       Duration `json:"idle_timeout"`        // default "120s"
	// Metrics serves /metrics, and only there ("": nowhere): its per-peer and
	// per-grant series must not reach the API listener's users.
	Metrics string `json:"metrics"`
}

type Federation struct {
	PublicURL          string    `json:"public_url"`
	EnrollmentTokenTTL Duration  `json:"enrollment_token_ttl"`
	GrantTTL           Duration  `json:"grant_ttl"`
	RateLimit          RateLimit `json:"rate_limit"`
	// CRLRefresh is how often the listener fetches the CA's CRL (default 1m; also at
	// start and on each announced revocation).
	CRLRefresh Duration `json:"crl_refresh"`
	// PeerTimeout bounds each peer's answer on the requesting side (default 3s): a
	// slow peer makes an answer partial, never late.
	PeerTimeout Duration  `json:"peer_timeout"`
	Cache       PeerCache `json:"cache"`
	Breaker     Breaker   `json:"breaker"`
	// ClientCertLifetime is how long a federation client certificate this site issues
	// lives (default 24h), never past its grant's expiry; the requesting side renews
	// at ⅔ of it (SPEC §6d).
	ClientCertLifetime Duration `json:"client_cert_lifetime"`
	// RenewalOverlap is how long a renewed certificate's predecessor is still accepted
	// (default 5m), so requests in flight with it finish; under a third of the lifetime.
	RenewalOverlap Duration `json:"renewal_overlap"`
}

// PeerCache is the requesting side's cache of peer answers (SPEC §6c), in memory only.
type PeerCache struct {
	// TTL (default "5s", at most "60s", "0s" turns fresh hits off) is how long an
	// entry answers without a call.
	TTL string `json:"ttl"`
	// MaxStaleness (default "10m") is the oldest entry served, as stale, when the
	// peer fails.
	MaxStaleness string `json:"max_staleness"`
	// MaxBytes bounds the cache's memory (default 64 MiB).
	MaxBytes int64 `json:"max_bytes"`
}

// Breaker is the requesting side's circuit breaker per peer.
type Breaker struct {
	// OpenFor (default 10s) is how long an open breaker fails calls at once before
	// one probe may pass.
	OpenFor Duration `json:"open_for"`
}

// Bounds of the cache settings.
const (
	maxCacheTTL   = 60 * time.Second
	maxStaleness  = 24 * time.Hour
	maxCacheBytes = 4 << 30
)

// Durations of the cache settings (valid once the config is loaded).
func (c PeerCache) Durations() (ttl, maxStaleness time.Duration) {
	ttl, _ = time.ParseDuration(c.TTL)
	maxStaleness, _ = time.ParseDuration(c.MaxStaleness)
	return ttl, maxStaleness
}

// normalise fills the cache's defaults and checks them.
func (c *PeerCache) normalise() error {
	if c.TTL == "" {
		c.TTL = "5s"
	}
	if c.MaxStaleness == "" {
		c.MaxStaleness = "10m"
	}
	if c.MaxBytes == 0 {
		c.MaxBytes = 64 << 20
	}
	if d, err := time.ParseDuration(c.TTL); err != nil || d < 0 || d > maxCacheTTL {
		return fmt.Errorf(`config: field "federation.cache.ttl" must be a duration from "0s" (fresh hits off) to "%s", such as "5s"`, maxCacheTTL)
	}
	if d, err := time.ParseDuration(c.MaxStaleness); err != nil || d < 0 || d > maxStaleness {
		return fmt.Errorf(`config: field "federation.cache.max_staleness" must be a duration from "0s" (no stale answers) to "%s", such as "10m"`, maxStaleness)
	}
	if c.MaxBytes < 1<<20 || c.MaxBytes > maxCacheBytes {
		return fmt.Errorf(`config: field "federation.cache.max_bytes" must be from %d (1 MiB) to %d (4 GiB)`, 1<<20, maxCacheBytes)
	}
	return nil
}

// Bounds of federation.client_cert_lifetime: the federation provisioner's claims
// allow certificates from a minute (step-ca backdates by one) to 720h.
const (
	minCertLifetime = 2 * time.Minute
	maxCertLifetime = 720 * time.Hour
)

// normaliseLifetimes defaults and checks the client-certificate lifetime and the
// renewal overlap: an overlap of a third or more would leave two certificates valid
// for most of each one's life.
func (f *Federation) normaliseLifetimes() error {
	if f.ClientCertLifetime.Duration == 0 {
		f.ClientCertLifetime.Duration = 24 * time.Hour
	}
	if d := f.ClientCertLifetime.Duration; d < minCertLifetime || d > maxCertLifetime {
		return errors.New(`config: field "federation.client_cert_lifetime" must be from "2m" to "720h", such as "24h"`)
	}
	if f.RenewalOverlap.Duration == 0 {
		f.RenewalOverlap.Duration = 5 * time.Minute
	}
	if f.RenewalOverlap.Duration >= f.ClientCertLifetime.Duration/3 {
		return fmt.Errorf(`config: field "federation.renewal_overlap" (%s) must be under a third of "federation.client_cert_lifetime" (%s): shorten the overlap or lengthen the lifetime`,
			f.RenewalOverlap.Duration, f.ClientCertLifetime.Duration)
	}
	return nil
}

// RateLimit is the serving side's limits (SPEC §6b): per grant, shared by every
// replica through Valkey, and per client address on what needs no certificate.
type RateLimit struct {
	PerGrant   string `json:"per_grant"` // default "20/s"
	Burst      int    `json:"burst"`     // default 40
	PerAddress string `json:"per_address"`
	// RefusalHold (default "1s", "0s" turns it off) holds an over-limit address's 429
	// until its next request would be allowed, at most this long: a client that floods
	// without waiting for Retry-After is slowed to the rate it is allowed, instead of
	// taking the machine's CPU from everyone else.
	RefusalHold string `json:"refusal_hold"`
}

// maxRefusalHold bounds refusal_hold: a held refusal keeps its connection open.
const maxRefusalHold = 10 * time.Second

// Hold is refusal_hold as a duration (valid once the config is loaded).
func (r RateLimit) Hold() time.Duration {
	d, _ := time.ParseDuration(r.RefusalHold)
	return d
}

type Storage struct {
	PostgresURLFile string `json:"postgres_url_file"`
	SQLitePath      string `json:"sqlite_path"`
	// MaxConns bounds the process's one PostgreSQL pool (default 16): a flood of
	// requests queues here rather than exhausting the server every tenant shares.
	MaxConns int `json:"max_conns"`
}

type Valkey struct {
	URL     string `json:"url"`
	URLFile string `json:"url_file"`
}

type CA struct {
	URL                     string `json:"url"`
	Root                    string `json:"root"`
	Provisioner             string `json:"provisioner"`
	ProvisionerPasswordFile string `json:"provisioner_password_file"`
	ListenerProvisioner     string `json:"listener_provisioner"`
}

// Duration is a time.Duration written as a Go duration string ("15m").
type Duration struct{ time.Duration }

func (d *Duration) UnmarshalJSON(b []byte) error {
	var s string
	if err := json.Unmarshal(b, &s); err != nil {
		return errors.New("must be a duration string such as \"15m\"")
	}
	return d.Set(s)
}

func (d Duration) MarshalJSON() ([]byte, error) { return json.Marshal(d.String()) }

// Set parses a duration string (also used for environment overrides).
func (d *Duration) Set(s string) error {
	v, err := time.ParseDuration(s)
	if err != nil || v <= 0 {
		return fmt.Errorf("%q is not a positive duration such as \"15m\"", s)
	}
	d.Duration = v
	return nil
}

// EnvPrefix starts every environment override: GATEWAY_LISTEN_API overrides listen.api.
const EnvPrefix = "GATEWAY_"

// Load reads the config at path ("" means no file: the zero-setup local tier), applies
// environment overrides from lookup, fills defaults and validates.
func Load(path string, lookup func(string) (string, bool)) (*Config, error) {
	cfg := &Config{}
	dir, _ := os.Getwd()
	if path != "" {
		b, err := os.ReadFile(path)
		if err != nil {
			return nil, fmt.Errorf("config: %w", err)
		}
		if err := decode(b, cfg); err != nil {
			return nil, fmt.Errorf("config %s: %w", path, err)
		}
		abs, err := filepath.Abs(path)
		if err != nil {
			return nil, err
		}
		dir = filepath.Dir(abs)
	}
	if err := applyEnv(reflect.ValueOf(cfg).Elem(), EnvPrefix, "", lookup); err != nil {
		return nil, err
	}
	if err := cfg.normalise(dir); err != nil {
		return nil, err
	}
	return cfg, nil
}

func decode(b []byte, cfg *Config) error {
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(cfg); err != nil {
		var typeErr *json.UnmarshalTypeError
		switch {
		case errors.As(err, &typeErr):
			return fmt.Errorf("field %q: expected a %s", typeErr.Field, typeErr.Type)
		case strings.HasPrefix(err.Error(), "json: unknown field "):
			return fmt.Errorf("unknown field %s", strings.TrimPrefix(err.Error(), "json: unknown field "))
		}
		return err
	}
	if dec.More() {
		return errors.New("trailing data after the JSON object")
	}
	return nil
}

// applyEnv walks the struct by its JSON names: GATEWAY_CA_PROVISIONER_PASSWORD_FILE
// sets ca.provisioner_password_file.
func applyEnv(v reflect.Value, prefix, path string, lookup func(string) (string, bool)) error {
	t := v.Type()
	for i := range t.NumField() {
		f := t.Field(i)
		name, _, _ := strings.Cut(f.Tag.Get("json"), ",")
		if name == "" || name == "-" {
			continue
		}
		field, fpath := v.Field(i), join(path, name)
		key := prefix + strings.ToUpper(strings.ReplaceAll(fpath, ".", "_"))
		switch p := field.Addr().Interface().(type) {
		case *string:
			if s, ok := lookup(key); ok {
				*p = s
			}
		case *Duration:
			if s, ok := lookup(key); ok {
				if err := p.Set(s); err != nil {
					return fmt.Errorf("config: %s (field %q): %w", key, fpath, err)
				}
			}
		default:
			if field.Kind() == reflect.Struct {
				if err := applyEnv(field, prefix, fpath, lookup); err != nil {
					return err
				}
			}
		}
	}
	return nil
}

func join(path, name string) string {
	if path == "" {
		return name
	}
	return path + "." + name
}

// normalise fills defaults, checks the tier's required fields and resolves paths.
func (c *Config) normalise(dir string) error {
	switch c.Tier {
	case "":
		c.Tier = TierLocal
	case "team":
		c.Tier = TierStandalone
		c.Warnings = append(c.Warnings, `tier "team" is deprecated: write "standalone"`)
	case TierLocal, TierStandalone, TierFederated:
	default:
		return fmt.Errorf("config: field \"tier\": unknown tier %q (use local, standalone or federated)", c.Tier)
	}
	if c.Site == "" && c.Tier == TierLocal {
		c.Site = "local"
	}
	if c.Listen.API == "" && c.Tier == TierLocal {
		c.Listen.API = "127.0.0.1:8080"
	}
	if err := c.Listen.normalise(); err != nil {
		return err
	}
	if c.Storage.SQLitePath == "" {
		c.Storage.SQLitePath = "data/gateway.db"
	}
	switch {
	case c.Storage.MaxConns == 0:
		c.Storage.MaxConns = 16
	case c.Storage.MaxConns < 1 || c.Storage.MaxConns > 1000:
		return errors.New(`config: field "storage.max_conns" must be from 1 to 1000`)
	}
	if c.CA.ListenerProvisioner == "" {
		c.CA.ListenerProvisioner = "gateway"
	}
	if c.Federation.EnrollmentTokenTTL.Duration == 0 {
		c.Federation.EnrollmentTokenTTL.Duration = 15 * time.Minute
	}
	if c.Federation.GrantTTL.Duration == 0 {
		c.Federation.GrantTTL.Duration = 2160 * time.Hour
	}
	switch d := c.Federation.CRLRefresh.Duration; {
	case d == 0:
		c.Federation.CRLRefresh.Duration = time.Minute
	case d < 100*time.Millisecond || d > time.Hour:
		return errors.New(`config: field "federation.crl_refresh" must be from "100ms" to "1h", such as "1m"`)
	}
	if err := c.Federation.normaliseLifetimes(); err != nil {
		return err
	}
	if err := c.Federation.RateLimit.normalise(); err != nil {
		return err
	}
	if c.Federation.PeerTimeout.Duration == 0 {
		c.Federation.PeerTimeout.Duration = 3 * time.Second
	}
	if c.Federation.PeerTimeout.Duration > 30*time.Second {
		return errors.New(`config: field "federation.peer_timeout" must be at most "30s", the local API's own request deadline`)
	}
	if c.Federation.Breaker.OpenFor.Duration == 0 {
		c.Federation.Breaker.OpenFor.Duration = 10 * time.Second
	}
	if err := c.Federation.Cache.normalise(); err != nil {
		return err
	}
	if err := c.Telemetry.normalise(); err != nil {
		return err
	}
	for _, field := range c.required() {
		if field.value == "" {
			return fmt.Errorf("config: the %s tier requires field %q", c.Tier, field.name)
		}
	}
	if u, err := url.Parse(c.Valkey.URL); err == nil && u.User != nil {
		return errors.New(`config: field "valkey.url" holds credentials: put the URL in a file and name it in "valkey.url_file"`)
	}
	if c.Tier == TierFederated && c.Valkey.URL == "" && c.Valkey.URLFile == "" {
		return errors.New(`config: the federated tier requires field "valkey.url" (or "valkey.url_file" when the URL holds a password)`)
	}
	for _, p := range []*string{&c.Storage.PostgresURLFile, &c.Storage.SQLitePath, &c.Valkey.URLFile,
		&c.CA.Root, &c.CA.ProvisionerPasswordFile, &c.SealingKeyFile, &c.AuditKeyFile} {
		if *p != "" && !filepath.IsAbs(*p) {
			*p = filepath.Join(dir, *p)
		}
	}
	return nil
}

// normalise fills the listeners' limits' defaults and checks them.
func (l *Listen) normalise() error {
	switch {
	case l.MaxConns == 0:
		l.MaxConns = 4096
	case l.MaxConns < 1 || l.MaxConns > 1_000_000:
		return errors.New(`config: field "listen.max_conns" must be from 1 to 1000000`)
	}
	if l.ReadHeaderTimeout.Duration == 0 {
		l.ReadHeaderTimeout.Duration = 5 * time.Second
	}
	if l.IdleTimeout.Duration == 0 {
		l.IdleTimeout.Duration = 120 * time.Second
	}
	return nil
}

// normalise fills the limits' defaults and checks them.
func (r *RateLimit) normalise() error {
	if r.PerGrant == "" {
		r.PerGrant = "20/s"
	}
	if r.PerAddress == "" {
		r.PerAddress = "10/s"
	}
	if r.Burst == 0 {
		r.Burst = 40
	}
	if r.RefusalHold == "" {
		r.RefusalHold = "1s"
	}
	if d, err := time.ParseDuration(r.RefusalHold); err != nil || d < 0 || d > maxRefusalHold {
		return fmt.Errorf(`config: field "federation.rate_limit.refusal_hold" must be a duration from "0s" to "%s", such as "1s"`, maxRefusalHold)
	}
	for name, v := range map[string]string{"per_grant": r.PerGrant, "per_address": r.PerAddress} {
		if _, err := api.ParseRate(v); err != nil {
			return fmt.Errorf("config: field \"federation.rate_limit.%s\": %w", name, err)
		}
	}
	if r.Burst < 1 || r.Burst > 1_000_000 {
		return errors.New(`config: field "federation.rate_limit.burst" must be from 1 to 1000000`)
	}
	return nil
}

type requiredField struct{ name, value string }

func (c *Config) required() []requiredField {
	switch c.Tier {
	case TierStandalone:
		return []requiredField{{"site", c.Site}, {"listen.api", c.Listen.API},
			{"storage.postgres_url_file", c.Storage.PostgresURLFile}}
	case TierFederated:
		return []requiredField{{"site", c.Site}, {"listen.api", c.Listen.API},
			{"listen.federation", c.Listen.Federation}, {"federation.public_url", c.Federation.PublicURL},
			{"storage.postgres_url_file", c.Storage.PostgresURLFile},
			{"ca.url", c.CA.URL}, {"ca.root", c.CA.Root}, {"ca.provisioner", c.CA.Provisioner},
			{"ca.provisioner_password_file", c.CA.ProvisionerPasswordFile},
			{"sealing_key_file", c.SealingKeyFile}, {"audit_key_file", c.AuditKeyFile}}
	}
	return nil
}

// ReadSecret reads a secret file and trims the trailing newline. The error names the
// file, never its content.
func ReadSecret(path string) (string, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return "", fmt.Errorf("read secret file: %w", err)
	}
	s := strings.TrimSpace(string(b))
	if s == "" {
		return "", fmt.Errorf("secret file %s is empty", path)
	}
	return s, nil
}
