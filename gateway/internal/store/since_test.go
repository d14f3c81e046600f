package store

import (
	"context"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/mosaic-federation/mosaic/gateway/api"
	"github.com/mosaic-federation/mosaic/gateway/internal/scope"
)

// TestUpdatedSinceArms: on SQLite an updated_since list reads each arm by the plan its
// row count past the time calls for (few: the (scope, updated_at) index and a sort;
// many: the time order, filtered), and either way answers exactly the rows a hand
// filter of the whole list gives, in order, local and granted.
func TestUpdatedSinceArms(t *testing.T) {
	ctx := context.Background()
	st, err := OpenSQLite(ctx, filepath.Join(t.TempDir(), "gateway.db"))
	must(t, err)
	t.Cleanup(func() { st.Close() })
	s := st.(*sqlStore)
	anne, bob, team := uuid.NewString(), uuid.NewString(), uuid.NewString()
	must(t, s.UpsertUser(ctx, User{ID: anne, Email: "anne@example.test", DisplayName: "A", Role: "member", CreatedAt: epoch}))
	must(t, s.UpsertUser(ctx, User{ID: bob, Email: "bob@example.test", DisplayName: "B", Role: "member", CreatedAt: epoch}))
	must(t, s.UpsertTeam(ctx, Team{ID: team, Name: "t", CreatedAt: epoch}))
	must(t, s.AddMember(ctx, team, anne))
	// A third personal (half anne's), two thirds in anne's team: anne's own arm holds
	// ~1,500 rows, the team's ~6,000.
	must(t, s.Generate(ctx, GenerateOptions{Tasks: 9000, Now: time.Now().UTC()}))

	all := listAll(t, s, func(o ListOptions) (Page, error) { return s.List(ctx, Viewer{anne}, api.ResourceTasks, o) })
	var teamTimes []time.Time
	for _, tk := range all {
		if tk.TeamID != nil {
			teamTimes = append(teamTimes, tk.UpdatedAt)
		}
	}
	slices.SortFunc(teamTimes, func(a, b time.Time) int { return b.Compare(a) })
	// The team arm has 1.5 × fewSince rows past since; anne's personal rows about a
	// quarter of that, under fewSince.
	since := teamTimes[fewSince*3/2]

	// A grant's own arm is anne's personal rows.
	const personal = "owner_user_id = ? AND team_id IS NULL"
	few, err := s.sinceArms(ctx, resources[api.ResourceTasks], personal, anne, []string{team}, since)
	must(t, err)
	if !slices.Equal(few, []bool{true, false}) {
		t.Fatalf("sinceArms: got %v, want [own: few, team: many]", few)
	}
	plan := explain(t, s, resources[api.ResourceTasks], personal, anne, team, since, few)
	for _, want := range []string{"tasks_personal_updated", "tasks_team_time"} {
		if !strings.Contains(plan, want) {
			t.Errorf("plan does not use %s:\n%s", want, plan)
		}
	}
	if strings.Contains(plan, "tasks_team_updated") || strings.Contains(plan, "tasks_owner_time") {
		t.Errorf("plan reads an arm the other way:\n%s", plan)
	}

	want := func(keep func(api.Task) bool) []string {
		var ids []string
		for _, tk := range all {
			if !tk.UpdatedAt.Before(since) && keep(tk) {
				ids = append(ids, tk.ID)
			}
		}
		return ids
	}
	local := listAll(t, s, func(o ListOptions) (Page, error) {
		o.Filter.UpdatedSince = &since
		return s.List(ctx, Viewer{anne}, api.ResourceTasks, o)
	})
	if got, w := taskIDs(local), want(func(api.Task) bool { return true }); !slices.Equal(got, w) || len(w) < fewSince {
		t.Errorf("local list since: got %d rows, want the %d a hand filter keeps, in order", len(got), len(w))
	}
	sc, err := scope.Parse([]byte(`{"resources":["tasks"],"include_personal":true,"include_teams":["` + team + `"],"max_rows_per_query":100}`))
	must(t, err)
	rows, err := sc.Authorize(anne, api.ResourceTasks)
	must(t, err)
	granted := listAll(t, s, func(o ListOptions) (Page, error) {
		o.Filter.UpdatedSince = &since
		return s.ListGranted(ctx, rows, o)
	})
	if got, w := taskIDs(granted), want(func(tk api.Task) bool { return tk.TeamID != nil || tk.OwnerUserID == anne }); !slices.Equal(got, w) {
		t.Errorf("granted list since: got %d rows, want the %d a hand filter keeps, in order", len(got), len(w))
	}
}

// listAll pages a task list to its end, 50 at a time.
func listAll(t *testing.T, s *sqlStore, list func(ListOptions) (Page, error)) []api.Task {
	t.Helper()
	var out []api.Task
	for o := (ListOptions{Limit: 50}); ; {
		page, err := list(o)
		must(t, err)
		for _, it := range page.Items {
			out = append(out, it.(api.Task))
		}
		if page.NextCursor == "" {
			return out
		}
		o.Cursor = page.NextCursor
	}
}

func taskIDs(tasks []api.Task) []string {
	var out []string
	for _, tk := range tasks {
		out = append(out, tk.ID)
	}
	return out
}

// explain is SQLite's plan of a list of anne's tasks updated since the time.
func explain(t *testing.T, s *sqlStore, r resource, own, anne, team string, since time.Time, few []bool) string {
	t.Helper()
	q, args := visibleQuery(r, own, anne, []string{team}, []string{sinceTerm}, []any{s.d.ts(since)}, 51, few)
	rows, err := s.db.Query("EXPLAIN QUERY PLAN "+q, args...)
	must(t, err)
	defer rows.Close()
	var plan []string
	for rows.Next() {
		var id, parent, unused int
		var detail string
		must(t, rows.Scan(&id, &parent, &unused, &detail))
		plan = append(plan, detail)
	}
	must(t, rows.Err())
	return strings.Join(plan, "\n")
}
