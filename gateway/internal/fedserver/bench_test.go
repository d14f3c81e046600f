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
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/mosaic-federation/mosaic/gateway/api"
	"github.com/mosaic-federation/mosaic/gateway/internal/audit"
	"github.com/mosaic-federation/mosaic/gateway/internal/pgtest"
	"github.com/mosaic-federation/mosaic/gateway/internal/store"
	"github.com/mosaic-federation/mosaic/gateway/internal/telemetry"
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
	st := openBenchStore(ctx, b, url)
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

// BenchmarkListTraced is the serving pipeline's CPU per list with
// telemetry.otlp_endpoint unset (the tracer provider without processor or exporter,
// as serve builds it) and set, exporting every span to an OTLP/HTTP receiver in this
// process (which reads and discards each post: its CPU is in the figure), then
// unset again, in one run. The audit writer is stubbed: the tracing's cost is the
// difference.
func BenchmarkListTraced(b *testing.B) {
	ctx := context.Background()
	st := openBenchStore(ctx, b, pgtest.Database(b))
	var posts atomic.Int64
	receiver := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		posts.Add(1)
		w.Header().Set("Content-Type", "application/x-protobuf")
	}))
	defer receiver.Close()
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	for _, v := range []struct{ name, endpoint string }{{"unset", ""}, {"exporting", receiver.URL}, {"unset-again", ""}} {
		tp, err := telemetry.NewTracerProvider("work", v.endpoint)
		if err != nil {
			b.Fatal(err)
		}
		s := &Server{Site: "work", Root: &x509.Certificate{Raw: []byte("r")}, Guard: fakeGuard{caller: activeCaller()},
			Store: st, Audit: noAudit{}, Log: log, Tracer: tp.Tracer(telemetry.Scope)}
		h := s.Handler()
		b.Run(v.name, func(b *testing.B) {
			b.SetParallelism(32 / runtime.GOMAXPROCS(0))
			before := posts.Load()
			start, cpu := time.Now(), worldCPU()
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
			// Flushing is part of the cost: the spans of these lists, posted.
			if err := tp.ForceFlush(ctx); err != nil {
				b.Fatal(err)
			}
			b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "lists/s")
			if used := worldCPU() - cpu; used > 0 {
				b.ReportMetric(float64(used.Microseconds())/float64(b.N), "cpu-µs/list")
			}
			if v.endpoint != "" && posts.Load() == before {
				b.Fatal("no span reached the receiver")
			}
		})
		_ = tp.Shutdown(ctx)
	}
}

// openBenchStore opens the database at url with a user and 200 of its tasks.
func openBenchStore(ctx context.Context, b *testing.B, url string) store.Store {
	st, err := store.OpenPostgres(ctx, store.PostgresOptions{URL: url, RequireVector: true, MaxConns: 16})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { st.Close() })
	if err := st.UpsertUser(ctx, store.User{ID: subject, Email: "s@example.test", DisplayName: "S", Role: "member", CreatedAt: time.Now()}); err != nil {
		b.Fatal(err)
	}
	for i := range 200 {
		at := time.Now().Add(-time.Duration(i) * time.Minute)
		if err := st.PutTask(ctx, api.Task{ID: uuid.NewString(), OwnerUserID: subject, Title: "task", Status: "open", CreatedAt: at, UpdatedAt: at}); err != nil {
			b.Fatal(err)
		}
	}
	return st
}
