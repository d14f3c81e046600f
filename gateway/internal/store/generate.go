package store

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
)

// GenerateOptions say how many synthetic rows to add for a site's existing users and
// teams (gateway seed generate): a third personal, two thirds in a team and owned by
// one of its members, statuses spread evenly, created and updated times spread over
// the year before Now.
type GenerateOptions struct {
	Tasks, Notes, Memories int
	Now                    time.Time
	// Embed gives a memory's embedding (nil: memories get none).
	Embed func(content string) []float32
	// Progress is told after every batch (nil: silent).
	Progress func(table string, done, total int)
}

// Generator is implemented by both engines' stores.
type Generator interface {
	Generate(ctx context.Context, o GenerateOptions) error
}

// generateBatch is how many rows one statement (PostgreSQL) or one progress report
// (SQLite) covers: big enough that per-statement cost vanishes, small enough that a
// long run shows progress every second or so.
const generateBatch = 100_000

// ErrNoUsers is why generation refuses a site without users.
var ErrNoUsers = errors.New("the site has no users to own generated rows: load a seed set first (gateway seed load <file>)")

// owners is who may own generated rows: every user, and every (team, member) pair.
type owners struct {
	users          []string
	teams, members []string // parallel: members[i] belongs to teams[i]
}

func (s *sqlStore) owners(ctx context.Context) (owners, error) {
	var o owners
	if err := s.strings(ctx, `SELECT id FROM users ORDER BY id`, func(v ...string) { o.users = append(o.users, v[0]) }, 1); err != nil {
		return o, err
	}
	err := s.strings(ctx, `SELECT team_id, user_id FROM team_members ORDER BY team_id, user_id`, func(v ...string) {
		o.teams, o.members = append(o.teams, v[0]), append(o.members, v[1])
	}, 2)
	if err == nil && len(o.users) == 0 {
		err = ErrNoUsers
	}
	return o, err
}

func (s *sqlStore) strings(ctx context.Context, q string, fn func(...string), n int) error {
	rows, err := s.db.QueryContext(ctx, q)
	if err != nil {
		return err
	}
	defer rows.Close()
	vals := make([]string, n)
	ptrs := make([]any, n)
	for i := range vals {
		ptrs[i] = &vals[i]
	}
	for rows.Next() {
		if err := rows.Scan(ptrs...); err != nil {
			return err
		}
		fn(vals...)
	}
	return rows.Err()
}

// Generate adds the rows: tasks and notes are made by the database engine itself
// (INSERT … SELECT over generate_series on PostgreSQL, over a recursive CTE on SQLite,
// one statement per batch), so no row crosses the driver; memories, whose embeddings
// are computed here, go through one prepared statement in one transaction.
func (s *sqlStore) Generate(ctx context.Context, o GenerateOptions) error {
	if o.Tasks < 0 || o.Notes < 0 || o.Memories < 0 {
		return invalid("counts must not be negative")
	}
	if o.Now.IsZero() {
		o.Now = time.Now()
	}
	if o.Progress == nil {
		o.Progress = func(string, int, int) {}
	}
	own, err := s.owners(ctx)
	if err != nil {
		return err
	}
	for _, t := range []struct {
		table string
		n     int
	}{{"tasks", o.Tasks}, {"notes", o.Notes}, {"memories", o.Memories}} {
		if t.n == 0 {
			continue
		}
		switch {
		case s.d.engine == "postgres":
			err = s.generatePostgres(ctx, own, t.table, t.n, o)
		case t.table == "memories":
			err = s.generateClient(ctx, own, t.table, t.n, o)
		default:
			err = s.generateSQLite(ctx, own, t.table, t.n, o)
		}
		if err != nil {
			return fmt.Errorf("generate %s: %w", t.table, err)
		}
		// The planner's statistics of a table that grew a millionfold are wrong until
		// autovacuum (PostgreSQL) or someone (SQLite) analyses it again.
		if _, err := s.db.ExecContext(ctx, `ANALYZE `+t.table); err != nil {
			return fmt.Errorf("analyze %s: %w", t.table, err)
		}
	}
	return nil
}

