package localapi

import (
	"context"
	"errors"
	"log/slog"
	"math"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/gorilla/mux"

	"github.com/mosaic-federation/mosaic/gateway/api"
	"github.com/mosaic-federation/mosaic/gateway/internal/apitoken"
	"github.com/mosaic-federation/mosaic/gateway/internal/changes"
	"github.com/mosaic-federation/mosaic/gateway/internal/embed"
	"github.com/mosaic-federation/mosaic/gateway/internal/errs"
	"github.com/mosaic-federation/mosaic/gateway/internal/fedclient"
	"github.com/mosaic-federation/mosaic/gateway/internal/httpx"
	"github.com/mosaic-federation/mosaic/gateway/internal/peercache"
	"github.com/mosaic-federation/mosaic/gateway/internal/store"
)

// Limits of a list: the default page and the most a caller may ask for.
const (
	DefaultLimit = 50
	// MaxLimit keeps one page's memory bounded (rows hold up to 64 KiB of text).
	MaxLimit = 200
)

// SourceLocal is the _source of this site's own rows.
const SourceLocal = "local"

// Config wires the API; main builds it.
type Config struct {
	Store    store.Store
	Embedder embed.Embedder
	Log      *slog.Logger
	// Peers finds the caller's outbound peers (nil outside the federated tier).
	Peers Peers
	// PeerTimeout bounds each peer's answer (federation.peer_timeout; 0:
	// DefaultPeerTimeout).
	PeerTimeout time.Duration
	// Tokens remembers the user each API token resolved to (nil: every request
	// looks its token up). Forget drops it on a user change announced by another
	// process; this API's own writes through Store drop it too.
	Tokens *apitoken.Cache[store.User]
}

// TokenTTL is how long a token's user is trusted without a lookup: a token revoked
// by a process whose notification did not arrive stops working within it.
const TokenTTL = changes.MaxAge

// NewTokens is the API's token cache: TokenTTL, at most maxTokens entries.
func NewTokens() *apitoken.Cache[store.User] {
	return apitoken.NewCache[store.User](TokenTTL, maxTokens)
}

const maxTokens = 10_000

// Peers is the requesting side's view of federation: a local user's own peers only,
// as kept for a few seconds, or read again when fresh is set.
type Peers interface {
	Owned(ctx context.Context, ownerUserID string, fresh bool) ([]fedclient.Peer, error)
}

// DefaultPeerTimeout bounds each peer's answer in a fan-out unless configured: a slow
// peer makes the answer partial, never late.
const DefaultPeerTimeout = 3 * time.Second

func (a *API) peerTimeout() time.Duration {
	if a.cfg.PeerTimeout > 0 {
		return a.cfg.PeerTimeout
	}
	return DefaultPeerTimeout
}

// peerContext is the context of a request's peer calls: the caller's
// "Cache-Control: no-cache" makes them skip the cache (a live answer or an error).
func peerContext(r *http.Request) context.Context {
	for _, v := range r.Header.Values("Cache-Control") {
		for d := range strings.SplitSeq(v, ",") {
			if strings.EqualFold(strings.TrimSpace(d), "no-cache") {
				return peercache.WithNoCache(r.Context())
			}
		}
	}
	return r.Context()
}

// API is the requesting side's HTTP API (SPEC §6 "Requesting side").
type API struct{ cfg Config }

// New returns the API.
func New(cfg Config) *API {
	return &API{cfg: cfg}
}

// Forget drops the token cache on a change of a user (an API token is a user's
// column) or of anything, announced by another process (changes.Listen).
func (a *API) Forget(c changes.Change) {
	if a.cfg.Tokens != nil && (c.Kind == changes.User || c.Kind == changes.All) {
		a.cfg.Tokens.Drop()
	}
}

