package fedclient

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"time"

	"github.com/mosaic-federation/mosaic/gateway/api"
)

// RenewPath is the serving side's renewal endpoint under a peer's base URL.
const RenewPath = "/api/federation/v1/renew"

// Renew trades the peer's current certificate for a new one of a fresh key (SPEC
// §6d): over mTLS with cert, on a connection verified against the pinned roots, and
// the answer checked as an enrollment's (it chains to the roots, certifies the new key
// and binds the same grant). A refusal is a *PeerError with the serving side's code.
func Renew(ctx context.Context, peer, base string, roots *x509.CertPool, cert *tls.Certificate, grantID string) (*Enrolled, error) {
	key, csrPEM, err := newKeyAndCSR()
	if err != nil {
		return nil, err
	}
	body, _ := json.Marshal(api.RenewRequest{CSRPEM: csrPEM})
	// A connection of its own, closed after: the old certificate's connections stay
	// with the peer's client until it switches.
	tr := &http.Transport{DisableKeepAlives: true, TLSClientConfig: &tls.Config{RootCAs: roots, MinVersion: tls.VersionTLS13,
		GetClientCertificate: func(*tls.CertificateRequestInfo) (*tls.Certificate, error) { return cert, nil }}}
	defer tr.CloseIdleConnections()
	// Longer than the serving side's own bound on issuance (15 s).
	client := &http.Client{Timeout: 30 * time.Second, CheckRedirect: noRedirects, Transport: tr}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, base+RenewPath, bytes.NewReader(body))
	if err != nil {
		return nil, err
	}
	req.Header.Set("Content-Type", "application/json")
	if id := requestIDOf(ctx); id != "" {
		req.Header.Set("X-Request-Id", id) // the serving side's audit row joins ours on it
	}
	resp, err := client.Do(req)
	if err != nil {
		return nil, &PeerError{Peer: peer, Code: transportReason(err)}
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if resp.StatusCode != http.StatusCreated {
		return nil, refusal(peer, resp.StatusCode, b)
	}
	var out api.EnrollResponse
	if err := json.Unmarshal(b, &out); err != nil {
		return nil, errors.New("renew: the peer's answer does not parse")
	}
	if out.GrantID != grantID {
		return nil, errors.New("renew: the peer answered for another grant than ours") // never its text
	}
	return check(out, key, roots)
}

// CloseIdleConnections closes the client's idle connections: a client being replaced
// (its certificate renewed) lets its connections go once their requests finished.
func (c *Client) CloseIdleConnections() { c.http.CloseIdleConnections() }
