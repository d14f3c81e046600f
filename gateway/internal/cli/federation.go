package cli

import (
	"context"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/mosaic-federation/mosaic/gateway/api"
	"github.com/mosaic-federation/mosaic/gateway/internal/admin"
	"github.com/mosaic-federation/mosaic/gateway/internal/audit"
	"github.com/mosaic-federation/mosaic/gateway/internal/config"
	"github.com/mosaic-federation/mosaic/gateway/internal/scope"
	"github.com/mosaic-federation/mosaic/gateway/internal/site"
	"github.com/mosaic-federation/mosaic/gateway/internal/tier"
)

// withAdmin runs fn with the site's administration: the federated tier's stores
// (migrated), its sealing keys and its root, for one command.
func withAdmin(g *globals, fn func(ctx context.Context, cmd *cobra.Command, a *admin.Admin, args []string) error) func(*cobra.Command, []string) error {
	return func(cmd *cobra.Command, args []string) error {
		ctx := cmd.Context()
		cfg, err := g.load()
		if err != nil {
			return err
		}
		if cfg.Tier != config.TierFederated {
			return fmt.Errorf("federation needs the federated tier; this site is %s", cfg.Tier)
		}
		t, err := site.Targets(cfg)
		if err != nil {
			return err
		}
		t.ValkeyURL = "" // admin commands only need the database
		if err := tier.Check(ctx, t).Err(); err != nil {
			return err
		}
		s, err := site.Open(ctx, cfg, t, g.log)
		if err != nil {
			return err
		}
		defer s.Close()
		keys, err := site.Keyring(cfg)
		if err != nil {
			return err
		}
		rootDER, err := rootOf(cfg.CA.Root)
		if err != nil {
			return err
		}
		a := &admin.Admin{Fed: s.Fed, Users: s.Store, Audit: s.Audit, Keys: keys,
			PublicURL: cfg.Federation.PublicURL, RootDER: rootDER, RequestID: requestID(),
			EnrollmentTokenTTL: cfg.Federation.EnrollmentTokenTTL.Duration, GrantTTL: cfg.Federation.GrantTTL.Duration}
		return fn(ctx, cmd, a, args)
	}
}

// rootOf reads the site's root certificate (ca.root) as DER.
func rootOf(path string) ([]byte, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("ca.root: %w", err)
	}
	block, _ := pem.Decode(b)
	if block == nil || block.Type != "CERTIFICATE" {
		return nil, fmt.Errorf("ca.root %s: no PEM certificate", path)
	}
	return block.Bytes, nil
}

func federationCmd(g *globals) *cobra.Command {
	c := &cobra.Command{Use: "federation", Short: "Peers, grants, enrollment tokens and the audit log"}
	peer := &cobra.Command{Use: "peer", Short: "Peers: inbound (registered here) and outbound (sites you enrolled at)"}
	grant := &cobra.Command{Use: "grant", Short: "Grants: one subject user, a scope, a row cap"}
	token := &cobra.Command{Use: "token", Short: "Enrollment tokens"}
	auditCmd := &cobra.Command{Use: "audit", Short: "The federation audit log"}
	peer.AddCommand(peerCreateCmd(g), peerListCmd(g), peerAddCmd(g), peerVerifyCmd(g), peerRemoveCmd(g))
	peer.AddCommand(peerStateCmds(g)...)
	grant.AddCommand(grantCreateCmd(g), grantListCmd(g), grantShowCmd(g), grantRevokeCmd(g))
	token.AddCommand(tokenCreateCmd(g))
	auditCmd.AddCommand(auditListCmd(g), auditHeadCmd(g), auditVerifyCmd(g))
	c.AddCommand(peer, grant, token, auditCmd, enrollDemoCmd(g))
	return c
}

func peerCreateCmd(g *globals) *cobra.Command {
	var name string
	var asJSON bool
	c := &cobra.Command{Use: "create --name NAME", Short: "Register an inbound peer (pending until it enrolls)", Args: cobra.NoArgs,
		RunE: withAdmin(g, func(ctx context.Context, cmd *cobra.Command, a *admin.Admin, _ []string) error {
			p, err := a.CreatePeer(ctx, name)
			if err != nil {
				return err
			}
			return render(cmd, asJSON, p, func(w io.Writer) { fmt.Fprintf(w, "peer %s (%s) created: %s\n", p.Name, p.ID, p.State) })
		})}
	c.Flags().StringVar(&name, "name", "", "the peer's name, unique among inbound peers")
	jsonFlag(c, &asJSON)
	must(c.MarkFlagRequired("name"))
	return c
}

