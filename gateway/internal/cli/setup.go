package cli

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/mosaic-federation/mosaic/siteinit"
)

// The one-shots a containerised site runs before its first serve (docker-compose,
// SPEC §6e): each writes what is missing into a volume and keeps what is there, so a
// second `compose up` on the same volumes changes nothing. They print file names and
// fingerprints, never a secret.

func secretsCmd() *cobra.Command {
	var o siteinit.SecretsOptions
	var owner string
	var asJSON bool
	initCmd := &cobra.Command{Use: "init --dir DIR", Short: "Write the site's passwords and keys that are missing (idempotent; prints file names only)",
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			uid, gid, err := parseOwner(owner)
			if err != nil {
				return err
			}
			if err := mounted("--dir", filepath.Dir(o.Dir)); err != nil {
				return err
			}
			if o.PostgresPasswordFile != "" {
				if err := mounted("--postgres-password-file", filepath.Dir(o.PostgresPasswordFile)); err != nil {
					return err
				}
			}
			res, err := siteinit.InitSecrets(o)
			if err != nil {
				return err
			}
			if uid >= 0 {
				// The gateway's own: its user reads them; the database password stays root's.
				paths := []string{o.Dir}
				for _, f := range res.Files() {
					if f != o.PostgresPasswordFile {
						paths = append(paths, f)
					}
				}
				if err := chown(paths, uid, gid); err != nil {
					return err
				}
			}
			return render(cmd, asJSON, res, func(w io.Writer) {
				for _, f := range res.Created {
					fmt.Fprintf(w, "secrets: created %s\n", f)
				}
				for _, f := range res.Kept {
					fmt.Fprintf(w, "secrets: kept %s\n", f)
				}
				for _, f := range res.Derived {
					fmt.Fprintf(w, "secrets: rewrote %s (derived from the kept ones)\n", f)
				}
			})
		}}
	initCmd.Flags().StringVar(&o.Dir, "dir", "", "the site's secrets folder (its parent, the volume, must exist)")
	initCmd.Flags().StringVar(&o.PostgresURL, "postgres-url", "", "the database URL without a password: writes postgres.url with the password of --postgres-password-file")
	initCmd.Flags().StringVar(&o.PostgresPasswordFile, "postgres-password-file", "", "the database's password (made when absent), for the database's own init (POSTGRES_PASSWORD_FILE)")
	initCmd.Flags().StringVar(&owner, "owner", "", "UID:GID to own the folder and its files (the gateway's user)")
	jsonFlag(initCmd, &asJSON)
	must(initCmd.MarkFlagRequired("dir"))
	c := &cobra.Command{Use: "secrets", Short: "A site's passwords and keys"}
	c.AddCommand(initCmd)
	return c
}

// caInitResult is what `ca init --json` prints.
type caInitResult struct {
	siteinit.CAResult
	RootOut string `json:"root_out,omitempty"`
}

func caCmd() *cobra.Command {
	var o siteinit.CAOptions
	var owner, provPassFile, caPassFile, rootOut string
	var asJSON bool
	initCmd := &cobra.Command{Use: "init --steppath DIR --name NAME --dns HOST --provisioner-password-file FILE",
		Short: "Write a step-ca with the federation and listener provisioners, templates and CRL, unless one is there (idempotent)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			uid, gid, err := parseOwner(owner)
			if err != nil {
				return err
			}
			if err := mounted("--steppath", o.StepPath); err != nil {
				return err
			}
			if o.ProvisionerPassword, err = siteinit.ReadPassword(provPassFile); err != nil {
				return fmt.Errorf("--provisioner-password-file: %w (run `gateway secrets init` first)", err)
			}
			if caPassFile == "" {
				// Beside the provisioner password, never in STEPPATH: a backup of the
				// CA's folder must not carry the password of the keys it holds.
				caPassFile = filepath.Join(filepath.Dir(provPassFile), CAPasswordFile)
			}
			kept, err := siteinit.CAExists(o.StepPath)
			if err != nil {
				return err
			}
			if o.CAPassword, err = caPassword(caPassFile, o.StepPath, kept); err != nil {
				return err
			}
			res, err := siteinit.InitCA(o)
			if err != nil {
				return err
			}
			if uid >= 0 {
				if err := chownTree(o.StepPath, uid, gid); err != nil {
					return err
				}
				// step-ca reads it (--password-file).
				if err := chown([]string{caPassFile}, uid, gid); err != nil {
					return err
				}
			}
			out := caInitResult{CAResult: res}
			if rootOut != "" {
				if err := copyRoot(res.Root, rootOut); err != nil {
					return fmt.Errorf("--root-out: %w", err)
				}
				out.RootOut = rootOut
			}
			return render(cmd, asJSON, out, func(w io.Writer) {
				verb := "kept the CA already"
				if res.Created {
					verb = "created a CA"
				}
				fmt.Fprintf(w, "ca: %s in %s (root fingerprint %s, provisioners %s, URL %s)\n", verb, res.StepPath,
					res.Fingerprint, strings.Join(res.Provisioners, ", "), res.URL)
				if rootOut != "" {
					fmt.Fprintf(w, "ca: root certificate at %s\n", rootOut)
				}
			})
		}}
	f := initCmd.Flags()
	f.StringVar(&o.StepPath, "steppath", "", "the CA's folder (STEPPATH; the CA's volume, must exist)")
	f.StringVar(&o.Name, "name", "", `the CA's name, e.g. "Mosaic work CA"`)
	f.StringSliceVar(&o.DNSNames, "dns", nil, "a name step-ca answers as (repeat; the first is in its URL)")
	f.StringVar(&o.Address, "address", ":9000", "where step-ca listens")
	f.StringVar(&o.URL, "url", "", "how gateways reach the CA (default https://<first --dns>:<port>)")
	f.StringVar(&provPassFile, "provisioner-password-file", "", "the provisioners' password (the gateway's ca.provisioner_password_file)")
	f.StringVar(&caPassFile, "password-file", "", "the CA keys' password, made for a new CA (default "+CAPasswordFile+" beside --provisioner-password-file, never in the steppath; step-ca's --password-file)")
	f.StringVar(&rootOut, "root-out", "", "also copy the root certificate here (the gateway's ca.root)")
	f.StringVar(&owner, "owner", "", "UID:GID to own the CA's files (step-ca's user)")
	jsonFlag(initCmd, &asJSON)
	for _, name := range []string{"steppath", "name", "dns", "provisioner-password-file"} {
		must(initCmd.MarkFlagRequired(name))
	}
	c := &cobra.Command{Use: "ca", Short: "The site's step-ca files"}
	c.AddCommand(initCmd)
	return c
}

