package acceptance

import (
	"bytes"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strings"

	"github.com/google/uuid"
	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"

	"github.com/mosaic-federation/mosaic/gateway/api"
)

var _ = Describe("The local API", Label("M1"), func() {
	var base, ada, grace string
	BeforeEach(func() {
		work := site("work")
		base, ada, grace = work.APIURL, work.Users[0].Token, work.Users[1].Token
		Expect(work.Users[0].Email).To(Equal("ada@work.example"))
	})

	DescribeTable("[M1-LA-1] lists exactly the rows native RBAC shows the caller, each tagged _source local, paged by cursor",
		func(ctx SpecContext, resource string, user int, limit int) {
			u := site("work").Users[user]
			items := listAll(base, u.Token, resource, limit)
			Expect(idsOf(items)).To(ConsistOf(visibleIDs(ctx, site("work").PostgresURL, resource, u.Email)))
			Expect(items).NotTo(BeEmpty())
			var times []string
			for _, it := range items {
				Expect(it["_source"]).To(Equal("local"))
				times = append(times, it["created_at"].(string))
			}
			Expect(slices.IsSortedFunc(times, func(a, b string) int { return strings.Compare(b, a) })).To(BeTrue(), "newest first")
		},
		Entry("tasks for ada, one page", "tasks", 0, 1000),
		Entry("tasks for ada, pages of 7", "tasks", 0, 7),
		Entry("notes for grace, pages of 5", "notes", 1, 5),
		Entry("memories for ada, pages of 4", "memories", 0, 4),
	)

	It("[M1-LA-2] filters by status and team", func(ctx SpecContext) {
		var open api.ListOf[map[string]any]
		Expect(call(http.MethodGet, base+"/api/v1/tasks?status=open&limit=1000", &open, bearer(ada))).To(Equal(http.StatusOK))
		Expect(open.Items).NotTo(BeEmpty())
		for _, it := range open.Items {
			Expect(it["status"]).To(Equal("open"))
		}
		conn := sqlConn(ctx, site("work").PostgresURL)
		var team string
		Expect(conn.QueryRow(ctx, `SELECT team_id::text FROM team_members m JOIN users u ON u.id = m.user_id
			WHERE u.email = 'ada@work.example' LIMIT 1`).Scan(&team)).To(Succeed())
		byTeam := listAll(base, ada, "tasks?team_id="+team, 7)
		want := queryIDs(ctx, conn, `SELECT id::text FROM tasks WHERE team_id = $1`, team)
		Expect(idsOf(byTeam)).To(ConsistOf(want), "every row of a team of hers, and only those")

		By("narrowing to a team she is not in: nothing, not an error")
		var notMine string
		Expect(conn.QueryRow(ctx, `SELECT id::text FROM teams WHERE id NOT IN (SELECT team_id FROM team_members m
			JOIN users u ON u.id = m.user_id WHERE u.email = 'ada@work.example') LIMIT 1`).Scan(&notMine)).To(Succeed())
		var adaID string
		Expect(conn.QueryRow(ctx, `SELECT id::text FROM users WHERE email = 'ada@work.example'`).Scan(&adaID)).To(Succeed())
		var foreign api.ListOf[map[string]any]
		Expect(call(http.MethodGet, base+"/api/v1/tasks?team_id="+notMine, &foreign, bearer(ada))).To(Equal(http.StatusOK))
		for _, it := range foreign.Items {
			Expect(it["owner_user_id"]).To(Equal(adaID), "only a row she owns herself may show")
		}
	})

	It("[M1-LA-3] gets a visible row (200), hides another's personal row and a missing id alike (404), refuses a malformed id (400)", func(ctx SpecContext) {
		conn := sqlConn(ctx, site("work").PostgresURL)
		var mine, gracesPersonal string
		Expect(conn.QueryRow(ctx, `SELECT t.id::text FROM tasks t JOIN users u ON u.id = t.owner_user_id
			WHERE u.email = 'ada@work.example' AND t.team_id IS NULL LIMIT 1`).Scan(&mine)).To(Succeed())
		Expect(conn.QueryRow(ctx, `SELECT t.id::text FROM tasks t JOIN users u ON u.id = t.owner_user_id
			WHERE u.email = $1 AND t.team_id IS NULL LIMIT 1`, site("work").Users[1].Email).Scan(&gracesPersonal)).To(Succeed())

		var got api.ItemResponse
		Expect(call(http.MethodGet, base+"/api/v1/tasks/"+mine, &got, bearer(ada))).To(Equal(http.StatusOK))
		Expect(itemOf(got)["id"]).To(Equal(mine))
		Expect(itemOf(got)["_source"]).To(Equal("local"))

		var hidden, missing api.ErrorBody
		Expect(call(http.MethodGet, base+"/api/v1/tasks/"+gracesPersonal, &hidden, bearer(ada))).To(Equal(http.StatusNotFound))
		Expect(call(http.MethodGet, base+"/api/v1/tasks/"+uuid.NewString(), &missing, bearer(ada))).To(Equal(http.StatusNotFound))
		Expect(hidden.Error.Code).To(Equal(missing.Error.Code))
		Expect(hidden.Error.Message).To(Equal(missing.Error.Message))

		for _, bad := range []string{"42", "not-a-uuid", strings.ToUpper(mine), mine + "0", "%27%20OR%201%3D1"} {
			var e api.ErrorBody
			Expect(call(http.MethodGet, base+"/api/v1/tasks/"+bad, &e, bearer(ada))).To(Equal(http.StatusBadRequest), bad)
			Expect(e.Error.Code).To(Equal(api.CodeInvalidID))
		}
	})

	It("[M1-LA-4] creates tasks, notes and memories the caller then sees, and refuses a team the caller is not in", func(ctx SpecContext) {
		// The last seeded user creates: specs running in parallel compare ada's and
		// grace's rows with the database and must not see rows appear under them.
		creator := site("work").Users[len(site("work").Users)-1].Token
		for resource, body := range map[string]string{
			"tasks":    `{"title": "Draft the ADR for request tracing", "status": "in_progress"}`,
			"notes":    `{"title": "Tracing", "body": "Propagate W3C trace context."}`,
			"memories": `{"content": "Prefers trace ids in every log line"}`,
		} {
			var created api.ItemResponse
			Expect(call(http.MethodPost, base+"/api/v1/"+resource, &created, bearer(creator), rawBody(strings.NewReader(body)))).To(Equal(http.StatusCreated), resource)
			Expect(itemOf(created)["_source"]).To(Equal("local"))
			id := itemOf(created)["id"].(string)
			Expect(call(http.MethodGet, base+"/api/v1/"+resource+"/"+id, nil, bearer(creator))).To(Equal(http.StatusOK))
			Expect(call(http.MethodGet, base+"/api/v1/"+resource+"/"+id, nil, bearer(grace))).To(Equal(http.StatusNotFound), "a personal row stays personal")
		}

		conn := sqlConn(ctx, site("work").PostgresURL)
		var notMine string
		Expect(conn.QueryRow(ctx, `SELECT id::text FROM teams WHERE id NOT IN (SELECT team_id FROM team_members m
			JOIN users u ON u.id = m.user_id WHERE u.email = 'ada@work.example') LIMIT 1`).Scan(&notMine)).To(Succeed())
		var e api.ErrorBody
		Expect(call(http.MethodPost, base+"/api/v1/tasks", &e, bearer(ada), rawBody(strings.NewReader(`{"title": "x", "team_id": "`+notMine+`"}`)))).To(Equal(http.StatusForbidden))
		Expect(e.Error.Code).To(Equal(api.CodeNotATeamMember))

		By("hiding a row of a team she is not in, like a missing one")
		var foreignRow string
		Expect(conn.QueryRow(ctx, `SELECT t.id::text FROM tasks t JOIN users u ON u.id = t.owner_user_id
			WHERE t.team_id = $1 AND u.email <> 'ada@work.example' LIMIT 1`, notMine).Scan(&foreignRow)).To(Succeed())
		Expect(call(http.MethodGet, base+"/api/v1/tasks/"+foreignRow, nil, bearer(ada))).To(Equal(http.StatusNotFound))

		for _, bad := range []string{`{"title": ""}`, `{"title": "x", "status": "blocked"}`, `{"title": "x", "colour": "red"}`,
			`{"title": 3}`, `{"title": "x"} {}`, `not json`, `{"title": "a\u0000b"}`,
			`{"title": "x", "due_at": "0000-01-01T00:00:00+01:00"}`, `{"title": "x", "due_at": "9999-12-31T23:59:59-23:00"}`} {
			Expect(call(http.MethodPost, base+"/api/v1/tasks", nil, bearer(ada), rawBody(strings.NewReader(bad)))).To(Equal(http.StatusBadRequest), bad)
		}
	})

	It("[M1-LA-5] answers 401 without a valid token, 413 over 1 MiB, each error in the envelope with a request id", func() {
		for _, token := range []string{"", "mos_" + strings.Repeat("A", 43), "not-a-token"} {
			var e api.ErrorBody
			Expect(call(http.MethodGet, base+"/api/v1/tasks", &e, bearer(token))).To(Equal(http.StatusUnauthorized))
			Expect(e.Error.Code).To(Equal(api.CodeUnauthenticated))
			Expect(e.Error.RequestID).NotTo(BeEmpty())
		}
		huge := bytes.Repeat([]byte("a"), 1<<20+1)
		body := io.MultiReader(strings.NewReader(`{"title": "`), bytes.NewReader(huge), strings.NewReader(`"}`))
		var e api.ErrorBody
		Expect(call(http.MethodPost, base+"/api/v1/tasks", &e, bearer(ada), rawBody(body))).To(Equal(http.StatusRequestEntityTooLarge))
		Expect(e.Error.Code).To(Equal(api.CodeBodyTooLarge))

		By("cutting off a body of unannounced length too")
		unannounced := io.MultiReader(strings.NewReader(`{"title": "t", "body": "`), bytes.NewReader(huge), strings.NewReader(`"}`))
		Expect(call(http.MethodPost, base+"/api/v1/notes", nil, bearer(ada), rawBody(unannounced))).To(Equal(http.StatusRequestEntityTooLarge))
	})

	It("[M1-LA-6] never serves credentials, which rest sealed", func(ctx SpecContext) {
		Expect(call(http.MethodGet, base+"/api/v1/credentials", nil, bearer(ada))).To(Equal(http.StatusNotFound))
		conn := sqlConn(ctx, site("work").PostgresURL)
		rows, err := conn.Query(ctx, `SELECT c.id::text, c.secret_sealed FROM credentials c JOIN users u ON u.id = c.owner_user_id
			WHERE u.email = 'ada@work.example'`)
		Expect(err).NotTo(HaveOccurred())
		var everything []string
		for _, r := range []string{"tasks", "notes", "memories"} {
			everything = append(everything, fmt.Sprint(listAll(base, ada, r, 200)))
		}
		n := 0
		for rows.Next() {
			var id string
			var sealed []byte
			Expect(rows.Scan(&id, &sealed)).To(Succeed())
			Expect(call(http.MethodGet, base+"/api/v1/credentials/"+id, nil, bearer(ada))).To(Equal(http.StatusNotFound))
			Expect(strings.Join(everything, " ")).NotTo(ContainSubstring(id), "a credential's id appeared in a list")
			Expect(string(sealed)).NotTo(ContainSubstring("demo-only"))
			Expect(sealed[0]).To(Equal(byte(1)), "a version-1 sealing envelope")
			n++
		}
		Expect(n).To(BeNumerically(">=", 1), "ada owns credentials in the seed")
	})

	It("[M1-LA-7] takes source=local|all, names an unknown peer (404) and refuses other sources (400)", func() {
		for _, src := range []string{"local", "all"} {
			var l api.ListOf[map[string]any]
			Expect(call(http.MethodGet, base+"/api/v1/notes?source="+src, &l, bearer(ada))).To(Equal(http.StatusOK))
			Expect(l.Partial).To(BeFalse())
		}
		var e api.ErrorBody
		Expect(call(http.MethodGet, base+"/api/v1/notes?source=federated:nowhere", &e, bearer(ada))).To(Equal(http.StatusNotFound))
		Expect(e.Error.Code).To(Equal(api.CodeUnknownPeer))
		Expect(call(http.MethodGet, base+"/api/v1/notes?source=everything", nil, bearer(ada))).To(Equal(http.StatusBadRequest))
		Expect(call(http.MethodGet, base+"/api/v1/notes?limit=0", nil, bearer(ada))).To(Equal(http.StatusBadRequest))
	})

	It("[M1-LA-8] exposes Prometheus metrics by route template, never by raw path, on listen.metrics only", func() {
		Expect(call(http.MethodGet, base+"/api/v1/tasks?limit=1", nil, bearer(ada))).To(Equal(http.StatusOK))
		var b []byte
		Expect(call(http.MethodGet, metricsURL(site("work"))+"/metrics", &b)).To(Equal(http.StatusOK))
		Expect(string(b)).To(ContainSubstring(`mosaic_http_requests_total{code="200",listener="api",method="GET",outcome="allowed",route="/api/v1/{resource:tasks|notes|memories}"}`))
		Expect(string(b)).NotTo(ContainSubstring(ada))
		Expect(call(http.MethodGet, base+"/metrics", nil)).To(Equal(http.StatusNotFound), "no /metrics on the API listener")
	})
})
