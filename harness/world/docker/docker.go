// Package docker is the harness's docker backend (SPEC §3, §6e): every service of a
// site runs as a container started through testcontainers-go, on a network of its
// site, with a fixed address on a subnet the backend picks; the requesting site's
// gateways are also on a link network where the world's Toxiproxy stands, so they
// reach a serving site only through its link. The host reaches every container's
// address directly (a Linux engine routes its bridges), which is how the admin CLI
// runs on the host with the same gateway.json the container serves with: each site
// directory is bind-mounted at its own path, so file arguments stay host paths.
//
// A gateway's addresses belong to a holder container that only sleeps (the Valkey
// image's sleep); the gateway joins its network namespace. Stopping or killing a
// gateway leaves its addresses answering with refusals, as a dead process on a host
// that stays up does, and its listen.metrics is published on this host's loopback at a
// port fixed for the run.
//
// The testcontainers reaper (Ryuk) cannot be pulled on an engine without a registry:
// it stays off, and everything is labelled with the run directory (LabelRun) so that
// Down, and Sweep after a killed run, remove containers, volumes and networks by label.
package docker

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/testcontainers/testcontainers-go"
	tclog "github.com/testcontainers/testcontainers-go/log"

	"github.com/mosaic-federation/mosaic/harness/world"
)

// Labels on everything the backend creates.
const (
	LabelRun     = "mosaic.run"     // the run directory
	LabelSite    = "mosaic.site"    // the site, "" for the world's Toxiproxy and link
	LabelService = "mosaic.service" // step-ca, postgres, …, or a gateway's name
)

// Images names the image of each kind of service.
type Images struct {
	Gateway, StepCA, Postgres, PostgresNoVector, Valkey, Toxiproxy string
}

// imageEnv maps the variables of .cache/images/images.env (make images) and of the
// environment (which wins) to the Images fields.
var imageEnv = map[string]func(*Images) *string{
	"MOSAIC_GATEWAY_IMAGE":            func(i *Images) *string { return &i.Gateway },
	"MOSAIC_STEP_CA_IMAGE":            func(i *Images) *string { return &i.StepCA },
	"MOSAIC_POSTGRES_IMAGE":           func(i *Images) *string { return &i.Postgres },
	"MOSAIC_POSTGRES_NO_VECTOR_IMAGE": func(i *Images) *string { return &i.PostgresNoVector },
	"MOSAIC_VALKEY_IMAGE":             func(i *Images) *string { return &i.Valkey },
	"MOSAIC_TOXIPROXY_IMAGE":          func(i *Images) *string { return &i.Toxiproxy },
}

// DefaultImages reads the tags `make images` wrote to <module>/.cache/images/images.env;
// MOSAIC_*_IMAGE variables of the environment override them (an ordinary Docker host
// may name its own images, built from deploy/images' Dockerfiles).
func DefaultImages() Images {
	var imgs Images
	if root, err := world.ModuleRoot(); err == nil {
		if f, err := os.Open(filepath.Join(root, ".cache", "images", "images.env")); err == nil {
			sc := bufio.NewScanner(f)
			for sc.Scan() {
				k, v, ok := strings.Cut(strings.TrimSpace(sc.Text()), "=")
				if field, known := imageEnv[k]; ok && known {
					*field(&imgs) = v
				}
			}
			f.Close()
		}
	}
	for k, field := range imageEnv {
		if v := os.Getenv(k); v != "" {
			*field(&imgs) = v
		}
	}
	return imgs
}

// Config says which images the backend runs.
type Config struct {
	Images Images
}

// Backend runs every service as a container. One Backend may serve several worlds; it
// keeps per run only what the engine cannot tell it cheaply (networks, addresses).
type Backend struct {
	cfg Config

	once   sync.Once
	client *testcontainers.DockerClient
	engErr error

	mu   sync.Mutex
	runs map[string]*run
}

var _ world.Backend = (*Backend)(nil)

// New returns a docker backend; it connects to the engine when first asked.
func New(cfg Config) *Backend { return &Backend{cfg: cfg, runs: map[string]*run{}} }

// Name is "docker".
func (b *Backend) Name() string { return "docker" }

func init() {
	// No reaper: it cannot be pulled here, and labels do its work (package comment).
	// Set before testcontainers reads its configuration (once, on first use).
	if os.Getenv("TESTCONTAINERS_RYUK_DISABLED") == "" {
		_ = os.Setenv("TESTCONTAINERS_RYUK_DISABLED", "true")
	}
	tclog.SetDefault(tclog.NewNoopLogger())
}

// engine connects to the Docker engine once.
func (b *Backend) engine(ctx context.Context) (*testcontainers.DockerClient, error) {
	b.once.Do(func() {
		ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		defer cancel()
		b.client, b.engErr = testcontainers.NewDockerClientWithOpts(ctx)
		if b.engErr != nil {
			b.engErr = fmt.Errorf("no Docker engine answers (%w): start the daemon, set DOCKER_HOST, or use --backend process", b.engErr)
		}
	})
	return b.client, b.engErr
}

// Available reports whether a Docker engine answers: what `--backend auto` asks.
func Available(ctx context.Context) bool {
	_, err := New(Config{}).engine(ctx)
	return err == nil
}

// Check fails when no engine answers or an image a kind of service needs is missing.
func (b *Backend) Check(kinds ...world.Kind) error {
	ctx := context.Background()
	cli, err := b.engine(ctx)
	if err != nil {
		return err
	}
	need := map[world.Kind]string{
		world.KindCA: b.cfg.Images.StepCA, world.KindPostgres: b.cfg.Images.Postgres,
		world.KindValkey: b.cfg.Images.Valkey, world.KindGateway: b.cfg.Images.Gateway,
		world.KindToxiproxy: b.cfg.Images.Toxiproxy,
	}
	if slices.Contains(kinds, world.KindGateway) && !slices.Contains(kinds, world.KindValkey) {
		kinds = append(kinds, world.KindValkey) // a gateway's address holder runs that image
	}
	var errs []error
	for _, k := range kinds {
		img := need[k]
		if img == "" {
			errs = append(errs, fmt.Errorf("no image named for %s: run `make images` (tags in .cache/images/images.env) or set its MOSAIC_*_IMAGE", k))
			continue
		}
		if _, err := cli.ImageInspect(ctx, img); err != nil {
			errs = append(errs, fmt.Errorf("image %s for %s is not on this engine (%v): run `make images`", img, k, err))
		}
	}
	return errors.Join(errs...)
}

// user is who containers that read or write the site directory run as: this process's
// own user, so the run's files (mode 0600) are theirs on both sides of the mount.
func user() string { return fmt.Sprintf("%d:%d", os.Getuid(), os.Getgid()) }