// Register adds the /api/v1 routes to r, every one behind the bearer-token guard.
func (a *API) Register(r *mux.Router) {
	v1 := r.PathPrefix("/api/v1").Subrouter()
	v1.Use(a.authenticate)
	res := "{resource:tasks|notes|memories}"
	v1.HandleFunc("/"+res, a.list).Methods(http.MethodGet)
	v1.HandleFunc("/"+res, a.create).Methods(http.MethodPost)
	v1.HandleFunc("/"+res+"/{id}", a.get).Methods(http.MethodGet)
	v1.HandleFunc("/search", a.search).Methods(http.MethodGet)
	v1.NotFoundHandler = httpx.Miss(a.cfg.Log, v1)
	v1.MethodNotAllowedHandler = v1.NotFoundHandler
}

type userKey struct{}

// authenticate resolves "Authorization: Bearer <token>" to a user of this site.
func (a *API) authenticate(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		token, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
		if !ok || token == "" {
			httpx.WriteError(w, r, a.cfg.Log, errs.New(errs.Unauthenticated, api.CodeUnauthenticated,
				"send your API token as 'Authorization: Bearer <token>'"))
			return
		}
		u, err := a.userOf(r.Context(), token)
		if errors.Is(err, store.ErrNotFound) {
			err = errs.New(errs.Unauthenticated, api.CodeUnauthenticated, "the API token is not valid on this site")
		}
		if err != nil {
			httpx.WriteError(w, r, a.cfg.Log, err)
			return
		}
		next.ServeHTTP(w, r.WithContext(context.WithValue(r.Context(), userKey{}, u)))
	})
}

// userOf finds a token's user. The lookup is by the token's SHA-256, so no secret is
// compared byte by byte in Go code and timing says nothing about the token; the
// cache is keyed by the same hash.
func (a *API) userOf(ctx context.Context, token string) (store.User, error) {
	if !apitoken.WellFormed(token) {
		return store.User{}, store.ErrNotFound
	}
	key := apitoken.Key(token)
	lookup := func(ctx context.Context) (store.User, error) { return a.cfg.Store.UserByTokenHash(ctx, key[:]) }
	if a.cfg.Tokens == nil {
		return lookup(ctx)
	}
	return a.cfg.Tokens.User(ctx, key, lookup)
}

func caller(r *http.Request) store.User { return r.Context().Value(userKey{}).(store.User) }

func (a *API) list(w http.ResponseWriter, r *http.Request) {
	resp, err := a.listResources(r, mux.Vars(r)["resource"])
	if err != nil {
		httpx.WriteError(w, r, a.cfg.Log, err)
		return
	}
	httpx.JSON(w, http.StatusOK, resp)
}

func (a *API) listResources(r *http.Request, resource string) (api.ListResponse, error) {
	q := r.URL.Query()
	local, peers, err := a.sources(r, q.Get("source"))
	if err != nil {
		return api.ListResponse{}, err
	}
	merged := local && q.Get("source") == "all"
	maxCursor := api.MaxCursor
	if merged {
		maxCursor = maxMergedCursor
	}
	opts, err := listOptions(q, maxCursor)
	if err != nil {
		return api.ListResponse{}, err
	}
	if merged {
		return a.listMerged(r, resource, peers, opts)
	}
	resp := api.ListResponse{Items: []any{}, Sources: []api.SourceStatus{}}
	if local {
		page, err := a.cfg.Store.List(r.Context(), store.Viewer{UserID: caller(r).ID}, resource, opts)
		if err != nil {
			return api.ListResponse{}, err
		}
		for _, it := range page.Items {
			resp.Items = append(resp.Items, api.WithSource(it, SourceLocal))
		}
		resp.NextCursor = page.NextCursor
		resp.Sources = append(resp.Sources, api.SourceStatus{Name: SourceLocal, Status: "ok"})
		return resp, nil
	}
	// One named peer: its own cursor pages it.
	req := api.FedListRequest{Limit: opts.Limit, Cursor: opts.Cursor, Filter: opts.Filter}
	list := func(ctx context.Context, p fedclient.Peer) (fedclient.ListResult, error) {
		return p.List(ctx, resource, req)
	}
	for _, res := range a.fanOut(peerContext(r), peers, "list", resource, list) {
		resp.Sources = append(resp.Sources, res.status)
		if res.status.Status == "error" {
			resp.Partial = true
			continue
		}
		resp.Items, resp.NextCursor = append(resp.Items, res.items...), res.next
	}
	return resp, nil
}

