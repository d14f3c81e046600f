// Package pgtest gives a package's tests and benchmarks a real PostgreSQL: the one
// named by $MOSAIC_TEST_POSTGRES_URL (a superuser URL), else one booted through the
// harness library for the test binary's run. Each test gets a database of its own.
// With CI=true a missing PostgreSQL fails instead of skipping. Only tests import it.
package pgtest

import (
	"context"
	"flag"
	"fmt"
	"net/url"
	"os"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"

	"github.com/mosaic-federation/mosaic/harness/world"
	"github.com/mosaic-federation/mosaic/harness/world/process"
)

var (
	boot     sync.Once
	adminURL string
	booted   *world.World
)

// Main runs the tests and tears down the PostgreSQL a test booted; call it from
// TestMain. PostgreSQL boots on the first Database call, so a test binary that asks
// for none pays nothing.
func Main(m *testing.M) int {
	flag.Parse()
	code := m.Run()
	if booted != nil {
		booted.Down()
	}
	return code
}

// start finds or boots PostgreSQL once (not under -short).
func start() {
	adminURL = os.Getenv("MOSAIC_TEST_POSTGRES_URL")
	if adminURL != "" || testing.Short() {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	w, pg, err := world.StandalonePostgres(ctx, world.Options{Backend: process.New(process.Config{})})
	if err != nil {
		fmt.Fprintf(os.Stderr, "pgtest: no PostgreSQL (%v)\n", err)
		return
	}
	booted, adminURL = w, pg.URL
}

// Database creates a database for one test (dropped when it ends) and returns its
// URL; without PostgreSQL it skips the test, or fails it under CI=true.
func Database(tb testing.TB) string {
	tb.Helper()
	boot.Do(start)
	if adminURL == "" {
		if os.Getenv("CI") == "true" {
			tb.Fatal("CI=true but no PostgreSQL: set MOSAIC_TEST_POSTGRES_URL or install PostgreSQL (make deps)")
		}
		tb.Skip("no PostgreSQL: set MOSAIC_TEST_POSTGRES_URL or run make deps")
	}
	ctx := context.Background()
	admin, err := pgx.Connect(ctx, adminURL)
	if err != nil {
		tb.Fatal(err)
	}
	defer admin.Close(ctx)
	name := "t_" + strings.ReplaceAll(uuid.NewString(), "-", "")[:16]
	if _, err := admin.Exec(ctx, "CREATE DATABASE "+name); err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() {
		if a, err := pgx.Connect(context.Background(), adminURL); err == nil {
			_, _ = a.Exec(context.Background(), "DROP DATABASE IF EXISTS "+name+" WITH (FORCE)")
			a.Close(context.Background())
		}
	})
	u, _ := url.Parse(adminURL)
	u.Path = "/" + name
	return u.String()
}

// ServerCPU is the processor time the PostgreSQL this binary booted has used so far
// (its backends included), and false when the tests use one named by
// $MOSAIC_TEST_POSTGRES_URL, whose processes are not this run's to measure.
func ServerCPU() (time.Duration, bool) {
	if booted == nil {
		return 0, false
	}
	return process.CPU(booted.RunDir), true
}

// SelfCPU is the processor time this test binary has used so far.
func SelfCPU() time.Duration {
	var ru syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
