package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"time"

	"github.com/mosaic-federation/mosaic/harness/world"
	"github.com/mosaic-federation/mosaic/harness/world/docker"
	"github.com/mosaic-federation/mosaic/harness/world/process"
)

// resolveBackend turns `--backend auto` into the backend this host runs: docker when
// an engine answers and has the images (`make images`), else process. Other names
// pass through.
func resolveBackend(name string) string {
	if name != "auto" {
		return name
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if !docker.Available(ctx) {
		return "process"
	}
	if err := docker.New(docker.Config{Images: docker.DefaultImages()}).Check(world.KindCA, world.KindPostgres,
		world.KindValkey, world.KindGateway, world.KindToxiproxy); err != nil {
		fmt.Fprintf(os.Stderr, "harness: a Docker engine answers but %v; using the process backend\n", err)
		return "process"
	}
	return "docker"
}

// backendNamed is the backend `--backend` names. The world library imports no backend:
// choosing one is this command's wiring.
func backendNamed(name string) (world.Backend, error) {
	switch resolveBackend(name) {
	case "process":
		return process.New(process.Config{BinDir: world.DefaultBinDir()}), nil
	case "docker":
		return docker.New(docker.Config{Images: docker.DefaultImages()}), nil
	default:
		return nil, fmt.Errorf("unknown backend %q: use process, docker or auto", name)
	}
}

// sweep ends what a dead run left behind and says how many things it found. The state
// file does not name the run's backend, so every backend this command knows sweeps (the
// docker backend finds nothing, quickly, where no engine answers).
func sweep(ctx context.Context, runDir string) (int, error) {
	var total int
	var errs []error
	for _, b := range []world.Backend{process.New(process.Config{}), docker.New(docker.Config{})} {
		n, err := b.Sweep(ctx, runDir)
		total += n
		errs = append(errs, err)
	}
	return total, errors.Join(errs...)
}
