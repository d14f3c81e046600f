// Package apitoken makes and hashes users' API tokens for the local API.
package apitoken

import (
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"strings"
)

// Prefix marks Mosaic API tokens, so secret scanners can find leaked ones.
const Prefix = "mos_"

// New returns a fresh token: the prefix and 32 random bytes, base64url.
func New() (string, error) {
	b := make([]byte, 32)
	if _, err := rand.Read(b); err != nil {
		return "", err
	}
	return Prefix + base64.RawURLEncoding.EncodeToString(b), nil
}

// Hash is what the store keeps of a token. Tokens carry 256 random bits, so a plain
// SHA-256 suffices: no password-hashing work factor is needed.
func Hash(token string) []byte {
	sum := sha256.Sum256([]byte(token))
	return sum[:]
}

// WellFormed cheaply rejects what cannot be a token before any lookup.
func WellFormed(token string) bool {
	if !strings.HasPrefix(token, Prefix) || len(token) != len(Prefix)+43 {
		return false
	}
	_, err := base64.RawURLEncoding.DecodeString(token[len(Prefix):])
	return err == nil
}
