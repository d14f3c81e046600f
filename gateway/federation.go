package main

import (
	"context"
	"crypto"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/hex"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/google/uuid"
	"github.com/spf13/cobra"

	"github.com/mosaic-federation/mosaic/gateway/internal/config"
	"github.com/mosaic-federation/mosaic/gateway/internal/fedclient"
	"github.com/mosaic-federation/mosaic/gateway/internal/fedstore"
	"github.com/mosaic-federation/mosaic/gateway/internal/scope"
	"github.com/mosaic-federation/mosaic/gateway/internal/sealing"
	"github.com/mosaic-federation/mosaic/gateway/internal/store"
	"github.com/mosaic-federation/mosaic/gateway/internal/tier"
)

// fedEnv is what every federation admin command works with.
type fedEnv struct {
	cfg *config.Config
	st  store.Store
	fs  *fedstore.Store
	rid string
}

// openFed opens the federated tier's stores (migrating them) for an admin command.
func openFed(ctx context.Context, g *globals) (*fedEnv, func(), error) {
	cfg, err := g.load()
	if err != nil {
		return nil, nil, err
	}
	if cfg.Tier != config.TierFederated {
		return nil, nil, fmt.Errorf("federation needs the federated tier; this site is %s", cfg.Tier)
	}
	t, err := targets(cfg)
	if err != nil {
		return nil, nil, err
	}
	t.ValkeyURL = "" // admin commands only need the database
	if err := tier.Check(ctx, t).Err(); err != nil {
		return nil, nil, err
	}
	st, err := openStore(ctx, cfg, t)
	if err != nil {
		return nil, nil, err
	}
	fs, err := fedstore.Open(ctx, t.PostgresURL)
	if err != nil {
		st.Close()
		return nil, nil, err
	}
	b := make([]byte, 6)
	_, _ = rand.Read(b)
	return &fedEnv{cfg: cfg, st: st, fs: fs, rid: "cli-" + hex.EncodeToString(b)}, func() { fs.Close(); st.Close() }, nil
}

func (e *fedEnv) audit(ctx context.Context, action, outcome, reason, grantID, peerID, detail string) error {
	return e.fs.Append(ctx, fedstore.Entry{RequestID: e.rid, Actor: "cli", Action: action, Outcome: outcome,
		Reason: reason, GrantID: grantID, PeerID: peerID, Detail: detail})
}

// fedCmd runs fn with an open fedEnv; a failed audit write fails the command.
func fedCmd(g *globals, fn func(ctx context.Context, e *fedEnv, args []string) error) func(*cobra.Command, []string) error {
	return func(cmd *cobra.Command, args []string) error {
		e, closeFn, err := openFed(cmd.Context(), g)
		if err != nil {
			return err
		}
		defer closeFn()
		return fn(cmd.Context(), e, args)
	}
}

func federationCmd(g *globals) *cobra.Command {
	c := &cobra.Command{Use: "federation", Short: "Peers, grants, enrollment tokens and the audit log"}
	peer := &cobra.Command{Use: "peer", Short: "Peers: inbound (registered here) and outbound (sites you enrolled at)"}
	grant := &cobra.Command{Use: "grant", Short: "Grants: one subject user, a scope, a row cap"}
	token := &cobra.Command{Use: "token", Short: "Enrollment tokens"}
	audit := &cobra.Command{Use: "audit", Short: "The federation audit log"}
	peer.AddCommand(peerCreateCmd(g), peerListCmd(g), peerAddCmd(g), peerVerifyCmd(g))
	grant.AddCommand(grantCreateCmd(g), grantListCmd(g), grantShowCmd(g), grantRevokeCmd(g))
	token.AddCommand(tokenCreateCmd(g))
	audit.AddCommand(auditListCmd(g))
	c.AddCommand(peer, grant, token, audit)
	return c
}

func peerCreateCmd(g *globals) *cobra.Command {
	var name string
	var asJSON bool
	c := &cobra.Command{Use: "create --name NAME", Short: "Register an inbound peer (pending until it enrolls)", Args: cobra.NoArgs,
		RunE: fedCmd(g, func(ctx context.Context, e *fedEnv, _ []string) error {
			if !validName(name) {
				return errors.New("--name: use 1-64 letters, digits, '-' or '_'")
			}
			p, err := e.fs.CreateInboundPeer(ctx, name)
			if err != nil {
				_ = e.audit(ctx, "peer.create", "failed", "conflict", "", "", "name "+name)
				return err
			}
			if err := e.audit(ctx, "peer.create", "allowed", "created", "", p.ID, "name "+name); err != nil {
				return err
			}
			return output(asJSON, p, func(w io.Writer) { fmt.Fprintf(w, "peer %s (%s) created: %s\n", p.Name, p.ID, p.State) })
		})}
	c.Flags().StringVar(&name, "name", "", "the peer's name, unique among inbound peers")
	c.Flags().BoolVar(&asJSON, "json", false, "print JSON")
	_ = c.MarkFlagRequired("name")
	return c
}

