package store

import (
	"container/heap"
	"context"
	"database/sql"
	"math"
	"strconv"
	"strings"
	"unicode"

	"github.com/mosaic-federation/mosaic/gateway/api"
	"github.com/mosaic-federation/mosaic/gateway/internal/embed"
	"github.com/mosaic-federation/mosaic/gateway/internal/rank"
	"github.com/mosaic-federation/mosaic/gateway/internal/scope"
)

// Search (SPEC §6b). Every ranking query carries the rows condition (native RBAC, or a
// grant's effective rows) in its own WHERE clause, so rows are filtered before they
// are ranked: a row outside the scope is never a candidate, however well it matches.

// SearchOptions say what to look for. Limit is clamped by the caller (the grant's
// cap); Embedding is the query's, made by this site's embedder, for vector and hybrid.
type SearchOptions struct {
	Query     string
	Mode      string // api.ModeText | api.ModeVector | api.ModeHybrid
	Limit     int
	Embedding []float32
}

// Hit is one search result: a row and its score, higher is better, comparable within
// one answer only (ts_rank or -bm25 for text, cosine similarity for vector, the fused
// reciprocal rank for hybrid).
type Hit struct {
	Item  api.Item
	Score float64
	id    string
}

// hnswEfSearch is the HNSW candidate list of a vector search (pgvector's default is
// 40, its most 1000). With the index's ef_construction of 128 (migration 00004),
// recall@10 against an exact scan is ≥ 0.95 at 10⁵ memories, where 100 gives 0.92
// (BenchmarkSearch100k). A limit above it widens the list to the limit.
const hnswEfSearch = 150

func (s *sqlStore) Search(ctx context.Context, v Viewer, resource string, o SearchOptions) ([]Hit, error) {
	return s.search(ctx, v.UserID, resource, o, nil)
}

func (s *sqlStore) SearchGranted(ctx context.Context, rows scope.Rows, o SearchOptions) ([]Hit, error) {
	return s.search(ctx, rows.Subject(), rows.Resource(), o, &narrowing{personal: rows.Personal(), teams: rows.Teams()})
}

func (s *sqlStore) search(ctx context.Context, userID, name string, o SearchOptions, n *narrowing) ([]Hit, error) {
	r, ok := resources[name]
	if !ok {
		return nil, invalid("unknown resource %q", name)
	}
	if err := validID(userID); err != nil {
		return nil, err
	}
	if o.Limit <= 0 {
		return nil, invalid("limit must be positive")
	}
	if err := (api.SearchRequest{Query: o.Query, Mode: o.Mode, Limit: o.Limit}).Validate(); err != nil {
		return nil, err
	}
	if err := api.SearchModeFor(name, o.Mode); err != nil {
		return nil, err
	}
	if o.Mode != api.ModeText && len(o.Embedding) != embed.Dims {
		return nil, invalid("a %s search needs the query's %d-dimensional embedding", o.Mode, embed.Dims)
	}
	cond, args, none, err := s.rowsCond(ctx, userID, n)
	if err != nil || none {
		return nil, err
	}
	switch o.Mode {
	case api.ModeText:
		return s.textRanking(ctx, r, cond, args, o.Query, o.Limit)
	case api.ModeVector:
		return s.vectorRanking(ctx, r, cond, args, o.Embedding, o.Limit)
	}
	text, err := s.textRanking(ctx, r, cond, args, o.Query, o.Limit)
	if err != nil {
		return nil, err
	}
	vector, err := s.vectorRanking(ctx, r, cond, args, o.Embedding, o.Limit)
	if err != nil {
		return nil, err
	}
	return Hybrid(text, vector, o.Limit), nil
}

// Hybrid fuses a text and a vector ranking by reciprocal rank (k = 60), best limit
// first, each scored with its fused score; with no text hit it is the vector ranking.
func Hybrid(text, vector []Hit, limit int) []Hit {
	fused := rank.RRF(func(h Hit) string { return h.id }, text, vector)
	out := make([]Hit, 0, min(limit, len(fused)))
	for _, f := range fused[:min(limit, len(fused))] {
		h := f.Value
		h.Score = f.Score
		out = append(out, h)
	}
	return out
}

