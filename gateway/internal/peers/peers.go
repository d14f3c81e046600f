// Package peers is the requesting side's outbound directory: the peers a local user
// enrolled at, their credentials (the client key sealed at rest, bound to its row), and
// one kept-alive client per peer whose certificate sits in a holder that can be
// swapped (a renewal applies to the next connection).
package peers

import (
	"context"
	"crypto"
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/mosaic-federation/mosaic/gateway/api"
	"github.com/mosaic-federation/mosaic/gateway/internal/audit"
	"github.com/mosaic-federation/mosaic/gateway/internal/changes"
	"github.com/mosaic-federation/mosaic/gateway/internal/fedclient"
	"github.com/mosaic-federation/mosaic/gateway/internal/fedstore"
	"github.com/mosaic-federation/mosaic/gateway/internal/peercache"
	"github.com/mosaic-federation/mosaic/gateway/internal/sealing"
	"github.com/mosaic-federation/mosaic/gateway/internal/telemetry"
)

// place binds a peer's sealed key to its row and owner: copied into another row, it
// does not open.
func place(rowID, ownerUserID string) sealing.Place {
	return sealing.Place{Table: "federation_peers", RowID: rowID, Owner: ownerUserID}
}

// SealKey seals a client key (PKCS#8 DER) for the peer row it will be stored in.
func SealKey(keys *sealing.Keyring, rowID, ownerUserID string, der []byte) ([]byte, error) {
	return keys.Seal(der, place(rowID, ownerUserID))
}

// Credentials unseals a peer's key and pairs it with the stored certificate and chain;
// the key must be the certificate's. The key lives only in memory.
func Credentials(keys *sealing.Keyring, row fedstore.Peer) (*tls.Certificate, error) {
	der, err := keys.Open(row.KeySealed, place(row.ID, row.OwnerUserID))
	if err != nil {
		return nil, fmt.Errorf("peer %s: the sealed key does not open: %w", row.Name, err)
	}
	key, err := x509.ParsePKCS8PrivateKey(der)
	if err != nil {
		return nil, fmt.Errorf("peer %s: the unsealed key does not parse", row.Name)
	}
	var chain [][]byte
	for rest := []byte(row.CertPEM + row.ChainPEM); ; {
		var block *pem.Block
		if block, rest = pem.Decode(rest); block == nil {
			break
		}
		chain = append(chain, block.Bytes)
	}
	if len(chain) == 0 {
		return nil, fmt.Errorf("peer %s: no stored certificate", row.Name)
	}
	leaf, err := x509.ParseCertificate(chain[0])
	if err != nil {
		return nil, fmt.Errorf("peer %s: the stored certificate does not parse", row.Name)
	}
	pub, ok := key.(interface{ Public() crypto.PublicKey })
	if !ok || !publicEqual(pub.Public(), leaf.PublicKey) {
		return nil, fmt.Errorf("peer %s: the key does NOT match the stored certificate", row.Name)
	}
	return &tls.Certificate{Certificate: chain, PrivateKey: key, Leaf: leaf}, nil
}

func publicEqual(a, b crypto.PublicKey) bool {
	eq, ok := a.(interface{ Equal(crypto.PublicKey) bool })
	return ok && eq.Equal(b)
}

// Holder is a client certificate that can be swapped while connections use it.
type Holder struct {
	cert atomic.Pointer[tls.Certificate]
}

// NewHolder holds cert.
func NewHolder(cert *tls.Certificate) *Holder {
	h := &Holder{}
	h.cert.Store(cert)
	return h
}

// Swap makes cert the one new connections present.
func (h *Holder) Swap(cert *tls.Certificate) { h.cert.Store(cert) }

// Current is the certificate new connections present.
func (h *Holder) Current() *tls.Certificate { return h.cert.Load() }

// GetClientCertificate is the tls.Config hook.
func (h *Holder) GetClientCertificate(*tls.CertificateRequestInfo) (*tls.Certificate, error) {
	return h.cert.Load(), nil
}

// Outbound is where the directory reads a user's peers: fedstore.Store.
type Outbound interface {
	OutboundPeers(ctx context.Context, ownerUserID string) ([]fedstore.Peer, error)
}

// Directory finds a local user's peers and keeps one client per peer.
type Directory struct {
	Fed  Outbound
	Keys *sealing.Keyring
	// Audit takes the outbound row of every peer call (nil: none, in tests).
	Audit interface{ Enqueue(audit.Entry) }
	// Cache answers for peers from memory (nil: no cache); Breakers fail calls to a
	// dead peer at once (nil: none). Order of the stages: cache → breaker → audit →
	// transport, so a cache hit or a collapsed duplicate makes no call and no
	// outbound audit row.
	Cache    *peercache.Cache
	Breakers *Breakers
	Log      *slog.Logger // nil: discarded
	// Metrics takes each peer call's latency and errors (nil: none).
	Metrics *telemetry.Metrics

	mu      sync.Mutex
	clients map[string]cached // by peer row id

	owners owners // each user's peers as last read
}