func peerListCmd(g *globals) *cobra.Command {
	var asJSON bool
	c := &cobra.Command{Use: "list", Short: "List peers", Args: cobra.NoArgs,
		RunE: withAdmin(g, func(ctx context.Context, cmd *cobra.Command, a *admin.Admin, _ []string) error {
			peers, err := a.Peers(ctx)
			if err != nil {
				return err
			}
			return render(cmd, asJSON, peers, func(w io.Writer) {
				tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
				fmt.Fprintln(tw, "NAME\tDIRECTION\tSTATE\tID\tURL\tNOT_AFTER\tRENEW_AT")
				for _, p := range peers {
					fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\n", p.Name, p.Direction, p.State, p.ID, p.URL, instant(p.NotAfter), instant(p.RenewAt))
				}
				tw.Flush()
				for _, p := range peers {
					if p.RenewalError != "" {
						fmt.Fprintf(w, "peer %s: last renewal failed: %s\n", p.Name, p.RenewalError)
					}
				}
			})
		})}
	jsonFlag(c, &asJSON)
	return c
}

// instant prints an optional time ("-" when none).
func instant(t *time.Time) string {
	if t == nil {
		return "-"
	}
	return t.UTC().Format(time.RFC3339)
}

func printGrantCreated(out api.GrantCreated) func(io.Writer) {
	return func(w io.Writer) {
		fmt.Fprintf(w, "grant %s for peer %s, subject %s: %s\n\nGive the peer's administrator this enrollment URL (single use, until %s):\n\n  %s\n",
			out.GrantID, out.Peer, out.SubjectUserID, out.Status, out.TokenExpiresAt, out.EnrollmentURL)
	}
}

func grantCreateCmd(g *globals) *cobra.Command {
	var req admin.GrantRequest
	var scopeFile string
	var asJSON bool
	c := &cobra.Command{Use: "create --peer NAME --subject-user EMAIL|ID --scope FILE", Short: "Grant a peer one subject user's data within a scope; prints the enrollment URL",
		Args: cobra.NoArgs,
		RunE: withAdmin(g, func(ctx context.Context, cmd *cobra.Command, a *admin.Admin, _ []string) error {
			b, err := os.ReadFile(scopeFile)
			if err != nil {
				return fmt.Errorf("--scope: %w", err)
			}
			req.Scope = b
			out, err := a.CreateGrant(ctx, req)
			if err != nil {
				return err
			}
			return render(cmd, asJSON, out, printGrantCreated(out))
		})}
	c.Flags().StringVar(&req.Peer, "peer", "", "the inbound peer")
	c.Flags().StringVar(&req.SubjectUser, "subject-user", "", "the user of this site whose data the grant covers (email or id)")
	c.Flags().StringVar(&scopeFile, "scope", "", "the scope document (JSON)")
	c.Flags().DurationVar(&req.ExpiresIn, "expires-in", 0, "grant lifetime (default federation.grant_ttl)")
	c.Flags().StringVar(&req.Rate, "rate", "", "the grant's own rate limit, e.g. 5/s (default federation.rate_limit.per_grant)")
	jsonFlag(c, &asJSON)
	for _, f := range []string{"peer", "subject-user", "scope"} {
		must(c.MarkFlagRequired(f))
	}
	return c
}

func tokenCreateCmd(g *globals) *cobra.Command {
	var grantID string
	var asJSON bool
	c := &cobra.Command{Use: "create --grant ID", Short: "A fresh enrollment token for a pending grant", Args: cobra.NoArgs,
		RunE: withAdmin(g, func(ctx context.Context, cmd *cobra.Command, a *admin.Admin, _ []string) error {
			out, err := a.NewToken(ctx, grantID)
			if err != nil {
				return err
			}
			return render(cmd, asJSON, out, func(w io.Writer) { fmt.Fprintf(w, "%s\n", out.EnrollmentURL) })
		})}
	c.Flags().StringVar(&grantID, "grant", "", "the pending grant")
	jsonFlag(c, &asJSON)
	must(c.MarkFlagRequired("grant"))
	return c
}