func peerListCmd(g *globals) *cobra.Command {
	var asJSON bool
	c := &cobra.Command{Use: "list", Short: "List peers", Args: cobra.NoArgs,
		RunE: fedCmd(g, func(ctx context.Context, e *fedEnv, _ []string) error {
			peers, err := e.fs.Peers(ctx, "")
			if err != nil {
				return err
			}
			if peers == nil {
				peers = []fedstore.Peer{}
			}
			return output(asJSON, peers, func(w io.Writer) {
				tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
				fmt.Fprintln(tw, "NAME\tDIRECTION\tSTATE\tID\tURL")
				for _, p := range peers {
					fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", p.Name, p.Direction, p.State, p.ID, p.URL)
				}
				tw.Flush()
			})
		})}
	c.Flags().BoolVar(&asJSON, "json", false, "print JSON")
	return c
}

// grantCreated is what `grant create --json` prints.
type grantCreated struct {
	GrantID        string `json:"grant_id"`
	Peer           string `json:"peer"`
	SubjectUserID  string `json:"subject_user_id"`
	Status         string `json:"status"`
	EnrollmentURL  string `json:"enrollment_url"`
	TokenExpiresAt string `json:"token_expires_at"`
}

func grantCreateCmd(g *globals) *cobra.Command {
	var peerName, subject, scopeFile string
	var expiresIn time.Duration
	var asJSON bool
	c := &cobra.Command{Use: "create --peer NAME --subject-user EMAIL|ID --scope FILE", Short: "Grant a peer one subject user's data within a scope; prints the enrollment URL",
		Args: cobra.NoArgs,
		RunE: fedCmd(g, func(ctx context.Context, e *fedEnv, _ []string) error {
			b, err := os.ReadFile(scopeFile)
			if err != nil {
				return fmt.Errorf("--scope: %w", err)
			}
			sc, err := scope.Parse(b)
			if err != nil {
				_ = e.audit(ctx, "grant.create", "denied", "invalid_scope", "", "", err.Error())
				return err
			}
			p, err := e.fs.InboundPeer(ctx, peerName)
			if err != nil {
				return fmt.Errorf("--peer %q: no inbound peer of that name (create it with `federation peer create`)", peerName)
			}
			uid, err := e.fs.UserID(ctx, subject)
			if err != nil {
				return fmt.Errorf("--subject-user: %w", err)
			}
			if expiresIn <= 0 {
				expiresIn = e.cfg.Federation.GrantTTL.Duration
			}
			gr, err := e.fs.CreateGrant(ctx, p.ID, uid, sc, time.Now().Add(expiresIn))
			if err != nil {
				return err
			}
			if err := e.audit(ctx, "grant.create", "allowed", "created", gr.ID, p.ID, "subject "+uid); err != nil {
				return err
			}
			out, err := newToken(ctx, e, gr)
			if err != nil {
				return err
			}
			return output(asJSON, out, func(w io.Writer) {
				fmt.Fprintf(w, "grant %s for peer %s, subject %s: %s\n\nGive the peer's administrator this enrollment URL (single use, until %s):\n\n  %s\n",
					out.GrantID, out.Peer, out.SubjectUserID, out.Status, out.TokenExpiresAt, out.EnrollmentURL)
			})
		})}
	c.Flags().StringVar(&peerName, "peer", "", "the inbound peer")
	c.Flags().StringVar(&subject, "subject-user", "", "the user of this site whose data the grant covers (email or id)")
	c.Flags().StringVar(&scopeFile, "scope", "", "the scope document (JSON)")
	c.Flags().DurationVar(&expiresIn, "expires-in", 0, "grant lifetime (default federation.grant_ttl)")
	c.Flags().BoolVar(&asJSON, "json", false, "print JSON")
	for _, f := range []string{"peer", "subject-user", "scope"} {
		_ = c.MarkFlagRequired(f)
	}
	return c
}

