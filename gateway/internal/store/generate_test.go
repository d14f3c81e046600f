package store

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/mosaic-federation/mosaic/gateway/api"
)

// TestGenerate checks the synthetic mix on both engines: counts, a third personal,
// team rows owned by a member of their team, every status, times within the year.
func TestGenerate(t *testing.T) {
	for _, e := range engines() {
		t.Run(e.name, func(t *testing.T) {
			ctx := context.Background()
			s := e.open(t)
			g := s.(Generator)
			if err := g.Generate(ctx, GenerateOptions{Tasks: 3}); !errors.Is(err, ErrNoUsers) {
				t.Fatalf("no users: got %v, want ErrNoUsers", err)
			}
			anne, bob, team := uuid.NewString(), uuid.NewString(), uuid.NewString()
			must(t, s.UpsertUser(ctx, User{ID: anne, Email: "anne@example.test", DisplayName: "A", Role: "member", CreatedAt: epoch}))
			must(t, s.UpsertUser(ctx, User{ID: bob, Email: "bob@example.test", DisplayName: "B", Role: "member", CreatedAt: epoch}))
			must(t, s.UpsertTeam(ctx, Team{ID: team, Name: "t", CreatedAt: epoch}))
			must(t, s.AddMember(ctx, team, anne))
			now := time.Now().UTC()
			indexes := func() (n int) {
				q := `SELECT count(*) FROM sqlite_master WHERE type = 'index' AND tbl_name IN ('tasks', 'notes')`
				if e.name == "postgres" {
					q = `SELECT count(*) FROM pg_indexes WHERE tablename IN ('tasks', 'notes', 'memories')`
				}
				must(t, s.(*sqlStore).db.QueryRowContext(ctx, q).Scan(&n))
				return n
			}
			before := indexes()
			var reports int
			rebuilt := map[string]bool{}
			progress := func(table string, done, total int) {
				if name, ok := strings.CutSuffix(table, " indexes"); ok {
					rebuilt[name] = done == total
					return
				}
				reports++
			}
			must(t, g.Generate(ctx, GenerateOptions{Tasks: 300, Notes: 30, Memories: 6, Now: now,
				Embed: func(string) []float32 { return make([]float32, 256) }, Progress: progress}))
			if reports != 3 {
				t.Errorf("progress reports: got %d, want one per table", reports)
			}
			// Into empty tables both engines load first and build the indexes after
			// (SQLite's memories go row by row, indexes kept).
			if !rebuilt["tasks"] || !rebuilt["notes"] || rebuilt["memories"] != (e.name == "postgres") {
				t.Errorf("indexes rebuilt after the load: %v", rebuilt)
			}
			if after := indexes(); after != before || before < 8 {
				t.Errorf("indexes: %d before the load, %d after", before, after)
			}
			for table, want := range map[string]int64{"tasks": 300, "notes": 30, "memories": 6} {
				if n, err := s.Count(ctx, table); err != nil || n != want {
					t.Errorf("%s: got %d (%v), want %d", table, n, err, want)
				}
			}
			counts := map[string]int{}
			for _, v := range []string{anne, bob} {
				for page, o := (Page{}), (ListOptions{Limit: 500}); ; o.Cursor = page.NextCursor {
					var err error
					page, err = s.List(ctx, Viewer{v}, api.ResourceTasks, o)
					must(t, err)
					for _, it := range page.Items {
						tk := it.(api.Task)
						if u, err := uuid.Parse(tk.ID); err != nil || u.String() != tk.ID || u.Version() != 4 {
							t.Errorf("task id %q is not a canonical version-4 UUID", tk.ID)
						}
						switch {
						case tk.TeamID == nil && tk.OwnerUserID == v:
							counts["personal"]++
						case tk.TeamID != nil && v == anne:
							if tk.OwnerUserID != anne {
								t.Errorf("team task %s owned by %s, not a member", tk.ID, tk.OwnerUserID)
							}
							counts["team"]++
						}
						counts[tk.Status]++
						if tk.CreatedAt.Before(now.AddDate(0, 0, -366)) || tk.CreatedAt.After(now) ||
							tk.UpdatedAt.Before(tk.CreatedAt) || tk.UpdatedAt.After(now) {
							t.Errorf("task %s: created %s updated %s, not within the year before %s", tk.ID, tk.CreatedAt, tk.UpdatedAt, now)
						}
					}
					if page.NextCursor == "" {
						break
					}
				}
			}
			if counts["personal"] != 100 || counts["team"] != 200 {
				t.Errorf("mix: %d personal, %d team; want 100 and 200", counts["personal"], counts["team"])
			}
			for _, st := range statuses {
				if counts[st] < 60 {
					t.Errorf("status %s: %d of 300, not spread", st, counts[st])
				}
			}
			// A load of ten times what a table holds or more builds its indexes after
			// it (300 tasks there, 3,000 added); a smaller one keeps them (30 notes
			// there, 299 added).
			rebuilt = map[string]bool{}
			must(t, g.Generate(ctx, GenerateOptions{Tasks: 3000, Notes: 299, Now: now, Progress: progress}))
			if !rebuilt["tasks"] || rebuilt["notes"] {
				t.Errorf("indexes rebuilt after a second load: %v, want tasks only", rebuilt)
			}
			if after := indexes(); after != before {
				t.Errorf("indexes: %d before the loads, %d after the second", before, after)
			}
		})
	}
}