// rowsCond is the condition (on alias t) of the rows a read may touch: native RBAC —
// the viewer's own rows and their teams' — or, narrowed by a grant, the subject's
// personal rows if included and the included teams the subject belongs to. none says
// no row can qualify.
func (s *sqlStore) rowsCond(ctx context.Context, userID string, n *narrowing) (cond string, args []any, none bool, err error) {
	teams, err := s.teamsOf(ctx, userID)
	if err != nil {
		return "", nil, false, err
	}
	var ors []string
	switch {
	case n == nil:
		ors, args = append(ors, "t.owner_user_id = ?"), append(args, userID)
	case n.personal:
		ors, args = append(ors, "(t.owner_user_id = ? AND t.team_id IS NULL)"), append(args, userID)
	}
	if n != nil {
		teams = intersect(teams, n.teams)
	}
	if len(teams) > 0 {
		ors = append(ors, "t.team_id IN ("+placeholders(len(teams))+")")
		for _, team := range teams {
			args = append(args, team)
		}
	}
	if len(ors) == 0 {
		return "", nil, true, nil
	}
	return "(" + strings.Join(ors, " OR ") + ")", args, false, nil
}

// qualified prefixes each column of a list with alias t.
func qualified(cols string) string {
	parts := strings.Split(cols, ", ")
	for i, p := range parts {
		parts[i] = "t." + p
	}
	return strings.Join(parts, ", ")
}

// ftsColumns are each resource's FTS5 table and its bm25 column weights (a note's
// title counts twice its body, as its tsvector weighs A over B).
var ftsTables = map[string]struct{ table, bm25 string }{
	"tasks":    {"tasks_fts", "bm25(tasks_fts)"},
	"notes":    {"notes_fts", "bm25(notes_fts, 2.0, 1.0)"},
	"memories": {"memories_fts", "bm25(memories_fts)"},
}

func (s *sqlStore) textRanking(ctx context.Context, r resource, cond string, args []any, query string, limit int) ([]Hit, error) {
	var q string
	if s.d.engine == "postgres" {
		// websearch_to_tsquery never raises a syntax error; a query with no lexeme
		// matches nothing.
		q = `SELECT ` + qualified(r.cols) + `, ts_rank(t.search_tsv, q) AS score
			FROM ` + r.table + ` t, websearch_to_tsquery('simple', ?) AS q
			WHERE t.search_tsv @@ q AND ` + cond + `
			ORDER BY score DESC, t.id LIMIT ?`
		args = append([]any{query}, args...)
	} else {
		match := ftsQuery(query)
		if match == "" {
			return nil, nil // no searchable token: nothing matches
		}
		f := ftsTables[r.table]
		q = `SELECT ` + qualified(r.cols) + `, -` + f.bm25 + ` AS score
			FROM ` + f.table + ` JOIN search_docs d ON d.docid = ` + f.table + `.rowid
			JOIN ` + r.table + ` t ON t.id = d.id
			WHERE ` + f.table + ` MATCH ? AND d.resource = '` + r.table + `' AND ` + cond + `
			ORDER BY score DESC, t.id LIMIT ?`
		args = append([]any{match}, args...)
	}
	return s.ranked(ctx, r, q, append(args, limit))
}

// ftsQuery makes an FTS5 query of a user's text in which nothing is syntax: every
// whitespace-separated word that holds a letter or a digit becomes a quoted string
// (quotes inside doubled), so '"', '*', 'NEAR(', 'AND' or ':' are literal text, and
// the words are ANDed as websearch_to_tsquery ANDs them. "" when no word qualifies.
func ftsQuery(text string) string {
	var words []string
	for _, w := range strings.Fields(text) {
		if strings.IndexFunc(w, func(r rune) bool { return unicode.IsLetter(r) || unicode.IsDigit(r) }) < 0 {
			continue
		}
		words = append(words, `"`+strings.ReplaceAll(w, `"`, `""`)+`"`)
	}
	return strings.Join(words, " ")
}

