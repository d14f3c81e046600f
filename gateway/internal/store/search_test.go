package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"math"
	"net/url"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/pressly/goose/v3"

	"github.com/mosaic-federation/mosaic/gateway/api"
	"github.com/mosaic-federation/mosaic/gateway/internal/embed"
	"github.com/mosaic-federation/mosaic/gateway/internal/scope"
)

// searchEngines are the contract engines plus PostgreSQL whose database has no
// vector extension (the standalone tier: real[] embeddings, exact scans).
func searchEngines() []engine {
	return append(engines(), engine{"postgres-real", func(t testing.TB) Store {
		if pgAdminURL == "" {
			t.Skip("no PostgreSQL")
		}
		return openPostgresDB(t, freshDB(t), false, nil)
	}})
}

func forEachSearchEngine(t *testing.T, f func(t *testing.T, s Store)) {
	for _, e := range searchEngines() {
		t.Run(e.name, func(t *testing.T) { f(t, e.open(t)) })
	}
}

// freshDB creates an empty database (dropped after the test) and returns its URL.
func freshDB(t testing.TB) string {
	t.Helper()
	admin, err := sql.Open("pgx", pgAdminURL)
	must(t, err)
	defer admin.Close()
	name := "t_" + strings.ReplaceAll(uuid.NewString(), "-", "")[:16]
	_, err = admin.Exec("CREATE DATABASE " + name)
	must(t, err)
	t.Cleanup(func() {
		if a, err := sql.Open("pgx", pgAdminURL); err == nil {
			_, _ = a.Exec("DROP DATABASE IF EXISTS " + name + " WITH (FORCE)")
			a.Close()
		}
	})
	u, _ := url.Parse(pgAdminURL)
	u.Path = "/" + name
	return u.String()
}

// openPostgresDB opens a store on a database, first setting settings for every new
// session of that database.
func openPostgresDB(t testing.TB, dsn string, vector bool, settings map[string]string) Store {
	t.Helper()
	if len(settings) > 0 {
		db, err := sql.Open("pgx", dsn)
		must(t, err)
		var name string
		must(t, db.QueryRow(`SELECT current_database()`).Scan(&name))
		for k, v := range settings {
			_, err := db.Exec(fmt.Sprintf("ALTER DATABASE %s SET %s = %s", name, k, v))
			must(t, err)
		}
		db.Close()
	}
	s, err := OpenPostgres(context.Background(), PostgresOptions{URL: dsn, RequireVector: vector, MaxConns: 4})
	must(t, err)
	t.Cleanup(func() { s.Close() })
	return s
}

func hitIDs(hits []Hit) []string {
	out := make([]string, len(hits))
	for i, h := range hits {
		out[i] = h.id
	}
	return out
}

func text(q string, limit int) SearchOptions {
	return SearchOptions{Query: q, Mode: api.ModeText, Limit: limit}
}

func vector(q string, limit int) SearchOptions {
	return SearchOptions{Query: q, Mode: api.ModeVector, Limit: limit, Embedding: embed.HashVector(q)}
}

func titled(owner string, team *string, i int, title string) api.Task {
	tk := task(owner, team, i)
	tk.Title = title
	return tk
}

func memory(owner string, team *string, i int, content string) api.Memory {
	return api.Memory{ID: uuid.NewString(), OwnerUserID: owner, TeamID: team, Content: content,
		CreatedAt: epoch.Add(time.Duration(i) * time.Minute)}
}

func putMemories(t *testing.T, s Store, ms ...api.Memory) {
	t.Helper()
	for _, m := range ms {
		must(t, s.PutMemory(context.Background(), m, embed.HashVector(m.Content)))
	}
}

func grantRows(t *testing.T, subject, resource string, personal bool, teams ...string) scope.Rows {
	t.Helper()
	sc := scope.Scope{Resources: api.Resources, IncludePersonal: personal, IncludeTeams: teams, MaxRowsPerQuery: 100}
	rows, err := sc.Authorize(subject, resource)
	must(t, err)
	return rows
}

