package main

import (
	"context"
	"fmt"
	"path/filepath"

	"github.com/mosaic-federation/mosaic/gateway/internal/config"
	"github.com/mosaic-federation/mosaic/gateway/internal/sealing"
	"github.com/mosaic-federation/mosaic/gateway/internal/store"
	"github.com/mosaic-federation/mosaic/gateway/internal/tier"
)

// targets reads the secret files a tier's probes need.
func targets(cfg *config.Config) (tier.Targets, error) {
	t := tier.Targets{Tier: cfg.Tier, NeedVector: cfg.Tier == config.TierFederated}
	var err error
	if cfg.Tier != config.TierLocal {
		if t.PostgresURL, err = config.ReadSecret(cfg.Storage.PostgresURLFile); err != nil {
			return t, fmt.Errorf("storage.postgres_url_file: %w", err)
		}
	}
	if cfg.Tier == config.TierFederated {
		t.ValkeyURL = cfg.Valkey.URL
		if cfg.Valkey.URLFile != "" {
			if t.ValkeyURL, err = config.ReadSecret(cfg.Valkey.URLFile); err != nil {
				return t, fmt.Errorf("valkey.url_file: %w", err)
			}
		}
	}
	return t, nil
}

// maxDBConns bounds the gateway's connections: a flood of requests queues here rather
// than exhausting the PostgreSQL server every tenant shares.
const maxDBConns = 16

// openStore opens the tier's store: SQLite for local, PostgreSQL otherwise (with the
// vector extension on the federated tier).
func openStore(ctx context.Context, cfg *config.Config, t tier.Targets) (store.Store, error) {
	if cfg.Tier == config.TierLocal {
		return store.OpenSQLite(ctx, cfg.Storage.SQLitePath)
	}
	return store.OpenPostgres(ctx, store.PostgresOptions{URL: t.PostgresURL, RequireVector: t.NeedVector, MaxConns: maxDBConns})
}

// keyring loads the sealing keys; a local site creates its key file beside its
// database on first use. Other tiers without sealing_key_file get nil.
func keyring(cfg *config.Config) (*sealing.Keyring, error) {
	switch {
	case cfg.SealingKeyFile != "":
		return sealing.Load(cfg.SealingKeyFile)
	case cfg.Tier == config.TierLocal:
		return sealing.LoadOrCreate(filepath.Join(filepath.Dir(cfg.Storage.SQLitePath), "sealing.key"))
	}
	return nil, nil
}
