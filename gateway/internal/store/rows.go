package store

import (
	"context"
	"database/sql"
	"encoding/base64"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/mosaic-federation/mosaic/gateway/api"
	"github.com/mosaic-federation/mosaic/gateway/internal/scope"
)

// ---- users and teams

func (s *sqlStore) UpsertUser(ctx context.Context, u User) error {
	if err := validID(u.ID); err != nil {
		return err
	}
	return s.exec(ctx, `INSERT INTO users (id, email, display_name, role, created_at) VALUES (?, ?, ?, ?, ?)
		ON CONFLICT (id) DO UPDATE SET email = excluded.email, display_name = excluded.display_name, role = excluded.role`,
		u.ID, u.Email, u.DisplayName, u.Role, s.d.ts(u.CreatedAt))
}

func (s *sqlStore) SetTokenHash(ctx context.Context, userID string, hash []byte) error {
	return s.exec(ctx, `UPDATE users SET api_token_hash = ? WHERE id = ?`, hash, userID)
}

const userCols = `id, email, display_name, role, created_at, api_token_hash IS NOT NULL`

func (s *sqlStore) user(ctx context.Context, where string, arg any) (User, error) {
	var u User
	err := s.db.QueryRowContext(ctx, s.d.rebind(`SELECT `+userCols+` FROM users WHERE `+where), arg).
		Scan(&u.ID, &u.Email, &u.DisplayName, &u.Role, scanTime{&u.CreatedAt}, &u.HasToken)
	if errors.Is(err, sql.ErrNoRows) {
		return User{}, ErrNotFound
	}
	return u, err
}

func (s *sqlStore) UserByTokenHash(ctx context.Context, hash []byte) (User, error) {
	return s.user(ctx, `api_token_hash = ?`, hash)
}

func (s *sqlStore) UserByEmail(ctx context.Context, email string) (User, error) {
	return s.user(ctx, `email = ?`, email)
}

func (s *sqlStore) UserByID(ctx context.Context, id string) (User, error) {
	if validID(id) != nil {
		return User{}, ErrNotFound
	}
	return s.user(ctx, `id = ?`, id)
}

func (s *sqlStore) UpsertTeam(ctx context.Context, t Team) error {
	if err := validID(t.ID); err != nil {
		return err
	}
	return s.exec(ctx, `INSERT INTO teams (id, name, created_at) VALUES (?, ?, ?)
		ON CONFLICT (id) DO UPDATE SET name = excluded.name`, t.ID, t.Name, s.d.ts(t.CreatedAt))
}

func (s *sqlStore) AddMember(ctx context.Context, teamID, userID string) error {
	return s.exec(ctx, `INSERT INTO team_members (team_id, user_id) VALUES (?, ?) ON CONFLICT DO NOTHING`, teamID, userID)
}

func (s *sqlStore) IsMember(ctx context.Context, teamID, userID string) (bool, error) {
	if validID(teamID) != nil || validID(userID) != nil {
		return false, nil
	}
	var n int
	err := s.db.QueryRowContext(ctx, s.d.rebind(`SELECT count(*) FROM team_members WHERE team_id = ? AND user_id = ?`),
		teamID, userID).Scan(&n)
	return n > 0, err
}

// ---- data

func checkIDs(ids ...*string) error {
	for _, id := range ids {
		if id != nil {
			if err := validID(*id); err != nil {
				return err
			}
		}
	}
	return nil
}

func (s *sqlStore) PutTask(ctx context.Context, t api.Task) error {
	if err := checkIDs(&t.ID, &t.OwnerUserID, t.TeamID); err != nil {
		return err
	}
	return s.exec(ctx, `INSERT INTO tasks (id, owner_user_id, team_id, title, status, due_at, created_at, updated_at)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?)
		ON CONFLICT (id) DO UPDATE SET owner_user_id = excluded.owner_user_id, team_id = excluded.team_id,
			title = excluded.title, status = excluded.status, due_at = excluded.due_at,
			created_at = excluded.created_at, updated_at = excluded.updated_at`,
		t.ID, t.OwnerUserID, t.TeamID, t.Title, t.Status, s.d.tsPtr(t.DueAt), s.d.ts(t.CreatedAt), s.d.ts(t.UpdatedAt))
}