func TestTextSearchRanksOnlyVisibleRows(t *testing.T) {
	forEachSearchEngine(t, func(t *testing.T, s Store) {
		ctx := context.Background()
		f := seedFixture(t, s)
		mine := titled(f.alice, nil, 1, "backup the database tonight")
		team := titled(f.bob, &f.core, 2, "review backup retention")
		unrelated := titled(f.alice, nil, 3, "water the plants")
		carols := titled(f.carol, nil, 4, "backup backup backup backup") // matches best, not hers
		for _, tk := range []api.Task{mine, team, unrelated, carols} {
			must(t, s.PutTask(ctx, tk))
		}
		hits, err := s.Search(ctx, Viewer{f.alice}, api.ResourceTasks, text("backup", 10))
		must(t, err)
		if got := hitIDs(hits); !sameSet(got, []string{mine.ID, team.ID}) {
			t.Fatalf("alice's backup search: %v, want her row and her team's", got)
		}
		for i, h := range hits {
			if h.Score <= 0 || (i > 0 && h.Score > hits[i-1].Score) {
				t.Errorf("scores must be positive and best first: %v", hits)
			}
		}
		one, err := s.Search(ctx, Viewer{f.alice}, api.ResourceTasks, text("backup", 1))
		must(t, err)
		if len(one) != 1 || one[0].id == carols.ID {
			t.Fatalf("limit 1 must pick among her rows (filter, then rank): %v", hitIDs(one))
		}
		if hits, _ := s.Search(ctx, Viewer{f.carol}, api.ResourceTasks, text("backup", 10)); !slices.Equal(hitIDs(hits), []string{carols.ID}) {
			t.Errorf("carol: %v", hitIDs(hits))
		}

		By := func(name string, rows scope.Rows, want ...string) {
			t.Helper()
			hits, err := s.SearchGranted(ctx, rows, text("backup", 10))
			must(t, err)
			if !sameSet(hitIDs(hits), want) {
				t.Errorf("%s: %v, want %v", name, hitIDs(hits), want)
			}
		}
		By("personal only", grantRows(t, f.alice, api.ResourceTasks, true), mine.ID)
		By("core only", grantRows(t, f.alice, api.ResourceTasks, false, f.core), team.ID)
		By("a team she is not in", grantRows(t, f.alice, api.ResourceTasks, false, f.other))
		if hits, err := s.SearchGranted(ctx, scope.Rows{}, text("backup", 10)); err == nil && len(hits) > 0 {
			t.Errorf("the zero Rows found %d rows", len(hits))
		}
	})
}

func sameSet(a, b []string) bool {
	x, y := slices.Clone(a), slices.Clone(b)
	slices.Sort(x)
	slices.Sort(y)
	return slices.Equal(x, y)
}

func TestTextSearchTreatsQuerySyntaxAsText(t *testing.T) {
	forEachSearchEngine(t, func(t *testing.T, s Store) {
		ctx := context.Background()
		f := seedFixture(t, s)
		near := titled(f.alice, nil, 1, "near and far")
		must(t, s.PutTask(ctx, near))
		for _, q := range []string{`"`, `"near`, `near*`, `NEAR(near far)`, `near AND far`, `near OR`, `-near`,
			`title:near`, `^near`, `(near`, `near)`, `'near'`, `near\`, `{near}`, `near + far`, `NOT`, `* * *`, `near"far`, `!!!`, `—`} {
			hits, err := s.Search(ctx, Viewer{f.alice}, api.ResourceTasks, text(q, 5))
			if err != nil {
				t.Errorf("query %q: %v", q, err)
				continue
			}
			if len(hits) > 1 {
				t.Errorf("query %q: %d hits", q, len(hits))
			}
		}
		for _, q := range []string{`NEAR(`, `near AND`, `"near"`, `near*`} {
			hits, err := s.Search(ctx, Viewer{f.alice}, api.ResourceTasks, text(q, 5))
			if err != nil || !slices.Equal(hitIDs(hits), []string{near.ID}) {
				t.Errorf("query %q finds the word as text: %v %v", q, hitIDs(hits), err)
			}
		}
		if hits, err := s.Search(ctx, Viewer{f.alice}, api.ResourceTasks, text("!!! ???", 5)); err != nil || len(hits) != 0 {
			t.Errorf("no searchable token: %v %v", hits, err)
		}
	})
}

