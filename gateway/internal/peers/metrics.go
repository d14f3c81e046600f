package peers

import (
	"context"

	"github.com/mosaic-federation/mosaic/gateway/api"
	"github.com/mosaic-federation/mosaic/gateway/internal/fedclient"
	"github.com/mosaic-federation/mosaic/gateway/internal/telemetry"
)

// counted is the outermost stage: it counts the cache's fresh and stale answers of a
// peer (a fresh hit makes no call, so no stage below it sees one).
type counted struct {
	fedclient.Peer
	m *telemetry.Metrics
}

func (c counted) List(ctx context.Context, resource string, req api.FedListRequest) (fedclient.ListResult, error) {
	res, err := c.Peer.List(ctx, resource, req)
	c.served(res.Served)
	return res, err
}

func (c counted) Search(ctx context.Context, resource string, req api.SearchRequest) (fedclient.SearchResult, error) {
	res, err := c.Peer.Search(ctx, resource, req)
	c.served(res.Served)
	return res, err
}

func (c counted) served(s fedclient.Served) {
	switch {
	case s.Stale:
		c.m.StaleAnswer(c.Name())
	case s.Cached:
		c.m.CacheHit(c.Name())
	}
}
