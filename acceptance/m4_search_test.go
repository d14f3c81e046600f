package acceptance

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"encoding/base64"
	"fmt"
	"net/http"
	"net/url"
	"path/filepath"
	"slices"
	"strings"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"

	"github.com/mosaic-federation/mosaic/gateway/api"
	"github.com/mosaic-federation/mosaic/harness/world"
)

// searchList is a federation search answer with its items as objects.
type searchList = api.FedSearchOf[map[string]any]

// searcher is a user of the work site made for one search spec, with teams and rows
// of their own, so that no other spec's expectations move while it runs: rows they
// own, a team they are in that their grant includes (mine), one they are in that it
// leaves out (left), and one the grant names that they are not in (foreign).
type searcher struct {
	id, email, token          string
	mine, left, foreign, word string
	other                     struct{ id, token string } // another user, member of foreign
}

// newSearcher makes the users (each with an API token, as `seed load` would store it)
// and the teams in work's database.
func newSearcher(ctx context.Context) searcher {
	GinkgoHelper()
	conn := sqlConn(ctx, site("work").PostgresURL)
	suffix := dbSuffix()
	s := searcher{id: uuid.NewString(), email: "searcher-" + suffix + "@work.example",
		mine: uuid.NewString(), left: uuid.NewString(), foreign: uuid.NewString(), word: "zq" + suffix[:8]}
	s.other.id = uuid.NewString()
	s.token, s.other.token = apiToken(), apiToken()
	for _, u := range []struct{ id, email, token string }{{s.id, s.email, s.token}, {s.other.id, "other-" + suffix + "@work.example", s.other.token}} {
		sum := sha256.Sum256([]byte(u.token))
		_, err := conn.Exec(ctx, `INSERT INTO users (id, email, display_name, role, api_token_hash, created_at)
			VALUES ($1, $2, 'Searcher', 'member', $3, now())`, u.id, u.email, sum[:])
		Expect(err).NotTo(HaveOccurred())
	}
	for name, team := range map[string]string{"mine": s.mine, "left": s.left, "foreign": s.foreign} {
		_, err := conn.Exec(ctx, `INSERT INTO teams (id, name, created_at) VALUES ($1, $2, now())`, team, name+"-"+suffix)
		Expect(err).NotTo(HaveOccurred())
	}
	for _, m := range [][2]string{{s.mine, s.id}, {s.left, s.id}, {s.foreign, s.other.id}} {
		_, err := conn.Exec(ctx, `INSERT INTO team_members (team_id, user_id) VALUES ($1, $2)`, m[0], m[1])
		Expect(err).NotTo(HaveOccurred())
	}
	return s
}

// apiToken is a fresh API token in the gateway's format.
func apiToken() string {
	b := make([]byte, 32)
	_, _ = rand.Read(b)
	return "mos_" + base64.RawURLEncoding.EncodeToString(b)
}

// create makes a row through work's local API as token's user and returns its id.
func create(token, resource string, body map[string]any) string {
	GinkgoHelper()
	var got api.ItemResponse
	Expect(call(http.MethodPost, site("work").APIURL+"/api/v1/"+resource, &got, bearer(token), jsonBody(body))).To(Equal(http.StatusCreated))
	return itemOf(got)["id"].(string)
}

// scope is the searcher's grant: personal rows, mine and foreign (never left), notes
// excluded, at most cap rows.
func (s searcher) scope(limit int) string {
	return scopeJSON([]string{"tasks", "notes", "memories"}, []string{"notes"}, []string{s.mine, s.foreign}, true, limit)
}