func TestTextSearchCoversEachResourceAndFollowsWrites(t *testing.T) {
	forEachSearchEngine(t, func(t *testing.T, s Store) {
		ctx := context.Background()
		f := seedFixture(t, s)
		inTitle := api.Note{ID: uuid.NewString(), OwnerUserID: f.alice, Title: "Kubernetes upgrade", Body: "steps", CreatedAt: epoch, UpdatedAt: epoch}
		inBody := api.Note{ID: uuid.NewString(), OwnerUserID: f.alice, Title: "notes", Body: "the kubernetes upgrade needs a window", CreatedAt: epoch, UpdatedAt: epoch}
		must(t, s.PutNote(ctx, inTitle))
		must(t, s.PutNote(ctx, inBody))
		hits, err := s.Search(ctx, Viewer{f.alice}, api.ResourceNotes, text("kubernetes", 10))
		must(t, err)
		if !slices.Equal(hitIDs(hits), []string{inTitle.ID, inBody.ID}) {
			t.Errorf("notes: %v, want the title match first", hitIDs(hits))
		}
		m := memory(f.alice, nil, 1, "The VPN gateway rotates its keys on Mondays.")
		putMemories(t, s, m)
		if hits, _ := s.Search(ctx, Viewer{f.alice}, api.ResourceMemories, text("vpn keys", 10)); !slices.Equal(hitIDs(hits), []string{m.ID}) {
			t.Errorf("memories: %v", hitIDs(hits))
		}
		if hits, _ := s.Search(ctx, Viewer{f.alice}, api.ResourceMemories, text("Café", 10)); len(hits) != 0 {
			t.Errorf("unrelated word: %v", hitIDs(hits))
		}

		By := func(title string, q string, want int) {
			t.Helper()
			hits, err := s.Search(ctx, Viewer{f.alice}, api.ResourceTasks, text(q, 10))
			must(t, err)
			if len(hits) != want {
				t.Errorf("after %q, %q finds %d, want %d", title, q, len(hits), want)
			}
		}
		tk := titled(f.alice, nil, 1, "renew the certificate")
		must(t, s.PutTask(ctx, tk))
		By(tk.Title, "certificate", 1)
		tk.Title = "rotate the password"
		must(t, s.PutTask(ctx, tk)) // an upsert: an update
		By(tk.Title, "certificate", 0)
		By(tk.Title, "password", 1)
		must(t, s.PutTask(ctx, tk)) // again, unchanged
		By(tk.Title, "password", 1)
	})
}

func TestVectorSearchEqualsAnExactScan(t *testing.T) {
	forEachSearchEngine(t, func(t *testing.T, s Store) {
		ctx := context.Background()
		f := seedFixture(t, s)
		words := strings.Fields("deploy database backup network certificate vpn rotation kubernetes storage upgrade alert pager")
		var all []api.Memory
		for i := range 60 {
			owner, team := f.alice, (*string)(nil)
			switch i % 4 {
			case 1:
				team = &f.core
			case 2:
				owner, team = f.bob, &f.core
			case 3:
				owner = f.carol
			}
			content := fmt.Sprintf("%s %s %s note%d", words[i%len(words)], words[(i*7)%len(words)], words[(i*5+3)%len(words)], i) // no two alike: no ties
			all = append(all, memory(owner, team, i, content))
		}
		putMemories(t, s, all...)
		query := "database backup rotation"
		// exact is the k best cosine similarities of the rows kept, best first.
		exact := func(keep func(api.Memory) bool, k int) []float64 {
			var c []float64
			for _, m := range all {
				if keep(m) {
					c = append(c, Cosine(embed.HashVector(m.Content), embed.HashVector(query)))
				}
			}
			sort.Sort(sort.Reverse(sort.Float64Slice(c)))
			return c[:min(k, len(c))]
		}
		// equalsExact checks hits are the k nearest: the same scores, best first, and
		// each hit a kept row with the score it really has (rows of equal score may
		// come in any order).
		equalsExact := func(name string, hits []Hit, keep func(api.Memory) bool, k int) {
			t.Helper()
			want := exact(keep, k)
			if len(hits) != len(want) {
				t.Fatalf("%s: %d hits, want %d", name, len(hits), len(want))
			}
			byID := map[string]api.Memory{}
			for _, m := range all {
				byID[m.ID] = m
			}
			for i, h := range hits {
				m, ok := byID[h.id]
				real := Cosine(embed.HashVector(m.Content), embed.HashVector(query))
				if !ok || !keep(m) || math.Abs(h.Score-want[i]) > 1e-5 || math.Abs(real-h.Score) > 1e-5 {
					t.Fatalf("%s: hit %d is %s scored %v (really %v), want score %v", name, i, h.id, h.Score, real, want[i])
				}
			}
		}
		visibleToAlice := func(m api.Memory) bool { return m.OwnerUserID == f.alice || (m.TeamID != nil && *m.TeamID == f.core) }
		hits, err := s.Search(ctx, Viewer{f.alice}, api.ResourceMemories, vector(query, 10))
		must(t, err)
		equalsExact("alice's nearest", hits, visibleToAlice, 10)
		if hits[0].Score <= 0 || hits[0].Score > 1.0000001 {
			t.Errorf("cosine similarity out of range: %v", hits[0].Score)
		}
		personal := func(m api.Memory) bool { return m.OwnerUserID == f.alice && m.TeamID == nil }
		granted, err := s.SearchGranted(ctx, grantRows(t, f.alice, api.ResourceMemories, true), vector(query, 5))
		must(t, err)
		equalsExact("personal scope", granted, personal, 5)
		all20, err := s.SearchGranted(ctx, grantRows(t, f.alice, api.ResourceMemories, true), vector(query, 100))
		must(t, err)
		equalsExact("more than the scope holds", all20, personal, 100)

		By := func(mode string, resource string) {
			t.Helper()
			_, err := s.Search(ctx, Viewer{f.alice}, resource, SearchOptions{Query: "x", Mode: mode, Limit: 5, Embedding: embed.HashVector("x")})
			var fe *api.FieldError
			if !errors.As(err, &fe) || fe.Code != api.CodeModeNotSupported {
				t.Errorf("%s on %s: %v, want %s", mode, resource, err, api.CodeModeNotSupported)
			}
		}
		By(api.ModeVector, api.ResourceTasks)
		By(api.ModeHybrid, api.ResourceNotes)
		if _, err := s.Search(ctx, Viewer{f.alice}, api.ResourceMemories, SearchOptions{Query: "x", Mode: api.ModeVector, Limit: 5}); !errors.Is(err, ErrInvalid) {
			t.Errorf("a vector search without the query's embedding: %v", err)
		}
	})
}

