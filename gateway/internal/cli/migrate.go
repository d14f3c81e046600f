package cli

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"github.com/schollz/progressbar/v3"
	"github.com/spf13/cobra"
	"golang.org/x/term"

	"github.com/mosaic-federation/mosaic/gateway/api"
	"github.com/mosaic-federation/mosaic/gateway/internal/config"
	"github.com/mosaic-federation/mosaic/gateway/internal/redact"
	"github.com/mosaic-federation/mosaic/gateway/internal/store"
	"github.com/mosaic-federation/mosaic/gateway/internal/tier"
)

type migrateFlags struct {
	to, targetFile string
	dryRun, yes    bool
	asJSON         bool
	batch, sample  int
	lockWait       time.Duration
}

func storageCmd(g *globals) *cobra.Command {
	f := &migrateFlags{}
	m := &cobra.Command{
		Use:   "migrate-tier",
		Short: "Copy this local or standalone store into a federated PostgreSQL, one way",
		Long: `Copies every native table, in dependency order and with ids preserved, into the
PostgreSQL named by --target-postgres-url-file (which must have pgvector), then verifies
row counts and a sample of rows per table. Re-running is idempotent. The source is only
read. Without --yes it asks for confirmation on the terminal.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cfg, err := g.load()
			if err != nil {
				return err
			}
			return migrateTier(cmd, cfg, f)
		},
	}
	m.Flags().StringVar(&f.to, "to", "", "the tier to migrate to (only federated)")
	m.Flags().StringVar(&f.targetFile, "target-postgres-url-file", "", "file holding the target PostgreSQL URL")
	m.Flags().BoolVar(&f.dryRun, "dry-run", false, "print per-table counts; write nothing")
	m.Flags().BoolVar(&f.yes, "yes", false, "do not ask for confirmation")
	m.Flags().BoolVar(&f.asJSON, "json", false, "print the result as JSON")
	m.Flags().IntVar(&f.batch, "batch", 1000, "rows per write")
	m.Flags().IntVar(&f.sample, "verify-sample", 25, "rows per table compared field by field after loading")
	m.Flags().DurationVar(&f.lockWait, "lock-wait", 2*time.Minute, "how long to wait for another migration into the same target")
	_ = m.MarkFlagRequired("to")
	_ = m.MarkFlagRequired("target-postgres-url-file")
	c := &cobra.Command{Use: "storage", Short: "Storage administration"}
	c.AddCommand(m)
	return c
}

func migrateTier(cmd *cobra.Command, cfg *config.Config, f *migrateFlags) error {
	ctx, in, out := cmd.Context(), cmd.InOrStdin(), cmd.OutOrStdout()
	start := time.Now()
	if f.to != config.TierFederated {
		return fmt.Errorf("--to %q: the only migration is to federated", f.to)
	}
	if f.batch < 1 || f.batch > 5000 {
		return errors.New("--batch must be from 1 to 5000")
	}
	targetURL, err := config.ReadSecret(f.targetFile)
	if err != nil {
		return fmt.Errorf("--target-postgres-url-file: %w", err)
	}
	src, srcName, err := openSource(ctx, cfg)
	if err != nil {
		return err
	}
	defer src.Close()
	rep := api.MigrateReport{Source: srcName, Target: redact.URL(targetURL), DryRun: f.dryRun}
	counts, err := store.Counts(ctx, src)
	if err != nil {
		return fmt.Errorf("read the source: %w", err)
	}
	// The target must be a federated-ready PostgreSQL: same probe, same message.
	if err := tier.Check(ctx, tier.Targets{Tier: config.TierFederated, PostgresURL: targetURL, NeedVector: true}).Err(); err != nil {
		return fmt.Errorf("target: %w", err)
	}
	for _, c := range counts {
		rep.Tables = append(rep.Tables, api.MigrateTable{Table: c.Table, Rows: c.Rows})
	}
	if f.dryRun {
		return finish(cmd, f, rep, start, "dry run: nothing was written")
	}
	if !f.yes {
		if err := confirm(in, out, rep); err != nil {
			return err
		}
	}
	dst, err := store.OpenPostgres(ctx, store.PostgresOptions{URL: targetURL, RequireVector: true, MaxConns: 4})
	if err != nil {
		return fmt.Errorf("target: %s", redact.New(targetURL).String(err.Error()))
	}
	defer dst.Close()
	unlock, err := store.Lock(ctx, dst, f.lockWait, func() {
		fmt.Fprintln(cmd.ErrOrStderr(), "another migration into this database is running: waiting for it to finish…")
	})
	if err != nil {
		return err
	}
	defer unlock()
	for _, t := range rep.Tables {
		if n, err := store.ForeignRows(ctx, src, dst, t.Table); err != nil {
			return err
		} else if n > 0 {
			return fmt.Errorf("the target already holds %d %s rows that are not from this source: migrate into an empty database", n, t.Table)
		}
	}
	for i := range rep.Tables {
		t := &rep.Tables[i]
		bar := newBar(out, t.Table, t.Rows, f.asJSON)
		t.Copied, err = store.CopyTable(ctx, src, dst, t.Table, f.batch, func(n int) { _ = bar.Add(n) })
		_ = bar.Finish()
		if err != nil {
			return fmt.Errorf("copy %s: %s", t.Table, redact.New(targetURL).String(err.Error()))
		}
	}
	for _, t := range rep.Tables {
		if err := store.VerifyTable(ctx, src, dst, t.Table, f.sample); err != nil {
			return fmt.Errorf("verification failed: %w", err)
		}
	}
	rep.Verified = true
	return finish(cmd, f, rep, start, "migrated and verified")
}

// openSource opens the configured store for reading only.
func openSource(ctx context.Context, cfg *config.Config) (store.Store, string, error) {
	switch cfg.Tier {
	case config.TierLocal:
		if _, err := os.Stat(cfg.Storage.SQLitePath); err != nil {
			return nil, "", fmt.Errorf("source: %w", err)
		}
		s, err := store.OpenSQLiteReadOnly(ctx, cfg.Storage.SQLitePath)
		return s, "local:" + cfg.Storage.SQLitePath, err
	case config.TierStandalone:
		url, err := config.ReadSecret(cfg.Storage.PostgresURLFile)
		if err != nil {
			return nil, "", fmt.Errorf("storage.postgres_url_file: %w", err)
		}
		s, err := store.OpenPostgresReadOnly(ctx, url)
		if err != nil {
			return nil, "", errors.New(redact.New(url).String(err.Error()))
		}
		return s, "standalone:" + redact.URL(url), nil
	}
	return nil, "", fmt.Errorf("this site is already %s: migrate-tier copies a local or standalone store", cfg.Tier)
}

// confirm asks on a terminal; with no terminal it refuses rather than waits.
func confirm(in io.Reader, out io.Writer, rep api.MigrateReport) error {
	file, ok := in.(*os.File)
	if !ok || !term.IsTerminal(int(file.Fd())) {
		return errors.New("no terminal to confirm on: re-run with --yes (or --dry-run to see the counts)")
	}
	var total int64
	for _, t := range rep.Tables {
		total += t.Rows
	}
	fmt.Fprintf(out, "Copy %d rows from %s into %s? [y/N] ", total, rep.Source, rep.Target)
	answer, _ := bufio.NewReader(in).ReadString('\n')
	if a := strings.ToLower(strings.TrimSpace(answer)); a != "y" && a != "yes" {
		return errors.New("not confirmed: nothing was written")
	}
	return nil
}

// newBar draws a progress bar per table on a terminal, plain lines otherwise.
func newBar(out io.Writer, table string, total int64, quiet bool) *progressbar.ProgressBar {
	if quiet {
		return progressbar.DefaultSilent(total)
	}
	if f, ok := out.(*os.File); ok && term.IsTerminal(int(f.Fd())) {
		return progressbar.NewOptions64(total, progressbar.OptionSetWriter(out),
			progressbar.OptionSetDescription(fmt.Sprintf("%-13s", table)), progressbar.OptionShowCount(),
			progressbar.OptionSetWidth(30), progressbar.OptionOnCompletion(func() { fmt.Fprintln(out) }))
	}
	fmt.Fprintf(out, "%s: copying %d rows\n", table, total)
	return progressbar.DefaultSilent(total)
}

func finish(cmd *cobra.Command, f *migrateFlags, rep api.MigrateReport, start time.Time, summary string) error {
	rep.Seconds = time.Since(start).Seconds()
	return render(cmd, f.asJSON, rep, func(out io.Writer) {
		fmt.Fprintf(out, "%-13s %10s %10s\n", "TABLE", "ROWS", "COPIED")
		for _, t := range rep.Tables {
			fmt.Fprintf(out, "%-13s %10d %10d\n", t.Table, t.Rows, t.Copied)
		}
		fmt.Fprintf(out, "%s in %.1fs\n", summary, rep.Seconds)
	})
}
