package seed

import (
	"bytes"
	"context"
	"path/filepath"
	"strings"
	"testing"

	"github.com/mosaic-federation/mosaic/gateway/internal/embed"
	"github.com/mosaic-federation/mosaic/gateway/internal/store"
)

// TestGenerateSQLite adds rows for a loaded seed set on SQLite and checks the counts,
// the summary and the progress lines.
func TestGenerateSQLite(t *testing.T) {
	ctx := context.Background()
	st, err := store.OpenSQLite(ctx, filepath.Join(t.TempDir(), "g.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	f, err := ParseBytes([]byte(`{"users":[{"id":"7d4f2c1e-8a3b-4c5d-9e6f-0a1b2c3d4e5f","email":"anne@example.test","display_name":"Anne","role":"member"}],
		"teams":[{"id":"1b2c3d4e-5f60-4718-8a9b-0c1d2e3f4a5b","name":"ops","members":["anne@example.test"]}]}`))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := Load(ctx, Deps{Store: st, Embedder: embed.Hashing{}}, f); err != nil {
		t.Fatal(err)
	}
	var progress bytes.Buffer
	res, err := Generate(ctx, st, embed.Hashing{}, Counts{Tasks: 120, Notes: 12, Memories: 3}, &progress)
	if err != nil {
		t.Fatal(err)
	}
	for table, want := range map[string]int{"tasks": 120, "notes": 12, "memories": 3} {
		if n, err := st.Count(ctx, table); err != nil || n != int64(want) || res.Counts[table] != want {
			t.Errorf("%s: stored %d (%v), reported %d, want %d", table, n, err, res.Counts[table], want)
		}
	}
	if !strings.Contains(progress.String(), "tasks: 120 of 120") {
		t.Errorf("progress: %q", progress.String())
	}
}