// enrolledPeerOf is enrolledPeer for another subject than the site's demo user.
func enrolledPeerOf(s world.SiteInfo, email, scopeDoc string) peer {
	GinkgoHelper()
	name := uniqueName("search")
	var p api.Peer
	cliJSON(s, &p, "federation", "peer", "create", "--name", name)
	var g api.GrantCreated
	cliJSON(s, &g, "federation", "grant", "create", "--peer", name, "--subject-user", email, "--scope", scopeFile(scopeDoc))
	key, csr := keyAndCSR(&x509.CertificateRequest{})
	status, resp, e := enroll(s, tokenOf(g.EnrollmentURL), csr)
	Expect(status).To(Equal(http.StatusCreated), e.Error.Code)
	chain := append([][]byte{parsePEMCert(resp.CertificatePEM).Raw}, pemChain(resp.ChainPEM)...)
	return peer{grant: g, site: s, client: mtlsClient(s, &tls.Certificate{Certificate: chain, PrivateKey: key})}
}

// search asks the peer's listener and expects 200.
func (p peer) search(resource string, req api.SearchRequest) searchList {
	GinkgoHelper()
	var res searchList
	Expect(p.call(http.MethodPost, "/search/"+resource, req, &res)).To(Equal(http.StatusOK))
	for _, it := range res.Items {
		Expect(it["_source"]).To(Equal("work"))
		Expect(it).To(HaveKeyWithValue("_score", BeNumerically(">=", -1)))
	}
	return res
}

// localSearch asks a site's local API and expects 200.
func localSearch(base, token, query string) api.ListOf[map[string]any] {
	GinkgoHelper()
	var res api.ListOf[map[string]any]
	Expect(call(http.MethodGet, base+"/api/v1/search?"+query, &res, bearer(token))).To(Equal(http.StatusOK))
	return res
}

func scores(items []map[string]any) []float64 {
	out := make([]float64, len(items))
	for i, it := range items {
		out[i] = it["_score"].(float64)
	}
	return out
}

// exactNearest is an exact brute force in SQL: the rows of where (alias t), nearest
// first to the stored embedding of row to, with their cosine similarity. The
// distance is computed by the same pgvector operator, made unusable for the index.
func exactNearest(ctx context.Context, conn *pgx.Conn, to, where string, args ...any) ([]string, []float64) {
	GinkgoHelper()
	rows, err := conn.Query(ctx, `SELECT t.id::text, 1 - (t.embedding <=> q.embedding) FROM memories t,
		(SELECT embedding FROM memories WHERE id = '`+to+`') q
		WHERE t.embedding IS NOT NULL AND (`+where+`) ORDER BY (t.embedding <=> q.embedding) + 0, t.id`, args...)
	Expect(err).NotTo(HaveOccurred())
	var ids []string
	var sims []float64
	for rows.Next() {
		var id string
		var sim float64
		Expect(rows.Scan(&id, &sim)).To(Succeed())
		ids, sims = append(ids, id), append(sims, sim)
	}
	Expect(rows.Err()).NotTo(HaveOccurred())
	return ids, sims
}

// rrf is reciprocal-rank fusion (k = 60) of rankings of ids, computed here, apart
// from the gateway: ties keep the order of first appearance rank by rank.
func rrf(lists ...[]string) []string {
	score := map[string]float64{}
	var order []string
	for r := 0; ; r++ {
		more := false
		for _, l := range lists {
			if r < len(l) {
				more = true
				if _, seen := score[l[r]]; !seen {
					order = append(order, l[r])
				}
				score[l[r]] += 1 / float64(60+r+1)
			}
		}
		if !more {
			break
		}
	}
	out := append([]string(nil), order...)
	for i := 1; i < len(out); i++ { // insertion sort: stable
		for j := i; j > 0 && score[out[j]] > score[out[j-1]]; j-- {
			out[j], out[j-1] = out[j-1], out[j]
		}
	}
	return out
}

