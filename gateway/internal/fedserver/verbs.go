package fedserver

import (
	"context"

	"github.com/mosaic-federation/mosaic/gateway/api"
	"github.com/mosaic-federation/mosaic/gateway/internal/embed"
	"github.com/mosaic-federation/mosaic/gateway/internal/errs"
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
	page, err := s.Store.ListGranted(ctx, req.rows, store.ListOptions{Limit: limit, Cursor: req.body.Cursor,
		After: req.body.After, Filter: req.body.Filter})
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

// search ranks the effective rows only (SPEC §6b): the body was validated by the
// runner after the scope stage; the mode must suit the resource; the query is
// embedded here, by this site, for vector and hybrid.
func (s *Server) search(ctx context.Context, req request[api.SearchRequest]) (reply[api.FedSearchResponse], error) {
	if err := api.SearchModeFor(req.rows.Resource(), req.body.Mode); err != nil {
		return reply[api.FedSearchResponse]{}, err
	}
	limit := req.caller.Grant.Scope.Cap(req.body.Limit)
	o := store.SearchOptions{Query: req.body.Query, Mode: req.body.Mode, Limit: limit}
	if o.Mode != api.ModeText {
		var e embed.Embedder = embed.Hashing{}
		if s.Embedder != nil {
			e = s.Embedder
		}
		v, err := e.Embed(ctx, o.Query)
		if err != nil {
			return reply[api.FedSearchResponse]{}, errs.Wrap(errs.Unavailable, api.CodeUnavailable, "the query could not be embedded: try again or search in text mode", err)
		}
		o.Embedding = v
	}
	hits, err := s.Store.SearchGranted(ctx, req.rows, o)
	if err != nil {
		return reply[api.FedSearchResponse]{}, err
	}
	items := make([]api.Item, len(hits))
	for i, h := range hits {
		items[i] = api.WithScore(api.WithSource(h.Item, s.Site), h.Score)
	}
	return reply[api.FedSearchResponse]{rows: len(items), body: api.FedSearchResponse{Items: items, Truncated: req.body.Limit > limit}}, nil
}
