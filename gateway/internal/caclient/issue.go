package caclient

import (
	"bytes"
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/mosaic-federation/mosaic/gateway/internal/identity"
)

// ServerCertificate has the CA issue the gateway's own listener certificate for host
// (an IP or a DNS name), with a fresh P-256 key that never leaves memory.
func (c *Client) ServerCertificate(ctx context.Context, host string) (tls.Certificate, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return tls.Certificate{}, err
	}
	tpl := &x509.CertificateRequest{Subject: pkix.Name{CommonName: host}}
	if ip := net.ParseIP(host); ip != nil {
		tpl.IPAddresses = []net.IP{ip}
	} else {
		tpl.DNSNames = []string{host}
	}
	der, err := x509.CreateCertificateRequest(rand.Reader, tpl, key)
	if err != nil {
		return tls.Certificate{}, err
	}
	ott, err := c.Token(host, []string{host}, nil)
	if err != nil {
		return tls.Certificate{}, err
	}
	signed, err := c.Sign(ctx, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE REQUEST", Bytes: der}), ott)
	if err != nil {
		return tls.Certificate{}, err
	}
	if !slices.Contains(signed.Leaf.ExtKeyUsage, x509.ExtKeyUsageServerAuth) {
		return tls.Certificate{}, fmt.Errorf("caclient: the listener certificate from provisioner %q is not for server authentication", c.name)
	}
	chain := [][]byte{signed.Leaf.Raw}
	for _, ic := range signed.Chain {
		chain = append(chain, ic.Raw)
	}
	return tls.Certificate{Certificate: chain, PrivateKey: key, Leaf: signed.Leaf}, nil
}

// IssueFederation has the CA issue a federation client certificate binding a grant and
// its subject, and verifies the certificate carries exactly that identity before
// returning it; a CA template that dropped or changed the OIDs makes this fail loudly.
// The certificate is valid until notAfter (the serving site's lifetime, capped at the
// grant's expiry); one the CA made to live longer is discarded too.
func (c *Client) IssueFederation(ctx context.Context, csrPEM []byte, id identity.Identity, notAfter time.Time) (*Signed, error) {
	// step-ca's JWK provisioner refuses a CSR whose common name differs from the
	// token's subject, so a CSR's own name (accepted and ignored, SPEC §6d) becomes the
	// token's subject. It decides nothing: the template names the certificate from the
	// signed grant claims alone, and VerifyIssued checks the leaf below.
	if notAfter.IsZero() {
		return nil, errors.New("caclient: a federation certificate needs a notAfter")
	}
	csr := parseCSR(csrPEM)
	sub := id.GrantID
	if csr != nil && csr.Subject.CommonName != "" {
		sub = csr.Subject.CommonName
	}
	ott, err := c.Token(sub, []string{id.GrantID}, map[string]any{"grant_id": id.GrantID, "subject_user_id": id.SubjectUserID})
	if err != nil {
		return nil, err
	}
	signed, err := c.SignUntil(ctx, csrPEM, ott, notAfter)
	if err != nil {
		return nil, err
	}
	err = identity.VerifyIssued(signed.Leaf, id)
	if err == nil && !sameKey(csr, signed.Leaf) {
		err = errors.New("the issued certificate is not for the CSR's key")
	}
	if err == nil && signed.Leaf.NotAfter.After(notAfter.Add(time.Second)) {
		err = fmt.Errorf("the issued certificate lives until %s, past the %s asked for", signed.Leaf.NotAfter, notAfter)
	}
	if err != nil {
		// Discarded and revoked: a certificate that fails our checks must not stay valid.
		serial := signed.Leaf.SerialNumber.String()
		if rerr := c.Revoke(ctx, serial, Unspecified, "failed post-issuance verification"); rerr != nil {
			err = errors.Join(err, fmt.Errorf("revoking it failed too: %w", rerr))
		}
		return nil, fmt.Errorf("caclient: the CA issued a certificate that fails verification (serial %s), discarded: %w", serial, err)
	}
	return signed, nil
}

// Revoke revokes a certificate at the CA by serial (decimal), with a one-time token
// for /1.0/revoke. The certificate then shows in the CA's CRL.
func (c *Client) Revoke(ctx context.Context, serial string, code ReasonCode, reason string) error {
	ott, err := c.tokenFor("/1.0/revoke", serial, nil, nil)
	if err != nil {
		return err
	}
	body, _ := json.Marshal(map[string]any{"serial": serial, "ott": ott, "reasonCode": int(code), "reason": reason, "passive": true})
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, c.url+"/1.0/revoke", bytes.NewReader(body))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := c.http.Do(req)
	if err != nil {
		return fmt.Errorf("caclient: revoke: %w", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		var e struct {
			Message string `json:"message"`
		}
		_ = json.NewDecoder(io.LimitReader(resp.Body, 1<<16)).Decode(&e)
		// step-ca answers 400 "... is already revoked": what was asked holds.
		if resp.StatusCode == http.StatusBadRequest && strings.Contains(e.Message, "already revoked") {
			return ErrAlreadyRevoked
		}
		return fmt.Errorf("caclient: the CA refused to revoke serial %s (%d): %s", serial, resp.StatusCode, e.Message)
	}
	return nil
}

// ReasonCode is an RFC 5280 revocation reason, which the CRL carries.
type ReasonCode int

// The reasons the gateway revokes for.
const (
	Unspecified ReasonCode = 0
	// Superseded: a renewal replaced the certificate.
	Superseded ReasonCode = 4
	// PrivilegeWithdrawn: the certificate's grant was revoked.
	PrivilegeWithdrawn ReasonCode = 9
)

// ErrAlreadyRevoked is a revocation of a serial the CA had revoked before.
var ErrAlreadyRevoked = errors.New("caclient: the certificate was already revoked")

// maxCRL bounds a CRL download: an entry is about 40 bytes, so 8 MiB is some 200,000
// revoked serials.
const maxCRL = 8 << 20

// CRL fetches the CA's certificate revocation list (DER, /1.0/crl). It is only as good
// as its signature, which the caller checks.
func (c *Client) CRL(ctx context.Context) ([]byte, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, c.url+"/1.0/crl", nil)
	if err != nil {
		return nil, err
	}
	resp, err := c.http.Do(req)
	if err != nil {
		return nil, fmt.Errorf("caclient: CRL: %w", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("caclient: GET /1.0/crl: %s (is the CRL enabled in the CA's ca.json?)", resp.Status)
	}
	der, err := io.ReadAll(io.LimitReader(resp.Body, maxCRL+1))
	if err == nil && len(der) > maxCRL {
		err = fmt.Errorf("caclient: the CA's CRL is over %d bytes", maxCRL)
	}
	return der, err
}

func sameKey(csr *x509.CertificateRequest, cert *x509.Certificate) bool {
	if csr == nil {
		return false
	}
	pub, ok := csr.PublicKey.(interface{ Equal(crypto.PublicKey) bool })
	return ok && pub.Equal(cert.PublicKey)
}

// parseCSR is the CSR in a PEM block, or nil.
func parseCSR(csrPEM []byte) *x509.CertificateRequest {
	block, _ := pem.Decode(csrPEM)
	if block == nil {
		return nil
	}
	csr, err := x509.ParseCertificateRequest(block.Bytes)
	if err != nil {
		return nil
	}
	return csr
}
