// Package cli is the gateway's command tree: each command parses its flags, calls the
// package that does the work (admin, seed, tier, store) and renders the result as text
// or, with --json, as the gateway/api value, to the command's own output so tests can
// capture it.
package cli

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"syscall"

	"github.com/spf13/cobra"

	"github.com/mosaic-federation/mosaic/gateway/internal/config"
)

// ServeFunc runs the gateway until ctx ends (package main wires it).
type ServeFunc func(ctx context.Context, log *slog.Logger, cfg *config.Config) error

// ErrReported makes the process exit 1 without printing more: the command already
// said what is wrong (doctor's red report).
var ErrReported = errors.New("reported")

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

// New is the root command. Logs go to log (stderr in the binary).
func New(serve ServeFunc, log *slog.Logger) *cobra.Command {
	g := &globals{log: log}
	root := &cobra.Command{
		Use:           "gateway",
		Short:         "Mosaic federation gateway",
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	// Persistent, so --config works before or after the subcommand.
	root.PersistentFlags().StringVar(&g.configPath, "config", "", "path of gateway.json (default $GATEWAY_CONFIG; none: the local tier)")
	root.AddCommand(serveCmd(g, serve), seedCmd(g), doctorCmd(g), storageCmd(g), federationCmd(g),
		secretsCmd(), caCmd(), probeCmd())
	return root
}

func serveCmd(g *globals, serve ServeFunc) *cobra.Command {
	return &cobra.Command{
		Use:   "serve",
		Short: "Run the gateway",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cfg, err := g.load()
			if err != nil {
				return err
			}
			ctx, stop := signal.NotifyContext(cmd.Context(), os.Interrupt, syscall.SIGTERM)
			defer stop()
			return serve(ctx, g.log, cfg)
		},
	}
}

// render prints v as indented JSON, or through the text printer.
func render(cmd *cobra.Command, asJSON bool, v any, text func(io.Writer)) error {
	w := cmd.OutOrStdout()
	if asJSON {
		enc := json.NewEncoder(w)
		enc.SetIndent("", "  ")
		return enc.Encode(v)
	}
	text(w)
	return nil
}

// jsonFlag adds --json.
func jsonFlag(c *cobra.Command, v *bool) {
	c.Flags().BoolVar(v, "json", false, "print JSON")
}

// requestID ties one CLI invocation's audit rows together.
func requestID() string {
	b := make([]byte, 6)
	_, _ = rand.Read(b)
	return "cli-" + hex.EncodeToString(b)
}

// must fails loudly on a programming error in the command tree.
func must(err error) {
	if err != nil {
		panic(fmt.Sprintf("cli: %v", err))
	}
}