func (s *sqlStore) PutNote(ctx context.Context, n api.Note) error {
	if err := checkIDs(&n.ID, &n.OwnerUserID, n.TeamID); err != nil {
		return err
	}
	return s.exec(ctx, `INSERT INTO notes (id, owner_user_id, team_id, title, body, created_at, updated_at)
		VALUES (?, ?, ?, ?, ?, ?, ?)
		ON CONFLICT (id) DO UPDATE SET owner_user_id = excluded.owner_user_id, team_id = excluded.team_id,
			title = excluded.title, body = excluded.body, created_at = excluded.created_at, updated_at = excluded.updated_at`,
		n.ID, n.OwnerUserID, n.TeamID, n.Title, n.Body, s.d.ts(n.CreatedAt), s.d.ts(n.UpdatedAt))
}

func (s *sqlStore) PutMemory(ctx context.Context, m api.Memory, embedding []float32) error {
	if err := checkIDs(&m.ID, &m.OwnerUserID, m.TeamID); err != nil {
		return err
	}
	return s.exec(ctx, `INSERT INTO memories (id, owner_user_id, team_id, content, embedding, created_at)
		VALUES (?, ?, ?, ?, ?, ?)
		ON CONFLICT (id) DO UPDATE SET owner_user_id = excluded.owner_user_id, team_id = excluded.team_id,
			content = excluded.content, embedding = excluded.embedding, created_at = excluded.created_at`,
		m.ID, m.OwnerUserID, m.TeamID, m.Content, s.d.vec(embedding), s.d.ts(m.CreatedAt))
}

func (s *sqlStore) PutCredential(ctx context.Context, c Credential) error {
	if err := checkIDs(&c.ID, &c.OwnerUserID); err != nil {
		return err
	}
	return s.exec(ctx, `INSERT INTO credentials (id, owner_user_id, provider, secret_sealed) VALUES (?, ?, ?, ?)
		ON CONFLICT (id) DO UPDATE SET owner_user_id = excluded.owner_user_id, provider = excluded.provider,
			secret_sealed = excluded.secret_sealed`, c.ID, c.OwnerUserID, c.Provider, c.SecretSealed)
}

func (s *sqlStore) Count(ctx context.Context, table string) (int64, error) {
	if !slices.Contains(Tables, table) {
		return 0, invalid("no table %q", table)
	}
	var n int64
	err := s.db.QueryRowContext(ctx, `SELECT count(*) FROM `+table).Scan(&n)
	return n, err
}

// ---- reads under RBAC

// resource says how to read one native resource.
type resource struct {
	table   string
	cols    string
	updated bool // has updated_at (filter updated_since)
	status  bool // has status (filter status)
	scan    func(sc interface{ Scan(...any) error }) (api.Item, time.Time, string, error)
}

var resources = map[string]resource{
	api.ResourceTasks: {table: "tasks", updated: true, status: true,
		cols: "id, owner_user_id, team_id, title, status, due_at, created_at, updated_at",
		scan: func(sc interface{ Scan(...any) error }) (api.Item, time.Time, string, error) {
			var t api.Task
			err := sc.Scan(&t.ID, &t.OwnerUserID, &t.TeamID, &t.Title, &t.Status, scanNullTime{&t.DueAt},
				scanTime{&t.CreatedAt}, scanTime{&t.UpdatedAt})
			return t, t.CreatedAt, t.ID, err
		}},
	api.ResourceNotes: {table: "notes", updated: true,
		cols: "id, owner_user_id, team_id, title, body, created_at, updated_at",
		scan: func(sc interface{ Scan(...any) error }) (api.Item, time.Time, string, error) {
			var n api.Note
			err := sc.Scan(&n.ID, &n.OwnerUserID, &n.TeamID, &n.Title, &n.Body, scanTime{&n.CreatedAt}, scanTime{&n.UpdatedAt})
			return n, n.CreatedAt, n.ID, err
		}},
	api.ResourceMemories: {table: "memories",
		cols: "id, owner_user_id, team_id, content, created_at",
		scan: func(sc interface{ Scan(...any) error }) (api.Item, time.Time, string, error) {
			var m api.Memory
			err := sc.Scan(&m.ID, &m.OwnerUserID, &m.TeamID, &m.Content, scanTime{&m.CreatedAt})
			return m, m.CreatedAt, m.ID, err
		}},
}

