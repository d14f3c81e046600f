package siteinit

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestCreateFileWritesOnceAndKeeps(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "key")
	created, err := CreateFile(path, []byte("first\n"), 0o640)
	if err != nil || !created {
		t.Fatalf("first: %v %v", created, err)
	}
	created, err = CreateFile(path, []byte("second\n"), 0o600)
	if err != nil || created {
		t.Fatalf("second: %v %v", created, err)
	}
	b, _ := os.ReadFile(path)
	st, _ := os.Stat(path)
	if string(b) != "first\n" || st.Mode().Perm() != 0o640 {
		t.Errorf("content %q mode %v", b, st.Mode().Perm())
	}
	// Only the file: the temporary one is gone.
	entries, _ := os.ReadDir(dir)
	if len(entries) != 1 {
		t.Errorf("left behind: %v", entries)
	}
}

func TestCreateFileRefusesWhatIsNotARegularFile(t *testing.T) {
	dir := t.TempDir()
	target := filepath.Join(dir, "target")
	if err := os.WriteFile(target, []byte("theirs\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	link, dangling, folder := filepath.Join(dir, "link"), filepath.Join(dir, "dangling"), filepath.Join(dir, "folder")
	for _, err := range []error{os.Symlink(target, link), os.Symlink(filepath.Join(dir, "nowhere"), dangling), os.Mkdir(folder, 0o700)} {
		if err != nil {
			t.Fatal(err)
		}
	}
	for name, want := range map[string]string{link: "symbolic link", dangling: "symbolic link", folder: "not a regular file"} {
		created, err := CreateFile(name, []byte("ours\n"), 0o600)
		if err == nil || created || !strings.Contains(err.Error(), want) {
			t.Errorf("%s: created %v, err %v (want %q)", filepath.Base(name), created, err, want)
		}
	}
	if b, _ := os.ReadFile(target); string(b) != "theirs\n" {
		t.Errorf("wrote through the link: %q", b)
	}
	if _, err := os.Lstat(filepath.Join(dir, "nowhere")); err == nil {
		t.Error("created the dangling link's target")
	}
}

// The race CreateFile's first look cannot close: another writer made the file between
// that look and the link. The link never replaces it.
func TestPublishNeverReplaces(t *testing.T) {
	dir := t.TempDir()
	path, link := filepath.Join(dir, "key"), filepath.Join(dir, "link")
	if err := os.WriteFile(path, []byte("winner\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(path, link); err != nil {
		t.Fatal(err)
	}
	tmp, err := writeTemp(path, []byte("loser\n"), 0o600)
	if err != nil {
		t.Fatal(err)
	}
	if created, err := publish(tmp, path); created || err != nil {
		t.Errorf("over a file: created %v, %v", created, err)
	}
	if created, err := publish(tmp, link); created || err == nil {
		t.Errorf("over a link: created %v, %v", created, err)
	}
	if b, _ := os.ReadFile(path); string(b) != "winner\n" {
		t.Errorf("replaced: %q", b)
	}
}

func TestWriteFileReplaces(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "f")
	for _, c := range []string{"one", "two"} {
		if err := WriteFile(path, []byte(c), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	b, _ := os.ReadFile(path)
	entries, _ := os.ReadDir(dir)
	if string(b) != "two" || len(entries) != 1 {
		t.Errorf("content %q, entries %v", b, entries)
	}
}
