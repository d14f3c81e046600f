// Package enrollment is what both sides of an enrollment (SPEC §6) agree on: the
// single-use token (minted, hashed for storage, shortened for logs), the enrollment URL
// whose fragment carries the token and the root's fingerprint, and the check of a
// fetched root against that fingerprint. Each exists here once.
package enrollment

import (
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"net/url"
	"regexp"
	"strconv"
	"strings"

	"github.com/mosaic-federation/mosaic/gateway/api"
)

// Path is where enrollment URLs point.
const Path = "/api/federation/v1/enroll"

// tokenPrefix marks an enrollment token ("mosaic enrollment token").
const tokenPrefix = "met_"

// tokenShape is what NewToken mints: anything else is logged as malformed, never quoted.
var tokenShape = regexp.MustCompile(`^met_[A-Za-z0-9_-]{43}$`)

// NewToken mints a token: 32 random bytes, base64url, behind its prefix.
func NewToken() (string, error) {
	raw := make([]byte, 32)
	if _, err := rand.Read(raw); err != nil {
		return "", err
	}
	return tokenPrefix + base64.RawURLEncoding.EncodeToString(raw), nil
}

// HashToken is all that is stored of a token.
func HashToken(token string) []byte {
	sum := sha256.Sum256([]byte(token))
	return sum[:]
}

// Loggable is all of a token that may be logged or audited: its first 8 characters,
// when it has the shape of a real token.
func Loggable(token string) string {
	if !tokenShape.MatchString(token) {
		return "(malformed)"
	}
	return token[:8] + "…"
}

// URL is the enrollment URL for a token at a site's public federation address.
func URL(publicURL, token string, rootDER []byte) string {
	return strings.TrimRight(publicURL, "/") + Path + "#token=" + token + "&ca-sha256=" + api.RootFingerprint(rootDER)
}

// Invitation is a parsed enrollment URL: its secrets sit in the fragment.
type Invitation struct {
	Base        string // https://host:port
	Token       string
	Fingerprint string // lowercase hex SHA-256 of the root's DER
}

// Parse reads https://host/api/federation/v1/enroll#token=…&ca-sha256=….
// Errors never quote the URL (it holds the token).
func Parse(s string) (Invitation, error) {
	u, err := url.Parse(strings.TrimSpace(s))
	if err != nil || u.Scheme != "https" || u.Host == "" {
		return Invitation{}, errors.New("the enrollment URL must be https://<host>" + Path + "#token=…&ca-sha256=…")
	}
	if u.User != nil {
		return Invitation{}, errors.New("the enrollment URL must not carry a user name or password")
	}
	if u.Path != Path || u.RawQuery != "" {
		return Invitation{}, fmt.Errorf("the enrollment URL's path must be %s, with no query", Path)
	}
	if port := u.Port(); port != "" {
		if n, err := strconv.Atoi(port); err != nil || n < 1 || n > 65535 {
			return Invitation{}, errors.New("the enrollment URL's port is not a port")
		}
	}
	frag, err := url.ParseQuery(u.EscapedFragment()) // decode once, not twice
	if err != nil {
		return Invitation{}, errors.New("the enrollment URL's fragment does not parse")
	}
	if len(frag["token"]) > 1 || len(frag["ca-sha256"]) > 1 {
		return Invitation{}, errors.New("the enrollment URL names its token or fingerprint twice")
	}
	inv := Invitation{Base: "https://" + u.Host, Token: frag.Get("token"), Fingerprint: strings.ToLower(frag.Get("ca-sha256"))}
	if inv.Token == "" {
		return Invitation{}, errors.New("the enrollment URL has no token in its fragment")
	}
	if b, err := hex.DecodeString(inv.Fingerprint); err != nil || len(b) != sha256.Size {
		return Invitation{}, errors.New("the enrollment URL's ca-sha256 must be 64 hex digits")
	}
	return inv, nil
}

// Pins reports whether a root certificate's DER is the one the invitation names, in
// constant time.
func (inv Invitation) Pins(rootDER []byte) bool {
	return subtle.ConstantTimeCompare([]byte(api.RootFingerprint(rootDER)), []byte(inv.Fingerprint)) == 1
}
