package fedserver

import (
	"context"
	"crypto/rand"
	"crypto/x509"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/mosaic-federation/mosaic/gateway/api"
	"github.com/mosaic-federation/mosaic/gateway/internal/audit"
	"github.com/mosaic-federation/mosaic/gateway/internal/pgtest"
	"github.com/mosaic-federation/mosaic/gateway/internal/store"
)

func TestMain(m *testing.M) { os.Exit(pgtest.Main(m)) }

// noAudit is the writer stubbed out: what the audit costs is the difference.
type noAudit struct{}

func (noAudit) Append(context.Context, audit.Entry) error { return nil }

// worldCPU is the processor time this binary and its PostgreSQL have used, the cost
// figure a noisy machine disturbs least (0 when PostgreSQL is not this run's).
func worldCPU() time.Duration {
	pg, ok := pgtest.ServerCPU()
	if !ok {
		return 0
	}
	return pg + pgtest.SelfCPU()
}

// BenchmarkListAudited is federated lists per second through the serving pipeline
// over a real PostgreSQL, with the real group-committed audit writer ("audited") and
// with the writer stubbed ("stubbed"), so the audit's share of the cost is measured
// in one run, in lists per second and in CPU per list (this process and PostgreSQL).
// Without TLS and the guard's grant read: the pipeline's own cost.
func BenchmarkListAudited(b *testing.B) {
	ctx := context.Background()
	url := pgtest.Database(b)
	st, err := store.OpenPostgres(ctx, store.PostgresOptions{URL: url, RequireVector: true, MaxConns: 16})
	if err != nil {
		b.Fatal(err)
	}
	defer st.Close()
	if err := st.UpsertUser(ctx, store.User{ID: subject, Email: "s@example.test", DisplayName: "S", Role: "member", CreatedAt: time.Now()}); err != nil {
		b.Fatal(err)
	}
	for i := range 200 {
		at := time.Now().Add(-time.Duration(i) * time.Minute)
		if err := st.PutTask(ctx, api.Task{ID: uuid.NewString(), OwnerUserID: subject, Title: "task", Status: "open", CreatedAt: at, UpdatedAt: at}); err != nil {
			b.Fatal(err)
		}
	}
	pool, err := pgxpool.New(ctx, url)
	if err != nil {
		b.Fatal(err)
	}
	defer pool.Close()
	key := make(audit.Key, 32)
	_, _ = rand.Read(key)
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	real := audit.New(pool, key, log)
	defer real.Close()
	// Requests in flight: at 32 each request's wait for its batch's commit (an fsync)
	// is not hidden by the others; at 128 the server is saturated and only the audit's
	// CPU cost shows.
	for _, inflight := range []int{32, 128} {
		for _, w := range []struct {
			name string
			w    audit.Writer
		}{{"stubbed", noAudit{}}, {"audited", real}, {"stubbed-again", noAudit{}}} {
			s := &Server{Site: "work", Root: &x509.Certificate{Raw: []byte("r")}, Guard: fakeGuard{caller: activeCaller()},
				Store: st, Audit: w.w, Log: log}
			h := s.Handler()
			b.Run(fmt.Sprintf("inflight=%d/%s", inflight, w.name), func(b *testing.B) {
				b.SetParallelism(inflight / runtime.GOMAXPROCS(0))
				start, cpu, self := time.Now(), worldCPU(), pgtest.SelfCPU()
				b.RunParallel(func(pb *testing.PB) {
					for pb.Next() {
						rec := httptest.NewRecorder()
						h.ServeHTTP(rec, httptest.NewRequest(http.MethodPost, Prefix+"/list/tasks", strings.NewReader(`{"limit": 50}`)))
						if rec.Code != http.StatusOK {
							b.Errorf("%d %s", rec.Code, rec.Body)
							return
						}
					}
				})
				b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "lists/s")
				if used := worldCPU() - cpu; used > 0 {
					b.ReportMetric(float64(used.Microseconds())/float64(b.N), "cpu-µs/list")
					b.ReportMetric(float64((pgtest.SelfCPU()-self).Microseconds())/float64(b.N), "go-cpu-µs/list")
				}
			})
		}
	}
}