var _ = Describe("Search", Label("M4"), func() {
	var s searcher
	var p peer
	var effectiveTask, teamTask string
	BeforeEach(func(ctx SpecContext) {
		s = newSearcher(ctx)
		w := s.word
		effectiveTask = create(s.token, "tasks", map[string]any{"title": w + " calibration"})
		teamTask = create(s.token, "tasks", map[string]any{"title": w + " " + w + " review", "team_id": s.mine})
		// Each of these matches better than both, and none is an effective row.
		create(s.token, "tasks", map[string]any{"title": strings.Repeat(w+" ", 5), "team_id": s.left})
		create(s.other.token, "tasks", map[string]any{"title": strings.Repeat(w+" ", 6)})
		create(s.other.token, "tasks", map[string]any{"title": strings.Repeat(w+" ", 7), "team_id": s.foreign})
		p = enrolledPeerOf(site("work"), s.email, s.scope(3))
	})

	It("[M4-1] text search returns only the effective rows, ranked, each with _source and _score; better matches outside the scope never appear", func() {
		res := p.search("tasks", api.SearchRequest{Query: s.word, Mode: api.ModeText})
		Expect(idsOf(res.Items)).To(Equal([]string{teamTask, effectiveTask}), "two occurrences rank above one")
		Expect(scores(res.Items)[0]).To(BeNumerically(">", scores(res.Items)[1]))
		Expect(scores(res.Items)[1]).To(BeNumerically(">", 0))

		By("asking for one row: the best effective row, not the best match")
		one := p.search("tasks", api.SearchRequest{Query: s.word, Mode: api.ModeText, Limit: 1})
		Expect(idsOf(one.Items)).To(Equal([]string{teamTask}))

		By("treating query syntax as text, and a query with no word as no match")
		for _, q := range []string{`"` + s.word, s.word + "*", "NEAR(" + s.word, s.word + " AND", `-` + s.word + ` OR "x`, "title:" + s.word} {
			p.search("tasks", api.SearchRequest{Query: q, Mode: api.ModeText})
		}
		Expect(p.search("tasks", api.SearchRequest{Query: "!!! ???", Mode: api.ModeText}).Items).To(BeEmpty())

		By("searching the same rows through work's own local API as the searcher, under native RBAC")
		local := localSearch(site("work").APIURL, s.token, "resource=tasks&q="+s.word)
		Expect(idsOf(local.Items)).To(HaveLen(3), "natively she also sees her row in the team the grant leaves out")
		Expect(idsOf(local.Items)[0]).NotTo(BeElementOf(effectiveTask, teamTask))
	})

	It("[M4-2] vector search finds the nearest memories, equal to an exact computation on the same rows", func(ctx SpecContext) {
		w := s.word
		contents := []string{w + " the vpn rotates its keys on mondays", w + " vpn keys live in the vault", w + " lunch is at noon",
			w + " backups run nightly", w + " the vault is sealed at night"}
		var query string
		for i, c := range contents {
			id := create(s.token, "memories", map[string]any{"content": c})
			if i == 0 {
				query = id
			}
		}
		create(s.token, "memories", map[string]any{"content": w + " vpn keys rotate in the team", "team_id": s.mine})
		create(s.token, "memories", map[string]any{"content": contents[0] + " (left team)", "team_id": s.left})
		create(s.other.token, "memories", map[string]any{"content": contents[0]}) // the exact same text, another user's

		res := p.search("memories", api.SearchRequest{Query: contents[0], Mode: api.ModeVector, Limit: 10})
		conn := sqlConn(ctx, site("work").PostgresURL)
		want, sims := exactNearest(ctx, conn, query, `(t.owner_user_id = $1 AND t.team_id IS NULL) OR t.team_id = $2`, s.id, s.mine)
		Expect(want).To(HaveLen(6))
		Expect(res.Items).To(HaveLen(3), "max_rows_per_query is 3")
		Expect(idsOf(res.Items)).To(Equal(want[:3]))
		for i, got := range scores(res.Items) {
			Expect(got).To(BeNumerically("~", sims[i], 1e-5))
		}
		Expect(scores(res.Items)[0]).To(BeNumerically("~", 1, 1e-5), "the query's own text is its nearest")

		Expect(res.Truncated).To(BeTrue())

		By("[M4-3] fusing text and vector rankings for hybrid: reciprocal rank, k = 60")
		q := "vpn keys"
		text := idsOf(p.search("memories", api.SearchRequest{Query: q, Mode: api.ModeText, Limit: 3}).Items)
		vector := idsOf(p.search("memories", api.SearchRequest{Query: q, Mode: api.ModeVector, Limit: 3}).Items)
		hybrid := p.search("memories", api.SearchRequest{Query: q, Mode: api.ModeHybrid, Limit: 3})
		Expect(text).NotTo(BeEmpty())
		Expect(idsOf(hybrid.Items)).To(Equal(rrf(text, vector)[:len(hybrid.Items)]))
		Expect(hybrid.Items).To(HaveLen(3))
		// The best fused item's score is its reciprocal ranks summed over both lists.
		first := 0.0
		for _, list := range [][]string{text, vector} {
			if i := slices.Index(list, idsOf(hybrid.Items)[0]); i >= 0 {
				first += 1.0 / float64(60+i+1)
			}
		}
		Expect(scores(hybrid.Items)[0]).To(BeNumerically("~", first, 1e-9))

		By("with no text hit, hybrid is the vector ranking")
		q = "quokka vault" // every word must match for a text hit; "vault" alone brings vector neighbours
		Expect(p.search("memories", api.SearchRequest{Query: q, Mode: api.ModeText}).Items).To(BeEmpty())
		Expect(idsOf(p.search("memories", api.SearchRequest{Query: q, Mode: api.ModeHybrid, Limit: 3}).Items)).
			To(Equal(idsOf(p.search("memories", api.SearchRequest{Query: q, Mode: api.ModeVector, Limit: 3}).Items)))
	})

	It("[M4-4] refuses an excluded resource and credentials (403, before any 400), caps the rows, and names each bad input (400)", func() {
		var e api.ErrorBody
		Expect(p.call(http.MethodPost, "/search/notes", api.SearchRequest{Query: "x", Mode: api.ModeText}, &e)).To(Equal(http.StatusForbidden))
		Expect(e.Error.Code).To(Equal(api.CodeResourceNotInScope))
		Expect(p.call(http.MethodPost, "/search/notes", map[string]any{"query": ""}, &e)).To(Equal(http.StatusForbidden), "the scope decides before the body")
		Expect(p.call(http.MethodPost, "/search/credentials", api.SearchRequest{Query: "github", Mode: api.ModeText}, &e)).To(Equal(http.StatusForbidden))
		Expect(e.Error.Code).To(Equal(api.CodeResourceNotInScope))

		for _, w := range []string{"a", "b", "c", "d"} {
			create(s.token, "tasks", map[string]any{"title": s.word + " more " + w})
		}
		capped := p.search("tasks", api.SearchRequest{Query: s.word, Mode: api.ModeText, Limit: 1000})
		Expect(capped.Items).To(HaveLen(3))
		Expect(capped.Truncated).To(BeTrue())

		for _, bad := range []struct {
			resource string
			body     any
			code     string
		}{
			{"tasks", map[string]any{"query": "", "mode": "text"}, api.CodeEmptyQuery},
			{"tasks", map[string]any{"mode": "text"}, api.CodeEmptyQuery},
			{"tasks", map[string]any{"query": strings.Repeat("é", 1001), "mode": "text"}, api.CodeQueryTooLong},
			{"tasks", map[string]any{"query": "x", "mode": "semantic"}, api.CodeInvalidMode},
			{"tasks", map[string]any{"query": "x"}, api.CodeInvalidMode},
			{"tasks", map[string]any{"query": "x", "mode": "vector"}, api.CodeModeNotSupported},
			{"tasks", map[string]any{"query": "x", "mode": "hybrid"}, api.CodeModeNotSupported},
			{"memories", map[string]any{"query": "x", "mode": "vector", "embedding": []float64{1, 0}}, api.CodeInvalidBody},
			{"tasks", map[string]any{"query": "x", "mode": "text", "limit": -1}, api.CodeInvalidLimit},
		} {
			var e api.ErrorBody
			Expect(p.call(http.MethodPost, "/search/"+bad.resource, bad.body, &e)).To(Equal(http.StatusBadRequest), "%v", bad.body)
			Expect(e.Error.Code).To(Equal(bad.code), "%v", bad.body)
		}
		Expect(p.call(http.MethodPost, "/search/tasks", strings.Repeat("{", 10), nil)).To(Equal(http.StatusBadRequest))

		By("auditing each search once, with its outcome and reason, no query text")
		entries := auditOfGrant(site("work"), p.grant.GrantID)
		mine := 0
		for _, en := range entries {
			if en.GrantID == p.grant.GrantID && strings.Contains(en.Action, "/search/") {
				mine++
				Expect(en.Detail).NotTo(ContainSubstring(s.word))
			}
		}
		Expect(mine).To(Equal(14))
		Expect(entries).To(ContainElement(And(HaveField("GrantID", p.grant.GrantID), HaveField("Reason", api.CodeModeNotSupported))))

		By("refusing the same bad input on the requesting side's local API")
		home := site("home")
		for query, code := range map[string]string{
			"q=x":                      api.CodeInvalidResource,
			"resource=credentials&q=x": api.CodeInvalidResource,
			"resource=tasks&q=":        api.CodeEmptyQuery,
			"resource=tasks&q=" + strings.Repeat("a", 1001): api.CodeQueryTooLong,
			"resource=tasks&q=x&mode=fuzzy":                 api.CodeInvalidMode,
			"resource=tasks&q=x&mode=vector":                api.CodeModeNotSupported,
			"resource=notes&q=x&mode=hybrid":                api.CodeModeNotSupported,
			"resource=tasks&q=x&limit=0":                    api.CodeInvalidLimit,
			"resource=tasks&q=x&source=mars":                api.CodeInvalidSource,
		} {
			var e api.ErrorBody
			Expect(call(http.MethodGet, home.APIURL+"/api/v1/search?"+query+"&source=all", &e, bearer(home.Users[0].Token))).To(Equal(http.StatusBadRequest), query)
			Expect(e.Error.Code).To(Equal(code), query)
		}
		Expect(call(http.MethodGet, home.APIURL+"/api/v1/search?resource=tasks&q=x", nil)).To(Equal(http.StatusUnauthorized))
	})
})

