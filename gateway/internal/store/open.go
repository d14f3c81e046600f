package store

import (
	"context"
	"database/sql"
	"embed"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/jackc/pgx/v5/stdlib" // also the database/sql driver "pgx"
	"github.com/pressly/goose/v3"
	"github.com/pressly/goose/v3/lock"
	_ "modernc.org/sqlite" // pure-Go database/sql driver "sqlite"
)

//go:embed migrations
var migrations embed.FS

// OpenSQLite opens (creating if needed) the local tier's database file and migrates it.
func OpenSQLite(ctx context.Context, path string) (Store, error) {
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return nil, fmt.Errorf("create the database folder: %w", err)
	}
	dsn := "file:" + path + "?_pragma=foreign_keys(1)&_pragma=journal_mode(WAL)&_pragma=busy_timeout(5000)&_txlock=immediate"
	db, err := sql.Open("sqlite", dsn)
	if err != nil {
		return nil, err
	}
	s := &sqlStore{db: db, d: dialect{engine: "sqlite"}}
	if err := s.migrate(ctx, goose.DialectSQLite3, "migrations/sqlite"); err != nil {
		db.Close()
		return nil, err
	}
	return s, nil
}

// PostgresOptions say how to open a PostgreSQL store: over the process's pool, or
// (migration tools) a URL of its own.
type PostgresOptions struct {
	Pool *pgxpool.Pool
	URL  string
	// RequireVector creates the vector extension first (the federated tier); without
	// it embeddings are vector(256) only if pgvector is already installed in the
	// database, else real[].
	RequireVector bool
	MaxConns      int
}

// OpenPostgres connects and migrates. Errors never quote the URL.
func OpenPostgres(ctx context.Context, o PostgresOptions) (Store, error) {
	db, err := openDB(o)
	if err != nil {
		return nil, err
	}
	s := &sqlStore{db: db, d: dialect{engine: "postgres"}}
	if err := s.preparePostgres(ctx, o.RequireVector); err != nil {
		db.Close()
		return nil, err
	}
	return s, nil
}

// openDB is a database/sql handle over the process's pool (which bounds the
// connections), or over a URL of its own.
func openDB(o PostgresOptions) (*sql.DB, error) {
	if o.Pool != nil {
		return stdlib.OpenDBFromPool(o.Pool), nil
	}
	db, err := sql.Open("pgx", o.URL)
	if err != nil {
		return nil, fmt.Errorf("storage: the PostgreSQL URL does not parse")
	}
	if o.MaxConns > 0 {
		db.SetMaxOpenConns(o.MaxConns)
		db.SetMaxIdleConns(o.MaxConns)
	}
	db.SetConnMaxIdleTime(5 * time.Minute)
	return db, nil
}

// preparePostgres creates pgvector when the tier needs it, migrates, and learns
// whether embeddings are vector(256) or real[].
func (s *sqlStore) preparePostgres(ctx context.Context, requireVector bool) error {
	if requireVector {
		if _, err := s.db.ExecContext(ctx, `CREATE EXTENSION IF NOT EXISTS vector`); err != nil {
			return fmt.Errorf("storage: create extension vector: %w", err)
		}
	}
	if err := s.migrate(ctx, goose.DialectPostgres, "migrations/postgres"); err != nil {
		return err
	}
	var udt string
	err := s.db.QueryRowContext(ctx, `SELECT udt_name FROM information_schema.columns
		WHERE table_schema = current_schema() AND table_name = 'memories' AND column_name = 'embedding'`).Scan(&udt)
	if err != nil {
		return fmt.Errorf("storage: inspect memories.embedding: %w", err)
	}
	s.d.vector = udt == "vector"
	if s.d.vector {
		var version string
		if err := s.db.QueryRowContext(ctx, `SELECT extversion FROM pg_extension WHERE extname = 'vector'`).Scan(&version); err != nil {
			return fmt.Errorf("storage: read the pgvector version: %w", err)
		}
		s.d.iterative = IterativeScans(version)
	}
	return nil
}

// IterativeScans reports whether a pgvector version (extversion, "0.8.0") has
// iterative index scans, which came in 0.8.0.
func IterativeScans(version string) bool {
	var major, minor int
	if _, err := fmt.Sscanf(version, "%d.%d", &major, &minor); err != nil {
		return false
	}
	return major > 0 || minor >= 8
}

// migrate applies the embedded migrations; on PostgreSQL a session lock keeps two
// gateways starting together from migrating at once.
func (s *sqlStore) migrate(ctx context.Context, dialect goose.Dialect, dir string) error {
	fsys, err := fs.Sub(migrations, dir)
	if err != nil {
		return err
	}
	// Out of order: a database migrated by a build whose migrations landed in another
	// order (00005 before 00004, say) takes the missing one instead of refusing to
	// start; every migration stands alone.
	opts := []goose.ProviderOption{goose.WithAllowOutofOrder(true)}
	if dialect == goose.DialectPostgres {
		locker, err := lock.NewPostgresSessionLocker()
		if err != nil {
			return err
		}
		opts = append(opts, goose.WithSessionLocker(locker))
	}
	p, err := goose.NewProvider(dialect, s.db, fsys, opts...)
	if err != nil {
		return fmt.Errorf("storage: migrations: %w", err)
	}
	if _, err := p.Up(ctx); err != nil {
		return fmt.Errorf("storage: migrate: %w", err)
	}
	return nil
}
