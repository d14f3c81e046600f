package store

import (
	"context"
	"fmt"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/mosaic-federation/mosaic/gateway/api"
	"github.com/mosaic-federation/mosaic/gateway/internal/scope"
)

// BenchmarkList1M measures one page (50 rows) of tasks out of 10⁶ made by Generate (20
// users, 4 teams of 5, a third personal), as the viewer sees them (local list) and
// through a grant of their personal rows and both their teams (federation list), for
// each filter: none, status, team_id, updated_since (the last week, and the last hour), and a keyset
// half-way down. It reports the median as p50-ms; the rows are generated once per
// engine and the time it took is logged.
//
//	go test -run='^$' -bench=List1M -benchtime=200x -timeout=30m ./gateway/internal/store
func BenchmarkList1M(b *testing.B) {
	for _, e := range []string{"postgres", "sqlite"} {
		b.Run(e, func(b *testing.B) {
			w := listWorld1M(b, e)
			for _, c := range w.cases() {
				b.Run(c.name, func(b *testing.B) {
					ctx := context.Background()
					lat := make([]time.Duration, 0, b.N)
					c.list(ctx, b) // warm the pages it touches
					b.ResetTimer()
					for range b.N {
						start := time.Now()
						c.list(ctx, b)
						lat = append(lat, time.Since(start))
					}
					b.StopTimer()
					slices.Sort(lat)
					b.ReportMetric(float64(lat[len(lat)/2].Microseconds())/1000, "p50-ms")
					b.ReportMetric(float64(lat[len(lat)*99/100].Microseconds())/1000, "p99-ms")
				})
			}
		})
	}
}

type world1M struct {
	s            Store
	viewer, team string
	rows         scope.Rows
	now          time.Time
	mid          api.Keyset
}

var worlds1M = map[string]*world1M{}

const rows1M = 1_000_000

func listWorld1M(b *testing.B, engine string) *world1M {
	if w := worlds1M[engine]; w != nil {
		return w
	}
	ctx := context.Background()
	var s Store
	var err error
	if engine == "postgres" {
		if pgAdminURL == "" {
			b.Skip("no PostgreSQL")
		}
		s = openPostgresDB(b, freshDB(b), false, nil)
	} else {
		s, err = OpenSQLite(ctx, filepath.Join(b.TempDir(), "g.db"))
		must(b, err)
	}
	w := &world1M{s: s, now: time.Now().UTC()}
	var users, teams []string
	for i := range 20 {
		users = append(users, uuid.NewString())
		must(b, s.UpsertUser(ctx, User{ID: users[i], Email: fmt.Sprintf("u%d@example.test", i), DisplayName: "U", Role: "member", CreatedAt: epoch}))
	}
	for i := range 4 {
		teams = append(teams, uuid.NewString())
		must(b, s.UpsertTeam(ctx, Team{ID: teams[i], Name: fmt.Sprintf("t%d", i), CreatedAt: epoch}))
		for j := range 5 {
			must(b, s.AddMember(ctx, teams[i], users[(i*5+j)%20]))
		}
	}
	w.viewer, w.team = users[0], teams[0]
	must(b, s.AddMember(ctx, teams[1], w.viewer)) // the viewer is in two teams
	start := time.Now()
	must(b, s.(Generator).Generate(ctx, GenerateOptions{Tasks: rows1M, Now: w.now}))
	b.Logf("%s: generated %d tasks in %.1f s", engine, rows1M, time.Since(start).Seconds())
	if ss, ok := s.(*sqlStore); ok && engine == "postgres" {
		_, err := ss.db.ExecContext(ctx, `VACUUM ANALYZE tasks`)
		must(b, err)
	} else if ok {
		_, err := ss.db.ExecContext(ctx, `ANALYZE`)
		must(b, err)
	}
	sc := scope.Scope{Resources: api.Resources, IncludePersonal: true, IncludeTeams: teams[:2], MaxRowsPerQuery: 100}
	w.rows, err = sc.Authorize(w.viewer, api.ResourceTasks)
	must(b, err)
	// A keyset half-way down the viewer's rows: the 5,000th row.
	o := ListOptions{Limit: 1000}
	for range 5 {
		p, err := s.List(ctx, Viewer{w.viewer}, api.ResourceTasks, o)
		must(b, err)
		o.Cursor = p.NextCursor
		last := p.Items[len(p.Items)-1].(api.Task)
		w.mid = api.Keyset{CreatedAt: last.CreatedAt, ID: last.ID}
	}
	worlds1M[engine] = w
	return w
}

type listCase struct {
	name string
	list func(ctx context.Context, b *testing.B)
}

func (w *world1M) cases() []listCase {
	week, hour := w.now.AddDate(0, 0, -7), w.now.Add(-time.Hour)
	filters := []struct {
		name string
		f    api.Filter
		mid  bool
	}{
		{name: "none"},
		{name: "status", f: api.Filter{Status: "done"}},
		{name: "team_id", f: api.Filter{TeamID: w.team}},
		{name: "updated_since", f: api.Filter{UpdatedSince: &week}},
		{name: "updated_since_hour", f: api.Filter{UpdatedSince: &hour}}, // ~0.1 % of rows
		{name: "after", mid: true},
		{name: "status+after", f: api.Filter{Status: "done"}, mid: true},
	}
	var out []listCase
	for _, fed := range []bool{false, true} {
		for _, f := range filters {
			name := "local/" + f.name
			if fed {
				name = "federation/" + f.name
			}
			o := ListOptions{Limit: 50, Filter: f.f}
			if f.mid {
				o.After = &w.mid
			}
			out = append(out, listCase{name: name, list: func(ctx context.Context, b *testing.B) {
				var p Page
				var err error
				if fed {
					p, err = w.s.ListGranted(ctx, w.rows, o)
				} else {
					p, err = w.s.List(ctx, Viewer{w.viewer}, api.ResourceTasks, o)
				}
				if err != nil || len(p.Items) != 50 {
					b.Fatal(err, len(p.Items))
				}
			}})
		}
	}
	return out
}
