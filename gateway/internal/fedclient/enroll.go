// Package fedclient is the requesting side's client of a peer's federation listener.
// For now: enrollment (`gateway federation peer add`), which pins the peer's root by
// the fingerprint in the enrollment URL before trusting or sending anything.
package fedclient

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
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
	"strconv"
	"strings"
	"time"

	"github.com/mosaic-federation/mosaic/gateway/api"
	"github.com/mosaic-federation/mosaic/gateway/internal/identity"
)

// EnrollPath is where enrollment URLs point.
const EnrollPath = "/api/federation/v1/enroll"

// Invitation is a parsed enrollment URL: its secrets sit in the fragment.
type Invitation struct {
	Base        string // https://host:port
	Token       string
	Fingerprint string // lowercase hex SHA-256 of the root's DER
}

// ParseEnrollmentURL reads https://host/api/federation/v1/enroll#token=…&ca-sha256=….
// Errors never quote the URL (it holds the token).
func ParseEnrollmentURL(s string) (Invitation, error) {
	u, err := url.Parse(strings.TrimSpace(s))
	if err != nil || u.Scheme != "https" || u.Host == "" {
		return Invitation{}, errors.New("the enrollment URL must be https://<host>" + EnrollPath + "#token=…&ca-sha256=…")
	}
	if u.User != nil {
		return Invitation{}, errors.New("the enrollment URL must not carry a user name or password")
	}
	if u.Path != EnrollPath || u.RawQuery != "" {
		return Invitation{}, fmt.Errorf("the enrollment URL's path must be %s, with no query", EnrollPath)
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

// FetchRoot gets the peer's root without trusting anything yet, and accepts it only if
// the SHA-256 of its DER equals the invitation's fingerprint.
func FetchRoot(ctx context.Context, inv Invitation) (*x509.Certificate, error) {
	client := &http.Client{Timeout: 15 * time.Second, CheckRedirect: noRedirects, Transport: &http.Transport{
		// Nothing is trusted and nothing secret is sent on this connection: what it
		// returns is checked against the fingerprint below.
		TLSClientConfig: &tls.Config{InsecureSkipVerify: true, MinVersion: tls.VersionTLS13}, //nolint:gosec
	}}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, inv.Base+"/api/federation/v1/ca/root", nil)
	if err != nil {
		return nil, err
	}
	resp, err := client.Do(req)
	if err != nil {
		return nil, fmt.Errorf("fetch the peer's root: %w", err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
	if err != nil || resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("fetch the peer's root: %s", resp.Status)
	}
	block, _ := pem.Decode(b)
	if block == nil || block.Type != "CERTIFICATE" {
		return nil, errors.New("the peer's /ca/root is not a PEM certificate")
	}
	sum := sha256.Sum256(block.Bytes)
	want, _ := hex.DecodeString(inv.Fingerprint)
	if subtle.ConstantTimeCompare(sum[:], want) != 1 {
		return nil, errors.New("the peer's root does not match the enrollment URL's ca-sha256: refusing to enroll (wrong URL, or someone in between)")
	}
	return x509.ParseCertificate(block.Bytes)
}

// Enrolled is what a successful enrollment leaves: our key, our certificate and chain.
type Enrolled struct {
	Key      *ecdsa.PrivateKey
	Cert     *x509.Certificate
	CertPEM  string
	ChainPEM string
	GrantID  string
	Identity identity.Identity
}

// Enroll generates a key and a CSR (no subject, no SANs) and redeems the token on a
// connection verified against the pinned root; it checks what comes back.
func Enroll(ctx context.Context, inv Invitation, root *x509.Certificate) (*Enrolled, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, err
	}
	der, err := x509.CreateCertificateRequest(rand.Reader, &x509.CertificateRequest{}, key)
	if err != nil {
		return nil, err
	}
	body, _ := json.Marshal(api.EnrollRequest{Token: inv.Token,
		CSRPEM: string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE REQUEST", Bytes: der}))})
	pool := x509.NewCertPool()
	pool.AddCert(root)
	// Longer than the serving side's own bound on issuance, so it does not activate a
	// grant after we gave up.
	client := &http.Client{Timeout: 60 * time.Second, CheckRedirect: noRedirects, Transport: &http.Transport{
		TLSClientConfig: &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS13}}}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, inv.Base+EnrollPath, bytes.NewReader(body))
	if err != nil {
		return nil, err
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := client.Do(req)
	if err != nil {
		return nil, fmt.Errorf("enroll: %w", err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if resp.StatusCode != http.StatusCreated {
		var e api.ErrorBody
		_ = json.Unmarshal(b, &e)
		return nil, &PeerError{Status: resp.StatusCode, Code: safeCode(e.Error.Code)}
	}
	var out api.EnrollResponse
	if err := json.Unmarshal(b, &out); err != nil {
		return nil, errors.New("enroll: the peer's answer does not parse")
	}
	return check(out, key, pool)
}

// PeerError is a peer's refusal: its status and reason code (never its message text).
type PeerError struct {
	Peer   string // our name for the peer, when known
	Status int
	Code   string
}

func (e *PeerError) Error() string {
	who := "the peer"
	if e.Peer != "" {
		who = "peer " + e.Peer
	}
	if e.Status == 0 {
		return who + " could not be reached: " + e.Code
	}
	return fmt.Sprintf("%s answered %d %s", who, e.Status, e.Code)
}

// check verifies the issued certificate: it chains to the pinned root for client
// authentication, certifies our key, and binds the grant the peer named.
func check(out api.EnrollResponse, key *ecdsa.PrivateKey, roots *x509.CertPool) (*Enrolled, error) {
	block, _ := pem.Decode([]byte(out.CertificatePEM))
	if block == nil {
		return nil, errors.New("enroll: no certificate in the answer")
	}
	cert, err := x509.ParseCertificate(block.Bytes)
	if err != nil {
		return nil, err
	}
	inter := x509.NewCertPool()
	inter.AppendCertsFromPEM([]byte(out.ChainPEM))
	if _, err := cert.Verify(x509.VerifyOptions{Roots: roots, Intermediates: inter,
		KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}}); err != nil {
		return nil, fmt.Errorf("enroll: the issued certificate does not chain to the pinned root: %w", err)
	}
	pub, ok := cert.PublicKey.(*ecdsa.PublicKey)
	if !ok || !pub.Equal(&key.PublicKey) {
		return nil, errors.New("enroll: the issued certificate is not for our key")
	}
	id, err := identity.FromCertificate(cert)
	if err != nil || id.GrantID != out.GrantID {
		return nil, errors.New("enroll: the issued certificate does not bind the grant the peer named")
	}
	return &Enrolled{Key: key, Cert: cert, CertPEM: out.CertificatePEM, ChainPEM: out.ChainPEM, GrantID: out.GrantID, Identity: id}, nil
}

// noRedirects: a redirect would resend the token elsewhere.
func noRedirects(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }

// safeCode keeps a peer's reason code to [a-z_], at most 64 characters.
func safeCode(c string) string {
	if len(c) > 64 {
		return "unknown"
	}
	for _, r := range c {
		if (r < 'a' || r > 'z') && r != '_' {
			return "unknown"
		}
	}
	return c
}
