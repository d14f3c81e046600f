// Package fedserver is the federation listener: TLS 1.3 with a certificate from the
// site's own CA, client certificates verified against that CA only. It serves the
// site's root (GET /ca/root) and enrollment (POST /enroll) to anyone, and every other
// route through one pipeline: guard → scope → the verb's store read → audit → answer
// (runner.go), so no verb can skip a stage.
package fedserver

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"time"

	"github.com/gorilla/mux"
	"go.opentelemetry.io/otel/trace"
	"go.opentelemetry.io/otel/trace/noop"

	"github.com/mosaic-federation/mosaic/gateway/internal/audit"
	"github.com/mosaic-federation/mosaic/gateway/internal/embed"
	"github.com/mosaic-federation/mosaic/gateway/internal/guard"
	"github.com/mosaic-federation/mosaic/gateway/internal/httpx"
	"github.com/mosaic-federation/mosaic/gateway/internal/store"
	"github.com/mosaic-federation/mosaic/gateway/internal/telemetry"
)

// Prefix of every federation endpoint.
const Prefix = "/api/federation/v1"

// Guard is the pipeline's first stage (package guard).
type Guard interface {
	Check(ctx context.Context, state *tls.ConnectionState) (guard.Caller, error)
}

// Server is the listener's stages and what it serves with.
type Server struct {
	Site  string            // every row is tagged _source with it
	Root  *x509.Certificate // the site's root: the only CA client certificates may chain to
	Guard Guard
	Store store.Store // read only through its granted reads
	Audit audit.Writer
	// Flood aggregates the refusals floods repeat (nil: every refusal is its own row).
	Flood  *audit.Flood
	Limits *Limits // nil: no limits (tests)
	// Embedder embeds search queries (a peer never sends vectors); nil is the
	// built-in hashing embedder, the one the site's rows were embedded with.
	Embedder embed.Embedder
	// Enroll handles POST /enroll (no client certificate needed).
	Enroll http.Handler
	// Renew serves POST /renew behind the guard (nil: no renewal).
	Renew  *Renewer
	Tracer trace.Tracer // nil: no spans (the trace context still passes through)
	// Metrics takes the per-grant and route series (nil: none, in tests).
	Metrics *telemetry.Metrics
	Log     *slog.Logger
}

// TLSConfig accepts TLS 1.3 only and verifies a client certificate when one is given
// (enroll and ca/root need none; the guard refuses the rest without one); revoked
// refuses a client certificate the CA's CRL lists, in the handshake.
func TLSConfig(root *x509.Certificate, cert tls.Certificate, revoked func(tls.ConnectionState) error) *tls.Config {
	pool := x509.NewCertPool()
	pool.AddCert(root)
	return &tls.Config{
		MinVersion:     tls.VersionTLS13,
		ClientAuth:     tls.VerifyClientCertIfGiven,
		ClientCAs:      pool,
		GetCertificate: func(*tls.ClientHelloInfo) (*tls.Certificate, error) { return &cert, nil },
		// Also run on resumed sessions: a ticket does not outlive a revocation.
		VerifyConnection: revoked,
	}
}

// Handler routes the federation endpoints.
func (s *Server) Handler() http.Handler {
	if s.Guard == nil || s.Audit == nil || s.Store == nil {
		panic("fedserver: the guard, the audit log and the store are required: no federation route is served unguarded")
	}
	// SkipClean: no 301 for //x or /./x answered before the guard runs.
	r := mux.NewRouter().SkipClean(true)
	rootPEM := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: s.Root.Raw})
	// What needs no certificate is limited per client address.
	r.Handle(Prefix+"/ca/root", s.perAddress("ca_root", http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "application/x-pem-file")
		_, _ = w.Write(rootPEM)
	}))).Methods(http.MethodGet)
	if s.Enroll != nil {
		r.Handle(Prefix+"/enroll", s.perAddress("enroll", s.Enroll)).Methods(http.MethodPost)
	}
	// Every other route, and any path under the prefix that matches none, runs the
	// pipeline by construction: without a certificate the answer is 401.
	g := r.PathPrefix(Prefix).Subrouter()
	g.Handle("/capabilities", run(s, "capabilities", s.capabilities)).Methods(http.MethodGet)
	g.Handle("/list/{resource}", run(s, "list", s.list)).Methods(http.MethodPost)
	g.Handle("/get/{resource}/{id}", run(s, "get", s.get)).Methods(http.MethodPost)
	g.Handle("/search/{resource}", run(s, "search", s.search)).Methods(http.MethodPost)
	if s.Renew != nil {
		g.HandleFunc("/renew", s.renew).Methods(http.MethodPost)
	}
	g.NotFoundHandler = guarded(s, g)
	g.MethodNotAllowedHandler = g.NotFoundHandler
	r.NotFoundHandler = httpx.NotFound(s.Log)
	r.MethodNotAllowedHandler = httpx.MethodNotAllowed(s.Log)
	tracer := s.Tracer
	if tracer == nil {
		tracer = noop.NewTracerProvider().Tracer("")
	}
	var h http.Handler = r
	if s.Metrics != nil {
		m := httpx.NewMetrics(s.Metrics.Registry, "federation")
		r.Use(m.Route)
		h = m.Wrap(r)
	}
	return httpx.RequestID(httpx.LimitBody(s.Log, httpx.Deadline(RequestTimeout, httpx.Trace(tracer, "federation", h))))
}

// RequestTimeout bounds every federation request's context, so a slow query stops
// even while its client waits (WriteTimeout alone does not cancel the handler).
const RequestTimeout = 30 * time.Second

// Serve listens until ctx ends, then shuts down with a fresh deadline.
func Serve(ctx context.Context, addr string, tlsConfig *tls.Config, h http.Handler, lim httpx.Limits, log *slog.Logger) error {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return fmt.Errorf("listen.federation %s: %w", addr, err)
	}
	srv := httpx.NewServer(h, lim, log)
	srv.HTTP.TLSConfig = tlsConfig
	log.Info("serving", "federation", ln.Addr().String())
	return srv.Serve(ctx, ln)
}

// SupportedVerbs are what capabilities advertises.
var SupportedVerbs = []string{"capabilities", "list", "get", "search"}

func nonNil(s []string) []string {
	if s == nil {
		return []string{}
	}
	return s
}
