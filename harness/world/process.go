package world

import (
	"fmt"
	"os"
	"os/user"
	"path/filepath"
	"slices"
	"strconv"
	"syscall"

	"github.com/mosaic-federation/mosaic/harness/internal/proc"
)

// processBackend runs every service as a child process on loopback.
type processBackend struct {
	opts Options
	bins struct {
		stepCA, step, postgres, initdb, valkey string
	}
	// pgCred runs initdb and postgres as an unprivileged user when we are root.
	pgCred *syscall.Credential
}

func (b *processBackend) Name() string { return "process" }

// check finds the programs up front so a missing one fails before anything starts:
// PostgreSQL's always, step-ca's and Valkey's unless only PostgreSQL is wanted.
func (b *processBackend) check(onlyPostgres bool) error {
	var err error
	pgBin := b.opts.PostgresBinDir
	if pgBin == "" {
		pgBin = PostgresBinDir()
	}
	if b.bins.postgres, err = findBin(pgBin, "postgres"); err != nil {
		return err
	}
	if b.bins.initdb, err = findBin(pgBin, "initdb"); err != nil {
		return err
	}
	if b.pgCred, err = unprivilegedCredential(); err != nil || onlyPostgres {
		return err
	}
	dir := b.opts.BinDir
	if b.bins.stepCA, err = findBin(dir, "step-ca"); err != nil {
		return err
	}
	if b.bins.step, err = findBin(dir, "step"); err != nil {
		return err
	}
	if b.bins.valkey, err = findBin("", "valkey-server"); err != nil {
		if b.bins.valkey, err = findBin("", "redis-server"); err != nil {
			return fmt.Errorf("neither valkey-server nor redis-server is installed: run `make deps`")
		}
	}
	return nil
}

// PostgresBinDir is the newest /usr/lib/postgresql/<major>/bin (Debian's layout), or
// "" to search PATH.
func PostgresBinDir() string {
	dirs, _ := filepath.Glob("/usr/lib/postgresql/*/bin")
	slices.SortFunc(dirs, func(a, b string) int { return majorOf(b) - majorOf(a) })
	for _, d := range dirs {
		if _, err := os.Stat(filepath.Join(d, "postgres")); err == nil {
			return d
		}
	}
	return ""
}

func majorOf(binDir string) int {
	n, _ := strconv.Atoi(filepath.Base(filepath.Dir(binDir)))
	return n
}

// unprivilegedCredential returns nil when we are not root. As root (PostgreSQL refuses
// to run as root) it picks the "postgres" system user the server package creates, or
// "nobody".
func unprivilegedCredential() (*syscall.Credential, error) {
	if os.Geteuid() != 0 {
		return nil, nil
	}
	for _, name := range []string{"postgres", "nobody"} {
		u, err := user.Lookup(name)
		if err != nil {
			continue
		}
		uid, _ := strconv.Atoi(u.Uid)
		gid, _ := strconv.Atoi(u.Gid)
		// An empty group list drops root's supplementary groups too.
		return &syscall.Credential{Uid: uint32(uid), Gid: uint32(gid), Groups: []uint32{}}, nil
	}
	return nil, fmt.Errorf("running as root, PostgreSQL needs an unprivileged user: create one with `useradd --system postgres`")
}

func sysProcAttr(cred *syscall.Credential) *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL, Credential: cred}
}

// chownTo hands a path to the unprivileged user (no-op when not root).
func chownTo(cred *syscall.Credential, path string) error {
	if cred == nil {
		return nil
	}
	return os.Chown(path, int(cred.Uid), int(cred.Gid))
}

// RunEnv tags every child of a run, so leftovers of a crashed run are found by their
// environment (which PostgreSQL's backends inherit) rather than by reusable pids.
const RunEnv = "MOSAIC_RUN"

// env is a child's environment: the allowlist, the run tag and extra variables.
func (b *processBackend) env(extra ...string) []string {
	return proc.CleanEnv(append([]string{RunEnv + "=" + b.opts.RunDir}, extra...)...)
}

func (b *processBackend) newProc(spec proc.Spec) *proc.Process {
	return proc.New(spec, b.opts.Log)
}