// visibleQuery is native RBAC as a union of index-ordered arms: the viewer's own rows,
// and one arm per team of theirs, each already newest-first and limited, so the
// database reads at most limit rows per arm instead of every visible row ("owner =
// ? OR team_id IN (…)" defeats the (owner|team, created_at) indexes). UNION also
// drops a row that is both owned and in one of the viewer's teams.
//
// sinceFew, when not nil, says per arm (own first, then teams) how SQLite reads an
// updated_since filter: see sinceArms.
func visibleQuery(r resource, own, userID string, teams []string, filters []string, fargs []any, limit int, sinceFew []bool) (string, []any) {
	cond := ""
	if len(filters) > 0 {
		cond = " AND " + strings.Join(filters, " AND ")
	}
	if len(teams) > maxArms {
		// SQLite allows 500 terms in a compound SELECT: past maxArms teams, one scan
		// over the same condition.
		var ors []string
		var args []any
		if own != "" {
			ors, args = append(ors, "("+own+")"), append(args, userID)
		}
		ors = append(ors, "team_id IN ("+placeholders(len(teams))+")")
		for _, t := range teams {
			args = append(args, t)
		}
		q := `SELECT ` + r.cols + ` FROM ` + r.table + ` WHERE (` + strings.Join(ors, " OR ") + `)` + cond + ` ORDER BY created_at DESC, id DESC LIMIT ?`
		return q, append(append(args, fargs...), limit)
	}
	var arms []string
	var args []any
	for i, a := range armsOf(own, userID, teams) {
		from := r.table
		if sinceFew != nil {
			// Few rows past the time: take them from (scope, updated_at) and sort
			// them; many: walk the time order and filter. SQLite's planner tells the
			// two apart by its statistics, and has been seen to walk a 10⁶-row arm
			// for an hour's rows, so the arm names its index. The rows and their
			// order are the same either way.
			by := "_time"
			if sinceFew[i] {
				by = "_updated"
			}
			from += " INDEXED BY " + r.table + "_" + armIndex[a.scope] + by
		}
		arms = append(arms, fmt.Sprintf(`SELECT * FROM (SELECT %s FROM %s WHERE %s%s ORDER BY created_at DESC, id DESC LIMIT ?) AS a%d`,
			r.cols, from, a.scope, cond, i))
		args = append(append(append(args, a.arg), fargs...), limit)
	}
	q := `SELECT ` + r.cols + ` FROM (` + strings.Join(arms, " UNION ") + `) AS visible ORDER BY created_at DESC, id DESC LIMIT ?`
	return q, append(args, limit)
}

// byTeam narrows a list's arms to one team: only that team's arm can hold its rows,
// plus, in a local list where the viewer is not in the team, their own rows in it. A
// granted list's own arm is personal rows (team_id IS NULL) and drops out. Without
// this every other team's arm walks its index for a team_id it can never match.
func byTeam(own string, teams []string, team string, granted bool) (string, []string) {
	teams = intersect(teams, []string{team})
	if granted || len(teams) > 0 {
		own = ""
	}
	return own, teams
}

// intersect keeps the members of a that b lists, in a's order.
func intersect(a, b []string) []string {
	var out []string
	for _, x := range a {
		if slices.Contains(b, x) {
			out = append(out, x)
		}
	}
	return out
}

func placeholders(n int) string {
	return strings.TrimSuffix(strings.Repeat("?, ", n), ", ")
}

// maxArms is the most team arms a list query gets.
const maxArms = 64

// A list's arms: the viewer's own rows, a grant subject's personal rows, one team's.
const (
	ownArm      = "owner_user_id = ?"
	personalArm = "owner_user_id = ? AND team_id IS NULL"
	teamArm     = "team_id = ?"
)

// armIndex names each arm's indexes on SQLite (<table>_<arm>_time and
// <table>_<arm>_updated, migrations 00001, 00003 and 00004).
var armIndex = map[string]string{ownArm: "owner", personalArm: "personal", teamArm: "team"}

// arm is one arm of a list: its scope's condition and that condition's argument.
type arm struct {
	scope string
	arg   any
}

// armsOf are a list's arms in the one order both the query and sinceArms use: the
// own (or personal) arm first when there is one, then one per team.
func armsOf(own, userID string, teams []string) []arm {
	var arms []arm
	if own != "" {
		arms = append(arms, arm{own, userID})
	}
	for _, t := range teams {
		arms = append(arms, arm{teamArm, t})
	}
	return arms
}

// sinceTerm is the updated_since filter's condition.
const sinceTerm = "updated_at >= ?"

// fewSince is the most rows past an updated_since time that an arm sorts itself.
const fewSince = 1000

