package process

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strconv"
	"syscall"
	"time"

	"github.com/mosaic-federation/mosaic/harness/world/process/internal/proc"
)

// Leftovers lists the live processes of a run as "pid N".
func (b *Backend) Leftovers(_ context.Context, runDir string) ([]string, error) {
	var out []string
	for _, pid := range Pids(runDir) {
		out = append(out, "pid "+strconv.Itoa(pid))
	}
	return out, nil
}

// Sweep SIGKILLs a run's live processes (and the groups they lead) and returns how
// many it found.
func (b *Backend) Sweep(_ context.Context, runDir string) (int, error) {
	pids := Pids(runDir)
	for _, pid := range pids {
		if pgid, err := syscall.Getpgid(pid); err == nil && pgid == pid {
			_ = syscall.Kill(-pgid, syscall.SIGKILL)
		}
		_ = syscall.Kill(pid, syscall.SIGKILL)
	}
	return len(pids), nil
}

// Pids lists the live processes of a run: every child the backend starts carries
// MOSAIC_RUN=<run directory> in its environment, and their own children inherit it.
func Pids(runDir string) []int {
	if runDir == "" {
		return nil
	}
	tag := runTag(runDir)
	entries, _ := os.ReadDir("/proc")
	var pids []int
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil || pid == os.Getpid() || proc.Zombie(pid) {
			continue
		}
		env, err := os.ReadFile(filepath.Join("/proc", e.Name(), "environ"))
		if err == nil && hasTag(env, tag) {
			pids = append(pids, pid)
		}
	}
	return pids
}

// runTag is the environment entry, NUL-terminated, that marks a process of the run.
func runTag(runDir string) []byte { return []byte(RunEnv + "=" + runDir + "\x00") }

// hasTag reports whether a /proc/<pid>/environ block holds the tag as a whole entry,
// so that run /tmp/mosaic-run-1 does not match a process of /tmp/mosaic-run-12.
func hasTag(environ, tag []byte) bool {
	return bytes.HasPrefix(environ, tag) || bytes.Contains(environ, append([]byte{0}, tag...))
}

// Alive reports whether pid is a live (not zombie) process.
func Alive(pid int) bool {
	return pid > 0 && syscall.Kill(pid, 0) == nil && !proc.Zombie(pid)
}

// StartTime names a process together with its pid (pids are reused; this is not).
func StartTime(pid int) uint64 {
	t, _ := proc.StartTime(pid)
	return t
}

// CPU is the processor time every process of a run has used so far, its children
// included, live or exited: the difference across a measurement is what the world
// spent on it, the figure a noisy machine disturbs least. Children count by descent
// from a tagged process, since PostgreSQL's backends overwrite their environment
// (their process title lives there) and lose the tag.
func CPU(runDir string) time.Duration {
	tagged := map[int]bool{}
	for _, pid := range Pids(runDir) {
		tagged[pid] = true
	}
	parents := map[int]int{}
	entries, _ := os.ReadDir("/proc")
	for _, e := range entries {
		if pid, err := strconv.Atoi(e.Name()); err == nil {
			if ppid, err := proc.Parent(pid); err == nil {
				parents[pid] = ppid
			}
		}
	}
	var total time.Duration
	for pid := range parents {
		if !descends(pid, tagged, parents) {
			continue
		}
		if own, reaped, err := proc.CPU(pid); err == nil {
			total += own + reaped
		}
	}
	return total
}

// descends reports whether pid is, or descends from, a tagged process.
func descends(pid int, tagged map[int]bool, parents map[int]int) bool {
	for range len(parents) + 1 { // a bound, in case the table is inconsistent
		if tagged[pid] {
			return true
		}
		ppid, ok := parents[pid]
		if !ok || ppid <= 1 || ppid == pid {
			return false
		}
		pid = ppid
	}
	return false
}
