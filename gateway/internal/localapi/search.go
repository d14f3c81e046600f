package localapi

import (
	"context"
	"net/http"
	"slices"

	"github.com/mosaic-federation/mosaic/gateway/api"
	"github.com/mosaic-federation/mosaic/gateway/internal/errs"
	"github.com/mosaic-federation/mosaic/gateway/internal/fedclient"
	"github.com/mosaic-federation/mosaic/gateway/internal/httpx"
	"github.com/mosaic-federation/mosaic/gateway/internal/rank"
	"github.com/mosaic-federation/mosaic/gateway/internal/store"
)

// search is GET /api/v1/search?q=&resource=&mode=&source=&limit= (SPEC §6b): this
// site's ranking under native RBAC and each peer's (the peer embeds the query and
// applies its grant), fused by reciprocal rank because scores of different sites are
// not comparable; each item keeps its own _score; the best limit overall.
func (a *API) search(w http.ResponseWriter, r *http.Request) {
	resp, err := a.searchSources(r)
	if err != nil {
		httpx.WriteError(w, r, a.cfg.Log, err)
		return
	}
	httpx.JSON(w, http.StatusOK, resp)
}

func (a *API) searchSources(r *http.Request) (api.ListResponse, error) {
	q := r.URL.Query()
	resource := q.Get("resource")
	if !slices.Contains(api.Resources, resource) {
		return api.ListResponse{}, errs.New(errs.Invalid, api.CodeInvalidResource, "resource must be tasks, notes or memories")
	}
	req := api.SearchRequest{Query: q.Get("q"), Mode: q.Get("mode")}
	if req.Mode == "" {
		req.Mode = api.DefaultMode(resource)
	}
	var err error
	if req.Limit, err = limitParam(q.Get("limit")); err != nil {
		return api.ListResponse{}, err
	}
	if err := req.Validate(); err != nil {
		return api.ListResponse{}, err
	}
	if err := api.SearchModeFor(resource, req.Mode); err != nil {
		return api.ListResponse{}, err
	}
	local, peers, err := a.sources(r, q.Get("source"))
	if err != nil {
		return api.ListResponse{}, err
	}
	resp := api.ListResponse{Items: []any{}, Sources: []api.SourceStatus{}}
	var rankings [][]ranked
	if local {
		hits, err := a.searchLocal(r.Context(), caller(r).ID, resource, req)
		if err != nil {
			return api.ListResponse{}, err
		}
		ranking := make([]ranked, len(hits))
		for i, h := range hits {
			ranking[i] = ranked{key: SourceLocal, item: api.WithScore(api.WithSource(h.Item, SourceLocal), h.Score)}
		}
		rankings = append(rankings, ranking)
		resp.Sources = append(resp.Sources, api.SourceStatus{Name: SourceLocal, Status: "ok"})
	}
	search := func(ctx context.Context, p fedclient.Peer) (fedclient.ListResult, error) {
		res, err := p.Search(ctx, resource, req)
		// never more than asked, whatever a stage let through
		return fedclient.ListResult{Items: res.Items[:min(len(res.Items), req.Limit)], Served: res.Served}, err
	}
	for _, res := range a.fanOut(peerContext(r), peers, "search", resource, search) {
		resp.Sources = append(resp.Sources, res.status)
		if res.status.Status == "error" {
			resp.Partial = true
			continue
		}
		ranking := make([]ranked, len(res.items))
		for i, it := range res.items {
			ranking[i] = ranked{key: res.status.Name, item: it}
		}
		rankings = append(rankings, ranking)
	}
	for i, f := range rank.RRF(ranked.id, rankings...) {
		if i == req.Limit {
			break
		}
		resp.Items = append(resp.Items, f.Value.item)
	}
	return resp, nil
}

// ranked is one item of one source's ranking, keyed by its source and id (rows of
// different sources are different rows, whatever their ids).
type ranked struct {
	key  string // the source; id appended by id()
	item any
}

func (r ranked) id() string {
	switch it := r.item.(type) {
	case api.Task:
		return r.key + "/" + it.ID
	case api.Note:
		return r.key + "/" + it.ID
	case api.Memory:
		return r.key + "/" + it.ID
	}
	return r.key + "/"
}

// searchLocal ranks this site's rows the caller may see, embedding the query with
// this site's embedder when the mode needs it.
func (a *API) searchLocal(ctx context.Context, userID, resource string, req api.SearchRequest) ([]store.Hit, error) {
	o := store.SearchOptions{Query: req.Query, Mode: req.Mode, Limit: req.Limit}
	if o.Mode != api.ModeText {
		v, err := a.cfg.Embedder.Embed(ctx, o.Query)
		if err != nil {
			return nil, errs.Wrap(errs.Unavailable, api.CodeUnavailable, "the query could not be embedded: try again or search in text mode", err)
		}
		o.Embedding = v
	}
	return a.cfg.Store.Search(ctx, store.Viewer{UserID: userID}, resource, o)
}
