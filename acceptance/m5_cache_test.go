package acceptance

import (
	"encoding/hex"
	"net/http"
	"os/exec"
	"strings"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	"github.com/onsi/gomega/gexec"

	"github.com/mosaic-federation/mosaic/gateway/api"
)

// ownHomeGateway runs a gateway of the spec's own at home — home's database, keys and
// CA, so home's enrolled peers, on fresh listeners, overrides deep-merged — until the
// spec ends. It returns its API URL. Its cache is its own: no other spec shares it.
func ownHomeGateway(overrides map[string]any) string {
	GinkgoHelper()
	url, _ := ownHomeGatewaySession(overrides)
	return url
}

// ownHomeGatewaySession is ownHomeGateway with its process, whose Out and Err hold
// its log, for specs that read it.
func ownHomeGatewaySession(overrides map[string]any) (string, *gexec.Session) {
	GinkgoHelper()
	apiAddr, fed := freeAddr(), freeAddr()
	config := siteConfig(site("home"), mergeMaps(map[string]any{
		"listen":     map[string]any{"api": apiAddr, "federation": fed},
		"federation": map[string]any{"public_url": "https://" + fed},
	}, overrides))
	s, err := gexec.Start(exec.Command(the.GatewayBin, "serve", "--config", config), GinkgoWriter, GinkgoWriter)
	Expect(err).NotTo(HaveOccurred())
	DeferCleanup(func() { s.Terminate().Wait(Timeouts.Teardown) })
	Eventually(readyz).WithArguments("http://" + apiAddr).WithTimeout(Timeouts.Readiness).WithPolling(Timeouts.Poll).Should(Equal(http.StatusOK))
	return "http://" + apiAddr, s
}

// inTrace is a traceparent header of a fresh trace, and the trace's id.
func inTrace() (option, string) {
	id := hex.EncodeToString(randomBytes(16))
	return header("traceparent", "00-"+id+"-"+hex.EncodeToString(randomBytes(8))+"-01"), id
}

// inboundOfTrace are a site's inbound audit rows in a trace.
func inboundOfTrace(config, traceID string) []api.AuditEntry {
	GinkgoHelper()
	var out []api.AuditEntry
	for _, r := range auditRows(config) {
		if r.Direction == "inbound" && strings.Contains(r.Traceparent, traceID) {
			out = append(out, r)
		}
	}
	return out
}

var _ = Describe("The requesting side's cache", Label("M5", "cache"), func() {
	It("[M5-1] answers from a fresh entry without a peer call, and calls again on Cache-Control: no-cache", func() {
		home, work := site("home"), site("work")
		homeAPI := ownHomeGateway(map[string]any{"federation": map[string]any{"cache": map[string]any{"ttl": "60s"}}})
		list := func(opts ...option) api.ListOf[map[string]any] {
			GinkgoHelper()
			var page api.ListOf[map[string]any]
			Expect(call(http.MethodGet, homeAPI+"/api/v1/tasks?source=federated:work&limit=5", &page,
				append(opts, bearer(home.Users[0].Token))...)).To(Equal(http.StatusOK))
			Expect(page.Partial).To(BeFalse())
			Expect(page.Sources).To(HaveLen(1))
			return page
		}

		By("a first request: a live answer, and work audits it")
		trace1, id1 := inTrace()
		first := list(trace1)
		Expect(first.Sources[0]).To(And(HaveField("Status", "ok"), HaveField("Cached", false), HaveField("AgeS", BeNil())))
		Expect(first.Items).NotTo(BeEmpty())
		Expect(inboundOfTrace(work.Config, id1)).To(HaveLen(1), "work writes its audit row before it answers")

		By("the same request again: the fresh entry answers, and work never hears of it")
		// A peer change anywhere in home's database (specs beside this one add and remove
		// peers) drops every entry, and an answer whose call began before a drop is not
		// kept: the request is repeated, each time in a trace of its own, until an entry
		// answers; the trace of the one that did must have made no call.
		var second api.ListOf[map[string]any]
		var id2 string
		Eventually(func(g Gomega) {
			var trace2 option
			trace2, id2 = inTrace()
			second = list(trace2)
			g.Expect(second.Sources[0].Cached).To(BeTrue())
		}).WithTimeout(10 * time.Second).WithPolling(100 * time.Millisecond).Should(Succeed())
		Expect(second.Sources[0]).To(And(HaveField("Status", "ok"), HaveField("AgeS", HaveValue(BeNumerically(">=", 0)))))
		Expect(idsOf(second.Items)).To(Equal(idsOf(first.Items)))

		By("Cache-Control: no-cache: a live call, audited at work")
		trace3, id3 := inTrace()
		third := list(trace3, header("Cache-Control", "no-cache"))
		Expect(third.Sources[0]).To(And(HaveField("Status", "ok"), HaveField("Cached", false), HaveField("AgeS", BeNil())))
		Expect(inboundOfTrace(work.Config, id3)).To(HaveLen(1))
		// Work audits before answering, so a call for the second request would have
		// left its row before the third's.
		Expect(inboundOfTrace(work.Config, id2)).To(BeEmpty(), "a cache hit made a peer call")
	})
})
