// Package redact keeps secrets out of messages: URLs lose their userinfo and secret
// query parameters, and known secret values are blanked wherever they appear.
package redact

import (
	"net/url"
	"regexp"
	"strings"
)

// Mask replaces what was removed.
const Mask = "[redacted]"

var secretParams = []string{"password", "sslpassword", "pass", "pwd", "token", "secret", "key", "sslkey", "access_token", "auth"}

// URL returns raw without userinfo or secret query parameters. Something that does
// not parse as a URL is replaced entirely: it might be a secret.
func URL(raw string) string {
	u, err := url.Parse(strings.TrimSpace(raw))
	if err != nil || u.Scheme == "" || u.Host == "" {
		return Mask
	}
	u.User = nil
	q := u.Query()
	secret := false
	for k := range q {
		if isSecretParam(k) {
			q.Set(k, "MOSAIC-REDACTED-VALUE")
			secret = true
		}
	}
	u.RawQuery = q.Encode()
	if secret {
		u.RawQuery = strings.ReplaceAll(u.RawQuery, "MOSAIC-REDACTED-VALUE", Mask)
	}
	return u.String()
}

func isSecretParam(k string) bool {
	k = strings.ToLower(k)
	for _, p := range secretParams {
		if strings.Contains(k, p) {
			return true
		}
	}
	return false
}

// userinfo matches scheme://user:password@ in free text.
var userinfo = regexp.MustCompile(`([a-zA-Z][a-zA-Z0-9+.-]*://)[^@/\s]*@`)

// Redactor blanks known secret values and any URL userinfo in text.
type Redactor struct{ secrets []string }

// New returns a Redactor for these secret values (empty ones are ignored). For a URL
// secret, its password and its decoded password are added too.
func New(secrets ...string) *Redactor {
	r := &Redactor{}
	for _, s := range secrets {
		r.add(s)
		if u, err := url.Parse(strings.TrimSpace(s)); err == nil && u.User != nil {
			if p, ok := u.User.Password(); ok {
				r.add(p)
				r.add(url.QueryEscape(p))
				r.add(url.PathEscape(p))
			}
		}
	}
	return r
}

func (r *Redactor) add(s string) {
	if s = strings.TrimSpace(s); len(s) >= 4 {
		r.secrets = append(r.secrets, s)
	}
}

// String returns text with every known secret and URL userinfo blanked.
func (r *Redactor) String(text string) string {
	for _, s := range r.secrets {
		text = strings.ReplaceAll(text, s, Mask)
	}
	return userinfo.ReplaceAllString(text, "${1}"+Mask+"@")
}
