// Package httpx holds the HTTP plumbing every listener shares: request ids, the error
// envelope, strict JSON decoding. Two messages per error: the cause goes to the log,
// the client gets a stable code and a safe message.
package httpx

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"log/slog"
	"net/http"
	"regexp"
	"strings"
	"time"

	"github.com/gorilla/mux"

	"github.com/mosaic-federation/mosaic/gateway/api"
	"github.com/mosaic-federation/mosaic/gateway/internal/errs"
	"github.com/mosaic-federation/mosaic/gateway/internal/strictjson"
)

// MaxBody is the largest request body any endpoint reads.
const MaxBody = 1 << 20

type ctxKey struct{}

type peerIDKey struct{}

var wellFormedID = regexp.MustCompile(`^[A-Za-z0-9._-]{8,64}$`)

// RequestID gives every request an id of this site's own, echoed in the response
// header and put in the context. A caller's X-Request-Id is its claim, not ours: when
// well formed it is kept beside ours (PeerRequestID), never used as ours.
func RequestID(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		id := NewID()
		ctx := context.WithValue(r.Context(), ctxKey{}, id)
		if theirs := r.Header.Get("X-Request-Id"); wellFormedID.MatchString(theirs) {
			ctx = context.WithValue(ctx, peerIDKey{}, theirs)
		}
		w.Header().Set("X-Request-Id", id)
		next.ServeHTTP(w, r.WithContext(ctx))
	})
}

// NewID is a fresh request id (24 hex digits).
func NewID() string {
	b := make([]byte, 12)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

// PeerRequestID is the caller's well-formed X-Request-Id, or "".
func PeerRequestID(ctx context.Context) string {
	id, _ := ctx.Value(peerIDKey{}).(string)
	return id
}

// LimitBody answers 413 at once to a request that announces a body over MaxBody (a
// body without a length is cut off at MaxBody by the reader in Decode instead).
func LimitBody(log *slog.Logger, next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.ContentLength > MaxBody {
			WriteError(w, r, log, &http.MaxBytesError{Limit: MaxBody})
			return
		}
		next.ServeHTTP(w, r)
	})
}

// ID returns the request id of ctx.
func ID(ctx context.Context) string {
	id, _ := ctx.Value(ctxKey{}).(string)
	return id
}

// WriteError renders err as the error envelope and logs server-side causes.
func WriteError(w http.ResponseWriter, r *http.Request, log *slog.Logger, err error) {
	e := errs.From(err)
	for k, v := range e.Header {
		w.Header()[k] = v
	}
	if e.Status() >= 500 {
		log.Error("request failed", "request_id", ID(r.Context()), "method", r.Method, "path", r.URL.Path, "err", err)
	}
	JSON(w, e.Status(), api.ErrorBody{Error: api.Error{Code: e.Code, Message: e.Message, RequestID: ID(r.Context())}})
}

// JSON writes v with a status. It encodes first, so a value that cannot be encoded
// becomes a 500 in the envelope rather than a 200 with an empty body.
func JSON(w http.ResponseWriter, status int, v any) {
	var buf bytes.Buffer
	if err := json.NewEncoder(&buf).Encode(v); err != nil {
		status = http.StatusInternalServerError
		buf.Reset()
		_ = json.NewEncoder(&buf).Encode(api.ErrorBody{Error: api.Error{Code: api.CodeInternal, Message: "internal error: the response could not be encoded"}})
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	_, _ = w.Write(buf.Bytes())
}

// Deadline bounds every request's context: a slow query stops when its client's
// budget is spent (WriteTimeout alone does not cancel the handler).
func Deadline(d time.Duration, next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ctx, cancel := context.WithTimeout(r.Context(), d)
		defer cancel()
		next.ServeHTTP(w, r.WithContext(ctx))
	})
}

// Decode reads a JSON body strictly (strictjson: unknown or duplicate fields, wrong
// types and trailing data refused, the message naming the field), at most MaxBody
// bytes: a larger body is a *http.MaxBytesError, which renders as 413.
func Decode(r *http.Request, v any) error {
	err := strictjson.Decode(http.MaxBytesReader(nil, r.Body, MaxBody), v)
	var bad *strictjson.Error
	if errors.As(err, &bad) {
		return errs.New(errs.Invalid, api.CodeInvalidBody, "%s", bad.Error())
	}
	return err
}

// Miss answers a request no route of routes took: 405 with Allow when the path takes
// other methods, else 404, in the envelope.
func Miss(log *slog.Logger, routes *mux.Router) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		WriteError(w, r, log, MissError(routes, r))
	})
}

// MissError is why no route took r: 405 (with Allow) when the path takes other
// methods, else 404.
func MissError(routes *mux.Router, r *http.Request) error {
	if allow := AllowedMethods(routes, r); len(allow) > 0 {
		e := errs.New(errs.MethodNotAllowed, api.CodeMethodNotAllowed, "this endpoint takes %s", strings.Join(allow, " or "))
		e.Header = http.Header{"Allow": {strings.Join(allow, ", ")}}
		return e
	}
	return errs.New(errs.NotFound, api.CodeNotFound, "no such endpoint")
}

// AllowedMethods are the methods a route of routes serves at the request's path.
// (gorilla/mux loses a subrouter's method mismatch to the next route's prefix match,
// so the router is asked once per method instead.)
func AllowedMethods(routes *mux.Router, r *http.Request) []string {
	var allow []string
	for _, m := range []string{http.MethodGet, http.MethodPost} {
		if m == r.Method {
			continue
		}
		probe := r.Clone(r.Context())
		probe.Method = m
		var match mux.RouteMatch
		if routes.Match(probe, &match) && match.MatchErr == nil {
			allow = append(allow, m)
		}
	}
	return allow
}

// NotFound and MethodNotAllowed answer in the envelope too.
func NotFound(log *slog.Logger) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		WriteError(w, r, log, errs.New(errs.NotFound, api.CodeNotFound, "no such endpoint"))
	})
}

func MethodNotAllowed(log *slog.Logger) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		WriteError(w, r, log, errs.New(errs.MethodNotAllowed, api.CodeMethodNotAllowed, "method %s not allowed here", r.Method))
	})
}
