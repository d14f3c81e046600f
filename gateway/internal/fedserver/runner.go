package fedserver

import (
	"context"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/google/uuid"
	"github.com/gorilla/mux"

	"github.com/mosaic-federation/mosaic/gateway/api"
	"github.com/mosaic-federation/mosaic/gateway/internal/audit"
	"github.com/mosaic-federation/mosaic/gateway/internal/errs"
	"github.com/mosaic-federation/mosaic/gateway/internal/guard"
	"github.com/mosaic-federation/mosaic/gateway/internal/httpx"
	"github.com/mosaic-federation/mosaic/gateway/internal/scope"
)

// request is what a verb gets once the stages before it have passed: the caller, the
// effective rows of the route's {resource} (scope.Rows, which only the scope stage
// makes), the route's {id} (a canonical UUID) and the decoded body.
type request[B any] struct {
	caller guard.Caller
	rows   scope.Rows
	id     string
	body   B
}

// reply is a verb's answer and how many rows it carries (for the audit row).
type reply[R any] struct {
	body R
	rows int
}

// verb is one federation verb: it knows no HTTP, only its request and the store.
type verb[B, R any] func(ctx context.Context, req request[B]) (reply[R], error)

// run serves a verb through the whole pipeline: guard → scope → id and body → verb
// → audit → answer. Every request is audited once, here; an allowed answer is sent
// only once its audit row is written.
func run[B, R any](s *Server, v verb[B, R]) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ctx := r.Context()
		var req request[B]
		var err error
		req.caller, err = s.Guard.Check(ctx, r.TLS)
		if err == nil {
			req, err = prepare(r, req)
		}
		var res reply[R]
		if err == nil {
			res, err = v(ctx, req)
		}
		if err := s.audit(r, req.caller, err, res.rows, req.id); err != nil {
			httpx.WriteError(w, r, s.Log, err)
			return
		}
		if err != nil {
			httpx.WriteError(w, r, s.Log, err)
			return
		}
		httpx.JSON(w, http.StatusOK, res.body)
	})
}

// prepare is the scope stage and the input checks, in this order: a resource outside
// the scope is 403 whatever the rest of the request says; then a malformed id or body
// is 400.
func prepare[B any](r *http.Request, req request[B]) (request[B], error) {
	vars := mux.Vars(r)
	if resource, ok := vars["resource"]; ok {
		g := req.caller.Grant
		rows, err := g.Scope.Authorize(g.SubjectUserID, resource)
		if err != nil {
			return req, err
		}
		req.rows = rows
	}
	if id, ok := vars["id"]; ok {
		if u, err := uuid.Parse(id); err != nil || u.String() != id {
			return req, errs.New(errs.Invalid, api.CodeInvalidID, "the id must be a canonical lowercase UUID")
		}
		req.id = id
	}
	if r.ContentLength != 0 {
		if err := httpx.Decode(r, &req.body); err != nil {
			return req, err
		}
	}
	if v, ok := any(req.body).(interface{ Validate() error }); ok {
		return req, v.Validate()
	}
	return req, nil
}

// guarded answers a path or method no verb serves: the guard still decides first, so
// without a certificate it is 401 and only a caller it lets through learns that the
// endpoint does not exist (404) or takes other methods (405 with Allow); audited alike.
func guarded(s *Server, routes *mux.Router) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		caller, err := s.Guard.Check(r.Context(), r.TLS)
		if err != nil {
			if aerr := s.audit(r, caller, err, 0, ""); aerr != nil {
				err = aerr
			}
			httpx.WriteError(w, r, s.Log, err)
			return
		}
		err = errs.New(errs.NotFound, api.CodeNotFound, "no such endpoint")
		allow := httpx.AllowedMethods(routes, r)
		if len(allow) > 0 {
			w.Header().Set("Allow", strings.Join(allow, ", "))
			err = errs.New(errs.MethodNotAllowed, api.CodeMethodNotAllowed, "this endpoint takes %s", strings.Join(allow, " or "))
		}
		if aerr := s.audit(r, caller, err, 0, ""); aerr != nil {
			w.Header().Del("Allow")
			err = aerr
		}
		httpx.WriteError(w, r, s.Log, err)
	})
}

// audit writes the request's one row: allowed with its row count, or the refusal's
// outcome and reason code; with the id a get asked for (validated, so bounded). A row
// that cannot be written refuses the request (503).
func (s *Server) audit(r *http.Request, c guard.Caller, failure error, rows int, id string) error {
	e := audit.Entry{RequestID: httpx.ID(r.Context()), Actor: "peer", Action: methodOf(r) + " " + routeOf(r),
		Outcome: api.OutcomeAllowed, Reason: api.ReasonOK, GrantID: c.Identity.GrantID, PeerID: c.Grant.PeerID}
	if c.Grant.Peer != "" {
		e.Actor = "peer:" + c.Grant.Peer
	}
	if failure != nil {
		f := errs.From(failure)
		e.Outcome, e.Reason = f.Kind.Outcome(), f.Code
	} else {
		e.Detail = "rows " + strconv.Itoa(rows)
	}
	if id != "" {
		e.Detail = strings.TrimPrefix(e.Detail+", id "+id, ", ")
	}
	// The row is written even when the client hung up: it records what was decided.
	ctx, cancel := context.WithTimeout(context.WithoutCancel(r.Context()), 5*time.Second)
	defer cancel()
	if err := s.Audit.Append(ctx, e); err != nil {
		return errs.Wrap(errs.Unavailable, api.CodeAuditUnavailable, "the request could not be audited, so it is refused: try again", err)
	}
	return nil
}

// methodOf is the request's method if it is one HTTP defines, else "other": the
// method is the client's to choose, so it never reaches the audit row verbatim.
func methodOf(r *http.Request) string {
	switch r.Method {
	case http.MethodGet, http.MethodHead, http.MethodPost, http.MethodPut, http.MethodPatch,
		http.MethodDelete, http.MethodConnect, http.MethodOptions, http.MethodTrace:
		return r.Method
	}
	return "other"
}

// routeOf is the route template of a request (a bounded label), or "unmatched".
func routeOf(r *http.Request) string {
	if cr := mux.CurrentRoute(r); cr != nil {
		if t, err := cr.GetPathTemplate(); err == nil {
			return t
		}
	}
	return "unmatched"
}
