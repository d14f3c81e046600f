package world

import (
	"bytes"
	"encoding/json"
	"os/exec"
	"strings"

	"context"
	"errors"
	"fmt"
	"github.com/mosaic-federation/mosaic/harness/internal/proc"
	"io"
	"os"
	"path/filepath"
	"sync"
)

// Site is one gateway's world: its CA, database, cache and gateway.
type Site struct {
	Name     string
	Dir      string
	CA       *CA
	Postgres *Postgres
	Valkey   *Valkey
	Gateway  *Gateway
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

// Gateway is one gateway process of a site.
type Gateway struct {
	Service
	APIURL        string
	FederationURL string
	ConfigPath    string
}

// Subdirectories and files of a site directory.
const (
	secretsDir = "secrets"
	logsDir    = "logs"
)

func (s *Site) path(elem ...string) string { return filepath.Join(append([]string{s.Dir}, elem...)...) }

func (s *Site) logPath(service string) string { return s.path(logsDir, service+".log") }

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
		{"step-ca", func(ctx context.Context) (err error) { s.CA, err = w.backend.StartCA(ctx, s); return }},
		{"postgres", func(ctx context.Context) (err error) { s.Postgres, err = w.backend.StartPostgres(ctx, s); return }},
		{"valkey", func(ctx context.Context) (err error) { s.Valkey, err = w.backend.StartValkey(ctx, s); return }},
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
	gw, err := w.backend.StartGateway(ctx, s, "gateway", nil)
	if err != nil {
		return fmt.Errorf("site %s: gateway: %w", s.Name, err)
	}
	s.Gateway = gw
	w.progress("%-5s gateway ready at %s", s.Name, gw.APIURL)
	return s.seed(ctx)
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

// GatewayCLI runs the gateway binary with this site's config and returns its stdout;
// a non-zero exit is an error carrying stderr.
func (s *Site) GatewayCLI(ctx context.Context, args ...string) ([]byte, error) {
	return s.gatewayCLI(ctx, nil, args...)
}

func (s *Site) gatewayCLI(ctx context.Context, stdin io.Reader, args ...string) ([]byte, error) {
	cmd := exec.CommandContext(ctx, s.world.opts.GatewayBin, append([]string{"--config", s.Gateway.ConfigPath}, args...)...)
	cmd.Stdin = stdin
	cmd.Env = proc.CleanEnv(RunEnv + "=" + s.world.RunDir)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		return out, fmt.Errorf("gateway %s: %w: %s", strings.Join(args, " "), err, strings.TrimSpace(stderr.String()))
	}
	return out, nil
}

// makeDirs creates the site directory (traversable for the PostgreSQL user) and its
// private secrets and logs folders.
func (s *Site) makeDirs() error {
	for _, d := range []string{s.Dir, s.path(secretsDir), s.path(logsDir)} {
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
	return s.world.backend.StartGateway(ctx, s, name, overrides)
}
