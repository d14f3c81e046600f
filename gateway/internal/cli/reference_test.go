package cli

import (
	"flag"
	"os"
	"testing"
)

var update = flag.Bool("update", false, "rewrite docs/ADMIN-CLI.md from the command tree")

const referencePath = "../../../docs/ADMIN-CLI.md"

// The committed CLI reference is the command tree's: a new command, flag or help text
// without `make docs` fails here.
func TestReferenceIsCurrent(t *testing.T) {
	want, err := Reference()
	if err != nil {
		t.Fatal(err)
	}
	if *update {
		if err := os.WriteFile(referencePath, []byte(want), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	got, err := os.ReadFile(referencePath)
	if err != nil {
		t.Fatalf("%v: run `make docs`", err)
	}
	if string(got) != want {
		t.Fatal("docs/ADMIN-CLI.md is stale: run `make docs` and commit it")
	}
}
