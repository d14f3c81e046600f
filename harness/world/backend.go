package world

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/mosaic-federation/mosaic/harness/internal/proc"
)

// Backend starts the services of a site. The process backend runs them as child
// processes; a docker backend (testcontainers-go) drops in behind the same interface.
type Backend interface {
	Name() string
	StartCA(ctx context.Context, s *Site) (*CA, error)
	StartPostgres(ctx context.Context, s *Site) (*Postgres, error)
	StartValkey(ctx context.Context, s *Site) (*Valkey, error)
	StartGateway(ctx context.Context, s *Site, name string, overrides map[string]any) (*Gateway, error)
}

func newBackend(opts Options, onlyPostgres bool) (Backend, error) {
	switch opts.Backend {
	case "process", "auto":
		// auto would pick docker when an engine answers; until the docker backend is
		// built, every host gets the process backend.
		b := &processBackend{opts: opts}
		return b, b.check(onlyPostgres)
	case "docker":
		return nil, errors.New("the docker backend is not built yet: use --backend process (the default on hosts without a Docker engine)")
	default:
		return nil, fmt.Errorf("unknown backend %q: use process, docker or auto", opts.Backend)
	}
}

// freePorts asks the kernel for n free loopback ports. Between closing them and the
// child binding one, another process may take it: callers retry on "address in use".
func freePorts(n int) ([]int, error) {
	ports := make([]int, 0, n)
	var ls []net.Listener
	defer func() {
		for _, l := range ls {
			l.Close()
		}
	}()
	for range n {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return nil, fmt.Errorf("find a free port: %w", err)
		}
		ls = append(ls, l)
		ports = append(ports, l.Addr().(*net.TCPAddr).Port)
	}
	return ports, nil
}

// startOnFreePorts picks n ports, lets configure apply them, starts p, and retries with
// new ports (three tries) when the child reports its address in use.
func startOnFreePorts(ctx context.Context, p *proc.Process, n int, configure func(ports []int) error) ([]int, error) {
	var err error
	for range 3 {
		var ports []int
		if ports, err = freePorts(n); err != nil {
			return nil, err
		}
		if err = configure(ports); err != nil {
			return nil, err
		}
		if err = p.Start(ctx); err == nil {
			return ports, nil
		}
		var exit *proc.ExitError
		if !errors.As(err, &exit) || !exit.AddressInUse() {
			return nil, err
		}
	}
	return nil, err
}

// runOnce runs a set-up command to completion; its output goes to logPath and the
// error quotes the last lines.
func runOnce(ctx context.Context, spec proc.Spec) error {
	cmd := exec.CommandContext(ctx, spec.Path, spec.Args...)
	cmd.Env, cmd.Dir = spec.Env, spec.Dir
	cmd.SysProcAttr = sysProcAttr(spec.Credential)
	// On cancel, kill the whole group (initdb forks a postgres), and don't wait forever
	// on an output pipe a grandchild holds.
	cmd.Cancel = func() error { return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) }
	cmd.WaitDelay = 2 * time.Second
	out, err := proc.OpenLog(spec.LogPath)
	if err != nil {
		return err
	}
	defer out.Close()
	cmd.Stdout, cmd.Stderr = out, out
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("%s %s: %w; last log lines (%s):\n%s", filepath.Base(spec.Path),
			strings.Join(spec.Args[:min(2, len(spec.Args))], " "), err, spec.LogPath, proc.Tail(spec.LogPath, 15))
	}
	return nil
}

// findBin looks for a program in dir first, then on PATH.
func findBin(dir, name string) (string, error) {
	if dir != "" {
		p := filepath.Join(dir, name)
		if st, err := os.Stat(p); err == nil && !st.IsDir() {
			return p, nil
		}
	}
	p, err := exec.LookPath(name)
	if err != nil {
		return "", fmt.Errorf("%s not found in %s or on PATH: run `make deps`", name, dir)
	}
	return p, nil
}

// DefaultBinDir is where `make deps` puts step-ca and step: $MOSAIC_BIN_DIR, else
// .cache/bin under the module root found above the working directory.
func DefaultBinDir() string {
	if d := os.Getenv("MOSAIC_BIN_DIR"); d != "" {
		return d
	}
	if root, err := ModuleRoot(); err == nil {
		return filepath.Join(root, ".cache", "bin")
	}
	return ""
}

// ModuleRoot walks up from the working directory to the folder holding go.mod.
func ModuleRoot() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", errors.New("no go.mod above the working directory")
		}
		dir = parent
	}
}

func randomHex(n int) string {
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		panic(err)
	}
	return hex.EncodeToString(b)
}

func randomKeyLine() string {
	b := make([]byte, 32)
	if _, err := rand.Read(b); err != nil {
		panic(err)
	}
	return base64.StdEncoding.EncodeToString(b) + "\n"
}

func writeSecret(path, content string) error {
	return os.WriteFile(path, []byte(content), 0o600)
}

func mkdirPrivate(dir string) error { return os.MkdirAll(dir, 0o700) }
