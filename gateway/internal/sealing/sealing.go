// Package sealing encrypts secrets at rest with AES-256-GCM. A key file holds one key
// per line (base64 of 32 random bytes, as `openssl rand -base64 32` prints): the first
// line seals, every line opens, so a new key is rotated in by adding it on top and the
// old one is removed once nothing sealed with it remains. A key's id is derived from
// the key itself and travels in the envelope, which also binds its place (table, row
// id, owner) as additional authenticated data: a ciphertext copied into another row
// does not open.
package sealing

import (
	"bufio"
	"bytes"
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
)

const (
	version  = 1
	idLen    = 8
	keyLen   = 32
	nonceLen = 12
	// header: version, key id, nonce.
	headerLen = 1 + idLen + nonceLen
)

// Errors. Neither says anything about key material or plaintext.
var (
	ErrOpen   = errors.New("sealing: cannot open: wrong key, wrong place or tampered envelope")
	ErrNoKey  = errors.New("sealing: the envelope's key is not in the key file")
	ErrFormat = errors.New("sealing: not a sealed envelope")
)

// Place is where a sealed value lives; it is bound into the envelope.
type Place struct {
	Table, RowID, Owner string
}

func (p Place) aad() []byte {
	return []byte("mosaic-sealing-v1\x00" + p.Table + "\x00" + p.RowID + "\x00" + p.Owner)
}

// Keyring seals with its first key and opens with any.
type Keyring struct {
	keys []key
}

type key struct {
	id   [idLen]byte
	aead cipher.AEAD
}

// Parse reads key lines; blank lines and lines starting with # are skipped. Errors
// name the line, never its content.
func Parse(b []byte) (*Keyring, error) {
	kr := &Keyring{}
	sc := bufio.NewScanner(bytes.NewReader(b))
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		raw, err := base64.StdEncoding.DecodeString(line)
		if err != nil || len(raw) != keyLen {
			return nil, fmt.Errorf("sealing key file, line %d: want the base64 of 32 random bytes (openssl rand -base64 32)", n)
		}
		k, err := newKey(raw)
		if err != nil {
			return nil, err
		}
		kr.keys = append(kr.keys, k)
	}
	if len(kr.keys) == 0 {
		return nil, errors.New("sealing key file holds no key: add one with `openssl rand -base64 32 >> FILE`")
	}
	return kr, sc.Err()
}

func newKey(raw []byte) (key, error) {
	block, err := aes.NewCipher(raw)
	if err != nil {
		return key{}, err
	}
	aead, err := cipher.NewGCM(block)
	if err != nil {
		return key{}, err
	}
	sum := sha256.Sum256(append([]byte("mosaic-sealing-key-id\x00"), raw...))
	var k key
	copy(k.id[:], sum[:idLen])
	k.aead = aead
	return k, nil
}

// Load reads a key file; it refuses one that others may read.
func Load(path string) (*Keyring, error) {
	st, err := os.Stat(path)
	if err != nil {
		return nil, fmt.Errorf("sealing key file: %w", err)
	}
	if st.Mode().Perm()&0o077 != 0 {
		return nil, fmt.Errorf("sealing key file %s is readable by others (mode %o): chmod 600 it", path, st.Mode().Perm())
	}
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("sealing key file: %w", err)
	}
	return Parse(b)
}

// LoadOrCreate is Load, creating the file with one fresh key (mode 0600) when it does
// not exist: the local tier's zero-setup path.
func LoadOrCreate(path string) (*Keyring, error) {
	if _, err := os.Stat(path); errors.Is(err, fs.ErrNotExist) {
		raw := make([]byte, keyLen)
		if _, err := rand.Read(raw); err != nil {
			return nil, err
		}
		if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
			return nil, err
		}
		line := base64.StdEncoding.EncodeToString(raw) + "\n"
		f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
		if err != nil {
			return nil, fmt.Errorf("create sealing key file: %w", err)
		}
		_, err = f.WriteString(line)
		if cerr := f.Close(); err == nil {
			err = cerr
		}
		if err != nil {
			return nil, err
		}
	}
	return Load(path)
}

// Seal encrypts plaintext for a place with the first key.
func (kr *Keyring) Seal(plaintext []byte, p Place) ([]byte, error) {
	k := kr.keys[0]
	out := make([]byte, headerLen, headerLen+len(plaintext)+k.aead.Overhead())
	out[0] = version
	copy(out[1:], k.id[:])
	if _, err := rand.Read(out[1+idLen : headerLen]); err != nil {
		return nil, err
	}
	return k.aead.Seal(out, out[1+idLen:headerLen], plaintext, append(out[:1+idLen:1+idLen], p.aad()...)), nil
}

// Open decrypts an envelope sealed for the same place with any key of the ring.
func (kr *Keyring) Open(env []byte, p Place) ([]byte, error) {
	if len(env) < headerLen+16 || env[0] != version {
		return nil, ErrFormat
	}
	for _, k := range kr.keys {
		if !bytes.Equal(k.id[:], env[1:1+idLen]) {
			continue
		}
		aad := append(append([]byte{}, env[:1+idLen]...), p.aad()...)
		pt, err := k.aead.Open(nil, env[1+idLen:headerLen], env[headerLen:], aad)
		if err != nil {
			return nil, ErrOpen
		}
		return pt, nil
	}
	return nil, ErrNoKey
}

// KeyID is the hex id of the sealing key (for doctor and rotation runbooks).
func (kr *Keyring) KeyID() string { return fmt.Sprintf("%x", kr.keys[0].id) }