func (d *Directory) log() *slog.Logger {
	if d.Log == nil {
		return slog.New(slog.DiscardHandler)
	}
	return d.Log
}

// cached is a peer's client and the stored certificate it was made from: a row whose
// certificate changed (a renewal, a replacement) gets a new client.
type cached struct {
	client *fedclient.Client
	cert   string
}

// Forget drops what the directory keeps of a changed peer (changes.All: of every
// peer), its cached answers included: a removed peer, a revoked grant or a renewed
// certificate answers from cache no more.
func (d *Directory) Forget(c changes.Change) {
	d.mu.Lock()
	defer d.mu.Unlock()
	switch c.Kind {
	case changes.All:
		d.owners.drop()
		for _, c := range d.clients {
			retire(c.client)
		}
		d.clients = nil
		if d.Cache != nil {
			d.Cache.DropAll()
		}
	case changes.Grant:
		d.owners.drop()
	case changes.Peer:
		d.owners.drop()
		if old, ok := d.clients[c.ID]; ok {
			retire(old.client)
		}
		delete(d.clients, c.ID)
		if d.Cache != nil {
			d.Cache.DropPeer(c.ID)
		}
	}
}

// retireAfter is how long a replaced client's requests in flight may take (the
// serving side's request bound, and a margin) before its last connections close.
const retireAfter = 35 * time.Second

// retire lets a replaced client's connections go (a renewal switched the peer to a new
// certificate): idle ones now, the ones still in flight once they are idle.
func retire(c *fedclient.Client) {
	c.CloseIdleConnections()
	time.AfterFunc(retireAfter, c.CloseIdleConnections)
}

// Owned returns the active outbound peers a local user owns (never another user's),
// read at most changes.MaxAge ago and not before the last peer or grant change
// announced (owners); fresh reads them from the database whatever is kept.
func (d *Directory) Owned(ctx context.Context, ownerUserID string, fresh bool) ([]fedclient.Peer, error) {
	rows, err := d.owners.get(ctx, d.Fed, ownerUserID, fresh)
	if err != nil {
		return nil, err
	}
	out := make([]fedclient.Peer, 0, len(rows))
	now := time.Now()
	for _, o := range rows {
		row := o.Peer
		if !o.notAfter.IsZero() && !now.Before(o.notAfter) {
			out = append(out, audited{Peer: unusable{name: row.Name, code: api.CodeCertificateExpired}, row: row, log: d.Audit})
			continue
		}
		c, err := d.client(row)
		if err != nil {
			// Never a secret in err: it names the peer and what did not open.
			d.log().Error("peer credentials unusable: ask the serving site for a new grant, then `peer add --replace`",
				"peer", row.Name, "peer_id", row.ID, "err", err)
			out = append(out, audited{Peer: unusable{name: row.Name, code: api.CodePeerCredentialsUnusable}, row: row, log: d.Audit})
			continue
		}
		out = append(out, d.stages(c, row))
	}
	return out, nil
}

// stages wraps a peer's client: cache → breaker → outbound audit → transport.
func (d *Directory) stages(c fedclient.Peer, row fedstore.Peer) fedclient.Peer {
	var p fedclient.Peer = audited{Peer: c, row: row, log: d.Audit, metrics: d.Metrics}
	if d.Breakers != nil {
		p = d.Breakers.wrap(p, row.ID)
	}
	if d.Cache != nil {
		p = d.Cache.Wrap(p, peercache.Owner{UserID: row.OwnerUserID, PeerID: row.ID, GrantID: row.GrantID})
	}
	if d.Metrics != nil {
		p = counted{Peer: p, m: d.Metrics}
	}
	return p
}

// client is the peer's kept-alive client, made on first use: its key is unsealed once
// per process.
func (d *Directory) client(row fedstore.Peer) (*fedclient.Client, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	old, ok := d.clients[row.ID]
	if ok && old.cert == row.CertPEM {
		return old.client, nil
	}
	if ok {
		retire(old.client)
	}
	cert, err := Credentials(d.Keys, row)
	if err != nil {
		return nil, err
	}
	roots := x509.NewCertPool()
	if !roots.AppendCertsFromPEM([]byte(row.CARootPEM)) {
		return nil, errors.New("peer " + row.Name + ": the stored root does not parse")
	}
	holder := NewHolder(cert)
	c := fedclient.NewClient(row.Name, row.URL, &tls.Config{RootCAs: roots, MinVersion: tls.VersionTLS13,
		GetClientCertificate: holder.GetClientCertificate})
	if d.clients == nil {
		d.clients = map[string]cached{}
	}
	d.clients[row.ID] = cached{client: c, cert: row.CertPEM}
	return c, nil
}
