// Command gateway is the Mosaic federation gateway: `gateway serve` runs it, the other
// subcommands administer it. This package only wires: the command tree is
// internal/cli, and serve.go assembles the listeners from the packages that do the work.
package main

import (
	"errors"
	"fmt"
	"log/slog"
	"os"

	"github.com/mosaic-federation/mosaic/gateway/internal/cli"
)

func main() {
	log := slog.New(slog.NewJSONHandler(os.Stderr, nil))
	if err := cli.New(serve, log).Execute(); err != nil {
		if !errors.Is(err, cli.ErrReported) {
			fmt.Fprintln(os.Stderr, "gateway:", err)
		}
		os.Exit(1)
	}
}
