package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"slices"
	"strings"
	"syscall"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"
)

func statusCmd() *cobra.Command {
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "status",
		Short: "Describe the running world",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			st, err := readState()
			if err != nil {
				return err
			}
			if !st.ownerAlive() {
				return fmt.Errorf("the world's owner (pid %d) is gone: run `go run ./harness down` to clean up", st.Pid)
			}
			if asJSON {
				enc := json.NewEncoder(os.Stdout)
				enc.SetIndent("", "  ")
				return enc.Encode(st.World)
			}
			printWorld(os.Stdout, *st)
			return nil
		},
	}
	cmd.Flags().BoolVar(&asJSON, "json", false, "print the world as JSON")
	return cmd
}

func downCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "down",
		Short: "Stop the running world and remove its run directory, or clean up after a crashed one",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			swept, err := sweepDead(cmd.Context(), os.Stdout)
			if err != nil {
				return err
			}
			st, err := readState()
			if errors.Is(err, errNoWorld) && swept > 0 {
				return nil
			}
			if err != nil {
				return err
			}
			fmt.Printf("stopping the world (pid %d)…\n", st.Pid)
			_ = syscall.Kill(st.Pid, syscall.SIGTERM)
			deadline := time.Now().Add(45 * time.Second)
			for st.ownerAlive() && time.Now().Before(deadline) {
				time.Sleep(100 * time.Millisecond)
			}
			if st.ownerAlive() {
				_ = syscall.Kill(st.Pid, syscall.SIGKILL)
			}
			if err := removeWorld(cmd.Context(), os.Stdout, st.World.RunDir, "the world's"); err != nil {
				return err
			}
			if err := os.Remove(statePath()); err != nil && !os.IsNotExist(err) {
				return err
			}
			fmt.Println("world removed")
			return nil
		},
	}
}

// printWorld prints the sites table, demo users and ready-to-paste commands.
func printWorld(out io.Writer, st state) {
	d := st.World
	names := make([]string, 0, len(d.Sites))
	for n := range d.Sites {
		names = append(names, n)
	}
	slices.Sort(names)
	fmt.Fprintf(out, "\nMosaic federation world — booted in %.1fs, run directory %s\n\n", st.BootSeconds, d.RunDir)
	tw := tabwriter.NewWriter(out, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "SITE\tAPI\tFEDERATION\tSTEP-CA\tVALKEY")
	for _, n := range names {
		s := d.Sites[n]
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", n, s.APIURL, s.FederationURL, s.CAURL, s.ValkeyURL)
	}
	tw.Flush()
	for _, l := range d.Links {
		fmt.Fprintf(out, "link %s→%s  %s → %s  (%dms each way, Toxiproxy %s, proxy %s)\n",
			l.From, l.To, l.Listen, l.Upstream, l.LatencyMS, l.API, l.Proxy)
	}
	fmt.Fprintln(out, "\nThrow-away credentials of this run (printed by design):")
	for _, n := range names {
		s := d.Sites[n]
		fmt.Fprintf(out, "  %s  postgres  %s\n", n, s.PostgresURL)
		fmt.Fprintf(out, "  %s  config    %s\n", n, s.Config)
		for _, u := range s.Users {
			fmt.Fprintf(out, "  %s  user      %s  token %s\n", n, u.Email, u.Token)
		}
	}
	if len(d.Grants) > 0 {
		fmt.Fprintln(out, "\nFederated users (each reads only through the peer they own):")
		for _, g := range d.Grants {
			scope := "personal rows and teams"
			if g.Personal {
				scope = "personal rows only"
			}
			fmt.Fprintf(out, "  %s  source=federated:%s  →  %s at %s (%s)\n", g.Owner, g.OwnerPeer, g.Subject, g.Serving, scope)
		}
	}
	fmt.Fprintln(out, "\nTry:")
	for _, n := range names {
		s := d.Sites[n]
		fmt.Fprintf(out, "  curl -s %s/readyz\n", s.APIURL)
		if s.MetricsURL != "" {
			fmt.Fprintf(out, "  curl -s %s/metrics\n", s.MetricsURL)
		}
		if len(s.Users) > 0 {
			fmt.Fprintf(out, "  curl -s -H 'Authorization: Bearer %s' '%s/api/v1/tasks?source=all'\n", s.Users[0].Token, s.APIURL)
		}
		fmt.Fprintf(out, "  psql '%s'\n", strings.TrimSpace(s.PostgresURL))
	}
}