// pgGenerate makes rows $1..$2 of a table. One random draw per row picks the (team,
// member) pair, so the owner is always a member of the row's team.
const pgGenerate = `WITH u AS (SELECT array_agg(id ORDER BY id) AS a FROM users),
	m AS (SELECT array_agg(team_id ORDER BY team_id, user_id) AS t, array_agg(user_id ORDER BY team_id, user_id) AS u FROM team_members),
	g AS (SELECT i, random() AS r1, random() AS r2, random() AS r3, random() AS r4 FROM generate_series($1::bigint, $2::bigint) AS i),
	r AS (SELECT i, r1, r2, r4,
		i %% 3 = 0 OR m.t IS NULL AS personal,
		1 + floor(r3 * coalesce(cardinality(m.t), 0))::int AS mi,
		1 + floor(r3 * cardinality(u.a))::int AS ui,
		u.a AS ua, m.t AS mt, m.u AS mu
		FROM g, u, m)
INSERT INTO %s
SELECT gen_random_uuid(),
	CASE WHEN personal THEN ua[ui] ELSE mu[mi] END,
	CASE WHEN personal THEN NULL ELSE mt[mi] END,
	%s,
	$3::timestamptz - r1 * interval '365 days',
	$3::timestamptz - r1 * r2 * interval '365 days'
FROM r`

// generatePostgres adds a table's rows in one transaction; into an empty table (or
// one holding under a tenth of the rows added) it loads them first and builds the secondary indexes after (the list indexes, the
// search index, memories' HNSW), as bulkLoad does: 10⁶ tasks took 75 s with the
// indexes maintained row by row.
func (s *sqlStore) generatePostgres(ctx context.Context, own owners, table string, n int, o GenerateOptions) error {
	return s.pgTx(ctx, func(tx pgx.Tx) error {
		exec := func(q string, args ...any) error {
			_, err := tx.Exec(ctx, q, args...)
			return err
		}
		// A load ten times what the table holds (a seeded site made to try a million
		// rows) builds its indexes after it too; the table's readers wait meanwhile.
		return indexesAfter(ctx, tx, table, n/10, func(bool) error {
			if table == "memories" {
				return s.generateRows(own, table, n, o, exec)
			}
			return s.generateServer(table, n, o, exec)
		}, func(done, total int) { o.Progress(table+" indexes", done, total) })
	})
}

func (s *sqlStore) generateServer(table string, n int, o GenerateOptions, exec func(string, ...any) error) error {
	cols := "(id, owner_user_id, team_id, title, status, created_at, updated_at)"
	vals := `'generated task ' || i, (ARRAY['open', 'in_progress', 'done'])[1 + floor(r4 * 3)::int]`
	if table == "notes" {
		cols = "(id, owner_user_id, team_id, title, body, created_at, updated_at)"
		vals = `'generated note ' || i, 'body of generated note ' || i`
	}
	q := fmt.Sprintf(pgGenerate, table+" "+cols, vals)
	for from := 1; from <= n; from += generateBatch {
		to := min(from+generateBatch-1, n)
		if err := exec(q, from, to, o.Now.UTC()); err != nil {
			return err
		}
		o.Progress(table, to, n)
	}
	return nil
}

