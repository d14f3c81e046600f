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
)

// visibleIDs asks the database which rows native RBAC lets a user see.
func visibleIDs(ctx SpecContext, dsn, table, email string) []string {
	GinkgoHelper()
	conn := sqlConn(ctx, dsn)
	rows, err := conn.Query(ctx, `SELECT t.id::text FROM `+table+` t, users u WHERE u.email = $1 AND
		(t.owner_user_id = u.id OR t.team_id IN (SELECT team_id FROM team_members WHERE user_id = u.id))`, email)
	Expect(err).NotTo(HaveOccurred())
	var ids []string
	for rows.Next() {
		var id string
		Expect(rows.Scan(&id)).To(Succeed())
		ids = append(ids, id)
	}
	Expect(rows.Err()).NotTo(HaveOccurred())
	return ids
}

// listAll pages through a resource with the given page size.
func listAll(base, token, resource string, limit int) []map[string]any {
	GinkgoHelper()
	var all []map[string]any
	cursor := ""
	for range 1000 {
		var page listBody
		sep := "?"
		if strings.Contains(resource, "?") {
			sep = "&"
		}
		url := fmt.Sprintf("%s/api/v1/%s%slimit=%d&cursor=%s", base, resource, sep, limit, cursor)
		Expect(apiCall(http.MethodGet, url, token, nil, &page)).To(Equal(http.StatusOK))
		Expect(len(page.Items)).To(BeNumerically("<=", limit))
		all = append(all, page.Items...)
		if page.NextCursor == "" {
			return all
		}
		cursor = page.NextCursor
	}
	Fail("paging did not end")
	return nil
}