var _ = Describe("Search from the requesting side", Label("M4"), func() {
	It("[M4-3] source=all fuses local rows and the peer's by rank, each item keeping its own _score", func() {
		home := site("home")
		ada := home.Users[0].Token
		q := "resource=memories&mode=text&q=the&limit=6"
		local := localSearch(home.APIURL, ada, q+"&source=local")
		remote := localSearch(home.APIURL, ada, q+"&source=federated:work")
		all := localSearch(home.APIURL, ada, q+"&source=all")
		Expect(local.Items).NotTo(BeEmpty())
		Expect(remote.Items).NotTo(BeEmpty())
		Expect(all.Partial).To(BeFalse())
		Expect(all.Sources).To(ConsistOf(HaveField("Status", "ok"), HaveField("Status", "ok")))
		key := func(items []map[string]any) []string {
			var out []string
			for _, it := range items {
				out = append(out, fmt.Sprint(it["_source"], "/", it["id"]))
			}
			return out
		}
		Expect(key(all.Items)).To(Equal(rrf(key(local.Items), key(remote.Items))[:6]))
		Expect(all.Items[0]["_score"]).To(Equal(local.Items[0]["_score"]), "its own score, not the fused one")
		Expect(all.Items[1]["_score"]).To(Equal(remote.Items[0]["_score"]))
		Expect(all.Items[1]["_source"]).To(Equal("federated:work"))

		By("defaulting to hybrid for memories, and asking the peer to embed the query itself")
		hybrid := localSearch(home.APIURL, ada, "resource=memories&q=keys&source=federated:work&limit=3")
		Expect(hybrid.Items).To(HaveLen(3), "hybrid ranks every memory by vector as well")
	})
})

