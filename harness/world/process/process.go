// Package process is the harness's process backend: every service of a site runs as a
// child process of the harness on a loopback port the kernel picked, in its own process
// group with a parent-death signal, tagged with the run (MOSAIC_RUN) so that a dead
// run's leftovers can be found and swept. As root, PostgreSQL runs as an unprivileged
// user. Nothing pid-, port- or signal-shaped lives in harness/world; it lives here.
package process

import (
	"fmt"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"slices"
	"strconv"
	"sync"
	"syscall"

	"github.com/mosaic-federation/mosaic/harness/world"
	"github.com/mosaic-federation/mosaic/harness/world/process/internal/proc"
)

// Config says where the backend finds its programs.
type Config struct {
	// BinDir is searched before PATH for step-ca, step and toxiproxy-server (callers pass
	// world.DefaultBinDir(), where `make deps` puts them).
	BinDir string
	// PostgresBinDir overrides where initdb and postgres come from (default: the
	// newest /usr/lib/postgresql/<major>/bin, then PATH), e.g. a copy without pgvector.
	PostgresBinDir string
}

// Backend runs every service as a child process on loopback. One Backend may serve
// several worlds, one after the other or at once: it holds no state of a run.
type Backend struct {
	cfg Config

	once  sync.Once
	progs programs
}

var _ world.Backend = (*Backend)(nil)

// New returns a process backend; it looks for its programs when first asked (Check or
// a Start method), not here.
func New(cfg Config) *Backend { return &Backend{cfg: cfg} }

// Name is "process".
func (b *Backend) Name() string { return "process" }

// programs are the executables the backend runs, found once, and what is missing.
type programs struct {
	stepCA, step, postgres, initdb, valkey, toxiproxy string
	// pgCred runs initdb and postgres as an unprivileged user when we are root.
	pgCred *syscall.Credential
	// missing says, per kind of service, why this host cannot run it.
	missing map[world.Kind]error
}

func (b *Backend) programs() *programs {
	b.once.Do(func() { b.progs = findPrograms(b.cfg) })
	return &b.progs
}

// checkOrder is the order Check reports missing programs in, whatever order it is asked.
var checkOrder = []world.Kind{world.KindPostgres, world.KindCA, world.KindValkey, world.KindToxiproxy}

// Check fails when a program a kind of service needs is missing, so a world fails
// before anything of it starts. The gateway binary comes from world.Options.
func (b *Backend) Check(kinds ...world.Kind) error {
	p := b.programs()
	for _, k := range checkOrder {
		if err := p.missing[k]; err != nil && slices.Contains(kinds, k) {
			return err
		}
	}
	return nil
}

func findPrograms(cfg Config) programs {
	p := programs{missing: map[world.Kind]error{}}
	pgBin := cfg.PostgresBinDir
	if pgBin == "" {
		pgBin = PostgresBinDir()
	}
	var err error
	if p.postgres, err = findBin(pgBin, "postgres"); err == nil {
		if p.initdb, err = findBin(pgBin, "initdb"); err == nil {
			p.pgCred, err = unprivilegedCredential()
		}
	}
	p.missing[world.KindPostgres] = err
	if p.stepCA, err = findBin(cfg.BinDir, "step-ca"); err == nil {
		p.step, err = findBin(cfg.BinDir, "step")
	}
	p.missing[world.KindCA] = err
	if p.valkey, err = findBin("", "valkey-server"); err != nil {
		if p.valkey, err = findBin("", "redis-server"); err != nil {
			err = fmt.Errorf("neither valkey-server nor redis-server is installed: run `make deps`")
		}
	}
	p.missing[world.KindValkey] = err
	p.toxiproxy, err = findBin(cfg.BinDir, "toxiproxy-server")
	p.missing[world.KindToxiproxy] = err
	return p
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

// PostgresBinDir is the newest /usr/lib/postgresql/<major>/bin (Debian's layout), or
// "" to search PATH.
func PostgresBinDir() string {
	dirs, _ := filepath.Glob("/usr/lib/postgresql/*/bin")
	return newestPostgres(dirs, func(d string) bool {
		_, err := os.Stat(filepath.Join(d, "postgres"))
		return err == nil
	})
}

// newestPostgres picks, of Debian-style <root>/<major>/bin folders, the one of the
// highest major version that has a server.
func newestPostgres(dirs []string, hasServer func(string) bool) string {
	dirs = slices.Clone(dirs)
	slices.SortFunc(dirs, func(a, b string) int { return majorOf(b) - majorOf(a) })
	for _, d := range dirs {
		if hasServer(d) {
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

// RunEnv tags every child of a run, so leftovers of a crashed run are found by their
// environment (which PostgreSQL's backends inherit) rather than by reusable pids.
const RunEnv = "MOSAIC_RUN"

// childEnv is a child's environment: the allowlist, the run tag and extra variables.
func childEnv(runDir string, extra ...string) []string {
	return proc.CleanEnv(append([]string{RunEnv + "=" + runDir}, extra...)...)
}