// sqliteGenerate makes rows ?1..?2 of a table on SQLite, the same mix as pgGenerate:
// random() & max-int64 is a non-negative draw (abs() of the smallest integer fails),
// times are microseconds before ?3 written in the store's text format, ids are random
// version-4 UUIDs in canonical lowercase. ?4 is the users as a JSON array, ?5 the
// number of (team, member) pairs, ?6 and ?7 their members and teams. The draws are
// MATERIALIZED: SQLite would otherwise inline a CTE's random() into every place that
// names it, and a row's created and updated times, owner and team would come from
// different draws.
const sqliteGenerate = `WITH RECURSIVE g(i) AS (SELECT ?1 UNION ALL SELECT i + 1 FROM g WHERE i < ?2),
	r AS MATERIALIZED (SELECT i, lower(hex(randomblob(16))) AS h,
		random() & 9223372036854775807 AS a, random() & 9223372036854775807 AS b,
		random() & 9223372036854775807 AS c, random() & 9223372036854775807 AS d,
		i %% 3 = 0 OR ?5 = 0 AS personal FROM g),
	t AS (SELECT i, h, b, d, personal, ?3 - a %% 31536000000000 AS cr, a %% 31536000000000 AS age,
		CASE WHEN personal THEN json_extract(?4, '$[' || (c %% json_array_length(?4)) || ']')
			ELSE json_extract(?6, '$[' || (c %% ?5) || ']') END AS owner,
		CASE WHEN personal THEN NULL ELSE json_extract(?7, '$[' || (c %% ?5) || ']') END AS team FROM r),
	u AS (SELECT i, d, owner, team, cr, cr + b %% (age + 1) AS up,
		substr(h, 1, 8) || '-' || substr(h, 9, 4) || '-4' || substr(h, 14, 3) || '-' ||
		substr('89ab', 1 + b %% 4, 1) || substr(h, 18, 3) || '-' || substr(h, 21, 12) AS id FROM t)
INSERT INTO %s
SELECT id, owner, team, %s,
	strftime('%%Y-%%m-%%dT%%H:%%M:%%S', cr / 1000000, 'unixepoch') || printf('.%%06dZ', cr %% 1000000),
	strftime('%%Y-%%m-%%dT%%H:%%M:%%S', up / 1000000, 'unixepoch') || printf('.%%06dZ', up %% 1000000)
FROM u`

func (s *sqlStore) generateSQLite(ctx context.Context, own owners, table string, n int, o GenerateOptions) error {
	cols := "(id, owner_user_id, team_id, title, status, created_at, updated_at)"
	vals := `'generated task ' || i, CASE d % 3 WHEN 0 THEN 'open' WHEN 1 THEN 'in_progress' ELSE 'done' END`
	if table == "notes" {
		cols = "(id, owner_user_id, team_id, title, body, created_at, updated_at)"
		vals = `'generated note ' || i, 'body of generated note ' || i`
	}
	q := fmt.Sprintf(sqliteGenerate, table+" "+cols, vals)
	users, _ := json.Marshal(own.users)
	members, _ := json.Marshal(own.members)
	teams, _ := json.Marshal(own.teams)
	// A million random-UUID rows touch every page of the table's indexes; with
	// SQLite's default 2 MB page cache each batch rereads and rewrites them. One
	// connection gets a 256 MiB cache for the load and its default back after.
	conn, err := s.db.Conn(ctx)
	if err != nil {
		return err
	}
	defer conn.Close()
	if _, err := conn.ExecContext(ctx, `PRAGMA cache_size = -262144`); err != nil {
		return err
	}
	defer conn.ExecContext(context.WithoutCancel(ctx), `PRAGMA cache_size = -2000`) //nolint:errcheck // the default; a failure only leaves a bigger cache
	tx, err := conn.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	defer tx.Rollback() //nolint:errcheck // a no-op after Commit
	now := o.Now.UTC().Truncate(time.Microsecond).UnixMicro()
	indexes, err := sqliteDropIndexesIfFew(ctx, tx, table, n/10)
	if err != nil {
		return err
	}
	for from := 1; from <= n; from += generateBatch {
		to := min(from+generateBatch-1, n)
		if _, err := tx.ExecContext(ctx, q, from, to, now, string(users), len(own.teams), string(members), string(teams)); err != nil {
			return err
		}
		o.Progress(table, to, n)
	}
	for i, def := range indexes {
		if _, err := tx.ExecContext(ctx, def); err != nil {
			return fmt.Errorf("rebuild an index of %s: %w", table, err)
		}
		o.Progress(table+" indexes", i+1, len(indexes))
	}
	return tx.Commit()
}