func (s *sqlStore) vectorRanking(ctx context.Context, r resource, cond string, args []any, q []float32, limit int) ([]Hit, error) {
	switch {
	case s.d.engine == "sqlite":
		return s.exactScan(ctx, r, cond, args, q, limit)
	case s.d.vector && s.d.iterative:
		hits, err := s.hnswRanking(ctx, r, cond, args, q, limit)
		if err != nil || len(hits) == limit {
			return hits, err
		}
		// Fewer than asked: the scope holds fewer rows than limit, or the graph walk
		// could not reach all of them (HNSW is approximate: a few outliers among many
		// rows outside the scope). Either way the scope's rows are few, so an exact
		// scan over them is cheap and complete.
		return s.exactDistance(ctx, r, cond, args, q, limit)
	case s.d.vector:
		// pgvector before 0.8 has no iterative scans: an index scan under a selective
		// filter could return too few rows, so every search is exact.
		return s.exactDistance(ctx, r, cond, args, q, limit)
	}
	// Standalone without pgvector: real[] embeddings, an exact scan in SQL.
	qs := `SELECT ` + qualified(r.cols) + `, c.cosine AS score FROM ` + r.table + ` t,
		LATERAL (SELECT sum(a::float8 * b) / NULLIF(sqrt(sum(a::float8 * a)) * sqrt(sum(b::float8 * b)), 0) AS cosine
			FROM unnest(t.embedding, ?::real[]) AS u(a, b)) AS c
		WHERE t.embedding IS NOT NULL AND ` + cond + ` ORDER BY score DESC NULLS LAST, t.id LIMIT ?`
	return s.ranked(ctx, r, qs, append(append([]any{q}, args...), limit))
}

// exactDistance is pgvector's cosine distance over every row of the condition, the
// distance made unorderable by the index ("+ 0") so the plan is an exact scan.
func (s *sqlStore) exactDistance(ctx context.Context, r resource, cond string, args []any, q []float32, limit int) ([]Hit, error) {
	qs := `SELECT ` + qualified(r.cols) + `, 1 - (t.embedding <=> ?) AS score FROM ` + r.table + ` t
		WHERE t.embedding IS NOT NULL AND ` + cond + ` ORDER BY (t.embedding <=> ?) + 0, t.id LIMIT ?`
	v := s.d.vec(q)
	return s.ranked(ctx, r, qs, append(append([]any{v}, args...), v, limit))
}

// hnswRanking orders by cosine distance in SQL over the HNSW index, with pgvector's
// iterative index scan: when the rows condition drops candidates the scan goes on
// (up to hnsw.max_scan_tuples) until limit rows pass, instead of returning too few.
// relaxed_order may return them slightly out of order, so they are sorted again.
func (s *sqlStore) hnswRanking(ctx context.Context, r resource, cond string, args []any, q []float32, limit int) ([]Hit, error) {
	tx, err := s.db.BeginTx(ctx, &sql.TxOptions{ReadOnly: true})
	if err != nil {
		return nil, err
	}
	defer tx.Rollback() //nolint:errcheck // read-only: nothing to lose
	if _, err := tx.ExecContext(ctx, `SELECT set_config('hnsw.iterative_scan', 'relaxed_order', true),
		set_config('hnsw.ef_search', $1, true)`, strconv.Itoa(min(max(hnswEfSearch, limit), 1000))); err != nil {
		return nil, err
	}
	rows, err := tx.QueryContext(ctx, s.d.rebind(hnswQuery(r, cond)), append(append([]any{s.d.vec(q)}, args...), limit)...)
	if err != nil {
		return nil, err
	}
	hits, err := scanHits(r, rows)
	if err != nil {
		return nil, err
	}
	return hits, tx.Commit()
}

// hnswQuery is the nearest rows of cond by cosine distance, ordered in SQL so the
// HNSW index can serve it; parameters: the query vector, cond's, the limit.
func hnswQuery(r resource, cond string) string {
	return `WITH nearest AS MATERIALIZED (
			SELECT ` + qualified(r.cols) + `, t.embedding <=> ? AS distance FROM ` + r.table + ` t
			WHERE t.embedding IS NOT NULL AND ` + cond + ` ORDER BY distance LIMIT ?)
		SELECT ` + r.cols + `, 1 - distance FROM nearest ORDER BY distance, id`
}

