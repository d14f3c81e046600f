package store

import (
	"context"
	"path/filepath"
	"slices"
	"testing"
)

// indexDefs lists a PostgreSQL table's indexes as the statements that create them.
func indexDefs(t *testing.T, s Store, table string) []string {
	t.Helper()
	rows, err := s.(*sqlStore).db.QueryContext(context.Background(),
		`SELECT indexdef FROM pg_indexes WHERE schemaname = current_schema() AND tablename = $1 ORDER BY indexname`, table)
	must(t, err)
	defer rows.Close()
	var out []string
	for rows.Next() {
		var def string
		must(t, rows.Scan(&def))
		out = append(out, def)
	}
	must(t, rows.Err())
	return out
}

// The bulk load into an empty table rebuilds exactly the indexes it dropped; a second
// copy (a re-run) finds rows and upserts; a load that fails half-way leaves the table
// empty with every index in place, so the next run bulk-loads again.
func TestBulkLoadKeepsIndexesAndRollsBack(t *testing.T) {
	needPostgres(t)
	ctx := context.Background()
	src, err := OpenSQLite(ctx, filepath.Join(t.TempDir(), "src.db"))
	must(t, err)
	defer src.Close()
	f := seedFixture(t, src)
	for i := range 50 {
		must(t, src.PutTask(ctx, task(f.alice, &f.core, i)))
	}
	dst := openFreshPostgres(t)
	want := indexDefs(t, dst, "tasks")
	if len(want) < 3 {
		t.Fatalf("tasks has %d indexes: the check below would prove little", len(want))
	}

	// tasks before users and teams: the foreign keys refuse the load part-way.
	if _, err := CopyTable(ctx, src, dst, "tasks", 7, func(int) {}); err == nil {
		t.Fatal("tasks copied before their owners")
	}
	if n, _ := dst.Count(ctx, "tasks"); n != 0 {
		t.Fatalf("a failed load left %d tasks", n)
	}
	if got := indexDefs(t, dst, "tasks"); !slices.Equal(got, want) {
		t.Fatalf("a failed load left indexes\n%q\nwant\n%q", got, want)
	}

	for _, table := range []string{"users", "teams", "team_members", "tasks", "tasks"} {
		if _, err := CopyTable(ctx, src, dst, table, 7, func(int) {}); err != nil {
			t.Fatalf("copy %s: %v", table, err)
		}
	}
	if n, _ := dst.Count(ctx, "tasks"); n != 50 {
		t.Fatalf("tasks after a load and a re-run: %d, want 50", n)
	}
	if got := indexDefs(t, dst, "tasks"); !slices.Equal(got, want) {
		t.Fatalf("indexes after the load\n%q\nwant\n%q", got, want)
	}
	must(t, VerifyTable(ctx, src, dst, "tasks", 1000))
}