// sqliteDropIndexesIfFew drops the indexes that back no constraint (those SQLite
// made itself have no SQL) of a table holding at most few rows, and returns the
// statements that recreate them: building an index once over the loaded rows beats
// maintaining it for every random-UUID row. The transaction holds SQLite's write
// lock, so what the table holds stays so.
func sqliteDropIndexesIfFew(ctx context.Context, tx *sql.Tx, table string, few int) ([]string, error) {
	var hasRows bool // more than few
	if err := tx.QueryRowContext(ctx, `SELECT count(*) > ?1 FROM (SELECT 1 FROM `+table+` LIMIT ?1 + 1)`, few).Scan(&hasRows); err != nil || hasRows {
		return nil, err
	}
	rows, err := tx.QueryContext(ctx, `SELECT name, sql FROM sqlite_master WHERE type = 'index' AND tbl_name = ? AND sql IS NOT NULL ORDER BY name`, table)
	if err != nil {
		return nil, err
	}
	var names, defs []string
	for rows.Next() {
		var name, def string
		if err := rows.Scan(&name, &def); err != nil {
			rows.Close()
			return nil, err
		}
		names, defs = append(names, name), append(defs, def)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return nil, err
	}
	for _, name := range names {
		if _, err := tx.ExecContext(ctx, `DROP INDEX "`+name+`"`); err != nil {
			return nil, fmt.Errorf("drop index %s: %w", name, err)
		}
	}
	return defs, nil
}

var generateInsert = map[string]string{
	"tasks":    `INSERT INTO tasks (id, owner_user_id, team_id, title, status, created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?)`,
	"notes":    `INSERT INTO notes (id, owner_user_id, team_id, title, body, created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?)`,
	"memories": `INSERT INTO memories (id, owner_user_id, team_id, content, embedding, created_at) VALUES (?, ?, ?, ?, ?, ?)`,
}

var statuses = []string{"open", "in_progress", "done"}

// generateClient adds SQLite's memories through one prepared statement in one
// transaction.
func (s *sqlStore) generateClient(ctx context.Context, own owners, table string, n int, o GenerateOptions) error {
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	defer tx.Rollback() //nolint:errcheck // a no-op after Commit
	stmt, err := tx.PrepareContext(ctx, generateInsert[table])
	if err != nil {
		return err
	}
	defer stmt.Close()
	err = s.generateRows(own, table, n, o, func(_ string, args ...any) error {
		_, err := stmt.ExecContext(ctx, args...)
		return err
	})
	if err != nil {
		return err
	}
	return tx.Commit()
}

// generateRows makes the rows here, one exec of generateInsert each (memories, whose
// embeddings are computed here).
func (s *sqlStore) generateRows(own owners, table string, n int, o GenerateOptions, exec func(string, ...any) error) error {
	q := s.d.rebind(generateInsert[table])
	r := rand.New(rand.NewPCG(uint64(o.Now.UnixNano()), uint64(n)))
	const year = 365 * 24 * time.Hour
	for i := 1; i <= n; i++ {
		owner, team := own.pick(r, i)
		age := time.Duration(r.Int64N(int64(year)))
		created := o.Now.Add(-age)
		updated := created.Add(time.Duration(r.Int64N(int64(age) + 1)))
		var args []any
		switch table {
		case "tasks":
			args = []any{fmt.Sprintf("generated task %d", i), statuses[r.IntN(3)], s.d.ts(created), s.d.ts(updated)}
		case "notes":
			args = []any{fmt.Sprintf("generated note %d", i), fmt.Sprintf("body of generated note %d", i), s.d.ts(created), s.d.ts(updated)}
		default:
			content := fmt.Sprintf("generated memory %d of %s", i, created.Format("January 2006"))
			var vec []float32
			if o.Embed != nil {
				vec = o.Embed(content)
			}
			args = []any{content, s.d.vec(vec), s.d.ts(created)}
		}
		if err := exec(q, append([]any{uuid.NewString(), owner, team}, args...)...); err != nil {
			return err
		}
		if i%generateBatch == 0 || i == n {
			o.Progress(table, i, n)
		}
	}
	return nil
}

// pick is the owner and team of the i-th row: every third personal.
func (o owners) pick(r *rand.Rand, i int) (string, sql.NullString) {
	if i%3 == 0 || len(o.teams) == 0 {
		return o.users[r.IntN(len(o.users))], sql.NullString{}
	}
	k := r.IntN(len(o.teams))
	return o.members[k], sql.NullString{String: o.teams[k], Valid: true}
}
