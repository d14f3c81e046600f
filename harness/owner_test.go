package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"slices"
	"testing"

	"github.com/mosaic-federation/mosaic/harness/world/process"
)

func TestDeadRunDirsJudgesOnlyDirectoriesWithAnOwnerFile(t *testing.T) {
	root := t.TempDir()
	me := owner{Pid: os.Getpid(), PidStart: process.StartTime(os.Getpid())}
	cases := map[string]any{
		"mosaic-run-live":     me,
		"mosaic-run-reused":   owner{Pid: os.Getpid(), PidStart: me.PidStart + 1}, // same pid, another process
		"mosaic-run-gone":     owner{Pid: 1 << 22, PidStart: 1},                   // beyond pid_max
		"mosaic-run-noowner":  nil,
		"mosaic-run-garbage":  "not json",
		"something-else-dead": owner{Pid: 1 << 22, PidStart: 1},
	}
	for name, o := range cases {
		dir := filepath.Join(root, name)
		if err := os.Mkdir(dir, 0o700); err != nil {
			t.Fatal(err)
		}
		var b []byte
		switch o := o.(type) {
		case nil:
			continue
		case string:
			b = []byte(o)
		default:
			b, _ = json.Marshal(o)
		}
		if err := os.WriteFile(filepath.Join(dir, ownerFile), b, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	// A link to a dead run is not swept through the link.
	if err := os.Symlink(filepath.Join(root, "mosaic-run-gone"), filepath.Join(root, "mosaic-run-link")); err != nil {
		t.Fatal(err)
	}
	got := deadRunDirs(root)
	for i := range got {
		got[i] = filepath.Base(got[i])
	}
	slices.Sort(got)
	if want := []string{"mosaic-run-gone", "mosaic-run-reused"}; !slices.Equal(got, want) {
		t.Fatalf("dead run dirs = %v, want %v", got, want)
	}
}

func TestRemoveWorldRefusesAFolderThatIsNotARunDirectory(t *testing.T) {
	dir := t.TempDir()
	if err := removeWorld(t.Context(), os.Stderr, dir, "a test's"); err == nil {
		t.Fatal("removed a folder not named mosaic-run-*")
	}
	if _, err := os.Stat(dir); err != nil {
		t.Fatal("the folder is gone:", err)
	}
}
