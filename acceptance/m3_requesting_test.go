package acceptance

import (
	"bytes"
	"context"
	"fmt"
	"net/http"
	"os"
	"path/filepath"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	"github.com/redis/go-redis/v9"

	"github.com/mosaic-federation/mosaic/gateway/api"
	"github.com/mosaic-federation/mosaic/harness/world"
	"github.com/mosaic-federation/mosaic/harness/world/process"
)

// localList pages through a local API list with a source.
func localList(s world.SiteInfo, token, resource, source string) []map[string]any {
	GinkgoHelper()
	return listAll(s.APIURL, token, resource+"?source="+source, 50)
}

// workTeams are the teams the harness's grant includes: all of the work demo user's.
func workTeams() []string {
	GinkgoHelper()
	mine, _ := teamIDs(site("work"))
	return mine
}

var _ = Describe("Reading a peer from the requesting side", Label("M3"), func() {
	var home, work world.SiteInfo
	BeforeEach(func() { home, work = site("home"), site("work") })

	It("[M3-8] source=federated:work returns exactly the grant's effective rows, tagged federated:work; source=all merges them with local rows", func() {
		ada := home.Users[0].Token
		remote := localList(home, ada, "tasks", "federated:work")
		Expect(idsOf(remote)).To(ConsistOf(effectiveIDs(work, "tasks", true, workTeams())))
		for _, it := range remote {
			Expect(it["_source"]).To(Equal("federated:work"))
		}
		var all api.ListOf[map[string]any]
		Expect(call(http.MethodGet, home.APIURL+"/api/v1/notes?source=all&limit=200", &all, bearer(ada))).To(Equal(http.StatusOK))
		Expect(all.Partial).To(BeFalse())
		// By name, not a count: a spec running beside this one may give ada a second peer
		// for a while (M5-7 enrolls her at a work gateway of its own).
		Expect(all.Sources).To(ContainElements(And(HaveField("Name", "local"), HaveField("Status", "ok")),
			And(HaveField("Name", "federated:work"), HaveField("Status", "ok"))))
		sources := map[any]int{}
		for _, it := range all.Items {
			sources[it["_source"]]++
		}
		Expect(sources).To(HaveKey("local"))
		Expect(sources).To(HaveKey("federated:work"))
	})

	It("[M3-8] never lends a user another user's peer", func() {
		byron := home.Users[2].Token // owns no peer: [M2-6] enrolls users[3]
		var l api.ListOf[map[string]any]
		Expect(call(http.MethodGet, home.APIURL+"/api/v1/tasks?source=all", &l, bearer(byron))).To(Equal(http.StatusOK))
		Expect(l.Sources).To(HaveLen(1))
		for _, it := range l.Items {
			Expect(it["_source"]).To(Equal("local"))
		}
		var e api.ErrorBody
		Expect(call(http.MethodGet, home.APIURL+"/api/v1/tasks?source=federated:work", &e, bearer(byron))).To(Equal(http.StatusNotFound))
		Expect(e.Error.Code).To(Equal(api.CodeUnknownPeer))
	})

	It("[M3-8] gets one remote row by id, 404 for one outside the grant", func() {
		ada := home.Users[0].Token
		in := effectiveIDs(work, "notes", true, workTeams())[0]
		var got api.ItemResponse
		Expect(call(http.MethodGet, home.APIURL+"/api/v1/notes/"+in+"?source=federated:work", &got, bearer(ada))).To(Equal(http.StatusOK))
		Expect(itemOf(got)["_source"]).To(Equal("federated:work"))
		_, notMine := teamIDs(work)
		var out string
		Expect(sqlConn(bgCtx(), work.PostgresURL).QueryRow(bgCtx(), `SELECT id::text FROM notes WHERE team_id = $1 LIMIT 1`, notMine).Scan(&out)).To(Succeed())
		Expect(call(http.MethodGet, home.APIURL+"/api/v1/notes/"+out+"?source=federated:work", nil, bearer(ada))).To(Equal(http.StatusNotFound))
	})

	It("[M3-9] persists nothing it read from the peer: not in the database, not in Valkey, not in any file", func(ctx SpecContext) {
		ada := home.Users[0].Token
		var remote []map[string]any
		for _, r := range []string{"tasks", "notes", "memories"} {
			remote = append(remote, localList(home, ada, r, "federated:work")...)
		}
		Expect(remote).NotTo(BeEmpty())
		expectNotPersisted(ctx, home, rowNeedles(remote))
	})
})

