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
	na := notAfter(certPEM)
	return !na.IsZero() && !now.Before(na)
}

// notAfter is a stored certificate's notAfter (zero when it does not parse).
func notAfter(certPEM string) time.Time {
	block, _ := pem.Decode([]byte(certPEM))
	if block == nil {
		return time.Time{}
	}
	cert, err := x509.ParseCertificate(block.Bytes)
	if err != nil {
		return time.Time{}
	}
	return cert.NotAfter
}

// unusable is a peer that cannot be called: its certificate expired (a site offline
// past its renewal: certificate_expired), or its stored credentials do not open
// (peer_credentials_unusable). Every call fails with the code at once, so one broken
// peer is one failed source, never a failed request; the fix of both is a new grant
// at the serving site and `peer add --replace` here.
type unusable struct{ name, code string }

func (e unusable) err() error {
	return &fedclient.PeerError{Peer: e.name, Code: e.code}
}

func (e unusable) Name() string { return e.name }

func (e unusable) List(context.Context, string, api.FedListRequest) (fedclient.ListResult, error) {
	return fedclient.ListResult{}, e.err()
}

func (e unusable) Get(context.Context, string, string) (api.Item, error) { return nil, e.err() }

func (e unusable) Search(context.Context, string, api.SearchRequest) (fedclient.SearchResult, error) {
	return fedclient.SearchResult{}, e.err()
}
