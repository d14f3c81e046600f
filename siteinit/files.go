package siteinit

import (
	"crypto/rand"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
)

// CreateFile writes content to path unless the file exists (O_EXCL: two writers at once
// must not both write a key); it reports whether it wrote.
func CreateFile(path string, content []byte, mode os.FileMode) (bool, error) {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, mode)
	if errors.Is(err, fs.ErrExist) {
		return false, nil
	}
	if err != nil {
		return false, err
	}
	_, err = f.Write(content)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		os.Remove(path) // never leave half a key behind for the next run to keep
		return false, err
	}
	return true, nil
}

// NewKeyLine is a fresh 32-byte key as sealing_key_file and audit_key_file hold it.
func NewKeyLine() []byte {
	return []byte(base64.StdEncoding.EncodeToString(random(32)) + "\n")
}

// NewPassword is a fresh random password line (48 hex digits).
func NewPassword() []byte { return []byte(hex.EncodeToString(random(24)) + "\n") }

func random(n int) []byte {
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		panic(err) // crypto/rand does not fail on Linux
	}
	return b
}

// WriteFile replaces path atomically (a temporary file renamed over it), so a reader
// or a cut-short run never sees half a file.
func WriteFile(path string, b []byte, mode os.FileMode) error {
	tmp, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".*")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name())
	if _, err := tmp.Write(b); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Chmod(mode); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	return os.Rename(tmp.Name(), path)
}

func readJSON(path string, v any) error {
	b, err := os.ReadFile(path)
	if err != nil {
		return err
	}
	if err := json.Unmarshal(b, v); err != nil {
		return fmt.Errorf("%s: %w", path, err)
	}
	return nil
}

func writeJSON(path string, v any) error {
	b, err := json.MarshalIndent(v, "", "\t")
	if err != nil {
		return err
	}
	return WriteFile(path, append(b, '\n'), 0o600)
}
