package fedclient

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"sync"
	"time"

	"github.com/mosaic-federation/mosaic/gateway/api"
	"github.com/mosaic-federation/mosaic/gateway/internal/fedstore"
	"github.com/mosaic-federation/mosaic/gateway/internal/sealing"
)

// Peer is an outbound peer ready to call: its pinned root and our client certificate,
// whose key lives only in memory once unsealed.
type Peer struct {
	ID, Name, URL string
	client        *http.Client
}

// Directory finds a local user's peers and keeps one kept-alive mTLS client per peer.
type Directory struct {
	Fed  *fedstore.Store
	Keys *sealing.Keyring

	mu    sync.Mutex
	cache map[string]*Peer // by peer id
}

// Owned returns the outbound peers a local user owns (never another user's).
func (d *Directory) Owned(ctx context.Context, ownerUserID string) ([]*Peer, error) {
	rows, err := d.Fed.OutboundPeers(ctx, ownerUserID)
	if err != nil {
		return nil, err
	}
	out := make([]*Peer, 0, len(rows))
	for _, row := range rows {
		p, err := d.peer(row)
		if err != nil {
			return nil, fmt.Errorf("peer %s: %w", row.Name, err)
		}
		out = append(out, p)
	}
	return out, nil
}

func (d *Directory) peer(row fedstore.Peer) (*Peer, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if p, ok := d.cache[row.ID]; ok {
		return p, nil
	}
	der, err := d.Keys.Open(row.KeySealed, sealing.Place{Table: "federation_peers", RowID: row.ID, Owner: row.OwnerUserID})
	if err != nil {
		return nil, err
	}
	key, err := x509.ParsePKCS8PrivateKey(der)
	if err != nil {
		return nil, errors.New("the unsealed key does not parse")
	}
	var chain [][]byte
	for rest := []byte(row.CertPEM + row.ChainPEM); ; {
		var block *pem.Block
		if block, rest = pem.Decode(rest); block == nil {
			break
		}
		chain = append(chain, block.Bytes)
	}
	roots := x509.NewCertPool()
	if !roots.AppendCertsFromPEM([]byte(row.CARootPEM)) || len(chain) == 0 {
		return nil, errors.New("the stored root or certificate does not parse")
	}
	cert := &tls.Certificate{Certificate: chain, PrivateKey: key}
	p := &Peer{ID: row.ID, Name: row.Name, URL: row.URL, client: &http.Client{
		CheckRedirect: noRedirects,
		Transport: &http.Transport{
			TLSClientConfig: &tls.Config{RootCAs: roots, MinVersion: tls.VersionTLS13,
				GetClientCertificate: func(*tls.CertificateRequestInfo) (*tls.Certificate, error) { return cert, nil }},
			MaxIdleConnsPerHost: 8, IdleConnTimeout: 90 * time.Second, ForceAttemptHTTP2: true,
		}}}
	if d.cache == nil {
		d.cache = map[string]*Peer{}
	}
	d.cache[row.ID] = p
	return p, nil
}

// ListResult is a peer's page, items as the peer sent them.
type ListResult struct {
	Items      []map[string]any
	NextCursor string
}

// List calls POST /list/{resource} at the peer.
func (p *Peer) List(ctx context.Context, resource string, req api.FedListRequest) (ListResult, error) {
	var out struct {
		Items      []map[string]any `json:"items"`
		NextCursor string           `json:"next_cursor"`
	}
	err := p.call(ctx, "/list/"+resource, req, &out)
	return ListResult{Items: out.Items, NextCursor: out.NextCursor}, err
}

// Get calls POST /get/{resource}/{id} at the peer.
func (p *Peer) Get(ctx context.Context, resource, id string) (map[string]any, error) {
	var out struct {
		Item map[string]any `json:"item"`
	}
	err := p.call(ctx, "/get/"+resource+"/"+id, nil, &out)
	return out.Item, err
}

func (p *Peer) call(ctx context.Context, path string, body, out any) error {
	b, _ := json.Marshal(body)
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, p.URL+"/api/federation/v1"+path, bytes.NewReader(b))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := p.client.Do(req)
	if err != nil {
		return &PeerError{Peer: p.Name, Code: transportReason(err)}
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(io.LimitReader(resp.Body, 32<<20))
	if err != nil {
		return &PeerError{Peer: p.Name, Code: "read_failed"}
	}
	if resp.StatusCode != http.StatusOK {
		var e api.ErrorBody
		_ = json.Unmarshal(raw, &e)
		return &PeerError{Peer: p.Name, Status: resp.StatusCode, Code: safeCode(e.Error.Code)}
	}
	if err := json.Unmarshal(raw, out); err != nil {
		return &PeerError{Peer: p.Name, Code: "bad_response"}
	}
	return nil
}

// transportReason names a transport failure in a few words, never quoting it.
func transportReason(err error) string {
	var netErr net.Error
	switch {
	case errors.Is(err, context.DeadlineExceeded) || (errors.As(err, &netErr) && netErr.Timeout()):
		return "timeout"
	case errors.Is(err, context.Canceled):
		return "canceled"
	}
	var tlsErr *tls.CertificateVerificationError
	if errors.As(err, &tlsErr) {
		return "tls_verification_failed"
	}
	return "unreachable"
}
