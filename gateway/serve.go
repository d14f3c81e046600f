package main

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
	"net/url"
	"os"
	"slices"
	"sync"
	"time"

	"github.com/gorilla/mux"
	"github.com/redis/go-redis/v9"
	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/trace"

	"github.com/mosaic-federation/mosaic/gateway/api"
	"github.com/mosaic-federation/mosaic/gateway/internal/audit"
	"github.com/mosaic-federation/mosaic/gateway/internal/caclient"
	"github.com/mosaic-federation/mosaic/gateway/internal/changes"
	"github.com/mosaic-federation/mosaic/gateway/internal/config"
	"github.com/mosaic-federation/mosaic/gateway/internal/embed"
	"github.com/mosaic-federation/mosaic/gateway/internal/fedserver"
	"github.com/mosaic-federation/mosaic/gateway/internal/guard"
	"github.com/mosaic-federation/mosaic/gateway/internal/httpx"
	"github.com/mosaic-federation/mosaic/gateway/internal/localapi"
	"github.com/mosaic-federation/mosaic/gateway/internal/peercache"
	"github.com/mosaic-federation/mosaic/gateway/internal/peers"
	"github.com/mosaic-federation/mosaic/gateway/internal/ratelimit"
	"github.com/mosaic-federation/mosaic/gateway/internal/renewal"
	"github.com/mosaic-federation/mosaic/gateway/internal/revocation"
	"github.com/mosaic-federation/mosaic/gateway/internal/sealing"
	"github.com/mosaic-federation/mosaic/gateway/internal/site"
	"github.com/mosaic-federation/mosaic/gateway/internal/telemetry"
	"github.com/mosaic-federation/mosaic/gateway/internal/tier"
)

// Server timeouts (the listeners' own are httpx.Limits, from listen.* in the config).
const (
	requestTimeout = 30 * time.Second
	// detectorBudget: the detector refuses within 10 s (SPEC §4), probes run in parallel.
	detectorBudget = 9 * time.Second
	// renewalCheck is how often the outbound peers are checked for a renewal due.
	renewalCheck = 5 * time.Second
)