// newToken makes an enrollment token for a pending grant and its URL; only the token's
// hash is stored and only its first 8 characters are ever logged.
func newToken(ctx context.Context, e *fedEnv, gr fedstore.Grant) (grantCreated, error) {
	raw := make([]byte, 32)
	if _, err := rand.Read(raw); err != nil {
		return grantCreated{}, err
	}
	tok := "met_" + base64.RawURLEncoding.EncodeToString(raw)
	expires := time.Now().Add(e.cfg.Federation.EnrollmentTokenTTL.Duration).UTC()
	if gr.ExpiresAt.Before(expires) {
		expires = gr.ExpiresAt.UTC() // never outlives its grant
	}
	if err := e.fs.AddToken(ctx, gr.ID, fedstore.HashToken(tok), expires); err != nil {
		_ = e.audit(ctx, "token.create", "denied", "grant_not_pending", gr.ID, gr.PeerID, "")
		return grantCreated{}, err
	}
	if err := e.audit(ctx, "token.create", "allowed", "created", gr.ID, gr.PeerID, "token "+tok[:8]+"…"); err != nil {
		return grantCreated{}, err
	}
	fp, err := rootFingerprint(e.cfg.CA.Root)
	if err != nil {
		return grantCreated{}, err
	}
	url := strings.TrimRight(e.cfg.Federation.PublicURL, "/") + fedclient.EnrollPath + "#token=" + tok + "&ca-sha256=" + fp
	return grantCreated{GrantID: gr.ID, Peer: gr.Peer, SubjectUserID: gr.SubjectUserID, Status: gr.Status,
		EnrollmentURL: url, TokenExpiresAt: expires.Format(time.RFC3339)}, nil
}

func rootFingerprint(path string) (string, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return "", fmt.Errorf("ca.root: %w", err)
	}
	block, _ := pem.Decode(b)
	if block == nil {
		return "", fmt.Errorf("ca.root %s: no PEM certificate", path)
	}
	sum := sha256.Sum256(block.Bytes)
	return hex.EncodeToString(sum[:]), nil
}

func tokenCreateCmd(g *globals) *cobra.Command {
	var grantID string
	var asJSON bool
	c := &cobra.Command{Use: "create --grant ID", Short: "A fresh enrollment token for a pending grant", Args: cobra.NoArgs,
		RunE: fedCmd(g, func(ctx context.Context, e *fedEnv, _ []string) error {
			gr, err := e.fs.Grant(ctx, grantID)
			if err != nil {
				return fmt.Errorf("--grant: %w", err)
			}
			out, err := newToken(ctx, e, gr)
			if err != nil {
				return err
			}
			return output(asJSON, out, func(w io.Writer) { fmt.Fprintf(w, "%s\n", out.EnrollmentURL) })
		})}
	c.Flags().StringVar(&grantID, "grant", "", "the pending grant")
	c.Flags().BoolVar(&asJSON, "json", false, "print JSON")
	_ = c.MarkFlagRequired("grant")
	return c
}

func grantListCmd(g *globals) *cobra.Command {
	var asJSON bool
	c := &cobra.Command{Use: "list", Short: "List grants", Args: cobra.NoArgs,
		RunE: fedCmd(g, func(ctx context.Context, e *fedEnv, _ []string) error {
			grants, err := e.fs.Grants(ctx)
			if err != nil {
				return err
			}
			if grants == nil {
				grants = []fedstore.Grant{}
			}
			return output(asJSON, grants, func(w io.Writer) {
				tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
				fmt.Fprintln(tw, "GRANT\tPEER\tSUBJECT\tSTATUS\tRESOURCES\tCAP")
				for _, gr := range grants {
					fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%d\n", gr.ID, gr.Peer, gr.SubjectUserID, gr.Status,
						strings.Join(gr.Scope.Effective(), ","), gr.Scope.MaxRowsPerQuery)
				}
				tw.Flush()
			})
		})}
	c.Flags().BoolVar(&asJSON, "json", false, "print JSON")
	return c
}

func grantShowCmd(g *globals) *cobra.Command {
	var asJSON bool
	c := &cobra.Command{Use: "show GRANT_ID", Short: "Show a grant", Args: cobra.ExactArgs(1),
		RunE: fedCmd(g, func(ctx context.Context, e *fedEnv, args []string) error {
			gr, err := e.fs.Grant(ctx, args[0])
			if err != nil {
				return err
			}
			return output(asJSON, gr, func(w io.Writer) {
				fmt.Fprintf(w, "grant %s\n  peer %s\n  subject %s\n  status %s\n  resources %s (cap %d)\n  expires %s\n",
					gr.ID, gr.Peer, gr.SubjectUserID, gr.Status, strings.Join(gr.Scope.Effective(), ","), gr.Scope.MaxRowsPerQuery, gr.ExpiresAt.Format(time.RFC3339))
			})
		})}
	c.Flags().BoolVar(&asJSON, "json", false, "print JSON")
	return c
}

