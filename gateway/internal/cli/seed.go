package cli

import (
	"fmt"
	"io"
	"os"
	"text/tabwriter"

	"github.com/spf13/cobra"

	"github.com/mosaic-federation/mosaic/gateway/internal/embed"
	"github.com/mosaic-federation/mosaic/gateway/internal/seed"
	"github.com/mosaic-federation/mosaic/gateway/internal/site"
	"github.com/mosaic-federation/mosaic/gateway/internal/tier"
)

func seedCmd(g *globals) *cobra.Command {
	var asJSON bool
	load := &cobra.Command{
		Use:   "load <file>",
		Short: "Load a seed set into the configured store (idempotent); new API tokens are printed once",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			cfg, err := g.load()
			if err != nil {
				return err
			}
			f, err := os.Open(args[0])
			if err != nil {
				return err
			}
			defer f.Close()
			file, err := seed.Parse(f)
			if err != nil {
				return fmt.Errorf("%s: %w", args[0], err)
			}
			t, err := site.Targets(cfg)
			if err != nil {
				return err
			}
			if err := tier.Check(cmd.Context(), t).Err(); err != nil {
				return err
			}
			s, err := site.Open(cmd.Context(), cfg, t, g.log)
			if err != nil {
				return err
			}
			defer s.Close()
			kr, err := site.Keyring(cfg)
			if err != nil {
				return err
			}
			res, err := seed.Load(cmd.Context(), seed.Deps{Store: s.Store, Keyring: kr, Embedder: embed.Hashing{}}, file)
			if err != nil {
				return fmt.Errorf("%s: %w", args[0], err)
			}
			return render(cmd, asJSON, res, func(w io.Writer) {
				tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
				fmt.Fprintln(tw, "EMAIL\tUSER ID\tAPI TOKEN (shown once)")
				for _, u := range res.Users {
					token := u.Token
					if token == "" {
						token = "(unchanged)"
					}
					fmt.Fprintf(tw, "%s\t%s\t%s\n", u.Email, u.ID, token)
				}
				tw.Flush()
			})
		},
	}
	load.Flags().BoolVar(&asJSON, "json", false, "print the result as JSON")
	c := &cobra.Command{Use: "seed", Short: "Seed data"}
	c.AddCommand(load, generateCmd(g))
	return c
}

// generateCmd adds synthetic rows at scale for the site's existing users and teams,
// for the bench and for trying a site with 10⁶ rows.
func generateCmd(g *globals) *cobra.Command {
	var asJSON bool
	var n seed.Counts
	c := &cobra.Command{
		Use:   "generate",
		Short: "Add synthetic tasks, notes and memories for the site's existing users and teams (a third personal, the rest in teams)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if n.Tasks < 0 || n.Notes < 0 || n.Memories < 0 {
				return fmt.Errorf("--tasks, --notes and --memories must not be negative")
			}
			cfg, err := g.load()
			if err != nil {
				return err
			}
			t, err := site.Targets(cfg)
			if err != nil {
				return err
			}
			if err := tier.Check(cmd.Context(), t).Err(); err != nil {
				return err
			}
			s, err := site.Open(cmd.Context(), cfg, t, g.log)
			if err != nil {
				return err
			}
			defer s.Close()
			res, err := seed.Generate(cmd.Context(), s.Store, embed.Hashing{}, n, cmd.ErrOrStderr())
			if err != nil {
				return err
			}
			return render(cmd, asJSON, res, func(w io.Writer) {
				fmt.Fprintf(w, "added %d tasks, %d notes, %d memories in %.1f s (%.0f rows/s)\n",
					n.Tasks, n.Notes, n.Memories, res.Seconds, res.RowsPerSec)
			})
		},
	}
	c.Flags().IntVar(&n.Tasks, "tasks", 0, "tasks to add")
	c.Flags().IntVar(&n.Notes, "notes", 0, "notes to add")
	c.Flags().IntVar(&n.Memories, "memories", 0, "memories to add, each embedded by the built-in embedder")
	c.Flags().BoolVar(&asJSON, "json", false, "print the summary as JSON")
	return c
}

func doctorCmd(g *globals) *cobra.Command {
	var asJSON bool
	c := &cobra.Command{
		Use:   "doctor",
		Short: "Report the tier, each required service's health and latency, and pgvector",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cfg, err := g.load()
			if err != nil {
				return err
			}
			t, err := site.Targets(cfg)
			if err != nil {
				return err
			}
			r := tier.Check(cmd.Context(), t)
			err = render(cmd, asJSON, r, func(w io.Writer) {
				fmt.Fprintf(w, "tier %s: %s\n", r.Tier, r.Overall)
				for _, s := range r.Services {
					fmt.Fprintf(w, "  %-9s %-5s %4d ms  %s\n", s.Name, s.Status, s.LatencyMS, s.Detail)
				}
				fmt.Fprintf(w, "  pgvector  installed=%v %s\n", r.PGVector.Installed, r.PGVector.Version)
				for _, p := range r.Problems {
					fmt.Fprintln(w, "  - "+p)
				}
			})
			if err == nil && r.Overall == "red" {
				return ErrReported
			}
			return err
		},
	}
	c.Flags().BoolVar(&asJSON, "json", false, "print the report as JSON")
	return c
}
