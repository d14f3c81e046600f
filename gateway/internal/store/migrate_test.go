package store

import (
	"context"
	"database/sql"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/mosaic-federation/mosaic/gateway/api"
)

func needPostgres(t testing.TB) {
	t.Helper()
	if pgAdminURL == "" {
		t.Skip("no PostgreSQL")
	}
}

func TestMigrationCopiesVerifiesAndCatchesDrift(t *testing.T) {
	needPostgres(t)
	ctx := context.Background()
	src, err := OpenSQLite(ctx, filepath.Join(t.TempDir(), "src.db"))
	must(t, err)
	defer src.Close()
	f := seedFixture(t, src)
	for i := range 30 {
		must(t, src.PutTask(ctx, task(f.alice, &f.core, i)))
	}
	emb := make([]float32, 256)
	emb[7] = 0.5
	must(t, src.PutMemory(ctx, api.Memory{ID: uuid.NewString(), OwnerUserID: f.alice, Content: "m", CreatedAt: epoch}, emb))
	must(t, src.PutCredential(ctx, Credential{ID: uuid.NewString(), OwnerUserID: f.alice, Provider: "p", SecretSealed: []byte{1, 2, 3}}))
	must(t, src.SetTokenHash(ctx, f.alice, []byte("0123456789abcdef0123456789abcdef")))

	dst := openFreshPostgres(t)
	for _, tc := range tableSpecs {
		if n, err := ForeignRows(ctx, src, dst, tc.name); err != nil || n != 0 {
			t.Fatalf("foreign rows in an empty target: %d %v", n, err)
		}
		if _, err := CopyTable(ctx, src, dst, tc.name, 7, func(int) {}); err != nil {
			t.Fatal(err)
		}
	}
	for _, tc := range tableSpecs {
		if err := VerifyTable(ctx, src, dst, tc.name, 1000); err != nil {
			t.Fatal(err)
		}
	}
	page, err := dst.List(ctx, Viewer{f.bob}, api.ResourceTasks, ListOptions{Limit: 100})
	must(t, err)
	if len(page.Items) != 30 {
		t.Fatalf("bob sees %d migrated team tasks, want 30", len(page.Items))
	}

	d := dst.(*sqlStore)
	if _, err := d.db.ExecContext(ctx, `UPDATE tasks SET title = 'drift' WHERE id = (SELECT id FROM tasks LIMIT 1)`); err != nil {
		t.Fatal(err)
	}
	if err := VerifyTable(ctx, src, dst, "tasks", 1000); err == nil || !strings.Contains(err.Error(), "column title differs") || strings.Contains(err.Error(), "drift") {
		t.Fatalf("drift not caught, or a value quoted: %v", err)
	}
	if _, err := d.db.ExecContext(ctx, `INSERT INTO teams (id, name, created_at) VALUES ($1, 'elsewhere', now())`, uuid.NewString()); err != nil {
		t.Fatal(err)
	}
	if n, _ := ForeignRows(ctx, src, dst, "teams"); n != 1 {
		t.Fatalf("foreign teams: %d, want 1", n)
	}
}

// BenchmarkMigrateTasks100k copies 10⁵ tasks from SQLite into a fresh PostgreSQL
// database per iteration and reports the median rate.
//
//	go test -run='^$' -bench=MigrateTasks100k -benchtime=3x ./gateway/internal/store
func BenchmarkMigrateTasks100k(b *testing.B) {
	needPostgres(b)
	ctx := context.Background()
	src, err := OpenSQLite(ctx, filepath.Join(b.TempDir(), "src.db"))
	if err != nil {
		b.Fatal(err)
	}
	defer src.Close()
	owner := uuid.NewString()
	if err := src.UpsertUser(ctx, User{ID: owner, Email: "b@example.test", DisplayName: "B", Role: "member", CreatedAt: epoch}); err != nil {
		b.Fatal(err)
	}
	db := src.(*sqlStore).db
	tx, err := db.BeginTx(ctx, &sql.TxOptions{})
	if err != nil {
		b.Fatal(err)
	}
	for i := range 100_000 {
		at := epoch.Add(time.Duration(i) * time.Second).Format(sqliteTime)
		if _, err := tx.ExecContext(ctx, `INSERT INTO tasks VALUES (?, ?, NULL, ?, 'open', NULL, ?, ?)`, uuid.NewString(), owner, "task", at, at); err != nil {
			b.Fatal(err)
		}
	}
	if err := tx.Commit(); err != nil {
		b.Fatal(err)
	}
	var rates []float64
	b.ResetTimer()
	for range b.N {
		b.StopTimer()
		dst := openFreshPostgres(b)
		if _, err := CopyTable(ctx, src, dst, "users", 1000, func(int) {}); err != nil {
			b.Fatal(err)
		}
		b.StartTimer()
		start := time.Now()
		n, err := CopyTable(ctx, src, dst, "tasks", 1000, func(int) {})
		if err != nil || n != 100_000 {
			b.Fatal(n, err)
		}
		rates = append(rates, float64(n)/time.Since(start).Seconds())
	}
	slices.Sort(rates)
	b.ReportMetric(rates[len(rates)/2], "rows/s")
}
