package acceptance

import (
	"net/http"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"

	"github.com/mosaic-federation/mosaic/gateway/api"
	"github.com/mosaic-federation/mosaic/harness/world"
)

// peerDeadline is how long home waits for a peer in a fan-out: the gateway's
// PeerDeadline (gateway/internal/localapi), federation.peer_timeout's default.
const peerDeadline = 3 * time.Second

// link is a handle on a link of the shared world: the booting process's own, or one
// attached through the world's description on the other processes.
func link(from, to string) *world.Link {
	GinkgoHelper()
	if shared != nil {
		return shared.Link(from, to)
	}
	for _, info := range the.World.Links {
		if info.From == from && info.To == to {
			l, err := world.AttachLink(info)
			Expect(err).NotTo(HaveOccurred())
			return l
		}
	}
	Fail("no link " + from + "→" + to + " in the world")
	return nil
}

// homeListAll lists home's demo user's tasks from every source, live (no-cache: never an
// answer from the requesting side's cache), and says how long the answer took.
func homeListAll() (api.ListOf[map[string]any], time.Duration) {
	GinkgoHelper()
	home := site("home")
	var l api.ListOf[map[string]any]
	start := time.Now()
	Expect(call(http.MethodGet, home.APIURL+"/api/v1/tasks?source=all&limit=50", &l, bearer(home.Users[0].Token),
		header("Cache-Control", "no-cache"))).To(Equal(http.StatusOK))
	return l, time.Since(start)
}

// expectOnlyLocal says every item came from home itself, and that there are some.
func expectOnlyLocal(l api.ListOf[map[string]any]) {
	GinkgoHelper()
	Expect(l.Items).NotTo(BeEmpty(), "home's own rows are still there")
	for _, it := range l.Items {
		Expect(it["_source"]).To(Equal("local"))
	}
	Expect(l.Sources).To(ContainElement(And(HaveField("Name", "local"), HaveField("Status", "ok"))))
}

// expectPeerAnswers waits for home's list to have work's rows again (a breaker that
// opened meanwhile probes after its hold).
func expectPeerAnswers() {
	GinkgoHelper()
	Eventually(func(g Gomega) {
		again, _ := homeListAll()
		g.Expect(again.Partial).To(BeFalse())
		g.Expect(again.Sources).To(ContainElement(And(HaveField("Name", "federated:work"), HaveField("Status", "ok"))))
		g.Expect(again.Items).To(ContainElement(HaveKeyWithValue("_source", "federated:work")))
	}).WithTimeout(20 * time.Second).WithPolling(250 * time.Millisecond).Should(Succeed())
}

// Serial: these specs slow or cut the link every other spec's home→work calls cross.
var _ = Describe("The WAN link from home to work", Label("M5"), Serial, func() {
	var l *world.Link
	BeforeEach(func() {
		l = link("home", "work")
		DeferCleanup(func() { Expect(l.Restore()).To(Succeed()) })
	})

	It("[H-10] slows home's calls to work by a round trip of 2·D with SetLatency(D), and Restore takes it off", Label("harness"), func(_ SpecContext) {
		const d = 150 * time.Millisecond
		homeListAll() // a kept-alive connection to work, so one request costs one round trip
		Expect(l.SetLatency(d)).To(Succeed())
		got, took := homeListAll()
		Expect(got.Partial).To(BeFalse())
		Expect(took).To(And(BeNumerically(">=", 2*d), BeNumerically("<", peerDeadline)))
		Expect(l.Restore()).To(Succeed())
		Eventually(func() time.Duration { _, took := homeListAll(); return took }).
			WithTimeout(10 * time.Second).Should(BeNumerically("<", 2*d))
	}, SpecTimeout(30*time.Second))

	It("[M5-9] makes a peer slower than the deadline an error with code timeout while local rows answer in time", func(_ SpecContext) {
		Expect(l.SetLatency(peerDeadline)).To(Succeed()) // a round trip costs twice the deadline
		got, took := homeListAll()
		Expect(took).To(BeNumerically("<", peerDeadline+2*time.Second), "the answer waits for a slow peer no longer than the deadline")
		Expect(got.Partial).To(BeTrue())
		Expect(got.Sources).To(ContainElement(And(HaveField("Name", "federated:work"), HaveField("Status", "error"),
			HaveField("Error", api.CodeTimeout))))
		expectOnlyLocal(got)
		Expect(l.Restore()).To(Succeed())
		expectPeerAnswers()
	}, SpecTimeout(60*time.Second))

	It("[M5-2] answers a cut link without a cache entry with the source in error, _partial and the local rows; after Restore the peer answers again", func(_ SpecContext) {
		By("through the link at first (a spec before may have left work restarting or home's breaker open)")
		expectPeerAnswers()

		Expect(l.Cut()).To(Succeed())
		Expect(readyz(site("work").APIURL)).To(Equal(http.StatusOK), "work itself is up: only the link is down")
		got, took := homeListAll()
		Expect(took).To(BeNumerically("<", peerDeadline), "a refused connection fails at once")
		Expect(got.Partial).To(BeTrue())
		Expect(got.Sources).To(ContainElement(And(HaveField("Name", "federated:work"), HaveField("Status", "error"),
			HaveField("Error", api.CodeUnreachable))))
		expectOnlyLocal(got)

		Expect(l.Restore()).To(Succeed())
		expectPeerAnswers()
	}, SpecTimeout(60*time.Second))

	It("[M5-2] resets: every connection across the link reset makes the source an error; after Restore the peer answers", func(_ SpecContext) {
		Expect(l.ResetPeers()).To(Succeed())
		got, _ := homeListAll()
		Expect(got.Partial).To(BeTrue())
		Expect(got.Sources).To(ContainElement(And(HaveField("Name", "federated:work"), HaveField("Status", "error"))))
		expectOnlyLocal(got)
		Expect(l.Restore()).To(Succeed())
		expectPeerAnswers()
	}, SpecTimeout(60*time.Second))
})