var _ = Describe("Search with a peer down", Label("M4"), Serial, func() {
	It("[M4-3] source=all answers with local rows and _partial: true, naming the failed peer by code only", func(ctx SpecContext) {
		Expect(shared).NotTo(BeNil())
		home := site("home")
		gw := shared.Site("work").Gateway
		Expect(gw.Kill()).To(Succeed())
		DeferCleanup(func(ctx SpecContext) {
			Expect(gw.Start(ctx)).To(Succeed())
			expectPeerAnswers() // the next spec finds home→work whole again
		})
		// no-cache: another spec's entry would answer as stale (M5-2); this one is
		// about a peer without one.
		var res api.ListOf[map[string]any]
		Expect(call(http.MethodGet, home.APIURL+"/api/v1/search?resource=notes&q=the&source=all", &res,
			bearer(home.Users[0].Token), header("Cache-Control", "no-cache"))).To(Equal(http.StatusOK))
		Expect(res.Partial).To(BeTrue())
		Expect(res.Items).NotTo(BeEmpty())
		for _, it := range res.Items {
			Expect(it["_source"]).To(Equal("local"))
		}
		Expect(res.Sources).To(ContainElement(And(HaveField("Name", "federated:work"), HaveField("Status", "error"), HaveField("Error", api.CodeUnreachable))))
	}, SpecTimeout(Timeouts.CLI))
})

