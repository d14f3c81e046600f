package cli

import (
	"context"
	"fmt"
	"io"

	"github.com/spf13/cobra"

	"github.com/mosaic-federation/mosaic/gateway/internal/admin"
)

// peerStateCmds are the serving site's `peer suspend|resume|revoke NAME` (SPEC §6d).
func peerStateCmds(g *globals) []*cobra.Command {
	var out []*cobra.Command
	for _, v := range []struct{ use, state, short, done string }{
		{"suspend", "suspended", "Suspend an inbound peer: its requests are refused (403 peer_not_active) until resumed", "suspended"},
		{"resume", "active", "Resume a suspended inbound peer", "resumed"},
		{"revoke", "revoked", "Revoke an inbound peer for good, with every grant and certificate it holds", "revoked"},
	} {
		var asJSON bool
		c := &cobra.Command{Use: v.use + " NAME", Short: v.short, Args: cobra.ExactArgs(1),
			RunE: withAdmin(g, func(ctx context.Context, cmd *cobra.Command, a *admin.Admin, args []string) error {
				p, err := a.SetPeerState(ctx, args[0], v.state)
				if err != nil {
					return err
				}
				return render(cmd, asJSON, p, func(w io.Writer) { fmt.Fprintf(w, "peer %s %s\n", p.Name, v.done) })
			})}
		jsonFlag(c, &asJSON)
		out = append(out, c)
	}
	return out
}

// peerRemoveCmd is the requesting site's `peer remove NAME --local-user EMAIL`.
func peerRemoveCmd(g *globals) *cobra.Command {
	var localUser string
	var asJSON bool
	c := &cobra.Command{Use: "remove NAME --local-user EMAIL",
		Short: "Remove an outbound peer: its certificate and sealed key are deleted (the other site's grant stays until revoked there)",
		Args:  cobra.ExactArgs(1),
		RunE: withAdmin(g, func(ctx context.Context, cmd *cobra.Command, a *admin.Admin, args []string) error {
			p, err := a.RemovePeer(ctx, args[0], localUser)
			if err != nil {
				return err
			}
			return render(cmd, asJSON, p, func(w io.Writer) { fmt.Fprintf(w, "peer %s removed\n", p.Name) })
		})}
	c.Flags().StringVar(&localUser, "local-user", "", "the local user who owns the peer")
	jsonFlag(c, &asJSON)
	must(c.MarkFlagRequired("local-user"))
	return c
}
