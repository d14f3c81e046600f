package fedserver

import (
	"context"

	"github.com/mosaic-federation/mosaic/gateway/api"
	"github.com/mosaic-federation/mosaic/gateway/internal/store"
)

// The verbs: each reads only through the store's granted reads, with the effective
// rows the scope stage made, so every answer is native RBAC ∩ the scope.

// none is the body of a verb that takes none.
type none struct{}

func (s *Server) capabilities(_ context.Context, req request[none]) (reply[api.Capabilities], error) {
	g := req.caller.Grant
	return reply[api.Capabilities]{body: api.Capabilities{GrantID: g.ID, SubjectUserID: g.SubjectUserID,
		Resources: nonNil(g.Scope.Effective()), ExcludedResources: nonNil(g.Scope.ExcludedResources),
		MaxRowsPerQuery: g.Scope.MaxRowsPerQuery, SupportedVerbs: SupportedVerbs}}, nil
}

func (s *Server) list(ctx context.Context, req request[api.FedListRequest]) (reply[api.FedListResponse], error) {
	limit := req.caller.Grant.Scope.Cap(req.body.Limit)
	page, err := s.Store.ListGranted(ctx, req.rows, store.ListOptions{Limit: limit, Cursor: req.body.Cursor, Filter: req.body.Filter})
	if err != nil {
		return reply[api.FedListResponse]{}, err
	}
	items := make([]api.Item, len(page.Items))
	for i, it := range page.Items {
		items[i] = api.WithSource(it, s.Site)
	}
	return reply[api.FedListResponse]{rows: len(items), body: api.FedListResponse{Items: items,
		NextCursor: page.NextCursor, Truncated: req.body.Limit > limit}}, nil
}

func (s *Server) get(ctx context.Context, req request[none]) (reply[api.ItemResponse], error) {
	item, err := s.Store.GetGranted(ctx, req.rows, req.id)
	if err != nil {
		return reply[api.ItemResponse]{}, err
	}
	return reply[api.ItemResponse]{rows: 1, body: api.ItemResponse{Item: api.WithSource(item, s.Site)}}, nil
}