// standalone serves a fresh database of the work cluster as a standalone site seeded
// with seed/work.json (which migrates it), with pgvector created in it first when
// vector is true, and calls before (if not nil) between the seed and the gateway's
// start; it returns the site's API URL, the database's URL and the seeded users.
func standalone(ctx context.Context, vector bool, before func(dsn string)) (base, dsn string, users []api.SeedUser) {
	GinkgoHelper()
	dsn = freshDatabase(ctx, "search")
	if vector {
		_, err := sqlConn(ctx, dsn).Exec(ctx, `CREATE EXTENSION vector`)
		Expect(err).NotTo(HaveOccurred())
	}
	addr := freeAddr()
	dir := GinkgoT().TempDir()
	path := filepath.Join(dir, "gateway.json")
	writeJSONFile(path, map[string]any{"tier": "standalone", "site": "office", "listen": map[string]any{"api": addr},
		"storage":          map[string]any{"postgres_url_file": secretFile(site("work"), dsn)},
		"sealing_key_file": filepath.Join(site("work").Dir, "secrets", "sealing.key")})
	root, err := world.ModuleRoot()
	Expect(err).NotTo(HaveOccurred())
	users = seedLoad(path, filepath.Join(root, "seed", "work.json")).Users
	if before != nil {
		before(dsn)
	}
	base = "http://" + addr
	startGateway(path, base)
	return base, dsn, users
}