// sinceArms tells, per list arm (own first, then teams), whether fewer than fewSince
// of its rows were updated since the time. SQLite's planner cannot tell: with an
// (scope, updated_at) index and a (scope, created_at) one it keeps walking the time
// order, which reads most of a 10⁶-row arm when only an hour's rows pass (74 ms),
// or it sorts a week's worth when most pass. Counting at most fewSince entries of
// the (scope, updated_at) index costs well under a millisecond and picks the plan.
func (s *sqlStore) sinceArms(ctx context.Context, r resource, own, userID string, teams []string, since time.Time) ([]bool, error) {
	arms := armsOf(own, userID, teams)
	few := make([]bool, len(arms))
	for i, a := range arms {
		var n int
		q := `SELECT count(*) FROM (SELECT 1 FROM ` + r.table + ` WHERE ` + a.scope + ` AND ` + sinceTerm + ` LIMIT ?)`
		if err := s.db.QueryRowContext(ctx, q, a.arg, s.d.ts(since), fewSince).Scan(&n); err != nil {
			return nil, err
		}
		few[i] = n < fewSince
	}
	return few, nil
}

func (s *sqlStore) teamsOf(ctx context.Context, userID string) ([]string, error) {
	rows, err := s.db.QueryContext(ctx, s.d.rebind(`SELECT team_id FROM team_members WHERE user_id = ? ORDER BY team_id`), userID)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var teams []string
	for rows.Next() {
		var t string
		if err := rows.Scan(&t); err != nil {
			return nil, err
		}
		teams = append(teams, t)
	}
	return teams, rows.Err()
}

// visible is native RBAC for one row: the viewer owns it or belongs to its team.
const visible = `(owner_user_id = ? OR team_id IN (SELECT team_id FROM team_members WHERE user_id = ?))`

// narrowing is a grant's cut of the subject's native RBAC (nil: plain RBAC).
type narrowing struct {
	personal bool
	teams    []string
}

func (s *sqlStore) List(ctx context.Context, v Viewer, resource string, o ListOptions) (Page, error) {
	return s.list(ctx, v.UserID, resource, o, nil)
}

func (s *sqlStore) ListGranted(ctx context.Context, rows scope.Rows, o ListOptions) (Page, error) {
	return s.list(ctx, rows.Subject(), rows.Resource(), o, &narrowing{personal: rows.Personal(), teams: rows.Teams()})
}

func (s *sqlStore) Get(ctx context.Context, v Viewer, resource, id string) (api.Item, error) {
	return s.get(ctx, v.UserID, resource, id, nil)
}

func (s *sqlStore) GetGranted(ctx context.Context, rows scope.Rows, id string) (api.Item, error) {
	return s.get(ctx, rows.Subject(), rows.Resource(), id, &narrowing{personal: rows.Personal(), teams: rows.Teams()})
}

func (s *sqlStore) list(ctx context.Context, userID, name string, o ListOptions, n *narrowing) (Page, error) {
	r, ok := resources[name]
	if !ok {
		return Page{}, invalid("unknown resource %q", name)
	}
	if err := validID(userID); err != nil {
		return Page{}, err
	}
	if o.Limit <= 0 {
		return Page{}, invalid("limit must be positive")
	}
	var where []string
	var args []any
	f := o.Filter
	switch {
	case f.Status != "" && !r.status:
		return Page{}, invalid("%s have no status", name)
	case f.Status != "":
		where, args = append(where, "status = ?"), append(args, f.Status)
	}
	if f.TeamID != "" {
		if err := validID(f.TeamID); err != nil {
			return Page{}, err
		}
		where, args = append(where, "team_id = ?"), append(args, f.TeamID)
	}
	if f.UpdatedSince != nil {
		if !r.updated {
			return Page{}, invalid("%s have no updated_at", name)
		}
		where, args = append(where, sinceTerm), append(args, s.d.ts(*f.UpdatedSince))
	}
	after, err := keysetOf(o)
	if err != nil {
		return Page{}, err
	}
	if after != nil {
		// Strictly after in the list's order; the scope's arms still apply below, so a
		// forged keyset only narrows.
		// A row comparison, not "created_at < ? OR (created_at = ? AND id < ?)": both
		// engines make it an index bound, so a deep page starts at the keyset instead
		// of walking every newer row.
		where = append(where, "(created_at, id) < (?, ?)")
		args = append(args, s.d.ts(after.CreatedAt), after.ID)
	}
	teams, err := s.teamsOf(ctx, userID)
	if err != nil {
		return Page{}, err
	}
	own := ownArm
	if n != nil {
		// Effective rows: native RBAC ∩ (personal if allowed ∪ included teams the
		// subject is in). Own rows in other teams drop out.
		own = personalArm
		if !n.personal {
			own = ""
		}
		teams = intersect(teams, n.teams)
	}
	if f.TeamID != "" {
		own, teams = byTeam(own, teams, f.TeamID, n != nil)
	}
	if own == "" && len(teams) == 0 {
		return Page{}, nil
	}
	var sinceFew []bool
	if f.UpdatedSince != nil && s.d.engine == "sqlite" && len(teams) <= maxArms {
		if sinceFew, err = s.sinceArms(ctx, r, own, userID, teams, *f.UpdatedSince); err != nil {
			return Page{}, err
		}
	}
	q, qargs := visibleQuery(r, own, userID, teams, where, args, o.Limit+1, sinceFew)
	rows, err := s.db.QueryContext(ctx, s.d.rebind(q), qargs...)
	if err != nil {
		return Page{}, err
	}
	defer rows.Close()
	var page Page
	var lastAt time.Time
	var lastID string
	for rows.Next() {
		if len(page.Items) == o.Limit { // one more row exists: there is a next page
			page.NextCursor = encodeCursor(lastAt, lastID)
			break
		}
		item, at, id, err := r.scan(rows)
		if err != nil {
			return Page{}, err
		}
		page.Items, lastAt, lastID = append(page.Items, item), at, id
	}
	return page, rows.Err()
}

