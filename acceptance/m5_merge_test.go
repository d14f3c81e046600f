package acceptance

import (
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"

	"github.com/mosaic-federation/mosaic/gateway/api"
)

// mergedPage is one live page (no-cache: never an answer from home's cache) of home's
// demo user's tasks from every source.
func mergedPage(limit int, cursor string) api.ListOf[map[string]any] {
	GinkgoHelper()
	home := site("home")
	var page api.ListOf[map[string]any]
	Expect(call(http.MethodGet, home.APIURL+"/api/v1/tasks?source=all&limit="+strconv.Itoa(limit)+"&cursor="+url.QueryEscape(cursor),
		&page, bearer(home.Users[0].Token), header("Cache-Control", "no-cache"))).To(Equal(http.StatusOK))
	Expect(len(page.Items)).To(BeNumerically("<=", limit), "a merged page holds at most limit rows in total")
	return page
}

// tagged names a listed row by its source and id: "local/<id>", "federated:work/<id>".
func tagged(items []map[string]any) []string {
	out := make([]string, len(items))
	for i, it := range items {
		out[i] = it["_source"].(string) + "/" + it["id"].(string)
	}
	return out
}

// expectNewestFirst says the rows run newest first, the greater id first at one instant.
func expectNewestFirst(items []map[string]any) {
	GinkgoHelper()
	keys := make([]api.Keyset, len(items))
	for i, it := range items {
		at, err := time.Parse(time.RFC3339Nano, it["created_at"].(string))
		Expect(err).NotTo(HaveOccurred())
		keys[i] = api.Keyset{CreatedAt: at, ID: it["id"].(string)}
	}
	for i := 1; i < len(keys); i++ {
		Expect(keys[i].Before(keys[i-1])).To(BeFalse(), "row %d (%v) comes before row %d (%v) in a local list's order", i, keys[i], i-1, keys[i-1])
	}
}

func sourceNamed(page api.ListOf[map[string]any], name string) api.SourceStatus {
	GinkgoHelper()
	for _, s := range page.Sources {
		if s.Name == name {
			return s
		}
	}
	Fail("no source " + name + " in the answer")
	return api.SourceStatus{}
}

// Serial: no other spec adds rows while these page, and the second cuts the link every
// other spec's home→work calls cross.
var _ = Describe("A merged list (source=all)", Label("M5"), Serial, func() {
	var local, federated []string
	BeforeEach(func() {
		expectPeerAnswers() // a spec before may have left work restarting
		home, work := site("home"), site("work")
		local, federated = nil, nil
		for _, id := range visibleIDs(bgCtx(), home.PostgresURL, "tasks", home.Users[0].Email) {
			local = append(local, "local/"+id)
		}
		for _, id := range effectiveIDs(work, "tasks", true, workTeams()) {
			federated = append(federated, "federated:work/"+id)
		}
		Expect(len(local)).To(BeNumerically(">", 6), "enough rows for pages of three")
		Expect(federated).NotTo(BeEmpty())
	})

	It("[M5-6] pages every row of every source exactly once, newest first across sources, at most limit rows a page", func(_ SpecContext) {
		var got []string
		var items []map[string]any
		cursor, pages := "", 0
		for ; pages == 0 || cursor != ""; pages++ {
			Expect(pages).To(BeNumerically("<", 200), "paging did not end")
			page := mergedPage(3, cursor)
			Expect(page.Partial).To(BeFalse())
			Expect(page.Sources).To(ConsistOf(
				And(HaveField("Name", "local"), HaveField("Status", "ok")),
				And(HaveField("Name", "federated:work"), HaveField("Status", "ok"))))
			if page.NextCursor != "" {
				Expect(page.Items).To(HaveLen(3), "a page that is not the last is full")
			}
			got, items = append(got, tagged(page.Items)...), append(items, page.Items...)
			cursor = page.NextCursor
		}
		Expect(got).To(HaveLen(len(local)+len(federated)), "no row twice")
		Expect(got).To(ConsistOf(append(append([]string{}, local...), federated...)))
		expectNewestFirst(items)
		Expect(pages).To(BeNumerically(">=", (len(got)+2)/3))

		By("a cursor that does not decode is 400")
		var e api.ErrorBody
		Expect(call(http.MethodGet, site("home").APIURL+"/api/v1/tasks?source=all&limit=3&cursor=not-a-cursor", &e,
			bearer(site("home").Users[0].Token))).To(Equal(http.StatusBadRequest))
		Expect(e.Error.Code).To(Equal(api.CodeInvalidCursor))
	}, SpecTimeout(2*time.Minute))

	It("[M5-6] makes a source that fails mid-way error on every remaining page, and still pages every other row once", func(_ SpecContext) {
		l := link("home", "work")
		DeferCleanup(func() { Expect(l.Restore()).To(Succeed()) })

		first := mergedPage(3, "")
		Expect(first.Partial).To(BeFalse())
		Expect(first.NextCursor).NotTo(BeEmpty())
		got, items := tagged(first.Items), first.Items

		By("cutting the link to work after the first page")
		Expect(l.Cut()).To(Succeed())
		second := mergedPage(3, first.NextCursor)
		Expect(second.Partial).To(BeTrue())
		Expect(sourceNamed(second, "federated:work")).To(And(HaveField("Status", "error"), HaveField("Error", api.CodeUnreachable)))

		By("restoring it: the cursor still leaves work out, reporting it as error")
		Expect(l.Restore()).To(Succeed())
		got, items = append(got, tagged(second.Items)...), append(items, second.Items...)
		cursor := second.NextCursor
		for pages := 0; cursor != ""; pages++ {
			Expect(pages).To(BeNumerically("<", 200), "paging did not end")
			page := mergedPage(3, cursor)
			Expect(page.Partial).To(BeTrue())
			Expect(sourceNamed(page, "federated:work")).To(And(HaveField("Status", "error"), HaveField("Error", api.CodeUnreachable)))
			for _, it := range page.Items {
				Expect(it["_source"]).To(Equal("local"))
			}
			got, items = append(got, tagged(page.Items)...), append(items, page.Items...)
			cursor = page.NextCursor
		}
		var fromWork []string
		for _, t := range tagged(first.Items) {
			if strings.HasPrefix(t, "federated:") {
				fromWork = append(fromWork, t)
			}
		}
		Expect(got).To(HaveLen(len(local)+len(fromWork)), "no row twice")
		Expect(got).To(ConsistOf(append(append([]string{}, local...), fromWork...)),
			"every local row, and of work's only those of the page before it failed")
		expectNewestFirst(items)

		By("a fresh list includes work again")
		Eventually(func(g Gomega) {
			again := mergedPage(3, "")
			g.Expect(again.Partial).To(BeFalse())
		}).WithTimeout(20 * time.Second).WithPolling(250 * time.Millisecond).Should(Succeed())
	}, SpecTimeout(2*time.Minute))
})
