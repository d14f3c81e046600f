package fedclient

// The enrollment calls of `gateway federation peer add`: the peer's root is pinned by
// the fingerprint in the enrollment URL before anything is trusted or sent.

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"net/http"
	"time"

	"github.com/mosaic-federation/mosaic/gateway/api"
	"github.com/mosaic-federation/mosaic/gateway/internal/enrollment"
	"github.com/mosaic-federation/mosaic/gateway/internal/identity"
)

// FetchRoot gets the peer's root without trusting anything yet, and accepts it only if
// the SHA-256 of its DER equals the invitation's fingerprint.
func FetchRoot(ctx context.Context, inv enrollment.Invitation) (*x509.Certificate, error) {
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
	if !inv.Pins(block.Bytes) {
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
func Enroll(ctx context.Context, inv enrollment.Invitation, root *x509.Certificate) (*Enrolled, error) {
	key, csrPEM, err := newKeyAndCSR()
	if err != nil {
		return nil, err
	}
	body, _ := json.Marshal(api.EnrollRequest{Token: inv.Token, CSRPEM: csrPEM})
	pool := x509.NewCertPool()
	pool.AddCert(root)
	// Longer than the serving side's own bound on issuance, so it does not activate a
	// grant after we gave up.
	client := &http.Client{Timeout: 60 * time.Second, CheckRedirect: noRedirects, Transport: &http.Transport{
		TLSClientConfig: &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS13}}}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, inv.Base+enrollment.Path, bytes.NewReader(body))
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
		return nil, refusal("", resp.StatusCode, b)
	}
	var out api.EnrollResponse
	if err := json.Unmarshal(b, &out); err != nil {
		return nil, errors.New("enroll: the peer's answer does not parse")
	}
	return check(out, key, pool)
}

// newKeyAndCSR is a fresh P-256 key and its CSR (no subject, no SANs: the serving
// site names the certificate after the grant), for enrollment and renewal alike.
func newKeyAndCSR() (*ecdsa.PrivateKey, string, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, "", err
	}
	der, err := x509.CreateCertificateRequest(rand.Reader, &x509.CertificateRequest{}, key)
	if err != nil {
		return nil, "", err
	}
	return key, string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE REQUEST", Bytes: der})), nil
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