func grantRevokeCmd(g *globals) *cobra.Command {
	var reason string
	var asJSON bool
	c := &cobra.Command{Use: "revoke GRANT_ID", Short: "Revoke a pending or active grant", Args: cobra.ExactArgs(1),
		RunE: fedCmd(g, func(ctx context.Context, e *fedEnv, args []string) error {
			gr, err := e.fs.RevokeGrant(ctx, args[0], reason)
			if err != nil {
				_ = e.audit(ctx, "grant.revoke", "denied", "invalid_transition", "", "", "grant "+args[0])
				return err
			}
			if err := e.audit(ctx, "grant.revoke", "allowed", "revoked", gr.ID, gr.PeerID, ""); err != nil {
				return err
			}
			return output(asJSON, gr, func(w io.Writer) { fmt.Fprintf(w, "grant %s revoked\n", gr.ID) })
		})}
	c.Flags().StringVar(&reason, "reason", "", "why (kept with the grant)")
	c.Flags().BoolVar(&asJSON, "json", false, "print JSON")
	return c
}

func auditListCmd(g *globals) *cobra.Command {
	var limit int
	var asJSON bool
	c := &cobra.Command{Use: "list", Short: "The newest audit entries", Args: cobra.NoArgs,
		RunE: fedCmd(g, func(ctx context.Context, e *fedEnv, _ []string) error {
			entries, err := e.fs.Audit(ctx, limit)
			if err != nil {
				return err
			}
			if entries == nil {
				entries = []fedstore.Entry{}
			}
			return output(asJSON, entries, func(w io.Writer) {
				tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
				fmt.Fprintln(tw, "SEQ\tAT\tACTOR\tACTION\tOUTCOME\tREASON\tGRANT")
				for _, a := range entries {
					fmt.Fprintf(tw, "%d\t%s\t%s\t%s\t%s\t%s\t%s\n", a.Seq, a.At.Format(time.RFC3339), a.Actor, a.Action, a.Outcome, a.Reason, a.GrantID)
				}
				tw.Flush()
			})
		})}
	c.Flags().IntVar(&limit, "limit", 100, "how many entries")
	c.Flags().BoolVar(&asJSON, "json", false, "print JSON")
	return c
}

// peerAdded is what `peer add --json` prints.
type peerAdded struct {
	Peer     string `json:"peer"`
	ID       string `json:"id"`
	State    string `json:"state"`
	URL      string `json:"url"`
	GrantID  string `json:"grant_id"`
	NotAfter string `json:"not_after"`
}

func peerAddCmd(g *globals) *cobra.Command {
	var name, localUser string
	var asJSON bool
	c := &cobra.Command{Use: "add <enrollment URL | -> --name NAME --local-user EMAIL",
		Short: "Enroll at a remote site: pin its root by the URL's fingerprint, get a client certificate, keep the key sealed",
		Args:  cobra.ExactArgs(1),
		RunE: fedCmd(g, func(ctx context.Context, e *fedEnv, args []string) error {
			raw := args[0]
			if raw == "-" { // from stdin, so the URL never shows in a process list
				b, err := io.ReadAll(io.LimitReader(os.Stdin, 8<<10))
				if err != nil {
					return err
				}
				raw = string(b)
			}
			if !validName(name) {
				return errors.New("--name: use 1-64 letters, digits, '-' or '_'")
			}
			owner, err := e.fs.UserID(ctx, localUser)
			if err != nil {
				return fmt.Errorf("--local-user: %w", err)
			}
			kr, err := sealing.Load(e.cfg.SealingKeyFile)
			if err != nil {
				return err
			}
			if _, err := e.fs.OutboundPeer(ctx, owner, name); err == nil {
				return fmt.Errorf("--name: %s already has a peer named %q", localUser, name)
			}
			inv, err := fedclient.ParseEnrollmentURL(raw)
			if err != nil {
				return err
			}
			root, err := fedclient.FetchRoot(ctx, inv)
			if err != nil {
				return err
			}
			enrolled, err := fedclient.Enroll(ctx, inv, root)
			if err != nil {
				return err
			}
			der, err := x509.MarshalPKCS8PrivateKey(enrolled.Key)
			if err != nil {
				return err
			}
			id := uuid.NewString()
			sealed, err := kr.Seal(der, sealing.Place{Table: "federation_peers", RowID: id, Owner: owner})
			if err != nil {
				return err
			}
			p := fedstore.Peer{ID: id, Name: name, OwnerUserID: owner, URL: inv.Base, GrantID: enrolled.GrantID, KeySealed: sealed,
				CARootPEM: string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: root.Raw})),
				CertPEM:   enrolled.CertPEM, ChainPEM: enrolled.ChainPEM}
			if err := e.fs.AddOutboundPeer(ctx, p); err != nil {
				return err
			}
			out := peerAdded{Peer: name, ID: id, State: "active", URL: inv.Base, GrantID: enrolled.GrantID,
				NotAfter: enrolled.Cert.NotAfter.UTC().Format(time.RFC3339)}
			return output(asJSON, out, func(w io.Writer) {
				fmt.Fprintf(w, "peer %s enrolled at %s: grant %s, certificate until %s\n", name, inv.Base, out.GrantID, out.NotAfter)
			})
		})}
	c.Flags().StringVar(&name, "name", "", "what to call the remote site")
	c.Flags().StringVar(&localUser, "local-user", "", "the local user who owns this peer (email or id)")
	c.Flags().BoolVar(&asJSON, "json", false, "print JSON")
	_ = c.MarkFlagRequired("name")
	_ = c.MarkFlagRequired("local-user")
	return c
}

