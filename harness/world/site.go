package world

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sync"
)

// Service is one service of a site, with the lifecycle verbs specs use to break things.
type Service interface {
	Name() string
	Start(ctx context.Context) error
	// Stop asks the service to stop and forces it once the backend's grace period has
	// passed or ctx ends, whichever comes first.
	Stop(ctx context.Context) error
	Kill() error
	Restart(ctx context.Context) error
	Running() bool
	// Pid is the service's main process on this host, or 0 when it is not running.
	Pid() int
	LogPath() string
}

// Site is one gateway's world: its CA, database, cache and gateway.
type Site struct {
	Name     string
	Dir      string
	CA       *CA
	Postgres *Postgres
	Valkey   *Valkey
	Gateway  *Gateway
	// Replicas are the site's other gateways (Options.Replicas), sharing its
	// PostgreSQL, Valkey and CA.
	Replicas []*Gateway
	// Users are the seeded users with their API tokens; Users[0] is the site's
	// federated demo user.
	Users []User

	world *World
}

// CA is a site's step-ca.
type CA struct {
	Service
	URL         string // https://127.0.0.1:port
	StepPath    string // STEPPATH of the CA
	ConfigPath  string // ca.json
	RootPath    string // root certificate, PEM
	Fingerprint string // lowercase hex SHA-256 of the root's DER
	// ProvisionerPasswordFile opens the encrypted keys of both JWK provisioners.
	ProvisionerPasswordFile string
}

// Postgres is a site's PostgreSQL cluster with pgvector.
type Postgres struct {
	Service
	Port int
	// URL connects to the gateway's database as the cluster's superuser.
	URL string
	// AdminURL is the same as URL but for the maintenance database "postgres".
	AdminURL string
}

// Valkey is a site's Valkey (or Redis) server, without persistence.
type Valkey struct {
	Service
	URL string
}

// Gateway is one gateway of a site.
type Gateway struct {
	Service
	APIURL        string
	FederationURL string
	MetricsURL    string // listen.metrics: /metrics ("" when the backend sets none)
	ConfigPath    string
}

// Subdirectories of a site directory.
const (
	// SecretsDir holds the site's passwords, keys and database URL (mode 0700).
	SecretsDir = "secrets"
	// LogsDir holds one log file per service (mode 0700).
	LogsDir = "logs"
)

// Run is what a backend needs to know of the run this site belongs to.
func (s *Site) Run() Run {
	return Run{Dir: s.world.RunDir, GatewayBin: s.world.opts.GatewayBin, Log: s.world.opts.Log}
}

// Requesting reports whether s is the world's requesting site (Order[0]): the one
// whose gateways reach the others, through their links when the world has links.
func (s *Site) Requesting() bool { return len(s.world.Order) > 0 && s.world.Order[0] == s.Name }

// Path is a path inside the site directory.
func (s *Site) Path(elem ...string) string {
	return filepath.Join(append([]string{s.Dir}, elem...)...)
}

// LogPath is the log file of one of the site's services (or set-up steps).
func (s *Site) LogPath(service string) string { return s.Path(LogsDir, service+".log") }

// boot starts the site: CA, PostgreSQL and Valkey in parallel, then the gateway.
func (s *Site) boot(ctx context.Context) error {
	w := s.world
	if err := s.makeDirs(); err != nil {
		return err
	}
	steps := []struct {
		name string
		run  func(context.Context) error
	}{
		{"step-ca", s.startCA},
		{"postgres", s.startPostgres},
		{"valkey", s.startValkey},
	}
	errs := make([]error, len(steps))
	var wg sync.WaitGroup
	for i, st := range steps {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := st.run(ctx); err != nil {
				errs[i] = fmt.Errorf("site %s: %s: %w", s.Name, st.name, err)
				return
			}
			w.progress("%-5s %s ready", s.Name, st.name)
		}()
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		return err
	}
	gw, err := s.startGateway(ctx, "gateway", s.linkOverrides())
	if err != nil {
		return fmt.Errorf("site %s: gateway: %w", s.Name, err)
	}
	s.Gateway = gw
	if err := s.connectLink(gw); err != nil {
		return fmt.Errorf("site %s: %w", s.Name, err)
	}
	w.progress("%-5s gateway ready at %s", s.Name, gw.APIURL)
	if s.Name != w.Order[0] {
		for i := 2; i <= w.opts.Replicas; i++ {
			r, err := s.startGateway(ctx, fmt.Sprintf("replica-%d", i), nil)
			if err != nil {
				return fmt.Errorf("site %s: replica %d: %w", s.Name, i, err)
			}
			s.Replicas = append(s.Replicas, r)
			w.progress("%-5s replica %d ready at %s", s.Name, i, r.APIURL)
		}
	}
	return s.seed(ctx)
}

