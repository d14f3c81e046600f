package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"syscall"

	"github.com/mosaic-federation/mosaic/harness/world"
	"github.com/mosaic-federation/mosaic/harness/world/process"
)

// state is what a running `harness up` leaves for `status` and `down` to find.
type state struct {
	Pid         int               `json:"pid"`       // the process that owns the world
	PidStart    uint64            `json:"pid_start"` // its start time: pids are reused
	BootSeconds float64           `json:"boot_seconds"`
	World       world.Description `json:"world"`
}

// ownerAlive is true while the process that wrote the state still runs.
func (st *state) ownerAlive() bool {
	return process.Alive(st.Pid) && process.StartTime(st.Pid) == st.PidStart
}

// statePath is fixed per user, in the user's own cache folder rather than the shared
// /tmp ($MOSAIC_HARNESS_STATE overrides it for tests).
func statePath() string {
	if p := os.Getenv("MOSAIC_HARNESS_STATE"); p != "" {
		return p
	}
	dir, err := os.UserCacheDir()
	if err != nil {
		dir = filepath.Join(os.TempDir(), fmt.Sprintf("mosaic-harness-%d", os.Getuid()))
	}
	return filepath.Join(dir, "mosaic-harness", "state.json")
}

// stateDir creates the state file's folder and refuses one that is not ours alone.
func stateDir() (string, error) {
	dir := filepath.Dir(statePath())
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return "", err
	}
	st, err := os.Lstat(dir)
	if err != nil {
		return "", err
	}
	sys, ok := st.Sys().(*syscall.Stat_t)
	if !st.IsDir() || st.Mode().Perm()&0o077 != 0 || !ok || int(sys.Uid) != os.Geteuid() {
		return "", fmt.Errorf("%s must be a folder of yours with mode 0700: remove or fix it", dir)
	}
	return dir, nil
}

func writeState(st state) error {
	dir, err := stateDir()
	if err != nil {
		return err
	}
	b, err := json.MarshalIndent(st, "", "  ")
	if err != nil {
		return err
	}
	f, err := os.CreateTemp(dir, "state-*.tmp") // 0600, never an existing file
	if err != nil {
		return err
	}
	_, err = f.Write(b)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(f.Name(), statePath())
	}
	if err != nil {
		os.Remove(f.Name())
	}
	return err
}

// removeState removes the state file if it is still the one this process wrote.
func removeState(pid int) {
	if st, err := readState(); err == nil && st.Pid == pid {
		_ = os.Remove(statePath())
	}
}

var errNoWorld = errors.New("no world is running (start one with `go run ./harness up --detach`)")

func readState() (*state, error) {
	b, err := os.ReadFile(statePath())
	if errors.Is(err, os.ErrNotExist) {
		return nil, errNoWorld
	}
	if err != nil {
		return nil, err
	}
	var st state
	if err := json.Unmarshal(b, &st); err != nil {
		return nil, &damagedState{err}
	}
	return &st, nil
}

// damagedState is a state file that does not parse; `down` removes it.
type damagedState struct{ err error }

func (d *damagedState) Error() string {
	return fmt.Sprintf("state file %s is damaged (%v): `go run ./harness down` removes it", statePath(), d.err)
}
