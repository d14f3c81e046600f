package localapi

import (
	"context"
	"errors"
	"log/slog"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/google/uuid"
	"github.com/gorilla/mux"

	"github.com/mosaic-federation/mosaic/gateway/api"
	"github.com/mosaic-federation/mosaic/gateway/internal/apitoken"
	"github.com/mosaic-federation/mosaic/gateway/internal/embed"
	"github.com/mosaic-federation/mosaic/gateway/internal/httpx"
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
}

// API is the requesting side's HTTP API (SPEC §6 "Requesting side").
type API struct{ cfg Config }

// New returns the API.
func New(cfg Config) *API { return &API{cfg: cfg} }

// Register adds the /api/v1 routes to r, every one behind the bearer-token guard.
func (a *API) Register(r *mux.Router) {
	v1 := r.PathPrefix("/api/v1").Subrouter()
	v1.Use(a.authenticate)
	res := "{resource:tasks|notes|memories}"
	v1.HandleFunc("/"+res, a.list).Methods(http.MethodGet)
	v1.HandleFunc("/"+res, a.create).Methods(http.MethodPost)
	v1.HandleFunc("/"+res+"/{id}", a.get).Methods(http.MethodGet)
	v1.NotFoundHandler = httpx.NotFound(a.cfg.Log)
	v1.MethodNotAllowedHandler = httpx.MethodNotAllowed(a.cfg.Log)
}

type userKey struct{}

// authenticate resolves "Authorization: Bearer <token>" to a user of this site.
func (a *API) authenticate(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		token, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
		if !ok || token == "" {
			httpx.WriteError(w, r, a.cfg.Log, httpx.Errorf(http.StatusUnauthorized, "unauthenticated",
				"send your API token as 'Authorization: Bearer <token>'"))
			return
		}
		u, err := a.userOf(r.Context(), token)
		if errors.Is(err, store.ErrNotFound) {
			err = httpx.Errorf(http.StatusUnauthorized, "unauthenticated", "the API token is not valid on this site")
		}
		if err != nil {
			httpx.WriteError(w, r, a.cfg.Log, err)
			return
		}
		next.ServeHTTP(w, r.WithContext(context.WithValue(r.Context(), userKey{}, u)))
	})
}

// userOf finds a token's user. The lookup is by the token's SHA-256, so no secret is
// compared byte by byte in Go code and timing says nothing about the token.
func (a *API) userOf(ctx context.Context, token string) (store.User, error) {
	if !apitoken.WellFormed(token) {
		return store.User{}, store.ErrNotFound
	}
	return a.cfg.Store.UserByTokenHash(ctx, apitoken.Hash(token))
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
	if err := checkSource(q.Get("source")); err != nil {
		return api.ListResponse{}, err
	}
	opts, err := listOptions(q)
	if err != nil {
		return api.ListResponse{}, err
	}
	page, err := a.cfg.Store.List(r.Context(), store.Viewer{UserID: caller(r).ID}, resource, opts)
	if err != nil {
		return api.ListResponse{}, err
	}
	items := make([]api.Item, len(page.Items))
	for i, it := range page.Items {
		items[i] = Tag(it, SourceLocal)
	}
	return api.ListResponse{Items: items, NextCursor: page.NextCursor,
		Sources: []api.SourceStatus{{Name: SourceLocal, Status: "ok"}}}, nil
}

// checkSource accepts local and all; no peers exist before enrollment, so any
// federated:<peer> names an unknown peer.
func checkSource(src string) error {
	switch {
	case src == "" || src == "local" || src == "all":
		return nil
	case strings.HasPrefix(src, "federated:"):
		return httpx.Errorf(http.StatusNotFound, "unknown_peer", "no peer named %q belongs to you", strings.TrimPrefix(src, "federated:"))
	}
	return httpx.Errorf(http.StatusBadRequest, "invalid_source", "source must be local, all or federated:<peer name>")
}

func listOptions(q map[string][]string) (store.ListOptions, error) {
	get := func(k string) string {
		if v := q[k]; len(v) > 0 {
			return v[0]
		}
		return ""
	}
	o := store.ListOptions{Limit: DefaultLimit, Cursor: get("cursor")}
	if s := get("limit"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil || n < 1 {
			return o, httpx.Errorf(http.StatusBadRequest, "invalid_limit", "limit must be a whole number from 1 to %d", MaxLimit)
		}
		o.Limit = min(n, MaxLimit)
	}
	o.Filter.Status, o.Filter.TeamID = get("status"), get("team_id")
	if s := get("updated_since"); s != "" {
		t, err := time.Parse(time.RFC3339, s)
		if err != nil {
			return o, httpx.Errorf(http.StatusBadRequest, "invalid_updated_since", "updated_since must be an RFC 3339 time")
		}
		o.Filter.UpdatedSince = &t
	}
	if o.Filter.Status != "" && !validStatus(o.Filter.Status) {
		return o, httpx.Errorf(http.StatusBadRequest, "invalid_status", "status must be open, in_progress or done")
	}
	return o, nil
}

func validStatus(s string) bool {
	return s == api.StatusOpen || s == api.StatusInProgress || s == api.StatusDone
}

func (a *API) get(w http.ResponseWriter, r *http.Request) {
	v := mux.Vars(r)
	if err := checkSource(r.URL.Query().Get("source")); err != nil {
		httpx.WriteError(w, r, a.cfg.Log, err)
		return
	}
	if !canonicalUUID(v["id"]) {
		httpx.WriteError(w, r, a.cfg.Log, httpx.Errorf(http.StatusBadRequest, "invalid_id", "the id must be a canonical lowercase UUID"))
		return
	}
	item, err := a.cfg.Store.Get(r.Context(), store.Viewer{UserID: caller(r).ID}, v["resource"], v["id"], nil)
	if err != nil {
		httpx.WriteError(w, r, a.cfg.Log, err)
		return
	}
	httpx.JSON(w, http.StatusOK, api.ItemResponse{Item: Tag(item, SourceLocal)})
}

func canonicalUUID(s string) bool {
	u, err := uuid.Parse(s)
	return err == nil && u.String() == s
}

// Tag sets an item's _source.
func Tag(it api.Item, source string) api.Item {
	switch v := it.(type) {
	case api.Task:
		v.Source = source
		return v
	case api.Note:
		v.Source = source
		return v
	case api.Memory:
		v.Source = source
		return v
	}
	return it
}
