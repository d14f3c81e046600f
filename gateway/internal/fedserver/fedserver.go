// Package fedserver is the federation listener: TLS 1.3 with a certificate from the
// site's own CA, client certificates verified against that CA only. It serves the
// site's root (GET /api/federation/v1/ca/root) and enrollment (POST /enroll) to anyone,
// and everything else behind the auth guard: capabilities, list, get.
package fedserver

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"time"

	"github.com/gorilla/mux"

	"github.com/mosaic-federation/mosaic/gateway/internal/httpx"
)

// Prefix of every federation endpoint.
const Prefix = "/api/federation/v1"

// Config wires the listener.
type Config struct {
	Addr string
	Cert tls.Certificate
	Root *x509.Certificate // the site's root: the only CA client certificates may chain to
	Log  *slog.Logger
	// Enroll handles POST /enroll (no client certificate needed).
	Enroll http.Handler
	// Guard and Verbs serve everything else, behind the guard.
	Guard *Guard
	Verbs *Verbs
}

// TLSConfig accepts TLS 1.3 only and verifies a client certificate when one is given
// (enroll and ca/root need none; the guard refuses the rest without one).
func TLSConfig(cfg Config) *tls.Config {
	pool := x509.NewCertPool()
	pool.AddCert(cfg.Root)
	cert := cfg.Cert
	return &tls.Config{
		MinVersion:     tls.VersionTLS13,
		ClientAuth:     tls.VerifyClientCertIfGiven,
		ClientCAs:      pool,
		GetCertificate: func(*tls.ClientHelloInfo) (*tls.Certificate, error) { return &cert, nil },
	}
}

// Handler routes the federation endpoints.
func Handler(cfg Config) http.Handler {
	if cfg.Guard == nil || cfg.Verbs == nil {
		panic("fedserver: the guard and the verbs are required: no federation route is served unguarded")
	}
	// SkipClean: no 301 for //x or /./x answered before the guard runs.
	r := mux.NewRouter().SkipClean(true)
	rootPEM := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: cfg.Root.Raw})
	r.HandleFunc(Prefix+"/ca/root", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "application/x-pem-file")
		_, _ = w.Write(rootPEM)
	}).Methods(http.MethodGet)
	if cfg.Enroll != nil {
		r.Handle(Prefix+"/enroll", cfg.Enroll).Methods(http.MethodPost)
	}
	{
		// Every other route, and any path under the prefix that matches none, is
		// behind the guard by construction: without a certificate the answer is 401.
		g := r.PathPrefix(Prefix).Subrouter()
		g.Use(cfg.Guard.Wrap)
		g.HandleFunc("/capabilities", cfg.Verbs.capabilities).Methods(http.MethodGet)
		g.HandleFunc("/list/{resource}", cfg.Verbs.list).Methods(http.MethodPost)
		g.HandleFunc("/get/{resource}/{id}", cfg.Verbs.get).Methods(http.MethodPost)
		g.NotFoundHandler = cfg.Guard.Wrap(httpx.NotFound(cfg.Log))
		g.MethodNotAllowedHandler = cfg.Guard.Wrap(httpx.MethodNotAllowed(cfg.Log))
	}
	r.NotFoundHandler = httpx.NotFound(cfg.Log)
	r.MethodNotAllowedHandler = httpx.MethodNotAllowed(cfg.Log)
	return httpx.RequestID(httpx.LimitBody(cfg.Log, r))
}

// Serve listens until ctx ends, then shuts down with a fresh deadline.
func Serve(ctx context.Context, cfg Config) error {
	ln, err := net.Listen("tcp", cfg.Addr)
	if err != nil {
		return fmt.Errorf("listen.federation %s: %w", cfg.Addr, err)
	}
	srv := &http.Server{
		Handler:           http.MaxBytesHandler(Handler(cfg), httpx.MaxBody),
		TLSConfig:         TLSConfig(cfg),
		ReadHeaderTimeout: 5 * time.Second,
		ReadTimeout:       30 * time.Second,
		WriteTimeout:      60 * time.Second,
		IdleTimeout:       120 * time.Second,
		MaxHeaderBytes:    64 << 10,
		ErrorLog:          slog.NewLogLogger(cfg.Log.Handler(), slog.LevelWarn),
	}
	cfg.Log.Info("serving", "federation", ln.Addr().String())
	errc := make(chan error, 1)
	go func() { errc <- srv.ServeTLS(ln, "", "") }()
	select {
	case err := <-errc:
		if errors.Is(err, http.ErrServerClosed) {
			return nil
		}
		return err
	case <-ctx.Done():
	}
	sctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	return srv.Shutdown(sctx)
}
