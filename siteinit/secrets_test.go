package siteinit

import (
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestInitSecretsWritesEachOnceAndKeepsThem(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "secrets")
	o := SecretsOptions{Dir: dir, PostgresURL: "postgres://mosaic@db:5432/mosaic?sslmode=disable",
		PostgresPasswordFile: filepath.Join(t.TempDir(), "password")}
	first, err := InitSecrets(o)
	if err != nil {
		t.Fatal(err)
	}
	if len(first.Created) != 4 || len(first.Kept) != 0 || len(first.Derived) != 1 {
		t.Fatalf("first run %+v", first)
	}
	contents := map[string]string{}
	for _, f := range first.Files() {
		b, _ := os.ReadFile(f)
		contents[f] = string(b)
	}
	pass := strings.TrimSpace(contents[o.PostgresPasswordFile])
	u, err := url.Parse(strings.TrimSpace(contents[filepath.Join(dir, PostgresURLFile)]))
	if err != nil {
		t.Fatal(err)
	}
	if got, _ := u.User.Password(); got != pass || u.Host != "db:5432" || u.User.Username() != "mosaic" {
		t.Errorf("database URL does not carry the password file's password")
	}
	if st, _ := os.Stat(filepath.Join(dir, SealingKeyFile)); st.Mode().Perm() != 0o600 {
		t.Errorf("sealing key mode %v", st.Mode().Perm())
	}
	if len(contents[filepath.Join(dir, AuditKeyFile)]) != 45 {
		t.Errorf("audit key is not a base64 line of 32 bytes")
	}
	again, err := InitSecrets(o)
	if err != nil {
		t.Fatal(err)
	}
	if len(again.Created) != 0 || len(again.Kept) != 4 || len(again.Derived) != 1 {
		t.Fatalf("second run %+v", again)
	}
	for f, c := range contents {
		if b, _ := os.ReadFile(f); string(b) != c {
			t.Errorf("%s rewritten", f)
		}
	}
}

func TestInitSecretsRebuildsTheURLFromTheKeptPassword(t *testing.T) {
	dir := t.TempDir()
	passFile := filepath.Join(dir, "pg.pass")
	if err := os.WriteFile(passFile, []byte("kept-pass\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	res, err := InitSecrets(SecretsOptions{Dir: dir, PostgresURL: "postgres://mosaic@db/mosaic", PostgresPasswordFile: passFile})
	if err != nil {
		t.Fatal(err)
	}
	b, _ := os.ReadFile(filepath.Join(dir, PostgresURLFile))
	if !strings.Contains(string(b), ":kept-pass@") || len(res.Kept) != 1 {
		t.Errorf("url %q, result %+v", b, res)
	}
}

// The URL is derived: when its password file went and was made again, the URL follows
// (a kept URL would carry the old password and the gateway could not log in).
func TestInitSecretsRewritesTheURLWhenThePasswordIsNew(t *testing.T) {
	dir := t.TempDir()
	o := SecretsOptions{Dir: dir, PostgresURL: "postgres://mosaic@db/mosaic", PostgresPasswordFile: filepath.Join(dir, "pg.pass")}
	if _, err := InitSecrets(o); err != nil {
		t.Fatal(err)
	}
	if err := os.Remove(o.PostgresPasswordFile); err != nil {
		t.Fatal(err)
	}
	res, err := InitSecrets(o)
	if err != nil {
		t.Fatal(err)
	}
	pass, err := ReadPassword(o.PostgresPasswordFile)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := os.ReadFile(filepath.Join(dir, PostgresURLFile))
	if !strings.Contains(string(b), ":"+string(pass)+"@") || len(res.Derived) != 1 || len(res.Created) != 1 {
		t.Errorf("the URL does not carry the new password; result %+v", res)
	}
}

// A secret that is a symbolic link is refused, not kept (the key would be the link's
// target, which whoever made the link chose).
func TestInitSecretsRefusesASymlinkedSecret(t *testing.T) {
	dir := t.TempDir()
	target := filepath.Join(t.TempDir(), "chosen")
	if err := os.WriteFile(target, []byte("attacker's key\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(target, filepath.Join(dir, SealingKeyFile)); err != nil {
		t.Fatal(err)
	}
	if _, err := InitSecrets(SecretsOptions{Dir: dir}); err == nil || !strings.Contains(err.Error(), "symbolic link") {
		t.Fatalf("a symlinked sealing key: %v", err)
	}
}

func TestEnsurePassword(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "ca.pass")
	// What it opens is kept but the file went: refuse, and write nothing.
	if _, err := EnsurePassword(path, true); err == nil || !strings.Contains(err.Error(), "put back") {
		t.Fatalf("a kept CA without its password file: %v", err)
	}
	if _, err := os.Lstat(path); err == nil {
		t.Fatal("wrote a fresh password for a kept CA")
	}
	made, err := EnsurePassword(path, false)
	if err != nil || len(made) != 48 {
		t.Fatalf("fresh: %q %v", made, err)
	}
	for _, kept := range []bool{false, true} {
		again, err := EnsurePassword(path, kept)
		if err != nil || string(again) != string(made) {
			t.Fatalf("kept %v: %q %v", kept, again, err)
		}
	}
	link := filepath.Join(dir, "link.pass")
	if err := os.Symlink(path, link); err != nil {
		t.Fatal(err)
	}
	for _, kept := range []bool{false, true} {
		if _, err := EnsurePassword(link, kept); err == nil {
			t.Errorf("kept %v: read a password through a symbolic link", kept)
		}
	}
}

func TestInitSecretsRefusesBadOptions(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "file")
	if err := os.WriteFile(file, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	for name, o := range map[string]SecretsOptions{
		"no dir":                 {},
		"url without pass file":  {Dir: dir, PostgresURL: "postgres://u@h/d"},
		"pass file without url":  {Dir: dir, PostgresPasswordFile: filepath.Join(dir, "p")},
		"password in the url":    {Dir: dir, PostgresURL: "postgres://u:secret@h/d", PostgresPasswordFile: filepath.Join(dir, "p")},
		"not a postgres url":     {Dir: dir, PostgresURL: "mysql://u@h/d", PostgresPasswordFile: filepath.Join(dir, "p")},
		"dir under a file":       {Dir: filepath.Join(file, "secrets")},
		"password dir is a file": {Dir: filepath.Join(dir, "s"), PostgresURL: "postgres://u@h/d", PostgresPasswordFile: filepath.Join(file, "p")},
	} {
		t.Run(name, func(t *testing.T) {
			_, err := InitSecrets(o)
			if err == nil {
				t.Fatal("accepted")
			}
			if strings.Contains(err.Error(), "secret") && name == "password in the url" {
				t.Errorf("the error repeats the password: %v", err)
			}
		})
	}
}
