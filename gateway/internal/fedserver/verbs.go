package fedserver

import (
	"errors"
	"log/slog"
	"net/http"
	"strconv"

	"github.com/google/uuid"
	"github.com/gorilla/mux"

	"github.com/mosaic-federation/mosaic/gateway/api"
	"github.com/mosaic-federation/mosaic/gateway/internal/httpx"
	"github.com/mosaic-federation/mosaic/gateway/internal/store"
)

// Verbs answers a guarded peer: capabilities, list, get. They read the subject's rows
// through the store's scoped queries only, so every answer is native RBAC ∩ the scope.
type Verbs struct {
	Store store.Store
	Site  string // every row is tagged _source with it
	Guard *Guard // for the allowed-request audit rows
	Log   *slog.Logger
}

// SupportedVerbs are what capabilities advertises.
var SupportedVerbs = []string{"capabilities", "list", "get"}

func (v *Verbs) capabilities(w http.ResponseWriter, r *http.Request) {
	c, _ := CallerFrom(r.Context())
	sc := c.Grant.Scope
	excluded := sc.ExcludedResources
	if excluded == nil {
		excluded = []string{}
	}
	v.Guard.audit(r, c, "allowed", "ok")
	httpx.JSON(w, http.StatusOK, api.Capabilities{GrantID: c.Grant.ID, SubjectUserID: c.Grant.SubjectUserID,
		Resources: nonNil(sc.Effective()), ExcludedResources: excluded, MaxRowsPerQuery: sc.MaxRowsPerQuery,
		SupportedVerbs: SupportedVerbs})
}

// allowed refuses (403, audited) a resource outside the grant's scope; credentials
// never are in scope.
func (v *Verbs) allowed(w http.ResponseWriter, r *http.Request, c Caller, resource string) bool {
	if c.Grant.Scope.Allows(resource) {
		return true
	}
	v.Guard.audit(r, c, "denied", "resource_not_in_scope")
	httpx.WriteError(w, r, v.Log, httpx.Errorf(http.StatusForbidden, "resource_not_in_scope", "the grant does not cover %q", resource))
	return false
}

func (v *Verbs) scope(c Caller) *store.Scope {
	return &store.Scope{Personal: c.Grant.Scope.IncludePersonal, Teams: c.Grant.Scope.IncludeTeams}
}

func (v *Verbs) list(w http.ResponseWriter, r *http.Request) {
	c, _ := CallerFrom(r.Context())
	resource := mux.Vars(r)["resource"]
	if !v.allowed(w, r, c, resource) {
		return
	}
	var req api.FedListRequest
	if r.ContentLength != 0 {
		if err := httpx.Decode(r, &req); err != nil {
			v.Guard.audit(r, c, "denied", "malformed_body")
			httpx.WriteError(w, r, v.Log, err)
			return
		}
	}
	limit := c.Grant.Scope.Cap(req.Limit)
	page, err := v.Store.List(r.Context(), store.Viewer{UserID: c.Grant.SubjectUserID}, resource,
		store.ListOptions{Limit: limit, Cursor: req.Cursor, Filter: req.Filter, Scope: v.scope(c)})
	if err != nil {
		outcome, reason := outcomeOf(err)
		v.Guard.audit(r, c, outcome, reason)
		httpx.WriteError(w, r, v.Log, err)
		return
	}
	items := make([]api.Item, len(page.Items))
	for i, it := range page.Items {
		items[i] = api.WithSource(it, v.Site)
	}
	v.Guard.auditRows(r, c, len(items))
	httpx.JSON(w, http.StatusOK, api.FedListResponse{Items: items, NextCursor: page.NextCursor, Truncated: req.Limit > limit})
}

func (v *Verbs) get(w http.ResponseWriter, r *http.Request) {
	c, _ := CallerFrom(r.Context())
	vars := mux.Vars(r)
	if !v.allowed(w, r, c, vars["resource"]) {
		return
	}
	if u, err := uuid.Parse(vars["id"]); err != nil || u.String() != vars["id"] {
		v.Guard.audit(r, c, "denied", "invalid_id")
		httpx.WriteError(w, r, v.Log, httpx.Errorf(http.StatusBadRequest, "invalid_id", "the id must be a canonical lowercase UUID"))
		return
	}
	item, err := v.Store.Get(r.Context(), store.Viewer{UserID: c.Grant.SubjectUserID}, vars["resource"], vars["id"], v.scope(c))
	if err != nil {
		outcome, reason := outcomeOf(err)
		v.Guard.audit(r, c, outcome, reason)
		httpx.WriteError(w, r, v.Log, err)
		return
	}
	v.Guard.auditRows(r, c, 1)
	httpx.JSON(w, http.StatusOK, api.ItemResponse{Item: api.WithSource(item, v.Site)})
}

func (g *Guard) auditRows(r *http.Request, c Caller, n int) {
	g.audit(r, c, "allowed", "ok rows="+strconv.Itoa(n))
}

func nonNil(s []string) []string {
	if s == nil {
		return []string{}
	}
	return s
}

// routeOf is the route template of a request (a bounded label), or its path.
func routeOf(r *http.Request) string {
	if cr := mux.CurrentRoute(r); cr != nil {
		if t, err := cr.GetPathTemplate(); err == nil {
			return t
		}
	}
	return "unmatched"
}

// outcomeOf labels a store error for the audit log: the caller's mistake is denied,
// anything else failed.
func outcomeOf(err error) (outcome, reason string) {
	switch {
	case errors.Is(err, store.ErrNotFound):
		return "denied", "not_found"
	case errors.Is(err, store.ErrInvalid):
		return "denied", "invalid_request"
	}
	return "failed", "internal"
}
