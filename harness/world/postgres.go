package world

import (
	"context"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"syscall"

	"github.com/jackc/pgx/v5"

	"github.com/mosaic-federation/mosaic/harness/internal/proc"
)

const (
	pgSuperuser = "mosaic"
	pgDatabase  = "gateway"
)

// postgresArgs builds the server's argv: loopback TCP only, its socket in its own folder.
func postgresArgs(dataDir, socketDir string, port int) []string {
	return []string{
		"-D", dataDir,
		"-p", strconv.Itoa(port),
		"-c", "listen_addresses=127.0.0.1",
		"-c", "unix_socket_directories=" + socketDir,
		"-c", "max_connections=200",
	}
}

func postgresURL(password string, port int, db string) string {
	u := url.URL{Scheme: "postgres", User: url.UserPassword(pgSuperuser, password),
		Host: "127.0.0.1:" + strconv.Itoa(port), Path: "/" + db, RawQuery: "sslmode=disable"}
	return u.String()
}

// StartPostgres creates a fresh cluster (initdb as the unprivileged user), starts it,
// creates the gateway database with the vector extension and writes secrets/pg.url.
func (b *processBackend) StartPostgres(ctx context.Context, s *Site) (*Postgres, error) {
	dir := s.path("postgres")
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, err
	}
	if err := chownTo(b.pgCred, dir); err != nil {
		return nil, err
	}
	password := randomHex(16)
	pwfile := filepath.Join(dir, "pwfile")
	if err := writeSecret(pwfile, password+"\n"); err != nil {
		return nil, err
	}
	if err := chownTo(b.pgCred, pwfile); err != nil {
		return nil, err
	}
	dataDir := filepath.Join(dir, "data")
	err := runOnce(ctx, proc.Spec{
		Path: b.bins.initdb,
		Args: []string{"-D", dataDir, "-U", pgSuperuser, "--auth=scram-sha-256", "--pwfile=" + pwfile,
			"-E", "UTF8", "--locale=C", "--no-sync", "--no-instructions"},
		Env: b.env(), Dir: dir, Credential: b.pgCred, LogPath: s.logPath("initdb"),
	})
	os.Remove(pwfile)
	if err != nil {
		return nil, err
	}

	pg := &Postgres{}
	p := b.newProc(proc.Spec{
		Name: s.Name + "/postgres", Path: b.bins.postgres, Env: b.env(), Dir: dir,
		Credential: b.pgCred, LogPath: s.logPath("postgres"), StopSignal: syscall.SIGINT,
		Ready: func(ctx context.Context) error { return pingPostgres(ctx, pg.AdminURL) },
	})
	pg.Service = p
	s.world.track(pg)
	ports, err := startOnFreePorts(ctx, p, 1, func(ports []int) error {
		pg.AdminURL = postgresURL(password, ports[0], "postgres")
		p.SetArgs(postgresArgs(dataDir, dir, ports[0]), ports[0])
		return nil
	})
	if err != nil {
		return nil, err
	}
	pg.Port = ports[0]
	pg.URL = postgresURL(password, pg.Port, pgDatabase)
	if err := createDatabase(ctx, pg.AdminURL, pg.URL); err != nil {
		return nil, err
	}
	return pg, writeSecret(s.path(secretsDir, "pg.url"), pg.URL+"\n")
}

func pingPostgres(ctx context.Context, dsn string) error {
	conn, err := pgx.Connect(ctx, dsn)
	if err != nil {
		return err
	}
	defer conn.Close(context.Background())
	return conn.Ping(ctx)
}

// createDatabase makes the gateway's database and, where pgvector is installed, the
// vector extension in it.
func createDatabase(ctx context.Context, adminURL, dbURL string) error {
	admin, err := pgx.Connect(ctx, adminURL)
	if err != nil {
		return err
	}
	defer admin.Close(context.Background())
	if _, err := admin.Exec(ctx, "CREATE DATABASE "+pgDatabase); err != nil {
		return fmt.Errorf("create database: %w", err)
	}
	db, err := pgx.Connect(ctx, dbURL)
	if err != nil {
		return err
	}
	defer db.Close(context.Background())
	// Only where the server has pgvector: a cluster built without it (for the
	// detector's specs) boots too, and a site's gateway names the problem itself.
	var available bool
	if err := db.QueryRow(ctx, "SELECT EXISTS (SELECT 1 FROM pg_available_extensions WHERE name = 'vector')").Scan(&available); err != nil {
		return err
	}
	if !available {
		return nil
	}
	if _, err := db.Exec(ctx, "CREATE EXTENSION IF NOT EXISTS vector"); err != nil {
		return fmt.Errorf("create extension vector: %w", err)
	}
	return nil
}
