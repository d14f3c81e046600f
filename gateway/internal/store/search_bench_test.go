package store

import (
	"context"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"

	"github.com/mosaic-federation/mosaic/gateway/api"
	"github.com/mosaic-federation/mosaic/gateway/internal/embed"
)

// BenchmarkSearch100k measures search on PostgreSQL with pgvector over 10⁵ memories
// visible to one user (half personal, half in a team): the p50 of text, vector and
// hybrid searches for random queries, and HNSW recall@10 against an exact scan over
// 100 random queries. Rows are made in Go (random sentences of a 5,000-word synthetic
// vocabulary, each embedded by the built-in hashing embedder) and streamed in with one
// COPY; the HNSW index is built after the load, as CREATE INDEX does it fastest.
//
//	go test -run='^$' -bench=Search100k -benchtime=300x -timeout=30m ./gateway/internal/store
func BenchmarkSearch100k(b *testing.B) {
	if pgAdminURL == "" {
		b.Skip("no PostgreSQL")
	}
	w := searchWorld100k(b)
	queries := func(words int) []string {
		r := rand.New(rand.NewPCG(7, uint64(words)))
		out := make([]string, 100)
		for i := range out {
			out[i] = sentence(r, words, words)
		}
		return out
	}
	for _, c := range []struct {
		mode  string
		words int
	}{{api.ModeText, 1}, {api.ModeVector, 3}, {api.ModeHybrid, 2}} {
		b.Run(c.mode, func(b *testing.B) {
			qs := queries(c.words)
			ctx := context.Background()
			search := func(q string) int {
				o := SearchOptions{Query: q, Mode: c.mode, Limit: 10}
				if c.mode != api.ModeText {
					o.Embedding = embed.HashVector(q) // the embedding is part of a search's cost
				}
				res, err := w.s.Search(ctx, Viewer{w.owner}, api.ResourceMemories, o)
				if err != nil {
					b.Fatal(err)
				}
				return len(res)
			}
			for _, q := range qs { // once each, so the pages they touch are cached
				search(q)
			}
			lat := make([]time.Duration, 0, b.N)
			hits := 0
			b.ResetTimer()
			for i := range b.N {
				start := time.Now()
				hits += search(qs[i%len(qs)])
				lat = append(lat, time.Since(start))
			}
			b.StopTimer()
			slices.Sort(lat)
			b.ReportMetric(float64(lat[len(lat)/2].Microseconds())/1000, "p50-ms")
			b.ReportMetric(float64(lat[len(lat)*99/100].Microseconds())/1000, "p99-ms")
			b.ReportMetric(float64(hits)/float64(b.N), "hits/op")
			if c.mode == api.ModeVector {
				b.ReportMetric(w.recall(b, qs), "recall@10")
			}
		})
	}
}

// world100k is the benchmark's store, built once per process (Go runs a benchmark
// function more than once).
type world100k struct {
	s     *sqlStore
	owner string
}

var (
	w100k     world100k
	w100kOnce sync.Once
)

const vocabulary = 5000

// word is the i-th word of a synthetic vocabulary of pronounceable, distinct words.
func word(i int) string {
	const cons, vows = "bdfgklmnprstvz", "aeiou"
	var b strings.Builder
	for n := i + 1; n > 0; n /= len(cons) * len(vows) {
		k := n % (len(cons) * len(vows))
		b.WriteByte(cons[k%len(cons)])
		b.WriteByte(vows[k/len(cons)])
	}
	return b.String()
}

func sentence(r *rand.Rand, lo, hi int) string {
	n := lo + r.IntN(hi-lo+1)
	words := make([]string, n)
	for i := range words {
		words[i] = word(r.IntN(vocabulary))
	}
	return strings.Join(words, " ")
}