// ranked runs a ranking query whose last column is the score.
func (s *sqlStore) ranked(ctx context.Context, r resource, q string, args []any) ([]Hit, error) {
	rows, err := s.db.QueryContext(ctx, s.d.rebind(q), args...)
	if err != nil {
		return nil, err
	}
	return scanHits(r, rows)
}

func scanHits(r resource, rows *sql.Rows) ([]Hit, error) {
	defer rows.Close()
	var hits []Hit
	for rows.Next() {
		var h Hit
		var score sql.NullFloat64
		item, _, id, err := r.scan(withExtra{rows, []any{&score}})
		if err != nil {
			return nil, err
		}
		h.Item, h.Score, h.id = item, score.Float64, id
		hits = append(hits, h)
	}
	return hits, rows.Err()
}

// withExtra scans a row's resource columns and then extra columns after them.
type withExtra struct {
	rows  *sql.Rows
	extra []any
}

func (w withExtra) Scan(dst ...any) error { return w.rows.Scan(append(dst, w.extra...)...) }

// exactScan is the local tier's vector search: every candidate row's embedding
// (float32 blobs) against the query's, cosine in Go, keeping only the best limit in a
// heap, so memory stays bounded by limit whatever the number of rows.
func (s *sqlStore) exactScan(ctx context.Context, r resource, cond string, args []any, q []float32, limit int) ([]Hit, error) {
	rows, err := s.db.QueryContext(ctx, `SELECT `+qualified(r.cols)+`, t.embedding FROM `+r.table+` t
		WHERE t.embedding IS NOT NULL AND `+cond, args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	best := &hitHeap{}
	for rows.Next() {
		var blob []byte
		item, _, id, err := r.scan(withExtra{rows, []any{&blob}})
		if err != nil {
			return nil, err
		}
		v, err := s.decodeVector(sql.NullString{}, blob)
		if err != nil {
			return nil, err
		}
		h := Hit{Item: item, Score: Cosine(v, q), id: id}
		if best.Len() < limit {
			heap.Push(best, h)
		} else if worse(best.hits[0], h) {
			best.hits[0] = h
			heap.Fix(best, 0)
		}
	}
	if err := rows.Err(); err != nil {
		return nil, err
	}
	out := make([]Hit, best.Len())
	for i := len(out) - 1; i >= 0; i-- {
		out[i] = heap.Pop(best).(Hit)
	}
	return out, nil
}

// Cosine is the cosine similarity of two vectors (0 when either is zero or their
// widths differ).
func Cosine(a, b []float32) float64 {
	if len(a) != len(b) {
		return 0
	}
	var dot, na, nb float64
	for i := range a {
		dot += float64(a[i]) * float64(b[i])
		na += float64(a[i]) * float64(a[i])
		nb += float64(b[i]) * float64(b[i])
	}
	if na == 0 || nb == 0 {
		return 0
	}
	return dot / (math.Sqrt(na) * math.Sqrt(nb))
}

// worse orders hits worst first: a lower score, or the same score and a larger id
// (ties go to the smaller id, as the SQL rankings order them).
func worse(a, b Hit) bool {
	if a.Score != b.Score {
		return a.Score < b.Score
	}
	return a.id > b.id
}

// hitHeap is a min-heap of hits, the worst on top.
type hitHeap struct{ hits []Hit }

func (h *hitHeap) Len() int           { return len(h.hits) }
func (h *hitHeap) Less(i, j int) bool { return worse(h.hits[i], h.hits[j]) }
func (h *hitHeap) Swap(i, j int)      { h.hits[i], h.hits[j] = h.hits[j], h.hits[i] }
func (h *hitHeap) Push(x any)         { h.hits = append(h.hits, x.(Hit)) }
func (h *hitHeap) Pop() any {
	last := h.hits[len(h.hits)-1]
	h.hits = h.hits[:len(h.hits)-1]
	return last
}
