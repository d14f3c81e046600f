// Package tier checks that the services a tier needs answer, before anything else
// talks to them: the detector that gates `serve`, and `doctor`'s report. Messages
// are actionable and never carry a password, token or full DSN.
package tier

import (
	"context"
	"errors"
	"fmt"
	"net"
	"strings"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/redis/go-redis/v9"

	"github.com/mosaic-federation/mosaic/gateway/api"
	"github.com/mosaic-federation/mosaic/gateway/internal/redact"
)

// ProbeTimeout bounds each probe (SPEC §4): a hung service cannot stall start-up.
const ProbeTimeout = 5 * time.Second

// Targets are the services of a tier; empty fields are not probed.
type Targets struct {
	Tier        string
	PostgresURL string // standalone and federated
	ValkeyURL   string // federated
	NeedVector  bool   // federated: pgvector must be usable
	CAURL       string // federated: the site's step-ca, whose CRL the listeners enforce
	CARoot      string // its root certificate (PEM file)
}

// Service is one probe's outcome.
type Service = api.ServiceHealth

// Vector is what doctor reports of pgvector.
type Vector = api.PGVector

// Report is the detector's and doctor's finding: api.DoctorReport with its verdict.
type Report api.DoctorReport

// Check probes every target in parallel, each within ProbeTimeout.
func Check(ctx context.Context, t Targets) Report {
	r := Report{Tier: t.Tier, Services: []Service{}}
	var mu sync.Mutex
	var wg sync.WaitGroup
	hard := 0 // problems that make the site red (Valkey's only make it yellow)
	run := func(soft bool, probe func(context.Context) (Service, []string)) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			pctx, cancel := context.WithTimeout(ctx, ProbeTimeout)
			defer cancel()
			svc, problems := probe(pctx)
			mu.Lock()
			defer mu.Unlock()
			r.Services = append(r.Services, svc)
			r.Problems = append(r.Problems, problems...)
			if !soft {
				hard += len(problems)
			}
		}()
	}
	if t.PostgresURL != "" {
		run(false, func(ctx context.Context) (Service, []string) {
			svc, vec, problems := probePostgres(ctx, t.PostgresURL, t.NeedVector)
			mu.Lock()
			r.PGVector = vec
			mu.Unlock()
			return svc, problems
		})
	}
	if t.ValkeyURL != "" {
		// A running gateway without Valkey limits in memory (degraded): yellow. It still
		// refuses to start without it (Err).
		run(true, func(ctx context.Context) (Service, []string) { return probeValkey(ctx, t.ValkeyURL) })
	}
	if t.CAURL != "" {
		run(true, func(ctx context.Context) (Service, []string) { return probeCA(ctx, t.CAURL, t.CARoot) })
	}
	wg.Wait()
	switch {
	case hard > 0:
		r.Overall = "red"
	case len(r.Problems) > 0:
		r.Overall = "yellow"
	case t.Tier == "standalone" && t.PostgresURL != "" && !r.PGVector.Installed:
		r.Overall = "yellow" // works, but vector search is an exact scan
	default:
		r.Overall = "green"
	}
	return r
}

// Err joins the problems into one error (nil when there are none).
func (r Report) Err() error {
	if len(r.Problems) == 0 {
		return nil
	}
	return errors.New("the " + r.Tier + " tier cannot start:\n  - " + strings.Join(r.Problems, "\n  - "))
}

func probePostgres(ctx context.Context, dsn string, needVector bool) (Service, Vector, []string) {
	red := redact.New(dsn)
	where := redact.URL(dsn)
	svc := Service{Name: "postgres", Status: "down"}
	start := time.Now()
	conn, err := pgx.Connect(ctx, dsn)
	if err == nil {
		defer conn.Close(context.Background())
		err = conn.Ping(ctx)
	}
	svc.LatencyMS = time.Since(start).Milliseconds()
	if err != nil {
		svc.Detail = "unreachable: " + reason(err)
		return svc, Vector{}, []string{red.String(fmt.Sprintf(
			"PostgreSQL at %s is unreachable (%s): start PostgreSQL, or fix the URL in storage.postgres_url_file", where, reason(err)))}
	}
	svc.Status, svc.Detail = "up", "connected"
	var vec Vector
	var available, installed *string
	var super bool
	err = conn.QueryRow(ctx, `SELECT
		(SELECT default_version FROM pg_available_extensions WHERE name = 'vector'),
		(SELECT extversion FROM pg_extension WHERE extname = 'vector'),
		(SELECT rolsuper FROM pg_roles WHERE rolname = current_user)`).Scan(&available, &installed, &super)
	if err != nil {
		return svc, vec, []string{red.String("PostgreSQL: could not inspect extensions: " + reason(err))}
	}
	if installed != nil {
		vec = Vector{Installed: true, Version: *installed}
	}
	if !needVector || vec.Installed {
		return svc, vec, nil
	}
	switch {
	case available == nil:
		return svc, vec, []string{fmt.Sprintf("pgvector is not installed on the PostgreSQL server at %s: "+
			"install it there (Debian: postgresql-NN-pgvector, or build pgvector from source; `make deps` does this for the harness)", where)}
	case !super:
		return svc, vec, []string{fmt.Sprintf("pgvector is installed on the server at %s but this role may not CREATE EXTENSION vector "+
			"(pgvector is not a trusted extension): have a superuser run `CREATE EXTENSION vector;` in this database once", where)}
	}
	return svc, vec, nil // available and we are superuser: the store creates it
}

func probeValkey(ctx context.Context, raw string) (Service, []string) {
	where := redact.URL(raw)
	svc := Service{Name: "valkey", Status: "down"}
	opt, err := redis.ParseURL(raw)
	if err != nil {
		svc.Detail = "invalid URL"
		return svc, []string{fmt.Sprintf("Valkey URL %s does not parse: write redis://host:port/db in valkey.url (or valkey.url_file)", where)}
	}
	opt.MaxRetries, opt.DialTimeout = -1, ProbeTimeout
	c := redis.NewClient(opt)
	defer c.Close()
	start := time.Now()
	err = c.Ping(ctx).Err()
	svc.LatencyMS = time.Since(start).Milliseconds()
	if err != nil {
		svc.Detail = "unreachable: " + reason(err)
		return svc, []string{redact.New(raw).String(fmt.Sprintf(
			"Valkey at %s is unreachable (%s): start valkey-server (or redis-server), or fix valkey.url", where, reason(err)))}
	}
	svc.Status, svc.Detail = "up", "PONG"
	return svc, nil
}

// reason classifies a driver error in a few words without quoting it.
func reason(err error) string {
	var pgErr *pgconn.PgError
	var netErr net.Error
	msg := strings.ToLower(err.Error())
	switch {
	case errors.Is(err, context.DeadlineExceeded) || (errors.As(err, &netErr) && netErr.Timeout()):
		return fmt.Sprintf("no answer within %s", ProbeTimeout)
	case strings.Contains(msg, "connection refused"):
		return "connection refused"
	case strings.Contains(msg, "no such host"):
		return "unknown host"
	case errors.As(err, &pgErr) && pgErr.Code == "28P01":
		return "password authentication failed"
	case errors.As(err, &pgErr) && pgErr.Code == "3D000":
		return "the database does not exist"
	case errors.As(err, &pgErr):
		return "server error " + pgErr.Code
	case strings.Contains(msg, "noauth") || strings.Contains(msg, "wrongpass"):
		return "authentication failed"
	}
	return "connection failed"
}
