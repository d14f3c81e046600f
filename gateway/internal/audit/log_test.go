package audit

import (
	"context"
	"crypto/rand"
	"io"
	"log/slog"
	"os"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/mosaic-federation/mosaic/gateway/internal/pgtest"
	"github.com/mosaic-federation/mosaic/gateway/internal/store"
)

func TestMain(m *testing.M) { os.Exit(pgtest.Main(m)) }

// replicas opens n audit logs over one migrated database, as n gateways of a site.
func replicas(tb testing.TB, n int) []*Log {
	tb.Helper()
	ctx := context.Background()
	url := pgtest.Database(tb)
	st, err := store.OpenPostgres(ctx, store.PostgresOptions{URL: url, RequireVector: true})
	if err != nil {
		tb.Fatal(err)
	}
	st.Close()
	key := make(Key, 32)
	_, _ = rand.Read(key)
	var logs []*Log
	for range n {
		pool, err := pgxpool.New(ctx, url)
		if err != nil {
			tb.Fatal(err)
		}
		l := New(pool, key, slog.New(slog.NewTextHandler(io.Discard, nil)))
		tb.Cleanup(func() { l.Close(); pool.Close() })
		logs = append(logs, l)
	}
	return logs
}

func row(i int) Entry {
	return Entry{Direction: Inbound, RequestID: "r", Actor: "peer:home", Action: "POST /api/federation/v1/list/{resource}",
		Verb: "list", Resource: "tasks", Outcome: "allowed", Reason: "ok", Status: 200, Rows: i, Duration: time.Millisecond}
}

// Two writers appending concurrently keep one chain that verifies, and no row is lost.
func TestTwoReplicasKeepOneChain(t *testing.T) {
	logs := replicas(t, 2)
	var wg sync.WaitGroup
	errs := make(chan error, 400)
	for i := range 400 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs <- logs[i%2].Append(context.Background(), row(i))
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	v, err := logs[0].Verify(context.Background(), nil)
	if err != nil || !v.OK || v.Rows != 400 || v.LegacyRows != 0 {
		t.Fatalf("verify: %+v %v", v, err)
	}
	h, err := logs[1].Head(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if v, _ := logs[0].Verify(context.Background(), &h); !v.OK {
		t.Errorf("the head just read is not in the chain: %+v", v)
	}
	h.MAC[0] ^= 1
	if v, _ := logs[0].Verify(context.Background(), &h); v.OK || v.FirstBad.Reason != HeadMissing {
		t.Errorf("a head not in the chain passed: %+v", v)
	}
}

// BenchmarkAppendTwoReplicas is audit rows per second sustained with two gateways
// writing, each request waiting for its row to be durable (group commit).
func BenchmarkAppendTwoReplicas(b *testing.B) {
	logs := replicas(b, 2)
	b.SetParallelism(32) // many requests in flight, as under load
	var n int64
	var mu sync.Mutex
	start := time.Now()
	b.RunParallel(func(pb *testing.PB) {
		mu.Lock()
		l := logs[n%2]
		n++
		mu.Unlock()
		for pb.Next() {
			if err := l.Append(context.Background(), row(1)); err != nil {
				b.Error(err)
				return
			}
		}
	})
	b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "rows/s")
}

// BenchmarkAppendCPU is the processor time one durable audit row costs, this process
// and PostgreSQL together, with 32 requests in flight on one writer.
func BenchmarkAppendCPU(b *testing.B) {
	l := replicas(b, 1)[0]
	cpu := func() time.Duration {
		pg, ok := pgtest.ServerCPU()
		if !ok {
			b.Skip("PostgreSQL is not this run's: its CPU cannot be read")
		}
		return pg + pgtest.SelfCPU()
	}
	b.SetParallelism(16)
	before := cpu()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if err := l.Append(context.Background(), row(1)); err != nil {
				b.Error(err)
				return
			}
		}
	})
	b.ReportMetric(float64((cpu()-before).Microseconds())/float64(b.N), "cpu-µs/row")
}

// A batch the database refuses is an error for every request in it (none is answered
// as audited), leaves nothing behind, and the next batch links to the chain as before.
func TestARefusedBatchIsAnErrorAndTheChainGoesOn(t *testing.T) {
	l := replicas(t, 1)[0]
	ctx := context.Background()
	if err := l.Append(ctx, row(1)); err != nil {
		t.Fatal(err)
	}
	bad := row(2)
	bad.Outcome = "unheard-of" // the table's CHECK refuses it
	if err := l.Append(ctx, bad); err == nil {
		t.Fatal("a row the database refused was reported written")
	}
	if err := l.Append(ctx, row(3)); err != nil {
		t.Fatalf("the batch after a refused one: %v", err)
	}
	v, err := l.Verify(ctx, nil)
	if err != nil || !v.OK || v.Rows != 2 {
		t.Fatalf("verify: %+v %v", v, err)
	}
}

// A pooled connection the server ended (PostgreSQL restarted, an administrator's
// pg_terminate_backend) fails before anything could commit: the batch is written on a
// fresh connection once, not refused, and exactly once.
func TestADeadPooledConnectionIsRetriedOnce(t *testing.T) {
	l := replicas(t, 1)[0]
	ctx := context.Background()
	if err := l.Append(ctx, row(1)); err != nil {
		t.Fatal(err)
	}
	if ended := endConnections(t, l); ended == 0 {
		t.Fatal("ended none of the pool's connections")
	}
	if err := l.Append(ctx, row(2)); err != nil {
		t.Fatalf("the write after its connection was ended: %v", err)
	}
	v, err := l.Verify(ctx, nil)
	if err != nil || !v.OK || v.Rows != 2 {
		t.Fatalf("verify: %+v %v", v, err)
	}
}

// After a restart every idle connection of the pool is dead: the write goes through
// them all to a live one rather than failing the request it holds.
func TestEveryDeadPooledConnectionIsPassed(t *testing.T) {
	l := replicas(t, 1)[0]
	ctx := context.Background()
	var held []*pgxpool.Conn
	for range 4 { // four idle connections in the pool
		c, err := l.pool.Acquire(ctx)
		if err != nil {
			t.Fatal(err)
		}
		held = append(held, c)
	}
	for _, c := range held {
		if err := c.Ping(ctx); err != nil {
			t.Fatal(err)
		}
		c.Release()
	}
	if ended := endConnections(t, l); ended < 4 {
		t.Fatalf("ended %d of the pool's connections, want 4", ended)
	}
	if err := l.Append(ctx, row(1)); err != nil {
		t.Fatalf("the write after the pool's connections were ended: %v", err)
	}
}

// endConnections ends every other connection to the log's database, as a PostgreSQL
// restart or an administrator's pg_terminate_backend does, and says how many.
func endConnections(t *testing.T, l *Log) int {
	t.Helper()
	ctx := context.Background()
	admin, err := pgx.Connect(ctx, l.pool.Config().ConnString())
	if err != nil {
		t.Fatal(err)
	}
	defer admin.Close(ctx)
	var ended int
	if err := admin.QueryRow(ctx, `SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity
		WHERE datname = current_database() AND pid <> pg_backend_pid()`).Scan(&ended); err != nil {
		t.Fatal(err)
	}
	return ended
}
