// Command gateway is the Mosaic federation gateway: `gateway serve` runs it, the other
// subcommands administer it.
package main

import (
	"fmt"
	"log/slog"
	"os"

	"github.com/spf13/cobra"

	"github.com/mosaic-federation/mosaic/gateway/internal/config"
)

// globals are the flags every subcommand shares.
type globals struct {
	configPath string
	log        *slog.Logger
}

// load reads the config named by --config or GATEWAY_CONFIG and logs its warnings.
func (g *globals) load() (*config.Config, error) {
	path := g.configPath
	if path == "" {
		path = os.Getenv("GATEWAY_CONFIG")
	}
	cfg, err := config.Load(path, os.LookupEnv)
	if err != nil {
		return nil, err
	}
	for _, w := range cfg.Warnings {
		g.log.Warn(w)
	}
	return cfg, nil
}

func main() {
	g := &globals{log: slog.New(slog.NewJSONHandler(os.Stderr, nil))}
	root := &cobra.Command{
		Use:           "gateway",
		Short:         "Mosaic federation gateway",
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	// Persistent, so --config works before or after the subcommand.
	root.PersistentFlags().StringVar(&g.configPath, "config", "", "path of gateway.json (default $GATEWAY_CONFIG; none: the local tier)")
	root.AddCommand(serveCmd(g), seedCmd(g), doctorCmd(g), storageCmd(g), federationCmd(g))
	if err := root.Execute(); err != nil {
		if err != errRed {
			fmt.Fprintln(os.Stderr, "gateway:", err)
		}
		os.Exit(1)
	}
}
