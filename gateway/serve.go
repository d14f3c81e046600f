package main

import (
	"context"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/signal"
	"sync"
	"syscall"
	"time"

	"github.com/gorilla/mux"
	"github.com/redis/go-redis/v9"
	"github.com/spf13/cobra"

	"github.com/mosaic-federation/mosaic/gateway/internal/caclient"
	"github.com/mosaic-federation/mosaic/gateway/internal/config"
	"github.com/mosaic-federation/mosaic/gateway/internal/embed"
	"github.com/mosaic-federation/mosaic/gateway/internal/fedclient"
	"github.com/mosaic-federation/mosaic/gateway/internal/fedserver"
	"github.com/mosaic-federation/mosaic/gateway/internal/fedstore"
	"github.com/mosaic-federation/mosaic/gateway/internal/httpx"
	"github.com/mosaic-federation/mosaic/gateway/internal/localapi"
	"github.com/mosaic-federation/mosaic/gateway/internal/sealing"
	"github.com/mosaic-federation/mosaic/gateway/internal/store"
	"github.com/mosaic-federation/mosaic/gateway/internal/tier"
)

// Server timeouts. Read-header bounds slow-loris clients; idle frees kept-alive
// connections nobody uses; shutdown gives in-flight requests a moment to finish.
const (
	readHeaderTimeout = 5 * time.Second
	readTimeout       = 30 * time.Second
	writeTimeout      = 60 * time.Second
	idleTimeout       = 120 * time.Second
	shutdownTimeout   = 10 * time.Second
	maxHeaderBytes    = 64 << 10
	requestTimeout    = 30 * time.Second
	// detectorBudget: the detector refuses within 10 s (SPEC §4), probes run in parallel.
	detectorBudget = 9 * time.Second
)

func serveCmd(g *globals) *cobra.Command {
	return &cobra.Command{
		Use:   "serve",
		Short: "Run the gateway",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cfg, err := g.load()
			if err != nil {
				return err
			}
			ctx, stop := signal.NotifyContext(cmd.Context(), os.Interrupt, syscall.SIGTERM)
			defer stop()
			return serve(ctx, g.log, cfg)
		},
	}
}

func serve(ctx context.Context, log *slog.Logger, cfg *config.Config) error {
	t, err := targets(cfg)
	if err != nil {
		return err
	}
	// The tier detector runs before anything else talks to a service.
	dctx, cancel := context.WithTimeout(ctx, detectorBudget)
	report := tier.Check(dctx, t)
	cancel()
	if err := report.Err(); err != nil {
		return err
	}
	st, err := openStore(ctx, cfg, t)
	if err != nil {
		return err
	}
	defer st.Close()
	checkers := []localapi.Checker{{Name: "storage", Check: st.Ping}}
	if t.ValkeyURL != "" {
		opt, err := redis.ParseURL(t.ValkeyURL)
		if err != nil {
			return fmt.Errorf("valkey: not a valid redis:// URL")
		}
		rdb := redis.NewClient(opt)
		defer rdb.Close()
		checkers = append(checkers, localapi.Checker{Name: "valkey", Check: func(ctx context.Context) error { return rdb.Ping(ctx).Err() }})
	}

	metrics := httpx.NewMetrics("api")
	r := mux.NewRouter()
	r.Use(metrics.Middleware)
	healthz, readyz := localapi.Health(log, checkers)
	r.Handle("/healthz", healthz).Methods(http.MethodGet)
	r.Handle("/readyz", readyz).Methods(http.MethodGet)
	r.Handle("/metrics", metrics.Handler()).Methods(http.MethodGet)
	apiCfg := localapi.Config{Store: st, Embedder: embed.Hashing{}, Log: log}
	var fs *fedstore.Store
	if cfg.Tier == config.TierFederated {
		if fs, err = fedstore.Open(ctx, t.PostgresURL); err != nil {
			return err
		}
		defer fs.Close()
		keys, err := sealing.Load(cfg.SealingKeyFile)
		if err != nil {
			return err
		}
		// Peers' keys are unsealed on first use and kept in memory only.
		apiCfg.Peers = &fedclient.Directory{Fed: fs, Keys: keys}
	}
	localapi.New(apiCfg).Register(r)
	r.NotFoundHandler = httpx.NotFound(log)
	r.MethodNotAllowedHandler = httpx.MethodNotAllowed(log)
	log.Info("starting", "tier", cfg.Tier, "site", cfg.Site, "storage", st.Engine())
	api := httpx.RequestID(httpx.LimitBody(log, httpx.Deadline(requestTimeout, r)))
	if cfg.Tier != config.TierFederated {
		return listenAndServe(ctx, log, cfg.Listen.API, api)
	}
	fed, err := federationListener(ctx, log, cfg, fs, st)
	if err != nil {
		return err
	}
	// Both listeners live and die together.
	ctx, stop := context.WithCancel(ctx)
	defer stop()
	errc := make(chan error, 2)
	go func() { errc <- listenAndServe(ctx, log, cfg.Listen.API, api) }()
	go func() { errc <- fedserver.Serve(ctx, fed) }()
	first := <-errc
	stop()
	return errors.Join(first, <-errc)
}

