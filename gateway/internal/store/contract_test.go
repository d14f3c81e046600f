package store

import (
	"context"
	"database/sql"
	"errors"
	"flag"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/mosaic-federation/mosaic/gateway/api"
	"github.com/mosaic-federation/mosaic/gateway/internal/scope"
	"github.com/mosaic-federation/mosaic/harness/world"
	"github.com/mosaic-federation/mosaic/harness/world/process"
)

// The contract suite runs every test against both engines. PostgreSQL comes from
// $MOSAIC_TEST_POSTGRES_URL (a superuser URL) or is booted through the harness
// library; with CI=true a missing PostgreSQL fails the run instead of skipping.
var pgAdminURL string

func TestMain(m *testing.M) {
	code := func() int {
		flag.Parse()
		pgAdminURL = os.Getenv("MOSAIC_TEST_POSTGRES_URL")
		if pgAdminURL == "" && !testing.Short() {
			ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
			defer cancel()
			w, pg, err := world.StandalonePostgres(ctx, world.Options{Backend: process.New(process.Config{})})
			if err != nil {
				fmt.Fprintf(os.Stderr, "store tests: no PostgreSQL (%v)\n", err)
			} else {
				defer w.Down()
				pgAdminURL = pg.URL
			}
		}
		return m.Run()
	}()
	os.Exit(code)
}

type engine struct {
	name string
	open func(t testing.TB) Store
}

func engines() []engine {
	return []engine{
		{"sqlite", func(t testing.TB) Store {
			s, err := OpenSQLite(context.Background(), filepath.Join(t.TempDir(), "gateway.db"))
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { s.Close() })
			return s
		}},
		{"postgres", func(t testing.TB) Store {
			if pgAdminURL == "" {
				if os.Getenv("CI") == "true" {
					t.Fatal("CI=true but no PostgreSQL: set MOSAIC_TEST_POSTGRES_URL or install PostgreSQL (make deps)")
				}
				t.Skip("no PostgreSQL: set MOSAIC_TEST_POSTGRES_URL or run make deps")
			}
			return openFreshPostgres(t)
		}},
	}
}

// openFreshPostgres creates a database of its own for one test.
func openFreshPostgres(t testing.TB) Store {
	t.Helper()
	ctx := context.Background()
	admin, err := sql.Open("pgx", pgAdminURL)
	if err != nil {
		t.Fatal(err)
	}
	defer admin.Close()
	name := "t_" + strings.ReplaceAll(uuid.NewString(), "-", "")[:16]
	if _, err := admin.ExecContext(ctx, "CREATE DATABASE "+name); err != nil {
		t.Fatal(err)
	}
	u, _ := url.Parse(pgAdminURL)
	u.Path = "/" + name
	s, err := OpenPostgres(ctx, PostgresOptions{URL: u.String(), RequireVector: true, MaxConns: 4})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		s.Close()
		a, err := sql.Open("pgx", pgAdminURL)
		if err == nil {
			_, _ = a.ExecContext(context.Background(), "DROP DATABASE IF EXISTS "+name+" WITH (FORCE)")
			a.Close()
		}
	})
	return s
}

// forEachEngine runs f as a subtest per engine.
func forEachEngine(t *testing.T, f func(t *testing.T, s Store)) {
	for _, e := range engines() {
		t.Run(e.name, func(t *testing.T) { f(t, e.open(t)) })
	}
}

// world of a test: alice and bob share team "core"; carol is alone; team "other" has
// only carol.
type fixture struct {
	alice, bob, carol, core, other string
}

var epoch = time.Date(2026, 1, 2, 3, 4, 5, 123456000, time.UTC)

