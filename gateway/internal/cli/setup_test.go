package cli

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/mosaic-federation/mosaic/gateway/api"
	"github.com/mosaic-federation/mosaic/gateway/internal/admin"
)

// run executes the command tree with args and returns stdout and the error.
func run(t *testing.T, args ...string) (string, error) {
	t.Helper()
	root := New(nil, slog.New(slog.NewTextHandler(io.Discard, nil)))
	var out bytes.Buffer
	root.SetOut(&out)
	root.SetErr(io.Discard)
	root.SetArgs(args)
	err := root.Execute()
	return out.String(), err
}

func TestSecretsInitIsIdempotentAndPrintsNoSecret(t *testing.T) {
	vol, auth := t.TempDir(), t.TempDir()
	args := []string{"secrets", "init", "--dir", filepath.Join(vol, "secrets"),
		"--postgres-url", "postgres://mosaic@db:5432/mosaic?sslmode=disable", "--postgres-password-file", filepath.Join(auth, "password"), "--json"}
	out, err := run(t, args...)
	if err != nil {
		t.Fatal(err)
	}
	var first struct{ Created, Kept, Derived []string }
	if err := json.Unmarshal([]byte(out), &first); err != nil || len(first.Created) != 4 || len(first.Kept) != 0 || len(first.Derived) != 1 {
		t.Fatalf("%s %v", out, err)
	}
	for _, f := range append(first.Created, first.Derived...) {
		b, _ := os.ReadFile(f)
		secret := strings.TrimSpace(string(b))
		if i := strings.LastIndex(secret, "@"); i > 0 { // the URL: its password part
			secret = secret[strings.LastIndex(secret[:i], ":")+1 : i]
		}
		if strings.Contains(out, secret) {
			t.Errorf("the output shows the content of %s", f)
		}
	}
	out, err = run(t, args...)
	var again struct{ Created, Kept, Derived []string }
	if err != nil || json.Unmarshal([]byte(out), &again) != nil || len(again.Created) != 0 || len(again.Kept) != 4 || len(again.Derived) != 1 {
		t.Fatalf("re-run: %s %v", out, err)
	}
	text, err := run(t, args[:len(args)-1]...) // without --json
	if err != nil || strings.Count(text, "secrets: kept ") != 4 || strings.Count(text, "secrets: rewrote ") != 1 || strings.Contains(text, "created") {
		t.Fatalf("text re-run: %q %v", text, err)
	}
}

func TestSecretsInitErrors(t *testing.T) {
	vol := t.TempDir()
	for name, tc := range map[string]struct {
		args []string
		want string
	}{
		"no --dir":         {[]string{"secrets", "init"}, `"dir" not set`},
		"volume missing":   {[]string{"secrets", "init", "--dir", filepath.Join(vol, "absent", "secrets")}, "mount the volume"},
		"auth volume gone": {[]string{"secrets", "init", "--dir", filepath.Join(vol, "s"), "--postgres-url", "postgres://u@h/d", "--postgres-password-file", filepath.Join(vol, "absent", "p")}, "--postgres-password-file"},
		"url without file": {[]string{"secrets", "init", "--dir", filepath.Join(vol, "s"), "--postgres-url", "postgres://u@h/d"}, "go together"},
		"bad owner":        {[]string{"secrets", "init", "--dir", filepath.Join(vol, "s"), "--owner", "gateway"}, "UID:GID"},
		"unknown flag":     {[]string{"secrets", "init", "--dir", filepath.Join(vol, "s"), "--force"}, "unknown flag"},
		"password in url":  {[]string{"secrets", "init", "--dir", filepath.Join(vol, "s"), "--postgres-url", "postgres://u:hunter2@h/d", "--postgres-password-file", filepath.Join(vol, "p")}, "leave the password out"},
	} {
		t.Run(name, func(t *testing.T) {
			_, err := run(t, tc.args...)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("%v, want an error naming %q", err, tc.want)
			}
			if strings.Contains(err.Error(), "hunter2") {
				t.Errorf("the error repeats the password: %v", err)
			}
		})
	}
}