var _ = Describe("Vector search on a database of its own", Label("M4", "slow"), func() {
	It("[M4-2] the standalone tier without pgvector answers by an exact scan over real[] embeddings", func(ctx SpecContext) {
		base, dsn, users := standalone(ctx, false, nil)
		conn := sqlConn(ctx, dsn)
		var udt string
		Expect(conn.QueryRow(ctx, `SELECT udt_name FROM information_schema.columns WHERE table_name = 'memories' AND column_name = 'embedding'`).Scan(&udt)).To(Succeed())
		Expect(udt).To(Equal("_float4"))
		var to, content, owner string
		Expect(conn.QueryRow(ctx, `SELECT m.id::text, m.content, u.id::text FROM memories m JOIN users u ON u.id = m.owner_user_id
			WHERE u.email = $1 ORDER BY m.id LIMIT 1`, "ada@work.example").Scan(&to, &content, &owner)).To(Succeed())
		res := localSearch(base, users[0].Token, "resource=memories&mode=vector&limit=50&q="+url.QueryEscape(content))

		By("computing every cosine in SQL over the rows native RBAC shows her")
		rows, err := conn.Query(ctx, `SELECT t.id::text, c.cos FROM memories t,
			(SELECT embedding FROM memories WHERE id = $1) q,
			LATERAL (SELECT sum(a::float8 * b) / (sqrt(sum(a::float8 * a)) * sqrt(sum(b::float8 * b))) AS cos FROM unnest(t.embedding, q.embedding) AS u(a, b)) c
			WHERE t.owner_user_id = $2 OR t.team_id IN (SELECT team_id FROM team_members WHERE user_id = $2)
			ORDER BY c.cos DESC, t.id`, to, owner)
		Expect(err).NotTo(HaveOccurred())
		var want []string
		var sims []float64
		for rows.Next() {
			var id string
			var sim float64
			Expect(rows.Scan(&id, &sim)).To(Succeed())
			want, sims = append(want, id), append(sims, sim)
		}
		Expect(rows.Err()).NotTo(HaveOccurred())
		Expect(len(want)).To(BeNumerically(">", 3))
		Expect(idsOf(res.Items)).To(Equal(want))
		for i, got := range scores(res.Items) {
			Expect(got).To(BeNumerically("~", sims[i], 1e-9))
		}
		Expect(res.Items[0]["id"]).To(Equal(to))
	}, SpecTimeout(Timeouts.CLI))

	It("[M4-2] with 10⁴ memories the plan uses the HNSW index, and the gateway's own searches scan it", startsFirst, func(ctx SpecContext) {
		var owner string
		var teams []string
		base, dsn, users := standalone(ctx, true, func(dsn string) {
			conn := sqlConn(ctx, dsn)
			Expect(conn.QueryRow(ctx, `SELECT id::text FROM users WHERE email = 'ada@work.example'`).Scan(&owner)).To(Succeed())
			teams = queryIDs(ctx, conn, `SELECT team_id::text FROM team_members WHERE user_id = $1`, owner)

			By("generating 10⁴ memories of hers in one statement (generate_series, random unit vectors), before the index exists")
			_, err := conn.Exec(ctx, `DROP INDEX memories_embedding_hnsw`)
			Expect(err).NotTo(HaveOccurred())
			_, err = conn.Exec(ctx, `INSERT INTO memories (id, owner_user_id, team_id, content, embedding, created_at)
				SELECT gen_random_uuid(), $1, NULL, 'generated memory ' || g, v.e, now() - g * interval '1 second'
				FROM generate_series(1, 10000) AS g,
				LATERAL (SELECT l2_normalize(array_agg(random() - 0.5)::vector(256)) AS e FROM generate_series(1, 256) AS d WHERE g > 0) AS v`, owner)
			Expect(err).NotTo(HaveOccurred())

			By("forgetting that search's migration ran, so the gateway's start runs it again: idempotent, it builds the index over the rows")
			_, err = conn.Exec(ctx, `DELETE FROM goose_db_version WHERE version_id = 4`)
			Expect(err).NotTo(HaveOccurred())
		})
		conn := sqlConn(ctx, dsn)
		var indexes int
		Expect(conn.QueryRow(ctx, `SELECT count(*) FROM pg_indexes WHERE tablename = 'memories' AND indexname = 'memories_embedding_hnsw'`).Scan(&indexes)).To(Succeed())
		Expect(indexes).To(Equal(1))
		_, err := conn.Exec(ctx, `ANALYZE memories`)
		Expect(err).NotTo(HaveOccurred())

		By("explaining the query the gateway runs, her rows under native RBAC")
		tx, err := conn.Begin(ctx)
		Expect(err).NotTo(HaveOccurred())
		_, err = tx.Exec(ctx, `SELECT set_config('hnsw.iterative_scan', 'relaxed_order', true)`)
		Expect(err).NotTo(HaveOccurred())
		var plan []string
		var q string
		Expect(tx.QueryRow(ctx, `SELECT embedding::text FROM memories WHERE content = 'generated memory 1'`).Scan(&q)).To(Succeed())
		rows, err := tx.Query(ctx, `EXPLAIN WITH nearest AS MATERIALIZED (
				SELECT t.id, t.embedding <=> $3::vector AS distance FROM memories t
				WHERE t.embedding IS NOT NULL AND (t.owner_user_id = $1 OR t.team_id = ANY($2::uuid[]))
				ORDER BY distance LIMIT 10)
			SELECT id FROM nearest ORDER BY distance, id`, owner, teams, q)
		Expect(err).NotTo(HaveOccurred())
		for rows.Next() {
			var line string
			Expect(rows.Scan(&line)).To(Succeed())
			plan = append(plan, line)
		}
		Expect(rows.Err()).NotTo(HaveOccurred())
		Expect(tx.Rollback(ctx)).To(Succeed()) // statistics read inside a transaction would stay as first read
		Expect(strings.Join(plan, "\n")).To(ContainSubstring("Index Scan using memories_embedding_hnsw"))
		fmt.Fprintln(GinkgoWriter, strings.Join(plan, "\n"))

		By("searching through the gateway and watching the index's own scan counter")
		scans := func() int64 {
			var n int64
			Expect(conn.QueryRow(ctx, `SELECT idx_scan FROM pg_stat_user_indexes WHERE indexrelname = 'memories_embedding_hnsw'`).Scan(&n)).To(Succeed())
			return n
		}
		before := scans()
		res := localSearch(base, users[0].Token, "resource=memories&mode=vector&limit=10&q=generated+memory")
		Expect(res.Items).To(HaveLen(10))
		// Backends flush their statistics within seconds of going idle.
		Eventually(scans).WithTimeout(Timeouts.Readiness).WithPolling(Timeouts.Poll * 5).Should(BeNumerically(">", before))
	}, SpecTimeout(Timeouts.CLI))
})