// federationListener gets the listener's certificate from the site's step-ca, through
// the listener provisioner, and the federation provisioner that enrollment signs with.
func federationListener(ctx context.Context, log *slog.Logger, cfg *config.Config, fs *fedstore.Store, st store.Store) (fedserver.Config, error) {
	rootPEM, err := os.ReadFile(cfg.CA.Root)
	if err != nil {
		return fedserver.Config{}, fmt.Errorf("ca.root: %w", err)
	}
	block, _ := pem.Decode(rootPEM)
	if block == nil {
		return fedserver.Config{}, fmt.Errorf("ca.root %s: no PEM certificate", cfg.CA.Root)
	}
	root, err := x509.ParseCertificate(block.Bytes)
	if err != nil {
		return fedserver.Config{}, fmt.Errorf("ca.root %s: %w", cfg.CA.Root, err)
	}
	password, err := config.ReadSecret(cfg.CA.ProvisionerPasswordFile)
	if err != nil {
		return fedserver.Config{}, fmt.Errorf("ca.provisioner_password_file: %w", err)
	}
	public, err := url.Parse(cfg.Federation.PublicURL)
	if err != nil || public.Hostname() == "" {
		return fedserver.Config{}, errors.New(`config: field "federation.public_url" must be an https:// URL with a host`)
	}
	pool := x509.NewCertPool()
	pool.AddCert(root)
	cctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	// Each key decryption is 600,000 PBKDF2 rounds: both at once, once per process.
	clients := make([]*caclient.Client, 2)
	errs := make([]error, 2)
	var wg sync.WaitGroup
	for i, name := range []string{cfg.CA.ListenerProvisioner, cfg.CA.Provisioner} {
		wg.Add(1)
		go func() {
			defer wg.Done()
			clients[i], errs[i] = caclient.New(cctx, caclient.Config{URL: cfg.CA.URL, Roots: pool, Provisioner: name, Password: []byte(password)})
		}()
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		return fedserver.Config{}, fmt.Errorf("step-ca at %s: %w", cfg.CA.URL, err)
	}
	cert, err := clients[0].ServerCertificate(cctx, public.Hostname())
	if err != nil {
		return fedserver.Config{}, fmt.Errorf("listener certificate: %w", err)
	}
	log.Info("listener certificate issued", "serial", cert.Leaf.SerialNumber.Text(16), "not_after", cert.Leaf.NotAfter)
	guard := &fedserver.Guard{Fed: fs, Provisioner: cfg.CA.Provisioner, ProvisionerKID: clients[1].KeyID(), Log: log}
	return fedserver.Config{Addr: cfg.Listen.Federation, Cert: cert, Root: root, Log: log,
		Enroll: &fedserver.Enroller{Fed: fs, CA: clients[1], Log: log},
		Guard:  guard, Verbs: &fedserver.Verbs{Store: st, Site: cfg.Site, Guard: guard, Log: log}}, nil
}

// listenAndServe serves until ctx ends, then shuts down with a fresh deadline (the
// cancelled ctx would abort in-flight requests at once).
func listenAndServe(ctx context.Context, log *slog.Logger, addr string, h http.Handler) error {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return fmt.Errorf("listen.api %s: %w", addr, err)
	}
	srv := &http.Server{
		Handler:           http.MaxBytesHandler(h, httpx.MaxBody),
		ReadHeaderTimeout: readHeaderTimeout,
		ReadTimeout:       readTimeout,
		WriteTimeout:      writeTimeout,
		IdleTimeout:       idleTimeout,
		MaxHeaderBytes:    maxHeaderBytes,
		ErrorLog:          slog.NewLogLogger(log.Handler(), slog.LevelWarn),
	}
	log.Info("serving", "api", ln.Addr().String())
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	select {
	case err := <-errc:
		return err
	case <-ctx.Done():
	}
	log.Info("shutting down")
	sctx, cancel := context.WithTimeout(context.Background(), shutdownTimeout)
	defer cancel()
	return srv.Shutdown(sctx)
}