func TestCAInitIsIdempotent(t *testing.T) {
	vol, gw := t.TempDir(), t.TempDir()
	pass := filepath.Join(gw, "provisioner.pass")
	if err := os.WriteFile(pass, []byte("prov-pass\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	rootOut := filepath.Join(gw, "ca", "root_ca.crt")
	args := []string{"ca", "init", "--steppath", vol, "--name", "Mosaic work CA", "--dns", "work-ca", "--dns", "localhost",
		"--provisioner-password-file", pass, "--root-out", rootOut, "--json"}
	out, err := run(t, args...)
	if err != nil {
		t.Fatal(err)
	}
	var first struct {
		Created      bool
		Fingerprint  string
		URL          string
		Provisioners []string
		RootOut      string `json:"root_out"`
	}
	if err := json.Unmarshal([]byte(out), &first); err != nil || !first.Created || first.URL != "https://work-ca:9000" || first.RootOut != rootOut {
		t.Fatalf("%s %v", out, err)
	}
	// Beside the provisioner password, not in the CA's folder (a backup of it must not
	// carry its keys' password).
	caPass, err := os.ReadFile(filepath.Join(gw, CAPasswordFile))
	if err != nil || len(caPass) < 20 {
		t.Fatalf("step-ca's password file: %v", err)
	}
	if err := filepath.WalkDir(vol, func(p string, _ os.DirEntry, err error) error {
		if b, _ := os.ReadFile(p); err == nil && bytes.Contains(b, bytes.TrimSpace(caPass)) {
			t.Errorf("%s holds the CA password", p)
		}
		return err
	}); err != nil {
		t.Fatal(err)
	}
	if strings.Contains(out, strings.TrimSpace(string(caPass))) || strings.Contains(out, "prov-pass") {
		t.Error("the output shows a password")
	}
	if fp, err := fingerprintOf(rootOut); err != nil || fp != first.Fingerprint {
		t.Errorf("--root-out holds another root: %v", err)
	}
	text, err := run(t, args[:len(args)-1]...)
	if err != nil || !strings.Contains(text, "kept the CA already") || !strings.Contains(text, first.Fingerprint) {
		t.Fatalf("re-run: %q %v", text, err)
	}
	if b, _ := os.ReadFile(filepath.Join(gw, CAPasswordFile)); !bytes.Equal(b, caPass) {
		t.Error("the re-run changed step-ca's password")
	}
}

// A kept CA is never given a fresh password (its keys would not open with it), nor
// kept with a password that does not open it.
func TestCAInitRefusesAKeptCAWithoutItsPassword(t *testing.T) {
	vol, gw := t.TempDir(), t.TempDir()
	pass := filepath.Join(gw, "provisioner.pass")
	if err := os.WriteFile(pass, []byte("prov-pass\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	caPass := filepath.Join(gw, "elsewhere", "ca.pass")
	args := []string{"ca", "init", "--steppath", vol, "--name", "CA", "--dns", "ca", "--provisioner-password-file", pass, "--password-file", caPass}
	if _, err := run(t, args...); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(caPass, caPass+".lost"); err != nil {
		t.Fatal(err)
	}
	_, err := run(t, args...)
	if err == nil || !strings.Contains(err.Error(), "--password-file") || !strings.Contains(err.Error(), "put back") {
		t.Fatalf("a kept CA without its password: %v", err)
	}
	if _, err := os.Lstat(caPass); err == nil {
		t.Fatal("wrote a fresh password for a kept CA")
	}
	// Where an older ca init kept it: the error says to move it.
	legacy := filepath.Join(vol, "secrets", "password")
	if err := os.Rename(caPass+".lost", legacy); err != nil {
		t.Fatal(err)
	}
	if _, err := run(t, args...); err == nil || !strings.Contains(err.Error(), "move it to "+caPass) {
		t.Fatalf("the legacy password file: %v", err)
	}
	// A password that does not open the kept CA's keys.
	if err := os.WriteFile(caPass, []byte("not-it\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := run(t, args...); err == nil || !strings.Contains(err.Error(), "does not open with the CA password") || strings.Contains(err.Error(), "not-it") {
		t.Fatalf("a wrong password: %v", err)
	}
	if err := os.Rename(legacy, caPass); err != nil {
		t.Fatal(err)
	}
	if out, err := run(t, args...); err != nil || !strings.Contains(out, "kept the CA already") {
		t.Fatalf("with its password back: %q %v", out, err)
	}
}

func fingerprintOf(path string) (string, error) {
	der, err := rootOf(path)
	if err != nil {
		return "", err
	}
	return api.RootFingerprint(der), nil
}

func TestCAInitErrors(t *testing.T) {
	dir := t.TempDir()
	pass := filepath.Join(dir, "provisioner.pass")
	empty := filepath.Join(dir, "empty.pass")
	if err := os.WriteFile(pass, []byte("p\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(empty, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	base := func(extra ...string) []string {
		return append([]string{"ca", "init", "--name", "CA", "--dns", "ca"}, extra...)
	}
	for name, tc := range map[string]struct {
		args []string
		want string
	}{
		"no --steppath":          {base("--provisioner-password-file", pass), `"steppath" not set`},
		"volume missing":         {base("--steppath", filepath.Join(dir, "absent"), "--provisioner-password-file", pass), "mount the volume"},
		"no provisioner pass":    {base("--steppath", dir, "--provisioner-password-file", filepath.Join(dir, "none")), "secrets init"},
		"empty provisioner pass": {base("--steppath", dir, "--provisioner-password-file", empty), "empty"},
		"bad address":            {base("--steppath", dir, "--provisioner-password-file", pass, "--address", "9000"), "host:port"},
		"bad owner":              {base("--steppath", dir, "--provisioner-password-file", pass, "--owner", "1000"), "UID:GID"},
	} {
		t.Run(name, func(t *testing.T) {
			_, err := run(t, tc.args...)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("%v, want an error naming %q", err, tc.want)
			}
		})
	}
}

func TestEnrollDemoErrorsBeforeTheDatabase(t *testing.T) {
	dir := t.TempDir()
	scope := filepath.Join(dir, "scope.json")
	if err := os.WriteFile(scope, []byte(`{}`), 0o600); err != nil {
		t.Fatal(err)
	}
	for name, tc := range map[string]struct {
		args []string
		want string
	}{
		"offer without --url-file": {[]string{"federation", "enroll-demo", "offer", "--peer", "home", "--subject-user", "a", "--scope", scope}, `"url-file" not set`},
		"offer, volume missing":    {[]string{"federation", "enroll-demo", "offer", "--peer", "home", "--subject-user", "a", "--scope", scope, "--url-file", filepath.Join(dir, "absent", "u")}, "mount the volume"},
		"offer, no scope":          {[]string{"federation", "enroll-demo", "offer", "--peer", "home", "--subject-user", "a", "--scope", filepath.Join(dir, "none"), "--url-file", filepath.Join(dir, "u")}, "--scope"},
		"accept without --name":    {[]string{"federation", "enroll-demo", "accept", "--url-file", "u", "--local-user", "a"}, `"name" not set`},
		"accept, local tier":       {[]string{"federation", "enroll-demo", "accept", "--url-file", "u", "--name", "work", "--local-user", "a"}, "federated tier"},
	} {
		t.Run(name, func(t *testing.T) {
			t.Setenv("GATEWAY_CONFIG", "")
			t.Setenv("GATEWAY_TIER", "local")
			t.Setenv("GATEWAY_STORAGE_SQLITE_PATH", filepath.Join(dir, "gw.db"))
			_, err := run(t, tc.args...)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("%v, want an error naming %q", err, tc.want)
			}
		})
	}
}

type fakeOfferer struct {
	url string
	err error
}

func (f fakeOfferer) Offer(context.Context, admin.GrantRequest) (admin.Offered, string, error) {
	return admin.Offered{Peer: "home"}, f.url, f.err
}

// The offer writes the URL it hands out; once the grant or peer was ended, it writes
// none and removes the one a run before left (its token is dead, or its peer
// suspended); any other failure leaves the file alone.
func TestOfferWritesOrRemovesTheURLFile(t *testing.T) {
	ctx := context.Background()
	urlFile := filepath.Join(t.TempDir(), "home-at-work.url")
	if _, err := offer(ctx, fakeOfferer{url: "https://work.example/#t"}, admin.GrantRequest{}, urlFile); err != nil {
		t.Fatal(err)
	}
	if b, _ := os.ReadFile(urlFile); string(b) != "https://work.example/#t\n" {
		t.Fatalf("url file %q", b)
	}
	if _, err := offer(ctx, fakeOfferer{}, admin.GrantRequest{}, urlFile); err != nil { // already enrolled
		t.Fatal(err)
	}
	if _, err := offer(ctx, fakeOfferer{err: errors.New("database down")}, admin.GrantRequest{}, urlFile); err == nil {
		t.Fatal("no error")
	}
	if _, err := os.Stat(urlFile); err != nil {
		t.Fatalf("a failure that ended nothing removed the URL: %v", err)
	}
	ended := fmt.Errorf("grant g for peer home is revoked: %w", admin.ErrNothingOffered)
	for range 2 { // the second time there is no file to remove
		if _, err := offer(ctx, fakeOfferer{err: ended}, admin.GrantRequest{}, urlFile); !errors.Is(err, admin.ErrNothingOffered) {
			t.Fatalf("refusal: %v", err)
		}
		if _, err := os.Stat(urlFile); err == nil {
			t.Fatal("the URL of an ended grant is still there")
		}
	}
}

func TestProbe(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/readyz" {
			w.WriteHeader(http.StatusServiceUnavailable)
		}
	}))
	defer srv.Close()
	if _, err := run(t, "probe", srv.URL+"/readyz"); err != nil {
		t.Errorf("a 200: %v", err)
	}
	for _, bad := range [][]string{{"probe", srv.URL + "/down"}, {"probe", "ftp://x"}, {"probe"}, {"probe", "http://127.0.0.1:1/"}, {"probe", srv.URL, "--timeout", "soon"}} {
		if _, err := run(t, bad...); err == nil {
			t.Errorf("%v: no error", bad)
		}
	}
}