func idsOf(items []map[string]any) []string {
	ids := make([]string, len(items))
	for i, it := range items {
		ids[i] = it["id"].(string)
	}
	return ids
}

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
		var open listBody
		Expect(apiCall(http.MethodGet, base+"/api/v1/tasks?status=open&limit=1000", ada, nil, &open)).To(Equal(http.StatusOK))
		Expect(open.Items).NotTo(BeEmpty())
		for _, it := range open.Items {
			Expect(it["status"]).To(Equal("open"))
		}
		conn := sqlConn(ctx, site("work").PostgresURL)
		var team string
		Expect(conn.QueryRow(ctx, `SELECT team_id::text FROM team_members m JOIN users u ON u.id = m.user_id
			WHERE u.email = 'ada@work.example' LIMIT 1`).Scan(&team)).To(Succeed())
		byTeam := listAll(base, ada, "tasks?team_id="+team, 7)
		var want []string
		rows, err := conn.Query(ctx, `SELECT id::text FROM tasks WHERE team_id = $1`, team)
		Expect(err).NotTo(HaveOccurred())
		for rows.Next() {
			var id string
			Expect(rows.Scan(&id)).To(Succeed())
			want = append(want, id)
		}
		Expect(idsOf(byTeam)).To(ConsistOf(want), "every row of a team of hers, and only those")

		By("narrowing to a team she is not in: nothing, not an error")
		var notMine string
		Expect(conn.QueryRow(ctx, `SELECT id::text FROM teams WHERE id NOT IN (SELECT team_id FROM team_members m
			JOIN users u ON u.id = m.user_id WHERE u.email = 'ada@work.example') LIMIT 1`).Scan(&notMine)).To(Succeed())
		var adaID string
		Expect(conn.QueryRow(ctx, `SELECT id::text FROM users WHERE email = 'ada@work.example'`).Scan(&adaID)).To(Succeed())
		var foreign listBody
		Expect(apiCall(http.MethodGet, base+"/api/v1/tasks?team_id="+notMine, ada, nil, &foreign)).To(Equal(http.StatusOK))
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

		var got struct{ Item map[string]any }
		Expect(apiCall(http.MethodGet, base+"/api/v1/tasks/"+mine, ada, nil, &got)).To(Equal(http.StatusOK))
		Expect(got.Item["id"]).To(Equal(mine))
		Expect(got.Item["_source"]).To(Equal("local"))

		var hidden, missing errorBody
		Expect(apiCall(http.MethodGet, base+"/api/v1/tasks/"+gracesPersonal, ada, nil, &hidden)).To(Equal(http.StatusNotFound))
		Expect(apiCall(http.MethodGet, base+"/api/v1/tasks/"+uuid.NewString(), ada, nil, &missing)).To(Equal(http.StatusNotFound))
		Expect(hidden.Error.Code).To(Equal(missing.Error.Code))
		Expect(hidden.Error.Message).To(Equal(missing.Error.Message))

		for _, bad := range []string{"42", "not-a-uuid", strings.ToUpper(mine), mine + "0", "%27%20OR%201%3D1"} {
			var e errorBody
			Expect(apiCall(http.MethodGet, base+"/api/v1/tasks/"+bad, ada, nil, &e)).To(Equal(http.StatusBadRequest), bad)
			Expect(e.Error.Code).To(Equal("invalid_id"))
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
			var created struct{ Item map[string]any }
			Expect(apiCall(http.MethodPost, base+"/api/v1/"+resource, creator, strings.NewReader(body), &created)).To(Equal(http.StatusCreated), resource)
			Expect(created.Item["_source"]).To(Equal("local"))
			id := created.Item["id"].(string)
			Expect(apiCall(http.MethodGet, base+"/api/v1/"+resource+"/"+id, creator, nil, nil)).To(Equal(http.StatusOK))
			Expect(apiCall(http.MethodGet, base+"/api/v1/"+resource+"/"+id, grace, nil, nil)).To(Equal(http.StatusNotFound), "a personal row stays personal")
		}

		conn := sqlConn(ctx, site("work").PostgresURL)
		var notMine string
		Expect(conn.QueryRow(ctx, `SELECT id::text FROM teams WHERE id NOT IN (SELECT team_id FROM team_members m
			JOIN users u ON u.id = m.user_id WHERE u.email = 'ada@work.example') LIMIT 1`).Scan(&notMine)).To(Succeed())
		var e errorBody
		Expect(apiCall(http.MethodPost, base+"/api/v1/tasks", ada, strings.NewReader(`{"title": "x", "team_id": "`+notMine+`"}`), &e)).To(Equal(http.StatusForbidden))
		Expect(e.Error.Code).To(Equal("not_a_team_member"))

		By("hiding a row of a team she is not in, like a missing one")
		var foreignRow string
		Expect(conn.QueryRow(ctx, `SELECT t.id::text FROM tasks t JOIN users u ON u.id = t.owner_user_id
			WHERE t.team_id = $1 AND u.email <> 'ada@work.example' LIMIT 1`, notMine).Scan(&foreignRow)).To(Succeed())
		Expect(apiCall(http.MethodGet, base+"/api/v1/tasks/"+foreignRow, ada, nil, nil)).To(Equal(http.StatusNotFound))

		for _, bad := range []string{`{"title": ""}`, `{"title": "x", "status": "blocked"}`, `{"title": "x", "colour": "red"}`,
			`{"title": 3}`, `{"title": "x"} {}`, `not json`, `{"title": "a\u0000b"}`,
			`{"title": "x", "due_at": "0000-01-01T00:00:00+01:00"}`, `{"title": "x", "due_at": "9999-12-31T23:59:59-23:00"}`} {
			Expect(apiCall(http.MethodPost, base+"/api/v1/tasks", ada, strings.NewReader(bad), nil)).To(Equal(http.StatusBadRequest), bad)
		}
	})

	It("[M1-LA-5] answers 401 without a valid token, 413 over 1 MiB, each error in the envelope with a request id", func() {
		for _, token := range []string{"", "mos_" + strings.Repeat("A", 43), "not-a-token"} {
			var e errorBody
			Expect(apiCall(http.MethodGet, base+"/api/v1/tasks", token, nil, &e)).To(Equal(http.StatusUnauthorized))
			Expect(e.Error.Code).To(Equal("unauthenticated"))
			Expect(e.Error.RequestID).NotTo(BeEmpty())
		}
		huge := bytes.Repeat([]byte("a"), 1<<20+1)
		body := io.MultiReader(strings.NewReader(`{"title": "`), bytes.NewReader(huge), strings.NewReader(`"}`))
		var e errorBody
		Expect(apiCall(http.MethodPost, base+"/api/v1/tasks", ada, body, &e)).To(Equal(http.StatusRequestEntityTooLarge))
		Expect(e.Error.Code).To(Equal("body_too_large"))

		By("cutting off a body of unannounced length too")
		req, err := http.NewRequest(http.MethodPost, base+"/api/v1/notes", io.MultiReader(strings.NewReader(`{"title": "t", "body": "`), bytes.NewReader(huge), strings.NewReader(`"}`)))
		Expect(err).NotTo(HaveOccurred())
		req.ContentLength = -1
		req.Header.Set("Authorization", "Bearer "+ada)
		resp, err := http.DefaultClient.Do(req)
		Expect(err).NotTo(HaveOccurred())
		resp.Body.Close()
		Expect(resp.StatusCode).To(Equal(http.StatusRequestEntityTooLarge))
	})

	It("[M1-LA-6] never serves credentials, which rest sealed", func(ctx SpecContext) {
		Expect(apiCall(http.MethodGet, base+"/api/v1/credentials", ada, nil, nil)).To(Equal(http.StatusNotFound))
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
			Expect(apiCall(http.MethodGet, base+"/api/v1/credentials/"+id, ada, nil, nil)).To(Equal(http.StatusNotFound))
			Expect(strings.Join(everything, " ")).NotTo(ContainSubstring(id), "a credential's id appeared in a list")
			Expect(string(sealed)).NotTo(ContainSubstring("demo-only"))
			Expect(sealed[0]).To(Equal(byte(1)), "a version-1 sealing envelope")
			n++
		}
		Expect(n).To(BeNumerically(">=", 1), "ada owns credentials in the seed")
	})

	It("[M1-LA-7] takes source=local|all, names an unknown peer (404) and refuses other sources (400)", func() {
		for _, src := range []string{"local", "all"} {
			var l listBody
			Expect(apiCall(http.MethodGet, base+"/api/v1/notes?source="+src, ada, nil, &l)).To(Equal(http.StatusOK))
			Expect(l.Partial).To(BeFalse())
		}
		var e errorBody
		Expect(apiCall(http.MethodGet, base+"/api/v1/notes?source=federated:nowhere", ada, nil, &e)).To(Equal(http.StatusNotFound))
		Expect(e.Error.Code).To(Equal("unknown_peer"))
		Expect(apiCall(http.MethodGet, base+"/api/v1/notes?source=everything", ada, nil, nil)).To(Equal(http.StatusBadRequest))
		Expect(apiCall(http.MethodGet, base+"/api/v1/notes?limit=0", ada, nil, nil)).To(Equal(http.StatusBadRequest))
	})

	It("[M1-LA-8] exposes Prometheus metrics by route template, never by raw path", func() {
		Expect(apiCall(http.MethodGet, base+"/api/v1/tasks?limit=1", ada, nil, nil)).To(Equal(http.StatusOK))
		resp, err := http.Get(base + "/metrics")
		Expect(err).NotTo(HaveOccurred())
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		Expect(string(b)).To(ContainSubstring(`mosaic_http_requests_total{code="200",listener="api",method="GET",route="/api/v1/{resource:tasks|notes|memories}"}`))
		Expect(string(b)).NotTo(ContainSubstring(ada))
	})
})