func serve(ctx context.Context, log *slog.Logger, cfg *config.Config) error {
	t, err := site.Targets(cfg)
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
	s, err := site.Open(ctx, cfg, t, log)
	if err != nil {
		return err
	}
	defer s.Close()
	var onChange handlers
	checkers := []localapi.Checker{{Name: "storage", Check: s.Store.Ping}}
	var rdb *redis.Client
	if t.ValkeyURL != "" {
		opt, err := redis.ParseURL(t.ValkeyURL)
		if err != nil {
			return fmt.Errorf("valkey: not a valid redis:// URL")
		}
		// Valkey going away while serving must not hold requests up: the limiter
		// falls back to memory at once (ratelimit).
		opt.DialTimeout, opt.ReadTimeout, opt.WriteTimeout, opt.MaxRetries = time.Second, time.Second, time.Second, -1
		rdb = redis.NewClient(opt)
		defer rdb.Close()
		checkers = append(checkers, localapi.Checker{Name: "valkey", Soft: true,
			Check: func(ctx context.Context) error { return rdb.Ping(ctx).Err() }})
	}
	// Spans are exported only with telemetry.otlp_endpoint; their ids are the trace
	// context both sites' audit rows share either way. Stopping flushes the batch.
	tp, err := telemetry.NewTracerProvider(cfg.Site, cfg.Telemetry.OTLPEndpoint)
	if err != nil {
		return fmt.Errorf("telemetry.otlp_endpoint: %w", err)
	}
	defer func() { _ = tp.Shutdown(context.Background()) }()
	otel.SetTracerProvider(tp) // the peer calls' client spans (telemetry.PeerTransport)
	tracer := tp.Tracer(telemetry.Scope)

	// /metrics is served on listen.metrics only, never on the API listener.
	metrics := telemetry.NewMetrics()
	routes := httpx.NewMetrics(metrics.Registry, "api")
	r := mux.NewRouter()
	r.Use(routes.Route)
	healthz, readyz := localapi.Health(log, checkers)
	r.Handle("/healthz", healthz).Methods(http.MethodGet)
	r.Handle("/readyz", readyz).Methods(http.MethodGet)
	// A token's user is kept for localapi.TokenTTL; on PostgreSQL every user change is
	// announced (migration 00009) and drops it at once.
	apiCfg := localapi.Config{Store: s.Store, Embedder: embed.Hashing{}, Log: log, PeerTimeout: cfg.Federation.PeerTimeout.Duration,
		Tokens: localapi.NewTokens()}
	// Cancelled before the pool closes (defers run last-first), which waits for the
	// listener's connection.
	lctx, stopListening := context.WithCancel(ctx)
	defer stopListening()
	if s.Pool() != nil {
		go changes.Listen(lctx, s.Pool(), log, onChange.handle)
	}
	if cfg.Tier == config.TierFederated {
		keys, err := sealing.Load(cfg.SealingKeyFile)
		if err != nil {
			return err
		}
		// Peers' keys are unsealed on first use and kept in memory only; a change
		// announced by another process (the CLI, a replica) drops what is kept.
		ttl, stale := cfg.Federation.Cache.Durations()
		dir := &peers.Directory{Fed: s.Fed, Keys: keys, Audit: s.Audit, Log: log, Metrics: metrics,
			Cache:    peercache.New(peercache.Config{TTL: ttl, MaxStaleness: stale, MaxBytes: cfg.Federation.Cache.MaxBytes}),
			Breakers: &peers.Breakers{OpenFor: cfg.Federation.Breaker.OpenFor.Duration, Log: log, Metrics: metrics}}
		peerMetrics(ctx, metrics, s.Fed)
		apiCfg.Peers = dir
		onChange.add(dir.Forget)
		// Outbound peers' certificates renew themselves at their renew_at (SPEC §6d).
		go (&renewal.Renewer{Fed: s.Fed, Keys: keys, Audit: s.Audit, Log: log}).Run(lctx, renewalCheck)
	}
	localAPI := localapi.New(apiCfg)
	onChange.add(localAPI.Forget)
	localAPI.Register(r)
	r.NotFoundHandler = httpx.NotFound(log)
	r.MethodNotAllowedHandler = httpx.MethodNotAllowed(log)
	log.Info("starting", "tier", cfg.Tier, "site", cfg.Site, "storage", s.Store.Engine())
	api := httpx.RequestID(httpx.LimitBody(log, httpx.Deadline(requestTimeout, httpx.Trace(tracer, "api", routes.Wrap(r)))))
	lim := limitsOfListen(cfg.Listen)
	servers := []func(context.Context) error{func(ctx context.Context) error { return listenAndServe(ctx, log, cfg.Listen.API, api, lim) }}
	if cfg.Listen.Metrics != "" {
		servers = append(servers, func(ctx context.Context) error {
			return telemetry.Serve(ctx, cfg.Listen.Metrics, metrics, cfg.Telemetry.Pprof, log)
		})
	}
	if cfg.Tier == config.TierFederated {
		fed, err := federationListener(ctx, log, cfg, s, rdb, tracer, metrics)
		if err != nil {
			return err
		}
		onChange.add(fed.revocation.onChange)
		defer fed.flood.Close(context.Background())
		servers = append(servers, func(ctx context.Context) error {
			return fedserver.Serve(ctx, cfg.Listen.Federation, fed.tls, fed.handler, lim, log)
		})
	}
	return serveAll(ctx, servers)
}

// serveAll runs the listeners until one stops: they live and die together.
func serveAll(ctx context.Context, servers []func(context.Context) error) error {
	ctx, stop := context.WithCancel(ctx)
	defer stop()
	errc := make(chan error, len(servers))
	for _, serve := range servers {
		go func() { errc <- serve(ctx) }()
	}
	errs := []error{<-errc}
	stop()
	for range servers[1:] {
		errs = append(errs, <-errc)
	}
	return errors.Join(errs...)
}

