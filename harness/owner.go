package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"syscall"

	"github.com/mosaic-federation/mosaic/harness/world/process"
)

// Every run directory the harness makes is <runRoot>/mosaic-run-*, and holds an owner
// file written before anything boots: a harness killed at any moment (even before the
// state file exists) leaves a directory that the next `up` or `down` can tell from a
// live world's and sweep.
const (
	runRoot      = "/tmp" // where world.Up puts run directories too
	runDirPrefix = "mosaic-run-"
	ownerFile    = "harness-owner.json"
)

// owner names the harness process that owns a run directory.
type owner struct {
	Pid      int    `json:"pid"`
	PidStart uint64 `json:"pid_start"` // pids are reused; (pid, start time) is not
}

func (o owner) alive() bool {
	return process.Alive(o.Pid) && process.StartTime(o.Pid) == o.PidStart
}

// newRunDir makes a fresh run directory owned by this process.
func newRunDir() (string, error) {
	dir, err := os.MkdirTemp(runRoot, runDirPrefix)
	if err != nil {
		return "", fmt.Errorf("create run directory: %w", err)
	}
	b, _ := json.Marshal(owner{Pid: os.Getpid(), PidStart: process.StartTime(os.Getpid())})
	if err := os.WriteFile(filepath.Join(dir, ownerFile), b, 0o600); err != nil {
		os.RemoveAll(dir)
		return "", fmt.Errorf("write the run's owner file: %w", err)
	}
	return dir, nil
}

// deadRunDirs lists the run directories of ours under root whose owner has died. A
// directory without a readable owner file is not one the harness can judge (the
// acceptance suite's own world, or a harness between making it and writing the
// file): it is left alone.
func deadRunDirs(root string) []string {
	matches, _ := filepath.Glob(filepath.Join(root, runDirPrefix+"*"))
	var dead []string
	for _, dir := range matches {
		if !ownedDir(dir) {
			continue
		}
		b, err := os.ReadFile(filepath.Join(dir, ownerFile))
		var o owner
		if err != nil || json.Unmarshal(b, &o) != nil || o.Pid == 0 {
			continue
		}
		if !o.alive() {
			dead = append(dead, dir)
		}
	}
	return dead
}

// ownedDir is a real directory (not a link) of this user.
func ownedDir(dir string) bool {
	fi, err := os.Lstat(dir)
	if err != nil || !fi.IsDir() {
		return false
	}
	sys, ok := fi.Sys().(*syscall.Stat_t)
	return ok && int(sys.Uid) == os.Geteuid()
}

// sweepDead cleans up after every world whose harness died — the one the state file
// names and any run directory whose owner is gone — without asking, and says on out
// what it removed. `up` and `down` both start with it. It returns how many worlds it
// swept.
func sweepDead(ctx context.Context, out io.Writer) (int, error) {
	dirs := deadRunDirs(runRoot)
	st, err := readState()
	var damaged *damagedState
	switch {
	case errors.As(err, &damaged):
		fmt.Fprintln(out, "removing a damaged state file; its world, if any, is swept by its owner file")
		if err := os.Remove(statePath()); err != nil {
			return 0, err
		}
	case err == nil && !st.ownerAlive():
		if st.World.RunDir != "" && !containsDir(dirs, st.World.RunDir) {
			dirs = append(dirs, st.World.RunDir)
		}
	case err != nil && !errors.Is(err, errNoWorld):
		return 0, err
	}
	var errs []error
	for _, dir := range dirs {
		errs = append(errs, removeWorld(ctx, out, dir, "a dead world's"))
	}
	if err == nil && !st.ownerAlive() {
		if rerr := os.Remove(statePath()); rerr != nil && !os.IsNotExist(rerr) {
			errs = append(errs, rerr)
		}
	}
	return len(dirs), errors.Join(errs...)
}

func containsDir(dirs []string, dir string) bool {
	for _, d := range dirs {
		if filepath.Clean(d) == filepath.Clean(dir) {
			return true
		}
	}
	return false
}

// removeWorld kills a run's leftover processes by its tag and removes its directory,
// saying what it removed; what names whose world it was ("a dead world's").
func removeWorld(ctx context.Context, out io.Writer, runDir, what string) error {
	n, err := sweep(ctx, runDir)
	if n > 0 {
		fmt.Fprintf(out, "killed %d leftover process(es) of %s run %s\n", n, what, runDir)
	}
	if err != nil {
		return fmt.Errorf("clean up after the world at %s: %w", runDir, err)
	}
	// Guard against a state file that names some other folder.
	if !strings.HasPrefix(filepath.Base(runDir), runDirPrefix) {
		return fmt.Errorf("refusing to remove %q: not a harness run directory", runDir)
	}
	if _, err := os.Lstat(runDir); os.IsNotExist(err) {
		return nil
	}
	if err := os.RemoveAll(runDir); err != nil {
		return fmt.Errorf("remove %s: %w", runDir, err)
	}
	fmt.Fprintf(out, "removed %s run directory %s (its keys and databases)\n", what, runDir)
	return nil
}
