package main

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"time"

	"github.com/mosaic-federation/mosaic/harness/world"
	"github.com/mosaic-federation/mosaic/harness/world/docker"
)

// dockerBoot is the cold boot of the two-site world on the docker backend, beside the
// process backend's line (SPEC §8: the harness's cold boot, each backend), when an
// engine answers and the images are built (`make images`); otherwise a line saying why
// it is missing.
func dockerBoot(ctx context.Context) result {
	const name = "cold boot, 2 sites (seeded, enrolled), docker backend"
	actx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	if !docker.Available(actx) {
		return result{Name: name, Note: "skipped: no Docker engine answers"}
	}
	b := docker.New(docker.Config{Images: docker.DefaultImages()})
	if err := b.Check(world.KindCA, world.KindPostgres, world.KindValkey, world.KindGateway, world.KindToxiproxy); err != nil {
		return result{Name: name, Note: fmt.Sprintf("skipped: %v (make images)", err)}
	}
	gatewayBin, err := buildGateway(true) // static: the gateway container runs it
	if err != nil {
		return result{Name: name, Note: "error: " + err.Error()}
	}
	fmt.Fprintln(os.Stderr, "booting [home work] on the docker backend…")
	w, err := world.Up(ctx, world.Options{Sites: []string{"home", "work"}, Backend: b, GatewayBin: gatewayBin,
		Log: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		return result{Name: name, Note: "error: " + err.Error()}
	}
	defer w.Down()
	return result{Name: name, P50ms: ms(w.BootTime), P99ms: ms(w.BootTime), Note: "one boot"}
}