// sources resolves the source parameter to "this site" and the caller's own peers.
func (a *API) sources(r *http.Request, src string) (local bool, peers []fedclient.Peer, err error) {
	switch {
	case src == "" || src == "local":
		return true, nil, nil
	case src == "all" || strings.HasPrefix(src, "federated:"):
	default:
		return false, nil, errs.New(errs.Invalid, api.CodeInvalidSource, "source must be local, all or federated:<peer name>")
	}
	if a.cfg.Peers == nil {
		if src == "all" {
			return true, nil, nil
		}
		return false, nil, unknownPeer(src)
	}
	if peers, err = a.cfg.Peers.Owned(r.Context(), caller(r).ID, false); err != nil {
		return false, nil, err
	}
	if src == "all" {
		return true, peers, nil
	}
	if p := named(peers, src); p != nil {
		return false, []fedclient.Peer{p}, nil
	}
	// A name the kept peers lack may be a peer added a moment ago whose change has
	// not arrived yet: read them again before saying it is unknown.
	if peers, err = a.cfg.Peers.Owned(r.Context(), caller(r).ID, true); err != nil {
		return false, nil, err
	}
	if p := named(peers, src); p != nil {
		return false, []fedclient.Peer{p}, nil
	}
	return false, nil, unknownPeer(src)
}

// named is the peer a federated:<name> source names, or nil.
func named(peers []fedclient.Peer, src string) fedclient.Peer {
	name := strings.TrimPrefix(src, "federated:")
	for _, p := range peers {
		if p.Name() == name {
			return p
		}
	}
	return nil
}

func unknownPeer(src string) error {
	return errs.New(errs.NotFound, api.CodeUnknownPeer, "no peer named %q belongs to you", strings.TrimPrefix(src, "federated:"))
}

type peerResult struct {
	status api.SourceStatus
	items  []any
	next   string
}

// peerCall is one peer's part of a fan-out (a list or a search): its items, decoded
// and checked by the transport, and for a list its cursor.
type peerCall func(ctx context.Context, p fedclient.Peer) (fedclient.ListResult, error)

// fanOut makes one call to every peer in parallel, each within the peer timeout, and tags
// each item with its source. A failure becomes that peer's status (its reason code
// only, never its message) and nothing else.
func (a *API) fanOut(ctx context.Context, peers []fedclient.Peer, verb, resource string, call peerCall) []peerResult {
	out := make([]peerResult, len(peers))
	var wg sync.WaitGroup
	for i, p := range peers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			name := fedclient.SourceOf(p.Name())
			defer func() {
				// A peer's answer must never take the process down: whatever slipped
				// past the transport's checks makes that source an error.
				if r := recover(); r != nil {
					out[i] = peerResult{status: api.SourceStatus{Name: name, Status: "error", Error: api.CodeInvalidResponse}}
					a.cfg.Log.Error("peer answer could not be handled", "peer", p.Name(), "verb", verb, "resource", resource)
				}
			}()
			pctx, cancel := context.WithTimeout(ctx, a.peerTimeout())
			defer cancel()
			got, err := call(pctx, p)
			if err != nil {
				out[i] = peerResult{status: api.SourceStatus{Name: name, Status: "error", Error: fedclient.Code(err)}}
				a.cfg.Log.Warn("peer call failed", "peer", p.Name(), "verb", verb, "resource", resource, "code", fedclient.Code(err))
				return
			}
			items := make([]any, len(got.Items))
			for j, it := range got.Items {
				items[j] = api.WithSource(it, name)
			}
			out[i] = peerResult{status: sourceStatus(name, got.Served), items: items, next: got.NextCursor}
		}()
	}
	wg.Wait()
	return out
}