// The local tier is SQLite: FTS5 for text, an exact scan for vectors.
var _ = Describe("Search on the local tier", Label("M4"), func() {
	It("[M4-2] answers text by FTS5 and vector by an exact scan", func() {
		dir := GinkgoT().TempDir()
		addr := freeAddr()
		path := filepath.Join(dir, "gateway.json")
		writeJSONFile(path, map[string]any{"tier": "local", "listen": map[string]any{"api": addr},
			"storage": map[string]any{"sqlite_path": filepath.Join(dir, "data", "gateway.db")}})
		root, err := world.ModuleRoot()
		Expect(err).NotTo(HaveOccurred())
		users := seedLoad(path, filepath.Join(root, "seed", "work.json")).Users
		base := "http://" + addr
		startGateway(path, base)
		ada := users[0].Token
		text := localSearch(base, ada, "resource=notes&q="+url.QueryEscape(`the "NEAR( AND*`))
		Expect(text.Sources).To(ConsistOf(HaveField("Name", "local")))
		Expect(localSearch(base, ada, "resource=tasks&q=%21%21%21").Items).To(BeEmpty())

		list := listAll(base, ada, "memories", 100)
		Expect(list).NotTo(BeEmpty())
		content := list[0]["content"].(string)
		nearest := localSearch(base, ada, "resource=memories&mode=vector&limit=5&q="+url.QueryEscape(content))
		Expect(nearest.Items).NotTo(BeEmpty())
		Expect(nearest.Items[0]["content"]).To(Equal(content))
		Expect(nearest.Items[0]["_score"]).To(BeNumerically("~", 1, 1e-6))
		for i := 1; i < len(nearest.Items); i++ {
			Expect(scores(nearest.Items)[i]).To(BeNumerically("<=", scores(nearest.Items)[i-1]))
		}
	})
})