// listener is the federation listener's TLS configuration and handler.
type listener struct {
	tls        *tls.Config
	handler    http.Handler
	flood      *audit.Flood
	revocation revocations
}

// handlers fans a change announced by another process out to everything that keeps
// state derived from the database; added to while the listener already runs.
type handlers struct {
	mu sync.Mutex
	fs []func(changes.Change)
}

func (h *handlers) add(f func(changes.Change)) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.fs = append(h.fs, f)
}

func (h *handlers) handle(c changes.Change) {
	h.mu.Lock()
	fs := slices.Clone(h.fs)
	h.mu.Unlock()
	for _, f := range fs {
		f(c)
	}
}

// revocations are the listener's CRL and the sweeper that revokes at the CA.
type revocations struct {
	list    *revocation.List
	sweeper *revocation.Sweeper
}

// onChange refetches the CRL when a revocation was announced and sweeps when a grant
// changed (a revoked grant's serials wait to be revoked at the CA).
func (r revocations) onChange(c changes.Change) {
	switch c.Kind {
	case changes.CRL:
		r.list.Kick()
	case changes.Grant:
		r.sweeper.Kick()
	case changes.All:
		r.list.Kick()
		r.sweeper.Kick()
	}
}

// federationListener gets the listener's certificate from the site's step-ca, through
// the listener provisioner, and the federation provisioner that enrollment signs with,
// and assembles the serving pipeline.
func federationListener(ctx context.Context, log *slog.Logger, cfg *config.Config, s *site.Site, rdb *redis.Client, tracer trace.Tracer,
	metrics *telemetry.Metrics) (listener, error) {
	rootPEM, err := os.ReadFile(cfg.CA.Root)
	if err != nil {
		return listener{}, fmt.Errorf("ca.root: %w", err)
	}
	block, _ := pem.Decode(rootPEM)
	if block == nil {
		return listener{}, fmt.Errorf("ca.root %s: no PEM certificate", cfg.CA.Root)
	}
	root, err := x509.ParseCertificate(block.Bytes)
	if err != nil {
		return listener{}, fmt.Errorf("ca.root %s: %w", cfg.CA.Root, err)
	}
	password, err := config.ReadSecret(cfg.CA.ProvisionerPasswordFile)
	if err != nil {
		return listener{}, fmt.Errorf("ca.provisioner_password_file: %w", err)
	}
	public, err := url.Parse(cfg.Federation.PublicURL)
	if err != nil || public.Hostname() == "" {
		return listener{}, errors.New(`config: field "federation.public_url" must be an https:// URL with a host`)
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
		return listener{}, fmt.Errorf("step-ca at %s: %w", cfg.CA.URL, err)
	}
	cert, err := clients[0].ServerCertificate(cctx, public.Hostname())
	if err != nil {
		return listener{}, fmt.Errorf("listener certificate: %w", err)
	}
	log.Info("listener certificate issued", "serial", cert.Leaf.SerialNumber.Text(16), "not_after", cert.Leaf.NotAfter)
	metrics.Certificate("listener", func() time.Time { return cert.Leaf.NotAfter })
	rev, err := startRevocation(ctx, cctx, log, cfg, s, root, cert, clients[1])
	if err != nil {
		return listener{}, err
	}
	limits, err := limitsOf(cfg.Federation.RateLimit, ratelimit.New(rdb, log))
	if err != nil {
		return listener{}, err
	}
	flood := audit.NewFlood(s.Audit, floodKeys)
	srv := &fedserver.Server{Site: cfg.Site, Root: root, Store: s.Store, Audit: s.Audit, Flood: flood, Limits: limits,
		Tracer: tracer, Metrics: metrics, Log: log,
		Guard: &guard.Guard{Grants: s.Fed, Provisioner: cfg.CA.Provisioner, ProvisionerKID: clients[1].KeyID(),
			Revoked: rev.list},
		Enroll: &fedserver.Enroller{Fed: s.Fed, CA: clients[1], Audit: s.Audit, Log: log,
			Lifetime: cfg.Federation.ClientCertLifetime.Duration},
		Renew: &fedserver.Renewer{Fed: s.Fed, CA: clients[1], Lifetime: cfg.Federation.ClientCertLifetime.Duration,
			Overlap: cfg.Federation.RenewalOverlap.Duration, Superseded: rev.sweeper.Kick, Log: log}}
	return listener{tls: fedserver.TLSConfig(root, cert, rev.list.VerifyConnection), handler: srv.Handler(), flood: flood,
		revocation: rev}, nil
}

