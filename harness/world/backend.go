package world

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"os"
	"path/filepath"
)

// A Backend starts the services of a site and knows how to reach them afterwards. The
// process backend (harness/world/process) runs each service as a child process on
// loopback; a docker backend (testcontainers-go, SPEC §6e) drops in behind the same
// interface. The world never asks which one it has: whatever differs between them —
// ports, pids or containers, how the admin CLI reaches a site, what a dead run leaves
// behind — sits behind these methods.
type Backend interface {
	// Name is what `harness up --backend` calls it ("process").
	Name() string
	// Check fails, before anything starts, when this host lacks what services of the
	// given kinds need (a program, an engine, an image), saying how to get it.
	Check(kinds ...Kind) error

	// Each Start method brings up one service of s and returns once it is ready. A
	// handle made before a failure comes back with the error, so that the world can
	// stop whatever the failed start left running.
	StartCA(ctx context.Context, s *Site) (*CA, error)
	StartPostgres(ctx context.Context, s *Site) (*Postgres, error)
	StartValkey(ctx context.Context, s *Site) (*Valkey, error)
	// StartGateway runs the gateway called name (a site's own is "gateway") with its
	// config file at s.Path(name+".json"): the site's standard config (GatewayConfig)
	// on addresses of the backend's choosing, overrides deep-merged into it (Merge).
	// The world has checked the name and made the site's sealing key.
	StartGateway(ctx context.Context, s *Site, name string, overrides map[string]any) (*Gateway, error)
	// StartToxiproxy runs the world's Toxiproxy server (its API on a loopback port of
	// the backend's choosing), logging to logPath, for the links (Options.Links).
	StartToxiproxy(ctx context.Context, run Run, logPath string) (*Toxiproxy, error)

	// GatewayCLI runs the gateway's admin CLI as site s's own gateway would (its
	// config, its database, its CA), reading stdin when it is not nil, and returns
	// stdout; a non-zero exit is an error carrying stderr.
	GatewayCLI(ctx context.Context, s *Site, stdin io.Reader, args ...string) ([]byte, error)

	// Leftovers lists what the run whose directory is runDir still has running, in the
	// backend's own words ("pid 4242", a container id); empty once the run is gone.
	Leftovers(ctx context.Context, runDir string) ([]string, error)
	// Sweep ends everything Leftovers lists and says how many it found, so that a world
	// whose harness died is cleaned up by the next `down`.
	Sweep(ctx context.Context, runDir string) (int, error)
}

// Kind is a kind of service a site runs. The world records each service it starts
// with its kind; nothing else about a handle's type matters to it.
type Kind string

// The kinds of service of a site.
const (
	KindCA       Kind = "step-ca"
	KindPostgres Kind = "postgres"
	KindValkey   Kind = "valkey"
	KindGateway  Kind = "gateway"
	// KindToxiproxy is the world's one Toxiproxy server, of no site.
	KindToxiproxy Kind = "toxiproxy"
)

// Run is what a backend needs to know of the run a site belongs to.
type Run struct {
	// Dir is the run directory. A backend tags everything it starts with it, so that
	// Leftovers finds a dead run's remains by it.
	Dir string
	// GatewayBin is the built gateway binary.
	GatewayBin string
	// Log receives a line per service a backend spawns.
	Log *slog.Logger
}

// DefaultBinDir is where `make deps` puts step-ca and step: $MOSAIC_BIN_DIR, else
// .cache/bin under the module root found above the working directory.
func DefaultBinDir() string {
	if d := os.Getenv("MOSAIC_BIN_DIR"); d != "" {
		return d
	}
	if root, err := ModuleRoot(); err == nil {
		return filepath.Join(root, ".cache", "bin")
	}
	return ""
}

// ModuleRoot walks up from the working directory to the folder holding go.mod.
func ModuleRoot() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", errors.New("no go.mod above the working directory")
		}
		dir = parent
	}
}