func searchWorld100k(b *testing.B) world100k {
	w100kOnce.Do(func() {
		ctx := context.Background()
		dsn := freshDB(b)
		s := openPostgresDB(b, dsn, true, nil).(*sqlStore)
		owner, team := uuid.NewString(), uuid.NewString()
		must(b, s.UpsertUser(ctx, User{ID: owner, Email: "bench@example.test", DisplayName: "B", Role: "member", CreatedAt: epoch}))
		must(b, s.UpsertTeam(ctx, Team{ID: team, Name: "bench", CreatedAt: epoch}))
		must(b, s.AddMember(ctx, team, owner))
		conn, err := pgx.Connect(ctx, dsn)
		must(b, err)
		defer conn.Close(ctx)
		// The index as the migration defines it, dropped for the load and built after.
		var indexdef string
		must(b, conn.QueryRow(ctx, `SELECT indexdef FROM pg_indexes WHERE indexname = 'memories_embedding_hnsw'`).Scan(&indexdef))
		_, err = conn.Exec(ctx, `DROP INDEX memories_embedding_hnsw`)
		must(b, err)

		start := time.Now()
		pr, pw := io.Pipe()
		go func() {
			r := rand.New(rand.NewPCG(1, 2))
			var line strings.Builder
			for i := range 100_000 {
				content := sentence(r, 8, 16)
				v := embed.HashVector(content)
				line.Reset()
				teamCol := `\N`
				if i%2 == 0 {
					teamCol = team
				}
				fmt.Fprintf(&line, "%s\t%s\t%s\t%s\t[", uuid.NewString(), owner, teamCol, content)
				for j, x := range v {
					if j > 0 {
						line.WriteByte(',')
					}
					fmt.Fprintf(&line, "%g", x)
				}
				fmt.Fprintf(&line, "]\t%s\n", epoch.Add(time.Duration(i)*time.Second).Format(time.RFC3339Nano))
				if _, err := io.WriteString(pw, line.String()); err != nil {
					return
				}
			}
			pw.Close()
		}()
		_, err = conn.PgConn().CopyFrom(ctx, pr, `COPY memories (id, owner_user_id, team_id, content, embedding, created_at) FROM STDIN`)
		must(b, err)
		fmt.Fprintf(os.Stderr, "setup: 10⁵ memories embedded and copied in %s\n", time.Since(start).Round(time.Millisecond))

		start = time.Now()
		_, err = conn.Exec(ctx, `SET maintenance_work_mem = '1GB'`)
		must(b, err)
		_, err = conn.Exec(ctx, indexdef)
		must(b, err)
		_, err = conn.Exec(ctx, `VACUUM ANALYZE memories`) // hint bits and the visibility map set, as on a settled table
		must(b, err)
		fmt.Fprintf(os.Stderr, "setup: HNSW index built in %s\n", time.Since(start).Round(time.Millisecond))
		w100k = world100k{s: s, owner: owner}
	})
	return w100k
}

// recall is HNSW recall@10 against an exact scan, mean over the queries; a result
// counts when its distance is within the exact tenth's (rows of equal distance are
// equally right).
func (w world100k) recall(b *testing.B, queries []string) float64 {
	ctx := context.Background()
	cond, args, _, err := w.s.rowsCond(ctx, w.owner, nil)
	must(b, err)
	r := resources[api.ResourceMemories]
	var sum float64
	for _, q := range queries {
		v := embed.HashVector(q)
		approx, err := w.s.hnswRanking(ctx, r, cond, args, v, 10)
		must(b, err)
		exact, err := w.s.exactDistance(ctx, r, cond, args, v, 10)
		must(b, err)
		if len(exact) < 10 || len(approx) < 10 {
			b.Fatalf("query %q: %d approximate, %d exact rows", q, len(approx), len(exact))
		}
		tenth := exact[9].Score // similarity: higher is nearer
		good := 0
		for _, h := range approx {
			if h.Score >= tenth-1e-6 {
				good++
			}
		}
		sum += float64(good) / 10
	}
	return sum / float64(len(queries))
}