// startRevocation fetches the CA's CRL (the listener does not start without one: a
// revoked certificate must never pass) and starts its refresh and the sweeper that
// revokes a revoked grant's serials at the CA, both until ctx ends.
func startRevocation(ctx, startCtx context.Context, log *slog.Logger, cfg *config.Config, s *site.Site, root *x509.Certificate,
	cert tls.Certificate, ca *caclient.Client) (revocations, error) {
	// The CRL is signed by the intermediate that issued the listener's certificate.
	if len(cert.Certificate) < 2 {
		return revocations{}, errors.New("listener certificate: the CA sent no intermediate with it")
	}
	intermediate, err := x509.ParseCertificate(cert.Certificate[1])
	if err == nil {
		err = intermediate.CheckSignatureFrom(root)
	}
	if err != nil {
		return revocations{}, fmt.Errorf("listener certificate: the CA's intermediate does not verify against ca.root: %w", err)
	}
	list := revocation.NewList(intermediate, ca.CRL, log)
	if err := list.Refresh(startCtx); err != nil {
		return revocations{}, fmt.Errorf("step-ca at %s: %w", cfg.CA.URL, err)
	}
	revoked := func(ctx context.Context, _ []string) {
		list.Kick()
		_ = changes.Announce(ctx, s.Pool(), changes.Change{Kind: changes.CRL})
	}
	sweeper := revocation.NewSweeper(s.Fed, ca, revoked, log)
	every := cfg.Federation.CRLRefresh.Duration
	go list.Run(ctx, every)
	go sweeper.Run(ctx, every)
	return revocations{list: list, sweeper: sweeper}, nil
}

// floodKeys bounds the refusals aggregated at once (client addresses and grants).
const floodKeys = 4096

// limitsOf is the configured rate limits (validated when the config loaded).
func limitsOf(c config.RateLimit, l *ratelimit.Limiter) (*fedserver.Limits, error) {
	perGrant, err := api.ParseRate(c.PerGrant)
	if err != nil {
		return nil, err
	}
	perAddress, err := api.ParseRate(c.PerAddress)
	if err != nil {
		return nil, err
	}
	return &fedserver.Limits{Limiter: l, PerGrant: ratelimit.Limit{Rate: perGrant, Burst: c.Burst},
		PerAddress: ratelimit.Limit{Rate: perAddress, Burst: perAddress.Count}, Hold: c.Hold()}, nil
}

// limitsOfListen is what both listeners hold their clients to.
func limitsOfListen(l config.Listen) httpx.Limits {
	return httpx.Limits{MaxConns: l.MaxConns, ReadHeaderTimeout: l.ReadHeaderTimeout.Duration, IdleTimeout: l.IdleTimeout.Duration}
}

// listenAndServe serves the local API until ctx ends.
func listenAndServe(ctx context.Context, log *slog.Logger, addr string, h http.Handler, lim httpx.Limits) error {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return fmt.Errorf("listen.api %s: %w", addr, err)
	}
	log.Info("serving", "api", ln.Addr().String())
	return httpx.NewServer(h, lim, log).Serve(ctx, ln)
}
