package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/gorilla/mux"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/redis/go-redis/v9"
	"github.com/spf13/cobra"

	"github.com/mosaic-federation/mosaic/gateway/internal/config"
	"github.com/mosaic-federation/mosaic/gateway/internal/localapi"
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
	if cfg.Tier != config.TierFederated {
		return fmt.Errorf("tier %q: serving this tier arrives with the storage milestone (M1); use tier federated", cfg.Tier)
	}
	pgURL, err := config.ReadSecret(cfg.Storage.PostgresURLFile)
	if err != nil {
		return fmt.Errorf("storage.postgres_url_file: %w", err)
	}
	pool, err := pgxpool.New(ctx, pgURL)
	if err != nil {
		// pgx's parse errors may quote the DSN: say only what to fix.
		return errors.New("storage.postgres_url_file does not hold a valid PostgreSQL URL (postgres://user:password@host:port/db)")
	}
	defer pool.Close()
	valkeyURL := cfg.Valkey.URL
	if cfg.Valkey.URLFile != "" {
		if valkeyURL, err = config.ReadSecret(cfg.Valkey.URLFile); err != nil {
			return fmt.Errorf("valkey.url_file: %w", err)
		}
	}
	opt, err := redis.ParseURL(valkeyURL)
	if err != nil {
		return errors.New("valkey: not a valid redis:// URL")
	}
	rdb := redis.NewClient(opt)
	defer rdb.Close()

	healthz, readyz := localapi.Health(log, []localapi.Checker{
		{Name: "postgres", Check: pool.Ping},
		{Name: "valkey", Check: func(ctx context.Context) error { return rdb.Ping(ctx).Err() }},
	})
	r := mux.NewRouter()
	r.Handle("/healthz", healthz).Methods(http.MethodGet)
	r.Handle("/readyz", readyz).Methods(http.MethodGet)
	return listenAndServe(ctx, log, cfg.Listen.API, r)
}

// listenAndServe serves until ctx ends, then shuts down with a fresh deadline (the
// cancelled ctx would abort in-flight requests at once).
func listenAndServe(ctx context.Context, log *slog.Logger, addr string, h http.Handler) error {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return fmt.Errorf("listen.api %s: %w", addr, err)
	}
	srv := &http.Server{
		Handler:           http.MaxBytesHandler(h, 1<<20),
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
