package peers

import (
	"context"
	"crypto/x509"
	"encoding/pem"
	"time"

	"github.com/mosaic-federation/mosaic/gateway/api"
	"github.com/mosaic-federation/mosaic/gateway/internal/fedclient"
)

// expiredAt reports a stored certificate past its notAfter at now: the serving site
// refuses it in the handshake, so there is no point in calling.
func expiredAt(certPEM string, now time.Time) bool {
	block, _ := pem.Decode([]byte(certPEM))
	if block == nil {
		return false
	}
	cert, err := x509.ParseCertificate(block.Bytes)
	return err == nil && !now.Before(cert.NotAfter)
}

// expired is a peer whose certificate expired (a site offline past its renewal): every
// call is certificate_expired, whose fix is a new grant at the serving site and
// `peer add --replace` here.
type expired struct{ name string }

func (e expired) err() error {
	return &fedclient.PeerError{Peer: e.name, Code: api.CodeCertificateExpired}
}

func (e expired) Name() string { return e.name }

func (e expired) List(context.Context, string, api.FedListRequest) (fedclient.ListResult, error) {
	return fedclient.ListResult{}, e.err()
}

func (e expired) Get(context.Context, string, string) (api.Item, error) { return nil, e.err() }

func (e expired) Search(context.Context, string, api.SearchRequest) (fedclient.SearchResult, error) {
	return fedclient.SearchResult{}, e.err()
}
