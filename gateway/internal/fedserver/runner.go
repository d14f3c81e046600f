package fedserver

import (
	"context"
	"net"
	"net/http"
	"slices"
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

// run serves a verb through the whole pipeline: guard → rate limit → scope → id and
// body → verb → audit → answer. Every request is audited once (finish); an allowed
// answer is sent only once its audit row is written.
func run[B, R any](s *Server, name string, v verb[B, R]) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ctx, start := r.Context(), time.Now()
		var req request[B]
		var res reply[R]
		var err error
		req.caller, err = s.admit(r)
		if err == nil {
			_, end := s.stage(ctx, "scope")
			req, err = prepare(r, req)
			end(err)
		}
		if err == nil {
			qctx, end := s.stage(ctx, "query")
			res, err = v(qctx, req)
			end(err)
		}
		s.finish(w, r, done{verb: name, caller: req.caller, err: err, rows: res.rows, id: req.id, start: start},
			func() { httpx.JSON(w, http.StatusOK, res.body) })
	})
}

// admit is the guard and the rate-limit stage: who the caller is, and whether it may
// be served now. A refusal without a verified certificate counts against the client
// address's limit, so a flood of them turns into 429s.
func (s *Server) admit(r *http.Request) (guard.Caller, error) {
	_, end := s.stage(r.Context(), "guard")
	c, err := s.Guard.Check(r.Context(), r.TLS)
	end(err)
	if err != nil {
		if errs.From(err).Code == api.CodeClientCertificateRequired {
			_, end := s.stage(r.Context(), "rate_limit")
			limited := s.Limits.address(r)
			end(limited)
			if limited != nil {
				return c, limited
			}
		}
		return c, err
	}
	_, end = s.stage(r.Context(), "rate_limit")
	err = s.Limits.grant(r.Context(), c.Grant)
	end(err)
	return c, err
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

// guarded answers a path or method no verb serves: the guard (and the limits) still
// decide first, so without a certificate it is 401 and only a caller they let through
// learns that the endpoint does not exist (404) or takes other methods (405 with
// Allow); audited alike.
func guarded(s *Server, routes *mux.Router) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		caller, err := s.admit(r)
		if err == nil {
			err = httpx.MissError(routes, r)
		}
		s.finish(w, r, done{caller: caller, err: err, start: start}, nil)
	})
}

// done is what finish records of a request.
type done struct {
	verb   string
	caller guard.Caller
	err    error
	rows   int
	id     string // the id a get asked for (validated, so bounded)
	detail string // what else the row records (a renewal's serials)
	start  time.Time
}

// finish writes the request's one audit row, then the answer: ok when the request was
// allowed and its row is durable, else the error. A row that cannot be written refuses
// the request (503). Refusals of a flood share summary rows (audit.Flood).
func (s *Server) finish(w http.ResponseWriter, r *http.Request, d done, ok func()) {
	e := s.entry(r, d)
	if key := floodKey(e); key == "" || s.Flood == nil || s.Flood.Admit(key, e) {
		// The row is written even when the client hung up: it records what was decided.
		ctx, cancel := context.WithTimeout(context.WithoutCancel(r.Context()), 5*time.Second)
		defer cancel()
		ctx, end := s.stage(ctx, "audit")
		if aerr := s.Audit.Append(ctx, e); aerr != nil {
			d.err = errs.Wrap(errs.Unavailable, api.CodeAuditUnavailable, "the request could not be audited, so it is refused: try again", aerr)
		}
		end(d.err)
	}
	s.observe(d)
	if d.err != nil {
		httpx.WriteError(w, r, s.Log, d.err)
		return
	}
	ok()
}

// entry is the inbound audit row of a request (SPEC §6b).
func (s *Server) entry(r *http.Request, d done) audit.Entry {
	ctx, c := r.Context(), d.caller
	e := audit.Entry{Direction: audit.Inbound, RequestID: httpx.ID(ctx), PeerRequestID: httpx.PeerRequestID(ctx),
		Traceparent: httpx.Traceparent(ctx), Actor: "peer", Action: methodOf(r) + " " + routeOf(r), Peer: c.Grant.Peer,
		GrantID: c.Identity.GrantID, PeerID: c.Grant.PeerID, SubjectUserID: c.Identity.SubjectUserID, Verb: d.verb,
		Resource: resourceOf(r), Outcome: api.OutcomeAllowed, Reason: api.ReasonOK, Status: http.StatusOK, Rows: d.rows,
		Duration: time.Since(d.start), ClientAddr: clientAddr(r)}
	if c.Grant.Peer != "" {
		e.Actor = "peer:" + c.Grant.Peer
	}
	if d.err != nil {
		f := errs.From(d.err)
		e.Outcome, e.Reason, e.Status = f.Kind.Outcome(), f.Code, f.Status()
	}
	if d.id != "" {
		e.Detail = "id " + d.id
	}
	if d.detail != "" {
		e.Detail = d.detail
	}
	return e
}

// floodKey is the aggregation key of a refusal that floods may repeat (a client
// address or a grant, with the reason), or "" for a row that is always its own: an
// allowed request, and a refusal of a certificate that chains to the site's CA but is
// forged or stale, which an administrator must see every time.
func floodKey(e audit.Entry) string {
	switch e.Reason {
	case api.CodeClientCertificateRequired:
		return "addr|" + e.ClientAddr + "|" + e.Reason
	case api.CodeRateLimited:
		if e.GrantID != "" {
			return "grant|" + e.GrantID + "|" + e.Reason
		}
		return "addr|" + e.ClientAddr + "|" + e.Reason
	case api.CodeGrantUnknown, api.CodeGrantPending, api.CodeGrantRevoked, api.CodeGrantExpired, api.CodeGrantInactive,
		api.CodePeerNotActive, api.CodeSubjectMismatch, api.CodeCertificateRevoked:
		return "grant|" + e.GrantID + "|" + e.Reason
	}
	return ""
}

// clientAddr is the TCP peer's address (never a header: a client writes those).
func clientAddr(r *http.Request) string {
	if host, _, err := net.SplitHostPort(r.RemoteAddr); err == nil {
		return host
	}
	return r.RemoteAddr
}

// resourceOf is the route's {resource} when it is a name the gateway knows, else
// "other" (a client chooses the path).
func resourceOf(r *http.Request) string {
	res, ok := mux.Vars(r)["resource"]
	switch {
	case !ok:
		return ""
	case slices.Contains(api.Resources, res) || res == "credentials":
		return res
	}
	return "other"
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
