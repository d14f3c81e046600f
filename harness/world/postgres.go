package world

import (
	"context"
	"fmt"
	"net/url"
	"strconv"

	"github.com/jackc/pgx/v5"
)

// The superuser and database of every site's throw-away cluster.
const (
	PostgresSuperuser = "mosaic"
	PostgresDatabase  = "gateway"
)

// PostgresURL connects to db on 127.0.0.1:port as the cluster's superuser.
func PostgresURL(password string, port int, db string) string {
	u := url.URL{Scheme: "postgres", User: url.UserPassword(PostgresSuperuser, password),
		Host: "127.0.0.1:" + strconv.Itoa(port), Path: "/" + db, RawQuery: "sslmode=disable"}
	return u.String()
}

// CreateGatewayDatabase makes the gateway's database and, where pgvector is installed,
// the vector extension in it.
func CreateGatewayDatabase(ctx context.Context, adminURL, dbURL string) error {
	admin, err := pgx.Connect(ctx, adminURL)
	if err != nil {
		return err
	}
	defer admin.Close(context.Background())
	if _, err := admin.Exec(ctx, "CREATE DATABASE "+PostgresDatabase); err != nil {
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