func seedFixture(t *testing.T, s Store) fixture {
	t.Helper()
	ctx := context.Background()
	f := fixture{uuid.NewString(), uuid.NewString(), uuid.NewString(), uuid.NewString(), uuid.NewString()}
	for i, u := range []string{f.alice, f.bob, f.carol} {
		must(t, s.UpsertUser(ctx, User{ID: u, Email: fmt.Sprintf("u%d@example.test", i), DisplayName: "U", Role: "member", CreatedAt: epoch}))
	}
	must(t, s.UpsertTeam(ctx, Team{ID: f.core, Name: "core", CreatedAt: epoch}))
	must(t, s.UpsertTeam(ctx, Team{ID: f.other, Name: "other", CreatedAt: epoch}))
	must(t, s.AddMember(ctx, f.core, f.alice))
	must(t, s.AddMember(ctx, f.core, f.bob))
	must(t, s.AddMember(ctx, f.other, f.carol))
	return f
}

func must(t testing.TB, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

func task(owner string, team *string, i int) api.Task {
	at := epoch.Add(time.Duration(i) * time.Minute)
	return api.Task{ID: uuid.NewString(), OwnerUserID: owner, TeamID: team, Title: fmt.Sprintf("task %d", i),
		Status: []string{"open", "in_progress", "done"}[i%3], CreatedAt: at, UpdatedAt: at}
}

func ids(items []api.Item) []string {
	var out []string
	for _, it := range items {
		switch v := it.(type) {
		case api.Task:
			out = append(out, v.ID)
		case api.Note:
			out = append(out, v.ID)
		case api.Memory:
			out = append(out, v.ID)
		}
	}
	return out
}

func TestUsersAndTokens(t *testing.T) {
	forEachEngine(t, func(t *testing.T, s Store) {
		ctx := context.Background()
		f := seedFixture(t, s)
		hash := []byte("0123456789abcdef0123456789abcdef")
		must(t, s.SetTokenHash(ctx, f.alice, hash))
		u, err := s.UserByTokenHash(ctx, hash)
		if err != nil || u.ID != f.alice || !u.HasToken || !u.CreatedAt.Equal(epoch) {
			t.Fatalf("by token: %+v, %v", u, err)
		}
		if _, err := s.UserByTokenHash(ctx, []byte("nope")); !errors.Is(err, ErrNotFound) {
			t.Fatalf("unknown token: %v", err)
		}
		if u, err := s.UserByEmail(ctx, "u1@example.test"); err != nil || u.ID != f.bob {
			t.Fatalf("by email: %+v %v", u, err)
		}
		if ok, _ := s.IsMember(ctx, f.core, f.alice); !ok {
			t.Error("alice should be in core")
		}
		if ok, _ := s.IsMember(ctx, f.core, f.carol); ok {
			t.Error("carol is not in core")
		}
	})
}

func TestNativeRBAC(t *testing.T) {
	forEachEngine(t, func(t *testing.T, s Store) {
		ctx := context.Background()
		f := seedFixture(t, s)
		alicePersonal := task(f.alice, nil, 1)
		coreTask := task(f.bob, &f.core, 2)
		otherTask := task(f.carol, &f.other, 3)
		for _, tk := range []api.Task{alicePersonal, coreTask, otherTask} {
			must(t, s.PutTask(ctx, tk))
		}
		cases := []struct {
			viewer string
			want   []string
		}{
			{f.alice, []string{coreTask.ID, alicePersonal.ID}},
			{f.bob, []string{coreTask.ID}},
			{f.carol, []string{otherTask.ID}},
		}
		for _, c := range cases {
			page, err := s.List(ctx, Viewer{c.viewer}, api.ResourceTasks, ListOptions{Limit: 50})
			must(t, err)
			if got := ids(page.Items); strings.Join(got, ",") != strings.Join(c.want, ",") {
				t.Errorf("viewer %s sees %v, want %v", c.viewer, got, c.want)
			}
		}
		if _, err := s.Get(ctx, Viewer{f.bob}, api.ResourceTasks, alicePersonal.ID); !errors.Is(err, ErrNotFound) {
			t.Errorf("bob got alice's personal task: %v", err)
		}
		if _, err := s.Get(ctx, Viewer{f.bob}, api.ResourceTasks, uuid.NewString()); !errors.Is(err, ErrNotFound) {
			t.Errorf("missing row: %v", err)
		}
		item, err := s.Get(ctx, Viewer{f.alice}, api.ResourceTasks, coreTask.ID)
		must(t, err)
		got := item.(api.Task)
		if got.Title != coreTask.Title || !got.CreatedAt.Equal(coreTask.CreatedAt) || got.DueAt != nil || *got.TeamID != f.core {
			t.Errorf("round trip: got %+v, want %+v", got, coreTask)
		}
	})
}

func TestPaginationAndFilters(t *testing.T) {
	forEachEngine(t, func(t *testing.T, s Store) {
		ctx := context.Background()
		f := seedFixture(t, s)
		var want []string
		for i := range 25 {
			tk := task(f.alice, nil, i)
			if i%5 == 0 { // same timestamp as its predecessor: ids break the tie
				tk.CreatedAt = epoch.Add(time.Duration(i-1) * time.Minute)
			}
			must(t, s.PutTask(ctx, tk))
			want = append(want, tk.ID)
		}
		var got []string
		cursor := ""
		for pages := 0; ; pages++ {
			page, err := s.List(ctx, Viewer{f.alice}, api.ResourceTasks, ListOptions{Limit: 10, Cursor: cursor})
			must(t, err)
			got = append(got, ids(page.Items)...)
			if page.NextCursor == "" {
				if pages != 2 {
					t.Errorf("%d pages, want 3", pages+1)
				}
				break
			}
			cursor = page.NextCursor
		}
		if len(got) != 25 || len(dedupe(got)) != 25 {
			t.Fatalf("paged %d rows (%d distinct), want 25", len(got), len(dedupe(got)))
		}
		seen := dedupe(got)
		for _, id := range want {
			if !seen[id] {
				t.Fatalf("row %s never paged", id)
			}
		}
		open, err := s.List(ctx, Viewer{f.alice}, api.ResourceTasks, ListOptions{Limit: 100, Filter: api.Filter{Status: "open"}})
		must(t, err)
		for _, it := range open.Items {
			if it.(api.Task).Status != "open" {
				t.Fatal("status filter leaked a row")
			}
		}
		if len(open.Items) != 9 {
			t.Errorf("open tasks: %d, want 9", len(open.Items))
		}
		since := epoch.Add(20 * time.Minute)
		recent, err := s.List(ctx, Viewer{f.alice}, api.ResourceTasks, ListOptions{Limit: 100, Filter: api.Filter{UpdatedSince: &since}})
		must(t, err)
		if len(recent.Items) != 5 {
			t.Errorf("updated since: %d rows, want 5", len(recent.Items))
		}
	})
}

func dedupe(s []string) map[string]bool {
	m := map[string]bool{}
	for _, v := range s {
		m[v] = true
	}
	return m
}

func TestRejectsBadInput(t *testing.T) {
	forEachEngine(t, func(t *testing.T, s Store) {
		ctx := context.Background()
		f := seedFixture(t, s)
		bad := []error{
			s.PutTask(ctx, api.Task{ID: "not-a-uuid", OwnerUserID: f.alice, Title: "x", Status: "open"}),
			s.PutTask(ctx, api.Task{ID: strings.ToUpper(uuid.NewString()), OwnerUserID: f.alice, Title: "x", Status: "open"}),
			func() error { _, err := s.Get(ctx, Viewer{f.alice}, api.ResourceTasks, "1 OR 1=1"); return err }(),
			func() error {
				_, err := s.List(ctx, Viewer{f.alice}, api.ResourceTasks, ListOptions{Limit: 5, Cursor: "%%%"})
				return err
			}(),
			func() error { _, err := s.List(ctx, Viewer{f.alice}, "credentials", ListOptions{Limit: 5}); return err }(),
			func() error {
				_, err := s.List(ctx, Viewer{f.alice}, api.ResourceMemories, ListOptions{Limit: 5, Filter: api.Filter{Status: "open"}})
				return err
			}(),
		}
		for i, err := range bad {
			if !errors.Is(err, ErrInvalid) {
				t.Errorf("case %d: got %v, want ErrInvalid", i, err)
			}
		}
	})
}

func TestPutIsIdempotentAndCounts(t *testing.T) {
	forEachEngine(t, func(t *testing.T, s Store) {
		ctx := context.Background()
		f := seedFixture(t, s)
		n := api.Note{ID: uuid.NewString(), OwnerUserID: f.alice, Title: "n", Body: "b", CreatedAt: epoch, UpdatedAt: epoch}
		m := api.Memory{ID: uuid.NewString(), OwnerUserID: f.alice, TeamID: &f.core, Content: "c", CreatedAt: epoch}
		emb := make([]float32, 256)
		emb[3] = 1
		c := Credential{ID: uuid.NewString(), OwnerUserID: f.alice, Provider: "github", SecretSealed: []byte{1, 2, 3}}
		for range 2 {
			must(t, s.PutNote(ctx, n))
			must(t, s.PutMemory(ctx, m, emb))
			must(t, s.PutCredential(ctx, c))
			must(t, s.AddMember(ctx, f.core, f.alice))
		}
		for table, want := range map[string]int64{"notes": 1, "memories": 1, "credentials": 1, "team_members": 3, "users": 3} {
			got, err := s.Count(ctx, table)
			if err != nil || got != want {
				t.Errorf("count %s = %d (%v), want %d", table, got, err, want)
			}
		}
		mem, err := s.Get(ctx, Viewer{f.bob}, api.ResourceMemories, m.ID) // bob is in core
		must(t, err)
		if mem.(api.Memory).Content != "c" {
			t.Errorf("memory: %+v", mem)
		}
	})
}

func TestListWithManyTeams(t *testing.T) {
	forEachEngine(t, func(t *testing.T, s Store) {
		ctx := context.Background()
		f := seedFixture(t, s)
		var want []string
		for i := range maxArms + 6 { // past the union's arm limit: the single-scan path
			team := uuid.NewString()
			must(t, s.UpsertTeam(ctx, Team{ID: team, Name: fmt.Sprintf("t%d", i), CreatedAt: epoch}))
			must(t, s.AddMember(ctx, team, f.bob))
			tk := task(f.carol, &team, i)
			must(t, s.PutTask(ctx, tk))
			want = append(want, tk.ID)
		}
		var got []string
		cursor := ""
		for {
			page, err := s.List(ctx, Viewer{f.bob}, api.ResourceTasks, ListOptions{Limit: 25, Cursor: cursor})
			must(t, err)
			got = append(got, ids(page.Items)...)
			if cursor = page.NextCursor; cursor == "" {
				break
			}
		}
		if len(got) != len(want) || len(dedupe(got)) != len(want) {
			t.Fatalf("bob in %d teams sees %d rows, want %d", len(want), len(got), len(want))
		}
	})
}

func TestScopeNarrowsToEffectiveRows(t *testing.T) {
	forEachEngine(t, func(t *testing.T, s Store) {
		ctx := context.Background()
		f := seedFixture(t, s)
		extra := uuid.NewString()
		must(t, s.UpsertTeam(ctx, Team{ID: extra, Name: "extra", CreatedAt: epoch}))
		must(t, s.AddMember(ctx, extra, f.alice))
		personal, inCore, bobsCore, inExtra, carols := task(f.alice, nil, 1), task(f.alice, &f.core, 2), task(f.bob, &f.core, 3), task(f.alice, &extra, 4), task(f.carol, &f.other, 5)
		for _, tk := range []api.Task{personal, inCore, bobsCore, inExtra, carols} {
			must(t, s.PutTask(ctx, tk))
		}
		granted := func(sc scope.Scope) scope.Rows {
			sc.Resources, sc.MaxRowsPerQuery = []string{api.ResourceTasks}, 50
			rows, err := sc.Authorize(f.alice, api.ResourceTasks)
			must(t, err)
			return rows
		}
		cases := []struct {
			name  string
			scope scope.Scope
			want  []string
		}{
			{"personal + core", scope.Scope{IncludePersonal: true, IncludeTeams: []string{f.core}}, []string{bobsCore.ID, inCore.ID, personal.ID}},
			{"core only", scope.Scope{IncludeTeams: []string{f.core}}, []string{bobsCore.ID, inCore.ID}},
			{"a team she is not in", scope.Scope{IncludePersonal: true, IncludeTeams: []string{f.other}}, []string{personal.ID}},
			{"nothing", scope.Scope{}, nil},
		}
		for _, c := range cases {
			page, err := s.ListGranted(ctx, granted(c.scope), ListOptions{Limit: 50})
			must(t, err)
			if got := ids(page.Items); strings.Join(got, ",") != strings.Join(c.want, ",") {
				t.Errorf("%s: got %v, want %v", c.name, got, c.want)
			}
		}
		coreOnly := granted(scope.Scope{IncludeTeams: []string{f.core}})
		for _, hidden := range []string{personal.ID, inExtra.ID, carols.ID, uuid.NewString()} {
			if _, err := s.GetGranted(ctx, coreOnly, hidden); !errors.Is(err, ErrNotFound) {
				t.Errorf("get %s under core-only scope: %v", hidden, err)
			}
		}
		if _, err := s.GetGranted(ctx, coreOnly, bobsCore.ID); err != nil {
			t.Errorf("get a core row: %v", err)
		}
		var zero scope.Rows
		if page, err := s.ListGranted(ctx, zero, ListOptions{Limit: 50}); err == nil && len(page.Items) > 0 {
			t.Errorf("the zero Rows read %d rows", len(page.Items))
		}
	})
}

// A keyset resumes strictly after its place in the list's order (ties broken by id),
// and under a grant a forged keyset only narrows: the scope still applies.
func TestListAfterKeyset(t *testing.T) {
	forEachEngine(t, func(t *testing.T, s Store) {
		ctx := context.Background()
		f := seedFixture(t, s)
		var all []api.Task
		for i := range 12 {
			tk := task(f.alice, nil, i)
			if i%3 == 0 { // same instant as its predecessor: the id breaks the tie
				tk.CreatedAt = epoch.Add(time.Duration(i-1) * time.Minute)
			}
			must(t, s.PutTask(ctx, tk))
			all = append(all, tk)
		}
		carols := task(f.carol, &f.other, 99) // outside alice's rows: never listed
		must(t, s.PutTask(ctx, carols))
		full, err := s.List(ctx, Viewer{f.alice}, api.ResourceTasks, ListOptions{Limit: 100})
		must(t, err)
		want := ids(full.Items)
		for i, it := range full.Items {
			k := api.KeyOf(it)
			page, err := s.List(ctx, Viewer{f.alice}, api.ResourceTasks, ListOptions{Limit: 100, After: &k})
			must(t, err)
			if got := ids(page.Items); strings.Join(got, ",") != strings.Join(want[i+1:], ",") {
				t.Fatalf("after row %d: got %v, want %v", i, got, want[i+1:])
			}
		}
		rows, err := scope.Scope{Resources: []string{api.ResourceTasks}, MaxRowsPerQuery: 50, IncludePersonal: true}.Authorize(f.alice, api.ResourceTasks)
		must(t, err)
		future := api.Keyset{CreatedAt: epoch.Add(24 * time.Hour), ID: "ffffffff-ffff-4fff-bfff-ffffffffffff"}
		page, err := s.ListGranted(ctx, rows, ListOptions{Limit: 50, After: &future})
		must(t, err)
		if len(page.Items) != len(all) || dedupe(ids(page.Items))[carols.ID] {
			t.Errorf("a keyset past every row lists %d rows, want alice's %d only", len(page.Items), len(all))
		}
		for _, bad := range []ListOptions{
			{Limit: 5, After: &api.Keyset{CreatedAt: epoch, ID: "1 OR 1=1"}},
			{Limit: 5, After: &api.Keyset{ID: uuid.NewString()}},
			{Limit: 5, After: &api.Keyset{CreatedAt: time.Date(9999, 12, 31, 23, 0, 0, 0, time.FixedZone("", -7200)), ID: uuid.NewString()}},
			{Limit: 5, After: &future, Cursor: full.NextCursor + "x"},
		} {
			if _, err := s.List(ctx, Viewer{f.alice}, api.ResourceTasks, bad); !errors.Is(err, ErrInvalid) {
				t.Errorf("%+v: %v, want ErrInvalid", bad, err)
			}
		}
	})
}