var _ = Describe("A peer going down mid-fan-out", Label("M3"), Serial, func() {
	It("[M3-8] answers with the rest and _partial: true, naming the failed peer by code only", func(ctx SpecContext) {
		Expect(shared).NotTo(BeNil())
		home := site("home")
		gw := shared.Site("work").Gateway
		Expect(gw.Kill()).To(Succeed())
		DeferCleanup(func(ctx SpecContext) {
			Expect(gw.Start(ctx)).To(Succeed())
			expectPeerAnswers() // the next spec finds home→work whole again
		})
		var l api.ListOf[map[string]any]
		// no-cache: another spec's entry would answer as stale (M5-2); this one is
		// about a peer without one.
		Expect(call(http.MethodGet, home.APIURL+"/api/v1/tasks?source=all", &l, bearer(home.Users[0].Token),
			header("Cache-Control", "no-cache"))).To(Equal(http.StatusOK))
		Expect(l.Partial).To(BeTrue())
		Expect(l.Items).NotTo(BeEmpty())
		for _, it := range l.Items {
			Expect(it["_source"]).To(Equal("local"))
		}
		Expect(l.Sources).To(ContainElement(And(HaveField("Name", "federated:work"), HaveField("Status", "error"), HaveField("Error", api.CodeUnreachable))))
	}, SpecTimeout(Timeouts.CLI))
})

// rowNeedles are what must never be found at the requesting site after reading rows
// of a peer: their ids and their longer texts.
func rowNeedles(items []map[string]any) [][]byte {
	var needles [][]byte
	for _, it := range items {
		needles = append(needles, []byte(it["id"].(string)))
		for _, field := range []string{"title", "body", "content"} {
			if s, ok := it[field].(string); ok && len(s) > 24 {
				needles = append(needles, []byte(s))
			}
		}
	}
	return needles
}

// expectNotPersisted checks no needle is in a site's database, its Valkey, or any file
// of its run directory, logs included.
func expectNotPersisted(ctx context.Context, home world.SiteInfo, needles [][]byte) {
	GinkgoHelper()
	By("dumping home's database")
	dump, err := output(nil, filepath.Join(process.PostgresBinDir(), "pg_dump"), "--data-only", "--dbname", home.PostgresURL)
	Expect(err).NotTo(HaveOccurred())
	Expect(len(dump)).To(BeNumerically(">", 10000), "the dump holds home's own rows")
	for _, n := range needles {
		Expect(bytes.Contains(dump, n)).To(BeFalse(), "found %q in home's database", n)
	}

	By("scanning home's Valkey")
	opt, err := redis.ParseURL(home.ValkeyURL)
	Expect(err).NotTo(HaveOccurred())
	rdb := redis.NewClient(opt)
	defer rdb.Close()
	iter := rdb.Scan(ctx, 0, "*", 1000).Iterator()
	for iter.Next(ctx) {
		v, _ := rdb.Dump(ctx, iter.Val()).Result()
		for _, n := range needles {
			Expect(bytes.Contains([]byte(iter.Val()+v), n)).To(BeFalse(), "found %q in Valkey", n)
		}
	}
	Expect(iter.Err()).NotTo(HaveOccurred())

	By("reading every file of home's run directory, logs included")
	files := 0
	Expect(filepath.WalkDir(home.Dir, func(path string, d os.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return nil
		}
		b, err := os.ReadFile(path)
		if err != nil {
			return nil
		}
		files++
		for _, n := range needles {
			if bytes.Contains(b, n) {
				return fmt.Errorf("found %q in %s", n, path)
			}
		}
		return nil
	})).To(Succeed())
	Expect(files).To(BeNumerically(">", 10))
}
