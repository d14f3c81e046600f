package main

import (
	"context"
	"errors"
	"fmt"

	"github.com/mosaic-federation/mosaic/harness/world"
	"github.com/mosaic-federation/mosaic/harness/world/process"
)

// backendNamed is the backend `--backend` names. The world library imports no backend:
// choosing one is this command's wiring.
func backendNamed(name string) (world.Backend, error) {
	switch name {
	case "process", "auto":
		// auto would pick docker when an engine answers; until the docker backend is
		// built, every host gets the process backend.
		return process.New(process.Config{BinDir: world.DefaultBinDir()}), nil
	case "docker":
		return nil, errors.New("the docker backend is not built yet: use --backend process (the default on hosts without a Docker engine)")
	default:
		return nil, fmt.Errorf("unknown backend %q: use process, docker or auto", name)
	}
}

// sweep ends what a dead run left behind and says how many things it found. The state
// file does not name the run's backend, so every backend this command knows sweeps.
func sweep(ctx context.Context, runDir string) (int, error) {
	var total int
	var errs []error
	for _, b := range []world.Backend{process.New(process.Config{})} {
		n, err := b.Sweep(ctx, runDir)
		total += n
		errs = append(errs, err)
	}
	return total, errors.Join(errs...)
}