func TestHybridFusesTextAndVector(t *testing.T) {
	forEachSearchEngine(t, func(t *testing.T, s Store) {
		ctx := context.Background()
		f := seedFixture(t, s)
		a := memory(f.alice, nil, 1, "pager alert for the storage cluster")
		b := memory(f.alice, nil, 2, "storage cluster capacity planning")
		c := memory(f.alice, nil, 3, "lunch menu")
		putMemories(t, s, a, b, c)
		q := SearchOptions{Query: "pager", Mode: api.ModeHybrid, Limit: 3, Embedding: embed.HashVector("pager")}
		hits, err := s.Search(ctx, Viewer{f.alice}, api.ResourceMemories, q)
		must(t, err)
		if len(hits) == 0 || hits[0].id != a.ID {
			t.Fatalf("hybrid: %v, want the text and vector match first", hitIDs(hits))
		}
		if want := 2.0 / 61; hits[0].Score < want-1e-9 || hits[0].Score > want+1e-9 {
			t.Errorf("first in both rankings scores 2/61, got %v", hits[0].Score)
		}
		noText := SearchOptions{Query: "zzz storage-capacity", Mode: api.ModeHybrid, Limit: 3, Embedding: embed.HashVector("zzz storage-capacity")}
		hy, err := s.Search(ctx, Viewer{f.alice}, api.ResourceMemories, noText)
		must(t, err)
		vec, err := s.Search(ctx, Viewer{f.alice}, api.ResourceMemories, SearchOptions{Query: noText.Query, Mode: api.ModeVector, Limit: 3, Embedding: noText.Embedding})
		must(t, err)
		if !slices.Equal(hitIDs(hy), hitIDs(vec)) {
			t.Errorf("with no text hit hybrid is the vector ranking: %v vs %v", hitIDs(hy), hitIDs(vec))
		}
	})
}

func TestHybridIsReciprocalRankFusion(t *testing.T) {
	h := func(ids ...string) []Hit {
		var out []Hit
		for _, id := range ids {
			out = append(out, Hit{id: id, Item: api.Memory{ID: id}})
		}
		return out
	}
	got := Hybrid(h("a", "b", "c"), h("c", "d"), 3)
	if !slices.Equal(hitIDs(got), []string{"c", "a", "b"}) {
		t.Errorf("fused: %v", hitIDs(got))
	}
	if got := Hybrid(nil, h("x", "y"), 5); !slices.Equal(hitIDs(got), []string{"x", "y"}) {
		t.Errorf("no text hit: %v", hitIDs(got))
	}
}

