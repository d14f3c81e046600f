// Package caclient is the gateway's client of its own site's step-ca: it reads a JWK
// provisioner's encrypted key from the CA, decrypts it once with the provisioner
// password, mints one-time tokens whose signed claims carry the federation identity,
// has the CA sign CSRs, and verifies what comes back before anyone uses it.
package caclient

import (
	"bytes"
	"context"
	"crypto"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"
)

// tokenTTL is how long a one-time token is valid: just long enough to be spent.
const tokenTTL = 2 * time.Minute

// Config names a CA and one of its JWK provisioners.
type Config struct {
	URL         string         // https://127.0.0.1:9000
	Roots       *x509.CertPool // the site's root: the only thing trusted
	Provisioner string
	Password    []byte // decrypts the provisioner's key; not kept after New
}

// Client signs with one provisioner.
type Client struct {
	url, name, kid string
	key            crypto.Signer
	http           *http.Client
}

// New fetches the provisioner from the CA and decrypts its key (600,000 PBKDF2
// rounds: do it once per process).
func New(ctx context.Context, cfg Config) (*Client, error) {
	if cfg.Roots == nil {
		return nil, errors.New("caclient: no root to trust")
	}
	c := &Client{url: strings.TrimRight(cfg.URL, "/"), name: cfg.Provisioner, http: &http.Client{
		Timeout:   30 * time.Second,
		Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: cfg.Roots, MinVersion: tls.VersionTLS12}},
	}}
	encrypted, kid, err := c.provisionerKey(ctx)
	if err != nil {
		return nil, err
	}
	jwe, err := jose.ParseEncryptedCompact(encrypted,
		[]jose.KeyAlgorithm{jose.PBES2_HS256_A128KW, jose.PBES2_HS384_A192KW, jose.PBES2_HS512_A256KW},
		[]jose.ContentEncryption{jose.A128GCM, jose.A192GCM, jose.A256GCM})
	if err != nil {
		return nil, fmt.Errorf("caclient: provisioner %q: the encrypted key does not parse: %w", cfg.Provisioner, err)
	}
	plain, err := jwe.Decrypt(cfg.Password)
	if err != nil {
		return nil, fmt.Errorf("caclient: provisioner %q: cannot decrypt its key: is ca.provisioner_password_file right?", cfg.Provisioner)
	}
	var jwk jose.JSONWebKey
	if err := json.Unmarshal(plain, &jwk); err != nil {
		return nil, fmt.Errorf("caclient: provisioner %q: the decrypted key is not a JWK", cfg.Provisioner)
	}
	signer, ok := jwk.Key.(crypto.Signer)
	if !ok || jwk.IsPublic() {
		return nil, fmt.Errorf("caclient: provisioner %q: the key is not a private signing key", cfg.Provisioner)
	}
	// The key id is what the guard matches issued certificates against: it must be
	// there, and be the decrypted key's own.
	if kid == "" || (jwk.KeyID != "" && jwk.KeyID != kid) {
		return nil, fmt.Errorf("caclient: provisioner %q: the CA lists no key id for it, or one that is not its key's", cfg.Provisioner)
	}
	c.key, c.kid = signer, kid
	return c, nil
}

// KeyID is the provisioner's key id (step-ca records it in issued certificates).
func (c *Client) KeyID() string { return c.kid }

// provisionerKey pages through GET /provisioners for the named JWK provisioner.
func (c *Client) provisionerKey(ctx context.Context) (encrypted, kid string, err error) {
	cursor := ""
	for range 100 {
		var page struct {
			Provisioners []struct {
				Type         string `json:"type"`
				Name         string `json:"name"`
				EncryptedKey string `json:"encryptedKey"`
				Key          struct {
					Kid string `json:"kid"`
				} `json:"key"`
			} `json:"provisioners"`
			NextCursor string `json:"nextCursor"`
		}
		if err := c.getJSON(ctx, "/provisioners?limit=100&cursor="+url.QueryEscape(cursor), &page); err != nil {
			return "", "", err
		}
		for _, p := range page.Provisioners {
			if p.Name == c.name && p.Type == "JWK" && p.EncryptedKey != "" {
				return p.EncryptedKey, p.Key.Kid, nil
			}
		}
		if cursor = page.NextCursor; cursor == "" {
			break
		}
	}
	return "", "", fmt.Errorf("caclient: the CA at %s has no JWK provisioner %q with an encrypted key", c.url, c.name)
}