// The start methods hand each handle the backend made to the world, even with an
// error, so that Down stops what a failed start left behind.

func (s *Site) startCA(ctx context.Context) error {
	ca, err := s.world.backend.StartCA(ctx, s)
	if ca != nil {
		s.world.track(ca, KindCA)
	}
	s.CA = ca
	return err
}

// startPostgres starts the cluster and writes its URL where the standard gateway
// config looks for it (PostgresURLFile).
func (s *Site) startPostgres(ctx context.Context) error {
	pg, err := s.world.backend.StartPostgres(ctx, s)
	if pg != nil {
		s.world.track(pg, KindPostgres)
	}
	if err != nil {
		return err
	}
	s.Postgres = pg
	return writeSecret(s.Path(PostgresURLFile), pg.URL+"\n")
}

func (s *Site) startValkey(ctx context.Context) error {
	v, err := s.world.backend.StartValkey(ctx, s)
	if v != nil {
		s.world.track(v, KindValkey)
	}
	s.Valkey = v
	return err
}

func (s *Site) startGateway(ctx context.Context, name string, overrides map[string]any) (*Gateway, error) {
	if !validSiteName(name) {
		return nil, fmt.Errorf("gateway name %q: use 1-32 lowercase letters, digits or '-'", name)
	}
	for _, key := range []string{SealingKeyFile, AuditKeyFile} {
		if err := ensureKey(s.Path(key)); err != nil {
			return nil, err
		}
	}
	gw, err := s.world.backend.StartGateway(ctx, s, name, Merge(Merge(map[string]any{}, deepCopy(s.world.opts.GatewayOverrides)), overrides))
	if gw != nil {
		s.world.track(gw, KindGateway)
	}
	if err != nil {
		return nil, err
	}
	return gw, nil
}

// seed loads <SeedDir>/<site>.json through the real CLI and keeps the printed tokens.
func (s *Site) seed(ctx context.Context) error {
	file := filepath.Join(s.world.opts.SeedDir, s.Name+".json")
	if _, err := os.Stat(file); err != nil {
		// Extra serving sites (--sites home,work,lab,…) get work's seed set: their
		// databases are separate, so the same ids do not collide.
		file = filepath.Join(s.world.opts.SeedDir, "work.json")
	}
	if _, err := os.Stat(file); err != nil {
		s.world.progress("%-5s no seed set at %s: the site stays empty", s.Name, file)
		return nil
	}
	out, err := s.GatewayCLI(ctx, "seed", "load", "--json", file)
	if err != nil {
		return fmt.Errorf("site %s: seed: %w", s.Name, err)
	}
	var res struct {
		Users []User `json:"users"`
	}
	if err := json.Unmarshal(out, &res); err != nil {
		return fmt.Errorf("site %s: seed output: %w", s.Name, err)
	}
	s.Users = res.Users
	s.world.progress("%-5s seeded %d users from %s", s.Name, len(s.Users), filepath.Base(file))
	return nil
}

// GatewayCLI runs the gateway's admin CLI against this site (through the backend) and
// returns its stdout; a non-zero exit is an error carrying stderr.
func (s *Site) GatewayCLI(ctx context.Context, args ...string) ([]byte, error) {
	return s.world.backend.GatewayCLI(ctx, s, nil, args...)
}

func (s *Site) gatewayCLI(ctx context.Context, stdin io.Reader, args ...string) ([]byte, error) {
	return s.world.backend.GatewayCLI(ctx, s, stdin, args...)
}

// makeDirs creates the site directory (traversable for the PostgreSQL user) and its
// private secrets and logs folders.
func (s *Site) makeDirs() error {
	for _, d := range []string{s.Dir, s.Path(SecretsDir), s.Path(LogsDir)} {
		if err := os.MkdirAll(d, 0o700); err != nil {
			return err
		}
	}
	return os.Chmod(s.Dir, 0o711)
}

// StartGateway starts an extra gateway on this site (fresh ports, its own config file
// and log) with overrides deep-merged into the site's standard config, for example
// {"storage": {"postgres_url_file": "/path"}}. The world stops it at Down.
func (s *Site) StartGateway(ctx context.Context, name string, overrides map[string]any) (*Gateway, error) {
	if name == "" || name == "gateway" {
		return nil, errors.New("world: an extra gateway needs a name other than \"gateway\"")
	}
	return s.startGateway(ctx, name, overrides)
}
