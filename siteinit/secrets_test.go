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
	if len(first.Created) != 5 || len(first.Kept) != 0 {
		t.Fatalf("first run %+v", first)
	}
	contents := map[string]string{}
	for _, f := range first.Created {
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
	if len(again.Created) != 0 || len(again.Kept) != 5 {
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