func peerVerifyCmd(g *globals) *cobra.Command {
	var localUser string
	var asJSON bool
	c := &cobra.Command{Use: "verify NAME --local-user EMAIL", Short: "Unseal a peer's key and check it matches the stored certificate (never prints the key)",
		Args: cobra.ExactArgs(1),
		RunE: fedCmd(g, func(ctx context.Context, e *fedEnv, args []string) error {
			owner, err := e.fs.UserID(ctx, localUser)
			if err != nil {
				return fmt.Errorf("--local-user: %w", err)
			}
			p, err := e.fs.OutboundPeer(ctx, owner, args[0])
			if err != nil {
				return fmt.Errorf("no peer %q of %s", args[0], localUser)
			}
			kr, err := sealing.Load(e.cfg.SealingKeyFile)
			if err != nil {
				return err
			}
			res, err := verifyPeer(kr, p)
			if err != nil {
				return err
			}
			return output(asJSON, res, func(w io.Writer) {
				fmt.Fprintf(w, "peer %s: key matches certificate (serial %s, valid until %s)\n", p.Name, res.Serial, res.NotAfter)
			})
		})}
	c.Flags().StringVar(&localUser, "local-user", "", "the local user who owns the peer")
	c.Flags().BoolVar(&asJSON, "json", false, "print JSON")
	_ = c.MarkFlagRequired("local-user")
	return c
}

type peerVerified struct {
	Peer       string `json:"peer"`
	KeyMatches bool   `json:"key_matches"`
	Serial     string `json:"serial"`
	NotAfter   string `json:"not_after"`
}

func verifyPeer(kr *sealing.Keyring, p fedstore.Peer) (peerVerified, error) {
	der, err := kr.Open(p.KeySealed, sealing.Place{Table: "federation_peers", RowID: p.ID, Owner: p.OwnerUserID})
	if err != nil {
		return peerVerified{}, fmt.Errorf("peer %s: the sealed key does not open: %w", p.Name, err)
	}
	key, err := x509.ParsePKCS8PrivateKey(der)
	if err != nil {
		return peerVerified{}, fmt.Errorf("peer %s: the unsealed key does not parse", p.Name)
	}
	block, _ := pem.Decode([]byte(p.CertPEM))
	if block == nil {
		return peerVerified{}, fmt.Errorf("peer %s: no stored certificate", p.Name)
	}
	cert, err := x509.ParseCertificate(block.Bytes)
	if err != nil {
		return peerVerified{}, err
	}
	pub, ok := key.(interface{ Public() crypto.PublicKey })
	if !ok || !publicEqual(pub.Public(), cert.PublicKey) {
		return peerVerified{}, fmt.Errorf("peer %s: the key does NOT match the stored certificate", p.Name)
	}
	return peerVerified{Peer: p.Name, KeyMatches: true, Serial: cert.SerialNumber.String(), NotAfter: cert.NotAfter.UTC().Format(time.RFC3339)}, nil
}

func publicEqual(a, b crypto.PublicKey) bool {
	eq, ok := a.(interface{ Equal(crypto.PublicKey) bool })
	return ok && eq.Equal(b)
}

func validName(s string) bool {
	if len(s) == 0 || len(s) > 64 {
		return false
	}
	for _, r := range s {
		letter := r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z'
		if !letter && (r < '0' || r > '9') && r != '-' && r != '_' {
			return false
		}
	}
	return true
}

// output prints v as JSON or through the text printer.
func output(asJSON bool, v any, text func(io.Writer)) error {
	if asJSON {
		return printJSON(v)
	}
	text(os.Stdout)
	return nil
}