// CAPasswordFile is the CA keys' password file's default name, in the folder of the
// provisioner password.
const CAPasswordFile = "ca.pass"

// legacyCAPasswordFile is where `ca init` kept the password before it moved out of the
// CA's folder.
const legacyCAPasswordFile = "secrets/password"

// caPassword reads the CA keys' password, making it first for a new CA; for a kept CA
// (kept) a missing file is an error, as a fresh password would not open its keys.
func caPassword(path, stepPath string, kept bool) ([]byte, error) {
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return nil, fmt.Errorf("--password-file: %w", err)
	}
	pass, err := siteinit.EnsurePassword(path, kept)
	if err != nil && kept {
		if _, lerr := os.Lstat(filepath.Join(stepPath, filepath.FromSlash(legacyCAPasswordFile))); lerr == nil {
			err = fmt.Errorf("%w (an older `ca init` kept it in %s: move it to %s)", err,
				filepath.Join(stepPath, filepath.FromSlash(legacyCAPasswordFile)), path)
		}
	}
	if err != nil {
		return nil, fmt.Errorf("--password-file: %w", err)
	}
	return pass, nil
}

// copyRoot puts the root certificate at dst unless the same bytes are there.
func copyRoot(src, dst string) error {
	b, err := os.ReadFile(src)
	if err != nil {
		return err
	}
	if have, err := os.ReadFile(dst); err == nil && bytes.Equal(have, b) {
		return nil
	}
	if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
		return err
	}
	return siteinit.WriteFile(dst, b, 0o644)
}

// mounted fails unless dir exists: a one-shot writes into a volume, and a missing
// folder means the volume is not mounted where the command was told.
func mounted(flag, dir string) error {
	st, err := os.Stat(dir)
	if errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("%s: %s does not exist: mount the volume there (or create the folder)", flag, dir)
	}
	if err != nil {
		return fmt.Errorf("%s: %w", flag, err)
	}
	if !st.IsDir() {
		return fmt.Errorf("%s: %s is not a folder", flag, dir)
	}
	return nil
}

// parseOwner reads UID:GID; "" is -1, -1 (leave ownership alone).
func parseOwner(s string) (int, int, error) {
	if s == "" {
		return -1, -1, nil
	}
	u, g, ok := strings.Cut(s, ":")
	uid, err1 := strconv.Atoi(u)
	gid, err2 := strconv.Atoi(g)
	if !ok || err1 != nil || err2 != nil || uid < 0 || gid < 0 {
		return -1, -1, fmt.Errorf("--owner %q: want UID:GID in numbers, e.g. 65532:65532", s)
	}
	return uid, gid, nil
}

func chown(paths []string, uid, gid int) error {
	for _, p := range paths {
		if err := os.Lchown(p, uid, gid); err != nil {
			return fmt.Errorf("--owner: %w", err)
		}
	}
	return nil
}

func chownTree(root string, uid, gid int) error {
	return filepath.WalkDir(root, func(p string, _ fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if err := os.Lchown(p, uid, gid); err != nil {
			return fmt.Errorf("--owner: %w", err)
		}
		return nil
	})
}

// probeCmd is the healthcheck of a scratch image (no shell, no curl): it GETs a URL
// and exits 0 on a 2xx answer.
func probeCmd() *cobra.Command {
	var timeout time.Duration
	c := &cobra.Command{Use: "probe URL", Short: "GET URL and exit 0 on a 2xx answer (a container healthcheck)", Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return probe(cmd.Context(), args[0], timeout)
		}}
	c.Flags().DurationVar(&timeout, "timeout", 2*time.Second, "give up after this long")
	return c
}

func probe(ctx context.Context, url string, timeout time.Duration) error {
	if !strings.HasPrefix(url, "http://") && !strings.HasPrefix(url, "https://") {
		return fmt.Errorf("probe %q: want an http:// or https:// URL", url)
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return fmt.Errorf("probe: %w", err)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return fmt.Errorf("probe: %w", err)
	}
	defer resp.Body.Close()
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	if resp.StatusCode/100 != 2 {
		return fmt.Errorf("probe %s: %s", url, resp.Status)
	}
	return nil
}
