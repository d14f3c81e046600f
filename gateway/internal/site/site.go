// Package site opens what one gateway process works with, from its config, the same
// way for `serve` and every admin command: the secrets its probes need, one PostgreSQL
// pool shared by the native store, the federation data and the audit log, and the
// sealing keys.
package site

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"path/filepath"
	"strings"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/mosaic-federation/mosaic/gateway/internal/audit"
	"github.com/mosaic-federation/mosaic/gateway/internal/config"
	"github.com/mosaic-federation/mosaic/gateway/internal/fedstore"
	"github.com/mosaic-federation/mosaic/gateway/internal/sealing"
	"github.com/mosaic-federation/mosaic/gateway/internal/store"
	"github.com/mosaic-federation/mosaic/gateway/internal/tier"
)

// Targets reads the secret files a tier's probes need.
func Targets(cfg *config.Config) (tier.Targets, error) {
	t := tier.Targets{Tier: cfg.Tier, NeedVector: cfg.Tier == config.TierFederated}
	var err error
	if cfg.Tier != config.TierLocal {
		if t.PostgresURL, err = config.ReadSecret(cfg.Storage.PostgresURLFile); err != nil {
			return t, fmt.Errorf("storage.postgres_url_file: %w", err)
		}
	}
	if cfg.Tier == config.TierFederated {
		t.ValkeyURL = cfg.Valkey.URL
		t.CAURL, t.CARoot = strings.TrimRight(cfg.CA.URL, "/"), cfg.CA.Root
		if cfg.Valkey.URLFile != "" {
			if t.ValkeyURL, err = config.ReadSecret(cfg.Valkey.URLFile); err != nil {
				return t, fmt.Errorf("valkey.url_file: %w", err)
			}
		}
	}
	return t, nil
}

// Site is an opened site. Fed and Audit are set on the federated tier only.
type Site struct {
	Config *config.Config
	Store  store.Store
	Fed    *fedstore.Store
	Audit  *audit.Log
	pool   *pgxpool.Pool
}

// Open opens the tier's store (migrating it): SQLite for local, PostgreSQL otherwise
// over one pool of storage.max_conns connections, with the vector extension and the
// federation data on the federated tier. Errors never quote the URL.
func Open(ctx context.Context, cfg *config.Config, t tier.Targets, log *slog.Logger) (*Site, error) {
	if cfg.Tier == config.TierLocal {
		st, err := store.OpenSQLite(ctx, cfg.Storage.SQLitePath)
		if err != nil {
			return nil, err
		}
		return &Site{Config: cfg, Store: st}, nil
	}
	pc, err := pgxpool.ParseConfig(t.PostgresURL)
	if err != nil {
		return nil, errors.New("storage: the PostgreSQL URL does not parse")
	}
	pc.MaxConns = int32(cfg.Storage.MaxConns)
	pool, err := pgxpool.NewWithConfig(ctx, pc)
	if err != nil {
		return nil, fmt.Errorf("storage: %w", err)
	}
	st, err := store.OpenPostgres(ctx, store.PostgresOptions{Pool: pool, RequireVector: t.NeedVector})
	if err != nil {
		pool.Close()
		return nil, err
	}
	s := &Site{Config: cfg, Store: st, pool: pool}
	if cfg.Tier == config.TierFederated {
		key, err := audit.LoadKey(cfg.AuditKeyFile)
		if err != nil {
			s.Close()
			return nil, err
		}
		s.Fed, s.Audit = fedstore.New(pool), audit.New(pool, key, log)
	}
	return s, nil
}

// Pool is the process's PostgreSQL pool (nil on the local tier).
func (s *Site) Pool() *pgxpool.Pool { return s.pool }

// Close writes the audit rows still queued, then releases the store and the pool.
func (s *Site) Close() {
	if s.Audit != nil {
		s.Audit.Close()
	}
	s.Store.Close()
	if s.pool != nil {
		s.pool.Close()
	}
}

// Keyring loads the sealing keys; a local site creates its key file beside its
// database on first use. Other tiers without sealing_key_file get nil.
func Keyring(cfg *config.Config) (*sealing.Keyring, error) {
	switch {
	case cfg.SealingKeyFile != "":
		return sealing.Load(cfg.SealingKeyFile)
	case cfg.Tier == config.TierLocal:
		return sealing.LoadOrCreate(filepath.Join(filepath.Dir(cfg.Storage.SQLitePath), "sealing.key"))
	}
	return nil, nil
}