func grantListCmd(g *globals) *cobra.Command {
	var asJSON bool
	c := &cobra.Command{Use: "list", Short: "List grants", Args: cobra.NoArgs,
		RunE: withAdmin(g, func(ctx context.Context, cmd *cobra.Command, a *admin.Admin, _ []string) error {
			grants, err := a.Grants(ctx)
			if err != nil {
				return err
			}
			return render(cmd, asJSON, grants, func(w io.Writer) {
				tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
				fmt.Fprintln(tw, "GRANT\tPEER\tSUBJECT\tSTATUS\tRESOURCES\tCAP")
				for _, gr := range grants {
					fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%d\n", gr.ID, gr.Peer, gr.SubjectUserID, gr.Status,
						strings.Join(scope.Scope(gr.Scope).Effective(), ","), gr.Scope.MaxRowsPerQuery)
				}
				tw.Flush()
			})
		})}
	jsonFlag(c, &asJSON)
	return c
}

func grantShowCmd(g *globals) *cobra.Command {
	var asJSON bool
	c := &cobra.Command{Use: "show GRANT_ID", Short: "Show a grant", Args: cobra.ExactArgs(1),
		RunE: withAdmin(g, func(ctx context.Context, cmd *cobra.Command, a *admin.Admin, args []string) error {
			gr, err := a.Grant(ctx, args[0])
			if err != nil {
				return err
			}
			return render(cmd, asJSON, gr, func(w io.Writer) {
				rate := gr.RateLimit
				if rate == "" {
					rate = "the site's (federation.rate_limit.per_grant)"
				}
				fmt.Fprintf(w, "grant %s\n  peer %s\n  subject %s\n  status %s\n  resources %s (cap %d)\n  rate limit %s\n  expires %s\n",
					gr.ID, gr.Peer, gr.SubjectUserID, gr.Status, strings.Join(scope.Scope(gr.Scope).Effective(), ","), gr.Scope.MaxRowsPerQuery,
					rate, gr.ExpiresAt.Format(time.RFC3339))
			})
		})}
	jsonFlag(c, &asJSON)
	return c
}

func grantRevokeCmd(g *globals) *cobra.Command {
	var reason string
	var asJSON bool
	c := &cobra.Command{Use: "revoke GRANT_ID", Short: "Revoke a pending or active grant", Args: cobra.ExactArgs(1),
		RunE: withAdmin(g, func(ctx context.Context, cmd *cobra.Command, a *admin.Admin, args []string) error {
			gr, err := a.RevokeGrant(ctx, args[0], reason)
			if err != nil {
				return err
			}
			return render(cmd, asJSON, gr, func(w io.Writer) { fmt.Fprintf(w, "grant %s revoked\n", gr.ID) })
		})}
	c.Flags().StringVar(&reason, "reason", "", "why (kept with the grant)")
	jsonFlag(c, &asJSON)
	return c
}

func auditListCmd(g *globals) *cobra.Command {
	var f audit.Filter
	var since time.Duration
	var asJSON bool
	c := &cobra.Command{Use: "list", Short: "The newest audit entries first, filtered", Args: cobra.NoArgs,
		RunE: withAdmin(g, func(ctx context.Context, cmd *cobra.Command, a *admin.Admin, _ []string) error {
			if since < 0 {
				return errors.New("--since: must be a positive duration such as 1h")
			}
			if since > 0 {
				f.Since = time.Now().Add(-since)
			}
			entries, err := a.AuditList(ctx, f)
			if err != nil {
				return err
			}
			return render(cmd, asJSON, entries, func(w io.Writer) {
				tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
				fmt.Fprintln(tw, "SEQ\tAT\tDIRECTION\tACTOR\tACTION\tOUTCOME\tREASON\tROWS\tCOUNT\tREQUEST")
				for _, e := range entries {
					fmt.Fprintf(tw, "%d\t%s\t%s\t%s\t%s\t%s\t%s\t%d\t%d\t%s\n", e.Seq, e.At.Format(time.RFC3339), e.Direction,
						e.Actor, e.Action, e.Outcome, e.Reason, e.Rows, e.Count, e.RequestID)
				}
				tw.Flush()
			})
		})}
	c.Flags().StringVar(&f.Peer, "peer", "", "only rows of this peer (its name)")
	c.Flags().StringVar(&f.GrantID, "grant", "", "only rows of this grant")
	c.Flags().StringVar(&f.Outcome, "outcome", "", "only allowed, denied or failed")
	c.Flags().DurationVar(&since, "since", 0, "only rows of the last … (e.g. 1h)")
	c.Flags().IntVar(&f.Limit, "limit", 100, "how many entries")
	jsonFlag(c, &asJSON)
	return c
}