// sourceStatus is a peer's status in the answer: ok, or stale when a stage answered
// from an old entry because the peer failed; a cached or stale answer says its age.
func sourceStatus(name string, s fedclient.Served) api.SourceStatus {
	st := api.SourceStatus{Name: name, Status: "ok", Cached: s.Cached}
	if s.Stale {
		st.Status = "stale"
	}
	if s.Cached || s.Stale {
		age := math.Round(s.Age.Seconds()*1000) / 1000
		st.AgeS = &age
	}
	return st
}

// listOptions reads a list's parameters; a cursor may be up to maxCursor bytes (a
// merged list's holds a keyset per source).
func listOptions(q map[string][]string, maxCursor int) (store.ListOptions, error) {
	get := func(k string) string {
		if v := q[k]; len(v) > 0 {
			return v[0]
		}
		return ""
	}
	o := store.ListOptions{Cursor: get("cursor")}
	var err error
	if o.Limit, err = limitParam(get("limit")); err != nil {
		return o, err
	}
	o.Filter.Status, o.Filter.TeamID = get("status"), get("team_id")
	if s := get("updated_since"); s != "" {
		t, err := time.Parse(time.RFC3339, s)
		if err != nil {
			return o, errs.New(errs.Invalid, api.CodeInvalidUpdatedSince, "updated_since must be an RFC 3339 time")
		}
		o.Filter.UpdatedSince = &t
	}
	if len(o.Cursor) > maxCursor {
		return o, errs.New(errs.Invalid, api.CodeInvalidCursor, "cursor must be at most %d bytes", maxCursor)
	}
	return o, o.Filter.Validate()
}

// limitParam reads a limit parameter: DefaultLimit when absent, at most MaxLimit.
func limitParam(s string) (int, error) {
	if s == "" {
		return DefaultLimit, nil
	}
	n, err := strconv.Atoi(s)
	if err != nil || n < 1 {
		return 0, errs.New(errs.Invalid, api.CodeInvalidLimit, "limit must be a whole number from 1 to %d", MaxLimit)
	}
	return min(n, MaxLimit), nil
}

func (a *API) get(w http.ResponseWriter, r *http.Request) {
	v := mux.Vars(r)
	local, peers, err := a.sources(r, r.URL.Query().Get("source"))
	if err != nil {
		httpx.WriteError(w, r, a.cfg.Log, err)
		return
	}
	if !api.CanonicalUUID(v["id"]) {
		httpx.WriteError(w, r, a.cfg.Log, errs.New(errs.Invalid, api.CodeInvalidID, "the id must be a canonical lowercase UUID"))
		return
	}
	if !local { // one named peer
		a.getRemote(w, r, peers[0], v["resource"], v["id"])
		return
	}
	item, err := a.cfg.Store.Get(r.Context(), store.Viewer{UserID: caller(r).ID}, v["resource"], v["id"])
	if err != nil {
		httpx.WriteError(w, r, a.cfg.Log, err)
		return
	}
	httpx.JSON(w, http.StatusOK, api.ItemResponse{Item: api.WithSource(item, SourceLocal)})
}

// getRemote fetches one row from a peer: the peer's 404 and 403 pass through as
// statuses; anything else is 502 with the peer's reason code.
func (a *API) getRemote(w http.ResponseWriter, r *http.Request, p fedclient.Peer, resource, id string) {
	ctx, cancel := context.WithTimeout(peerContext(r), a.peerTimeout())
	defer cancel()
	item, err := p.Get(ctx, resource, id)
	var pe *fedclient.PeerError
	switch {
	case err == nil:
		httpx.JSON(w, http.StatusOK, api.ItemResponse{Item: api.WithSource(item, fedclient.SourceOf(p.Name()))})
	case errors.As(err, &pe) && (pe.Status == http.StatusNotFound || pe.Status == http.StatusForbidden):
		kind := errs.NotFound
		if pe.Status == http.StatusForbidden {
			kind = errs.Forbidden
		}
		httpx.WriteError(w, r, a.cfg.Log, errs.New(kind, pe.Code, "the peer answered %d", pe.Status))
	default:
		httpx.WriteError(w, r, a.cfg.Log, errs.New(errs.BadGateway, api.CodePeerUnavailable, "the peer did not answer: %s", fedclient.Code(err)))
	}
}