func (s *sqlStore) get(ctx context.Context, userID, name, id string, n *narrowing) (api.Item, error) {
	r, ok := resources[name]
	if !ok {
		return nil, invalid("unknown resource %q", name)
	}
	if err := checkIDs(&userID, &id); err != nil {
		return nil, err
	}
	where, args := visible, []any{id, userID, userID}
	if n != nil {
		teams, err := s.teamsOf(ctx, userID)
		if err != nil {
			return nil, err
		}
		var ors []string
		if n.personal {
			ors, args = append(ors, "(owner_user_id = ? AND team_id IS NULL)"), append(args[:1], userID)
		} else {
			args = args[:1]
		}
		if teams = intersect(teams, n.teams); len(teams) > 0 {
			ors = append(ors, "team_id IN ("+placeholders(len(teams))+")")
			for _, t := range teams {
				args = append(args, t)
			}
		}
		if len(ors) == 0 {
			return nil, ErrNotFound
		}
		where = "(" + strings.Join(ors, " OR ") + ")"
	}
	row := s.db.QueryRowContext(ctx, s.d.rebind(`SELECT `+r.cols+` FROM `+r.table+` WHERE id = ? AND `+where), args...)
	item, _, _, err := r.scan(row)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, ErrNotFound
	}
	return item, err
}

// keysetOf is where a list resumes: its cursor's keyset, or its After.
func keysetOf(o ListOptions) (*api.Keyset, error) {
	switch {
	case o.Cursor != "" && o.After != nil:
		return nil, invalid("a list takes a cursor or a keyset, not both")
	case o.After != nil:
		if validID(o.After.ID) != nil || o.After.Validate() != nil {
			return nil, invalid("malformed keyset")
		}
		return o.After, nil
	case o.Cursor != "":
		at, id, err := decodeCursor(o.Cursor)
		if err != nil {
			return nil, err
		}
		k := &api.Keyset{CreatedAt: at, ID: id}
		if k.Validate() != nil {
			return nil, invalid("malformed cursor")
		}
		return k, nil
	}
	return nil, nil
}

// Cursors are opaque to clients: base64url of "<created_at RFC3339Nano>|<id>".
func encodeCursor(at time.Time, id string) string {
	return base64.RawURLEncoding.EncodeToString([]byte(at.UTC().Format(time.RFC3339Nano) + "|" + id))
}

func decodeCursor(c string) (time.Time, string, error) {
	bad := invalid("malformed cursor")
	b, err := base64.RawURLEncoding.DecodeString(c)
	if err != nil {
		return time.Time{}, "", bad
	}
	ts, id, ok := strings.Cut(string(b), "|")
	at, err := time.Parse(time.RFC3339Nano, ts)
	if !ok || err != nil || validID(id) != nil {
		return time.Time{}, "", bad
	}
	return at, id, nil
}
