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
	"syscall"
)

// CreateFile writes content to path unless a file is there already; it reports whether
// it wrote. The content goes to a temporary file first (synced), which is then linked
// to path with link(2): that fails when path exists, so two writers at once never both
// write a key, and a reader or a run cut short never sees half a file. A path that is
// there but is not a regular file (a symlink, a folder) is refused, not kept: a key
// kept through a link would be whatever the link points at.
func CreateFile(path string, content []byte, mode os.FileMode) (bool, error) {
	if kept, err := keptFile(path); kept || err != nil {
		return false, err
	}
	tmp, err := writeTemp(path, content, mode)
	if err != nil {
		return false, err
	}
	defer os.Remove(tmp)
	return publish(tmp, path)
}

// publish links the written file tmp to path unless path exists (link(2) never
// replaces): a writer that lost the race since keptFile keeps the winner's file.
func publish(tmp, path string) (bool, error) {
	if err := os.Link(tmp, path); err != nil {
		if !errors.Is(err, fs.ErrExist) {
			return false, err
		}
		kept, err := keptFile(path)
		if err == nil && !kept {
			err = fmt.Errorf("%s appeared and went while it was written: run again", path)
		}
		return false, err
	}
	return true, syncDir(filepath.Dir(path))
}

// keptFile reports whether path is there as a regular file to keep; anything else
// that is there is an error naming what to do.
func keptFile(path string) (bool, error) {
	st, err := os.Lstat(path)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return false, nil
	case err != nil:
		return false, err
	case st.Mode().Type() == fs.ModeSymlink:
		return false, fmt.Errorf("%s is a symbolic link, not a file: refusing to keep it (remove it, or put the file itself there)", path)
	case !st.Mode().IsRegular():
		return false, fmt.Errorf("%s is not a regular file (%s): refusing to keep it (remove it)", path, st.Mode().Type())
	}
	return true, nil
}

// writeTemp writes content to a fresh temporary file beside path (mode, synced) and
// returns its name.
func writeTemp(path string, content []byte, mode os.FileMode) (string, error) {
	tmp, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".*")
	if err != nil {
		return "", err
	}
	err = tmp.Chmod(mode)
	if err == nil {
		_, err = tmp.Write(content)
	}
	if err == nil {
		err = tmp.Sync()
	}
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		os.Remove(tmp.Name()) // never leave half a key behind
		return "", err
	}
	return tmp.Name(), nil
}

// syncDir makes a new name in dir durable. A file system that cannot sync a folder
// (some network and FUSE mounts answer EINVAL or ENOTSUP) is not an error: the file
// itself was synced, and there is nothing more to ask of it.
func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	err = d.Sync()
	if errors.Is(err, syscall.EINVAL) || errors.Is(err, syscall.ENOTSUP) {
		err = nil
	}
	if cerr := d.Close(); err == nil {
		err = cerr
	}
	return err
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

// WriteFile replaces path atomically (a synced temporary file renamed over it), so a
// reader or a cut-short run never sees half a file.
func WriteFile(path string, b []byte, mode os.FileMode) error {
	tmp, err := writeTemp(path, b, mode)
	if err != nil {
		return err
	}
	defer os.Remove(tmp)
	if err := os.Rename(tmp, path); err != nil {
		return err
	}
	return syncDir(filepath.Dir(path))
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
