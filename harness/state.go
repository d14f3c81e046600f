package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"github.com/mosaic-federation/mosaic/harness/world"
)

// state is what a running `harness up` leaves for `status` and `down` to find.
type state struct {
	Pid         int               `json:"pid"` // the process that owns the world
	ProcessGrps []int             `json:"process_groups"`
	BootSeconds float64           `json:"boot_seconds"`
	World       world.Description `json:"world"`
}

// statePath is fixed per user ($MOSAIC_HARNESS_STATE overrides it for tests).
func statePath() string {
	if p := os.Getenv("MOSAIC_HARNESS_STATE"); p != "" {
		return p
	}
	return filepath.Join(os.TempDir(), fmt.Sprintf("mosaic-harness-%d", os.Getuid()), "state.json")
}

func writeState(st state) error {
	p := statePath()
	if err := os.MkdirAll(filepath.Dir(p), 0o700); err != nil {
		return err
	}
	b, err := json.MarshalIndent(st, "", "  ")
	if err != nil {
		return err
	}
	tmp := p + ".tmp"
	if err := os.WriteFile(tmp, b, 0o600); err != nil {
		return err
	}
	return os.Rename(tmp, p)
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
		return nil, fmt.Errorf("state file %s is damaged (%v): run `harness down` to clean up", statePath(), err)
	}
	return &st, nil
}