// Token mints a one-time token for /1.0/sign: subject, SANs, and extra signed claims.
func (c *Client) Token(subject string, sans []string, claims map[string]any) (string, error) {
	return c.tokenFor("/1.0/sign", subject, sans, claims)
}

// tokenFor mints a one-time token for one CA endpoint.
func (c *Client) tokenFor(endpoint, subject string, sans []string, claims map[string]any) (string, error) {
	signer, err := jose.NewSigner(jose.SigningKey{Algorithm: jose.ES256, Key: c.key},
		(&jose.SignerOptions{}).WithType("JWT").WithHeader("kid", c.kid))
	if err != nil {
		return "", err
	}
	now := time.Now()
	jti := make([]byte, 16)
	if _, err := rand.Read(jti); err != nil {
		return "", err
	}
	std := jwt.Claims{
		Issuer: c.name, Subject: subject, Audience: jwt.Audience{c.url + endpoint},
		NotBefore: jwt.NewNumericDate(now.Add(-30 * time.Second)), IssuedAt: jwt.NewNumericDate(now),
		Expiry: jwt.NewNumericDate(now.Add(tokenTTL)), ID: hex.EncodeToString(jti),
	}
	all := map[string]any{}
	if sans != nil {
		all["sans"] = sans
	}
	for k, v := range claims {
		all[k] = v
	}
	return jwt.Signed(signer).Claims(std).Claims(all).Serialize()
}

// Signed is what the CA returned, parsed.
type Signed struct {
	Leaf  *x509.Certificate
	Chain []*x509.Certificate // intermediates, leaf excluded
}

// Sign has the CA sign a PEM CSR with a one-time token, for the provisioner's default
// lifetime.
func (c *Client) Sign(ctx context.Context, csrPEM []byte, ott string) (*Signed, error) {
	return c.SignUntil(ctx, csrPEM, ott, time.Time{})
}

// SignUntil is Sign asking for a certificate valid until notAfter (zero: the
// provisioner's default); the provisioner's claims bound what the CA accepts.
func (c *Client) SignUntil(ctx context.Context, csrPEM []byte, ott string, notAfter time.Time) (*Signed, error) {
	req := map[string]string{"csr": string(csrPEM), "ott": ott}
	if !notAfter.IsZero() {
		req["notAfter"] = notAfter.UTC().Format(time.RFC3339)
	}
	body, _ := json.Marshal(req)
	hreq, err := http.NewRequestWithContext(ctx, http.MethodPost, c.url+"/1.0/sign", bytes.NewReader(body))
	if err != nil {
		return nil, err
	}
	hreq.Header.Set("Content-Type", "application/json")
	resp, err := c.http.Do(hreq)
	if err != nil {
		return nil, fmt.Errorf("caclient: sign: %w", err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		return nil, err
	}
	if resp.StatusCode != http.StatusCreated && resp.StatusCode != http.StatusOK {
		var e struct {
			Message string `json:"message"`
		}
		_ = json.Unmarshal(b, &e)
		return nil, &SignError{Status: resp.StatusCode, Message: e.Message}
	}
	var out struct {
		Crt       string   `json:"crt"`
		CertChain []string `json:"certChain"`
	}
	if err := json.Unmarshal(b, &out); err != nil {
		return nil, fmt.Errorf("caclient: sign: unexpected answer: %w", err)
	}
	leaf, err := parseCert(out.Crt)
	if err != nil {
		return nil, err
	}
	s := &Signed{Leaf: leaf}
	for _, p := range out.CertChain {
		cert, err := parseCert(p)
		if err != nil {
			return nil, err
		}
		if !cert.Equal(leaf) {
			s.Chain = append(s.Chain, cert)
		}
	}
	return s, nil
}

// SignError is the CA refusing to sign.
type SignError struct {
	Status  int
	Message string
}

func (e *SignError) Error() string {
	return fmt.Sprintf("caclient: the CA refused to sign (%d): %s", e.Status, e.Message)
}

func (c *Client) getJSON(ctx context.Context, path string, v any) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, c.url+path, nil)
	if err != nil {
		return err
	}
	resp, err := c.http.Do(req)
	if err != nil {
		return fmt.Errorf("caclient: %w", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("caclient: GET %s: %s", path, resp.Status)
	}
	return json.NewDecoder(io.LimitReader(resp.Body, 4<<20)).Decode(v)
}

func parseCert(p string) (*x509.Certificate, error) {
	block, _ := pem.Decode([]byte(p))
	if block == nil || block.Type != "CERTIFICATE" {
		return nil, errors.New("caclient: the CA returned no PEM certificate")
	}
	return x509.ParseCertificate(block.Bytes)
}
