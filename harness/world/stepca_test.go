package world

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func testSite(t *testing.T, opts Options) *Site {
	t.Helper()
	s := &Site{Name: "work", Dir: filepath.Join(t.TempDir(), "work"), world: &World{opts: opts}}
	if err := s.makeDirs(); err != nil {
		t.Fatal(err)
	}
	return s
}

// A reused site directory keeps its CA and the passwords its keys open with.
func TestInitCAKeepsTheCAWithItsPasswords(t *testing.T) {
	s := testSite(t, Options{})
	first, caPass, err := s.InitCA("127.0.0.1:9000")
	if err != nil {
		t.Fatal(err)
	}
	passwords := map[string][]byte{}
	for _, f := range []string{caPass, first.ProvisionerPasswordFile} {
		passwords[f], _ = os.ReadFile(f)
	}
	again, _, err := s.InitCA("127.0.0.1:9000")
	if err != nil {
		t.Fatalf("a reused site directory: %v", err)
	}
	if again.Fingerprint != first.Fingerprint {
		t.Error("the CA was made again")
	}
	for f, b := range passwords {
		if now, _ := os.ReadFile(f); !bytes.Equal(now, b) {
			t.Errorf("%s rewritten: the kept CA's keys no longer open with it", filepath.Base(f))
		}
	}
	// Its CA password gone: an error, not a fresh password.
	if err := os.Remove(caPass); err != nil {
		t.Fatal(err)
	}
	if _, _, err := s.InitCA("127.0.0.1:9000"); err == nil || !strings.Contains(err.Error(), "put back") {
		t.Fatalf("a kept CA without its password: %v", err)
	}
	if _, err := os.Lstat(caPass); err == nil {
		t.Error("wrote a fresh password for a kept CA")
	}
}

// The test provisioner (no OIDs) only in a world that asks for it (the acceptance
// suite), never in `harness up`'s.
func TestInitCATestProvisionerOnlyWhenAsked(t *testing.T) {
	for _, want := range []bool{false, true} {
		s := testSite(t, Options{TestProvisioner: want})
		ca, _, err := s.InitCA("127.0.0.1:9000")
		if err != nil {
			t.Fatal(err)
		}
		b, err := os.ReadFile(ca.ConfigPath)
		if err != nil {
			t.Fatal(err)
		}
		_, tplErr := os.Stat(filepath.Join(ca.StepPath, "templates", "no-oids.tpl"))
		if got := bytes.Contains(b, []byte(`"`+BrokenProvisioner+`"`)); got != want || (tplErr == nil) != want {
			t.Errorf("TestProvisioner %v: provisioner in ca.json %v, template %v", want, got, tplErr == nil)
		}
	}
}
