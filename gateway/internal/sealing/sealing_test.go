package sealing

import (
	"bytes"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func keyLine(t *testing.T) string {
	b := make([]byte, 32)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	return base64.StdEncoding.EncodeToString(b)
}

func ring(t *testing.T, lines ...string) *Keyring {
	kr, err := Parse([]byte(strings.Join(lines, "\n")))
	if err != nil {
		t.Fatal(err)
	}
	return kr
}

func TestSealOpenAndPlaceBinding(t *testing.T) {
	kr := ring(t, keyLine(t))
	place := Place{"credentials", "row-1", "user-1"}
	secret := []byte("-----BEGIN PRIVATE KEY----- not really")
	env, err := kr.Seal(secret, place)
	if err != nil {
		t.Fatal(err)
	}
	if bytes.Contains(env, []byte("PRIVATE KEY")) {
		t.Fatal("plaintext visible in the envelope")
	}
	got, err := kr.Open(env, place)
	if err != nil || !bytes.Equal(got, secret) {
		t.Fatalf("open: %q, %v", got, err)
	}
	for _, other := range []Place{{"credentials", "row-2", "user-1"}, {"credentials", "row-1", "user-2"}, {"federation_peers", "row-1", "user-1"}} {
		if _, err := kr.Open(env, other); !errors.Is(err, ErrOpen) {
			t.Errorf("opened at %+v: %v", other, err)
		}
	}
	tampered := append([]byte{}, env...)
	tampered[len(tampered)-1] ^= 1
	if _, err := kr.Open(tampered, place); !errors.Is(err, ErrOpen) {
		t.Errorf("tampered: %v", err)
	}
	if _, err := kr.Open([]byte("short"), place); !errors.Is(err, ErrFormat) {
		t.Errorf("short: %v", err)
	}
}

func TestRotation(t *testing.T) {
	oldKey, newKey := keyLine(t), keyLine(t)
	env, err := ring(t, oldKey).Seal([]byte("s"), Place{"t", "r", "o"})
	if err != nil {
		t.Fatal(err)
	}
	rotated := ring(t, newKey, oldKey)
	if got, err := rotated.Open(env, Place{"t", "r", "o"}); err != nil || string(got) != "s" {
		t.Fatalf("old envelope after rotation: %v", err)
	}
	resealed, _ := rotated.Seal([]byte("s"), Place{"t", "r", "o"})
	if _, err := ring(t, oldKey).Open(resealed, Place{"t", "r", "o"}); !errors.Is(err, ErrNoKey) {
		t.Fatalf("new envelope opened without the new key: %v", err)
	}
	if rotated.KeyID() == ring(t, oldKey).KeyID() {
		t.Fatal("key ids collide")
	}
}

func TestParseErrorsNameTheLineNotTheKey(t *testing.T) {
	for _, body := range []string{"", "# only a comment\n", "not base64!\n", base64.StdEncoding.EncodeToString([]byte("short")) + "\n"} {
		_, err := Parse([]byte(body))
		if err == nil {
			t.Fatalf("accepted %q", body)
		}
		if strings.Contains(body, "base64") == false && body != "" && strings.Contains(err.Error(), strings.TrimSpace(body)) {
			t.Fatalf("error quotes the key material: %v", err)
		}
	}
}

func TestLoadOrCreate(t *testing.T) {
	path := filepath.Join(t.TempDir(), "data", "sealing.key")
	kr, err := LoadOrCreate(path)
	if err != nil {
		t.Fatal(err)
	}
	st, _ := os.Stat(path)
	if st.Mode().Perm() != 0o600 {
		t.Fatalf("mode %o", st.Mode().Perm())
	}
	again, err := LoadOrCreate(path)
	if err != nil || again.KeyID() != kr.KeyID() {
		t.Fatal("a second call made a new key")
	}
	_ = os.Chmod(path, 0o644)
	if _, err := Load(path); err == nil || !strings.Contains(err.Error(), "chmod 600") {
		t.Fatalf("world-readable key file accepted: %v", err)
	}
}