// TestHNSWFindsRowsUnderASelectiveScope forces the HNSW index (no sequential or bitmap
// scans in this database) where the subject's rows are a few among thousands, far from
// the query: a plain index scan's first ef_search candidates hold none of them, and
// even the iterative scan may not reach every one; the exact scan that follows a short
// answer must bring all of them.
func TestHNSWFindsRowsUnderASelectiveScope(t *testing.T) {
	needPostgres(t)
	ctx := context.Background()
	s := openPostgresDB(t, freshDB(t), true, map[string]string{"enable_seqscan": "off", "enable_bitmapscan": "off"})
	if d := s.(*sqlStore).d; !d.vector || !d.iterative {
		t.Skip("pgvector < 0.8: exact scans instead")
	}
	f := seedFixture(t, s)
	var others []api.Memory
	for i := range 2000 {
		others = append(others, memory(f.carol, &f.other, i, fmt.Sprintf("backup rotation %d", i)))
	}
	putMemories(t, s, others...)
	var hers []string
	for i := range 5 {
		m := memory(f.alice, nil, i, fmt.Sprintf("lunch menu %d", i))
		putMemories(t, s, m)
		hers = append(hers, m.ID)
	}
	rows := grantRows(t, f.alice, api.ResourceMemories, true, f.core)
	hits, err := s.SearchGranted(ctx, rows, vector("backup rotation", 5))
	must(t, err)
	if !sameSet(hitIDs(hits), hers) {
		t.Fatalf("got %d of her 5 rows: %v", len(hits), hitIDs(hits))
	}
	var plan string
	d := s.(*sqlStore)
	tx, err := d.db.BeginTx(ctx, nil)
	must(t, err)
	defer tx.Rollback() //nolint:errcheck
	rs, err := tx.QueryContext(ctx, `EXPLAIN SELECT id FROM memories t WHERE (t.owner_user_id = $1 AND t.team_id IS NULL) OR t.team_id = $2
		ORDER BY t.embedding <=> $3 LIMIT 5`, f.alice, f.core, d.d.vec(embed.HashVector("x")))
	must(t, err)
	for rs.Next() {
		var line string
		must(t, rs.Scan(&line))
		plan += line + "\n"
	}
	rs.Close()
	if !strings.Contains(plan, "memories_embedding_hnsw") {
		t.Fatalf("the plan does not use the HNSW index:\n%s", plan)
	}
}

func TestTierMigrationCarriesSearch(t *testing.T) {
	needPostgres(t)
	ctx := context.Background()
	src, err := OpenSQLite(ctx, filepath.Join(t.TempDir(), "src.db"))
	must(t, err)
	defer src.Close()
	f := seedFixture(t, src)
	must(t, src.PutTask(ctx, titled(f.alice, nil, 1, "migrate the search index")))
	m := memory(f.alice, nil, 2, "vectors travel with their rows")
	putMemories(t, src, m)
	dst := openFreshPostgres(t)
	for _, tc := range tableSpecs {
		if _, err := CopyTable(ctx, src, dst, tc.name, 100, func(int) {}); err != nil {
			t.Fatal(err)
		}
		must(t, VerifyTable(ctx, src, dst, tc.name, 100))
	}
	hits, err := dst.Search(ctx, Viewer{f.alice}, api.ResourceTasks, text("search", 5))
	if err != nil || len(hits) != 1 {
		t.Fatalf("text search on the migrated store: %v %v", hitIDs(hits), err)
	}
	hits, err = dst.Search(ctx, Viewer{f.alice}, api.ResourceMemories, vector("vectors travel with their rows", 5))
	if err != nil || len(hits) != 1 || hits[0].Score < 0.999 {
		t.Fatalf("vector search on the migrated store: %+v %v", hits, err)
	}
}

// TestSearchMigrationsRunTwice re-runs search's migration over indexed rows, as a
// store whose version table lost the row would: nothing fails and nothing is indexed
// twice.
func TestSearchMigrationsRunTwice(t *testing.T) {
	for _, e := range searchEngines() {
		t.Run(e.name, func(t *testing.T) {
			ctx := context.Background()
			s := e.open(t).(*sqlStore)
			f := seedFixture(t, s)
			must(t, s.PutTask(ctx, titled(f.alice, nil, 1, "idempotent migration")))
			version, dialect, dir := 4, goose.DialectPostgres, "migrations/postgres"
			if s.d.engine == "sqlite" {
				version, dialect, dir = 2, goose.DialectSQLite3, "migrations/sqlite"
			}
			must(t, s.exec(ctx, `DELETE FROM goose_db_version WHERE version_id = ?`, version))
			must(t, s.migrate(ctx, dialect, dir))
			hits, err := s.Search(ctx, Viewer{f.alice}, api.ResourceTasks, text("idempotent", 10))
			if err != nil || len(hits) != 1 {
				t.Fatalf("after a second run: %v %v", hitIDs(hits), err)
			}
		})
	}
}
