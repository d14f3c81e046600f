package process

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/mosaic-federation/mosaic/harness/world"
	"github.com/mosaic-federation/mosaic/harness/world/process/internal/proc"
)

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

func sysProcAttr(cred *syscall.Credential) *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL, Credential: cred}
}

// newProc is a service's child process, its spawn line going to the run's log.
func newProc(s *world.Site, spec proc.Spec) *proc.Process {
	return proc.New(spec, s.Run().Log)
}

// chownTo hands a path to the unprivileged user (no-op when not root).
func chownTo(cred *syscall.Credential, path string) error {
	if cred == nil {
		return nil
	}
	return os.Chown(path, int(cred.Uid), int(cred.Gid))
}

func addr(port int) string { return "127.0.0.1:" + strconv.Itoa(port) }

func randomHex(n int) string {
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		panic(err)
	}
	return hex.EncodeToString(b)
}

func writeSecret(path, content string) error {
	return os.WriteFile(path, []byte(content), 0o600)
}

func mkdirPrivate(dir string) error { return os.MkdirAll(dir, 0o700) }