func auditHeadCmd(g *globals) *cobra.Command {
	var asJSON bool
	c := &cobra.Command{Use: "head", Short: "The newest row's SEQ:MAC: record it, and later `audit verify --since-head` proves nothing up to it was cut off",
		Args: cobra.NoArgs,
		RunE: withAdmin(g, func(ctx context.Context, cmd *cobra.Command, a *admin.Admin, _ []string) error {
			h, err := a.AuditHead(ctx)
			if err != nil {
				return err
			}
			return render(cmd, asJSON, h, func(w io.Writer) { fmt.Fprintln(w, h.Head) })
		})}
	jsonFlag(c, &asJSON)
	return c
}

func auditVerifyCmd(g *globals) *cobra.Command {
	var since string
	var asJSON bool
	c := &cobra.Command{Use: "verify [--since-head SEQ:MAC]", Short: "Walk the audit chain: exit 1 naming the first row that was edited, deleted, moved or cut off",
		Args: cobra.NoArgs,
		RunE: withAdmin(g, func(ctx context.Context, cmd *cobra.Command, a *admin.Admin, _ []string) error {
			res, err := a.AuditVerify(ctx, since)
			if err != nil {
				return err
			}
			err = render(cmd, asJSON, res, func(w io.Writer) {
				if res.OK {
					fmt.Fprintf(w, "ok: %d rows chain (%d of them legacy, unkeyed)\n", res.Rows, res.LegacyRows)
					return
				}
				fmt.Fprintf(w, "BROKEN at row %d: %s (%d rows read)\n", res.FirstBad.Seq, res.FirstBad.Reason, res.Rows)
			})
			if err == nil && !res.OK {
				return ErrReported
			}
			return err
		})}
	c.Flags().StringVar(&since, "since-head", "", "a head `audit head` printed earlier: it must still be in the chain")
	jsonFlag(c, &asJSON)
	return c
}

func peerAddCmd(g *globals) *cobra.Command {
	var req admin.AddPeerRequest
	var asJSON bool
	c := &cobra.Command{Use: "add <enrollment URL | -> --name NAME --local-user EMAIL",
		Short: "Enroll at a remote site: pin its root by the URL's fingerprint, get a client certificate, keep the key sealed",
		Args:  cobra.ExactArgs(1),
		RunE: withAdmin(g, func(ctx context.Context, cmd *cobra.Command, a *admin.Admin, args []string) error {
			req.URL = args[0]
			if req.URL == "-" { // from stdin, so the URL never shows in a process list
				b, err := io.ReadAll(io.LimitReader(cmd.InOrStdin(), 8<<10))
				if err != nil {
					return err
				}
				req.URL = string(b)
			}
			out, err := a.AddPeer(ctx, req)
			if err != nil {
				return err
			}
			return render(cmd, asJSON, out, func(w io.Writer) {
				fmt.Fprintf(w, "peer %s enrolled at %s: grant %s, certificate until %s\n", out.Peer, out.URL, out.GrantID, out.NotAfter)
			})
		})}
	c.Flags().StringVar(&req.Name, "name", "", "what to call the remote site")
	c.Flags().StringVar(&req.LocalUser, "local-user", "", "the local user who owns this peer (email or id)")
	c.Flags().BoolVar(&req.Replace, "replace", false, "swap this enrollment into the user's existing peer of that name, once it succeeded")
	jsonFlag(c, &asJSON)
	must(c.MarkFlagRequired("name"))
	must(c.MarkFlagRequired("local-user"))
	return c
}

func peerVerifyCmd(g *globals) *cobra.Command {
	var localUser string
	var asJSON bool
	c := &cobra.Command{Use: "verify NAME --local-user EMAIL", Short: "Unseal a peer's key and check it matches the stored certificate (never prints the key)",
		Args: cobra.ExactArgs(1),
		RunE: withAdmin(g, func(ctx context.Context, cmd *cobra.Command, a *admin.Admin, args []string) error {
			res, err := a.VerifyPeer(ctx, args[0], localUser)
			if err != nil {
				return err
			}
			return render(cmd, asJSON, res, func(w io.Writer) {
				fmt.Fprintf(w, "peer %s: key matches certificate (serial %s, valid until %s)\n", res.Peer, res.Serial, res.NotAfter)
			})
		})}
	c.Flags().StringVar(&localUser, "local-user", "", "the local user who owns the peer")
	jsonFlag(c, &asJSON)
	must(c.MarkFlagRequired("local-user"))
	return c
}
