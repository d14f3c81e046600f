package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"

	"github.com/spf13/cobra"

	"github.com/mosaic-federation/mosaic/gateway/internal/admin"
	"github.com/mosaic-federation/mosaic/siteinit"
)

// enroll-demo is the demo's enrollment as two one-shots (docker-compose): the serving
// site offers (peer, grant, enrollment URL into a file standing in for the hand-over
// out of band), the requesting site accepts (peer add from that file). Both are the
// admin verbs of `peer create`, `grant create`, `token create` and `peer add`, made
// safe to re-run: what is done is reported, not redone.

func enrollDemoCmd(g *globals) *cobra.Command {
	c := &cobra.Command{Use: "enroll-demo", Short: "The demo's enrollment as re-runnable one-shots: offer at the serving site, accept at the requesting one"}
	c.AddCommand(offerCmd(g), acceptCmd(g))
	return c
}

func offerCmd(g *globals) *cobra.Command {
	var req admin.GrantRequest
	var scopeFile, urlFile string
	var asJSON bool
	c := &cobra.Command{Use: "offer --peer NAME --subject-user EMAIL --scope FILE --url-file FILE",
		Short: "Register the peer and grant it the subject user once; write a fresh enrollment URL while the grant is pending; refuse once the grant or peer was ended",
		Args:  cobra.NoArgs,
		// Before the database: a missing volume says so without a connection.
		PreRunE: func(*cobra.Command, []string) error {
			if _, err := os.Stat(scopeFile); err != nil {
				return fmt.Errorf("--scope: %w", err)
			}
			return mounted("--url-file", filepath.Dir(urlFile))
		},
		RunE: withAdmin(g, func(ctx context.Context, cmd *cobra.Command, a *admin.Admin, _ []string) error {
			b, err := os.ReadFile(scopeFile)
			if err != nil {
				return fmt.Errorf("--scope: %w", err)
			}
			req.Scope = b
			res, err := offer(ctx, a, req, urlFile)
			if err != nil {
				return err
			}
			return render(cmd, asJSON, res, func(w io.Writer) {
				switch res.Action {
				case "already_enrolled":
					fmt.Fprintf(w, "enroll-demo: peer %s already enrolled (grant %s active): nothing to do\n", res.Peer, res.GrantID)
				default:
					fmt.Fprintf(w, "enroll-demo: grant %s for peer %s pending (%s); its enrollment URL is in %s\n", res.GrantID, res.Peer, res.Action, urlFile)
				}
			})
		})}
	c.Flags().StringVar(&req.Peer, "peer", "", "the requesting site's name here")
	c.Flags().StringVar(&req.SubjectUser, "subject-user", "", "the user of this site whose data the grant covers (email or id)")
	c.Flags().StringVar(&scopeFile, "scope", "", "the scope document (JSON)")
	c.Flags().StringVar(&urlFile, "url-file", "", "where the enrollment URL goes (mode 0600; its folder must exist)")
	jsonFlag(c, &asJSON)
	for _, f := range []string{"peer", "subject-user", "scope", "url-file"} {
		must(c.MarkFlagRequired(f))
	}
	return c
}

// offerer is the verb offer runs (admin.Admin; a fake in tests).
type offerer interface {
	Offer(ctx context.Context, req admin.GrantRequest) (admin.Offered, string, error)
}

// offer runs the offer and writes the URL it hands out to urlFile. When it refuses
// because the grant or peer was ended on purpose, the URL a run before left goes too,
// so no one hands over a dead (or suspended) enrollment.
func offer(ctx context.Context, a offerer, req admin.GrantRequest, urlFile string) (admin.Offered, error) {
	res, url, err := a.Offer(ctx, req)
	if errors.Is(err, admin.ErrNothingOffered) {
		if rerr := os.Remove(urlFile); rerr != nil && !errors.Is(rerr, fs.ErrNotExist) {
			return res, errors.Join(err, fmt.Errorf("--url-file: %w", rerr))
		}
	}
	if err != nil {
		return res, err
	}
	if url != "" {
		if err := siteinit.WriteFile(urlFile, []byte(url+"\n"), 0o600); err != nil {
			return res, fmt.Errorf("--url-file: %w", err)
		}
	}
	return res, nil
}

func acceptCmd(g *globals) *cobra.Command {
	var req admin.AddPeerRequest
	var urlFile string
	var asJSON bool
	c := &cobra.Command{Use: "accept --url-file FILE --name NAME --local-user EMAIL",
		Short: "Enroll the local user at the serving site from the URL in FILE, unless that peer is there already",
		Args:  cobra.NoArgs,
		RunE: withAdmin(g, func(ctx context.Context, cmd *cobra.Command, a *admin.Admin, _ []string) error {
			res, err := a.Accept(ctx, req, func() (string, error) {
				b, err := os.ReadFile(urlFile)
				if err != nil {
					return "", fmt.Errorf("--url-file: %w (did the serving site's offer run?)", err)
				}
				return string(b), nil
			})
			if err != nil {
				return err
			}
			return render(cmd, asJSON, res, func(w io.Writer) {
				if res.Action == "already_enrolled" {
					fmt.Fprintf(w, "enroll-demo: %s already has the peer %s (grant %s): nothing to do\n", req.LocalUser, res.Peer, res.GrantID)
					return
				}
				fmt.Fprintf(w, "enroll-demo: %s enrolled at %s as peer %s (grant %s)\n", req.LocalUser, res.URL, res.Peer, res.GrantID)
			})
		})}
	c.Flags().StringVar(&urlFile, "url-file", "", "the file the serving site's offer wrote")
	c.Flags().StringVar(&req.Name, "name", "", "what to call the serving site")
	c.Flags().StringVar(&req.LocalUser, "local-user", "", "the local user who owns the peer (email or id)")
	jsonFlag(c, &asJSON)
	for _, f := range []string{"url-file", "name", "local-user"} {
		must(c.MarkFlagRequired(f))
	}
	return c
}
