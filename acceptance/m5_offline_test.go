package acceptance

import (
	"bytes"
	"fmt"
	"net/http"
	"slices"
	"sync"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	"github.com/onsi/gomega/gbytes"

	"github.com/mosaic-federation/mosaic/gateway/api"
	"github.com/mosaic-federation/mosaic/harness/world"
)

// cacheOverrides are the overrides of an own home gateway's cache.
func cacheOverrides(ttl, maxStaleness string) map[string]any {
	return map[string]any{"federation": map[string]any{"cache": map[string]any{"ttl": ttl, "max_staleness": maxStaleness}}}
}

// peerList lists a resource of one peer through a home gateway as home's users[0].
func peerList(apiURL, resource string, opts ...option) api.ListOf[map[string]any] {
	GinkgoHelper()
	var l api.ListOf[map[string]any]
	Expect(call(http.MethodGet, apiURL+"/api/v1/"+resource+"?source=federated:work&limit=50", &l,
		append(opts, bearer(site("home").Users[0].Token))...)).To(Equal(http.StatusOK))
	Expect(l.Sources).To(HaveLen(1))
	return l
}

// expectStale waits for a list to be answered from a stale entry (once the entry is
// older than the ttl) and returns it.
func expectStale(apiURL, resource string) api.ListOf[map[string]any] {
	GinkgoHelper()
	var l api.ListOf[map[string]any]
	Eventually(func(g Gomega) {
		l = peerList(apiURL, resource)
		g.Expect(l.Sources[0].Status).To(Equal("stale"), "a cached answer while the entry is fresh, then stale")
	}).WithTimeout(20 * time.Second).WithPolling(250 * time.Millisecond).Should(Succeed())
	return l
}

// cutLink cuts home→work until the spec ends; at the end the link is restored and
// home's world gateway answers through it again, for the specs after.
func cutLink() *world.Link {
	GinkgoHelper()
	l := link("home", "work")
	DeferCleanup(func() {
		Expect(l.Restore()).To(Succeed())
		expectPeerAnswers()
	})
	Expect(l.Cut()).To(Succeed())
	return l
}

// Serial: these specs cut or slow the link every other spec's home→work calls cross.
var _ = Describe("Answering while work is unreachable", Label("M5", "cache"), Serial, func() {
	It("[M5-2] answers a cut link from an entry younger than max_staleness as stale with age_s, not partial; no-cache is an error, never stale", func(_ SpecContext) {
		homeAPI := ownHomeGateway(cacheOverrides("1s", "10m"))
		fresh := peerList(homeAPI, "tasks")
		Expect(fresh.Sources[0]).To(And(HaveField("Status", "ok"), HaveField("Cached", false)))
		Expect(fresh.Items).NotTo(BeEmpty())

		cutLink()
		By("the same list: the entry, stale, with its age")
		stale := expectStale(homeAPI, "tasks")
		Expect(stale.Partial).To(BeFalse())
		Expect(stale.Sources[0]).To(And(HaveField("Name", "federated:work"), HaveField("Cached", false),
			HaveField("AgeS", HaveValue(And(BeNumerically(">=", 1), BeNumerically("<", 600))))))
		Expect(idsOf(stale.Items)).To(Equal(idsOf(fresh.Items)))
		for _, it := range stale.Items {
			Expect(it["_source"]).To(Equal("federated:work"))
		}

		By("Cache-Control: no-cache: the source in error and the answer partial")
		live := peerList(homeAPI, "tasks", header("Cache-Control", "no-cache"))
		Expect(live.Partial).To(BeTrue())
		Expect(live.Sources[0]).To(And(HaveField("Status", "error"), HaveField("Error", api.CodeUnreachable), HaveField("AgeS", BeNil())))
		Expect(live.Items).To(BeEmpty())

		By("a list without an entry: error, partial")
		none := peerList(homeAPI, "notes")
		Expect(none.Partial).To(BeTrue())
		Expect(none.Sources[0]).To(And(HaveField("Status", "error"), HaveField("Error", api.CodeUnreachable)))

		By("the entry is still there for the next request")
		Expect(peerList(homeAPI, "tasks").Sources[0].Status).To(Equal("stale"))
	}, SpecTimeout(90*time.Second))

	It("[M5-2] answers no stale entry older than max_staleness: the source in error, partial", func(_ SpecContext) {
		homeAPI := ownHomeGateway(cacheOverrides("0s", "2s"))
		Expect(peerList(homeAPI, "tasks").Sources[0].Status).To(Equal("ok"))
		cutLink()
		// ttl 0: no fresh hits, so the first answer after the cut is stale at once —
		// unless a slow machine already took two seconds.
		Eventually(func(g Gomega) {
			l := peerList(homeAPI, "tasks")
			g.Expect(l.Partial).To(BeTrue())
			g.Expect(l.Sources[0]).To(And(HaveField("Status", "error"), HaveField("Error", api.CodeUnreachable)))
			g.Expect(l.Items).To(BeEmpty())
		}).WithTimeout(20 * time.Second).WithPolling(250 * time.Millisecond).Should(Succeed())
	}, SpecTimeout(90*time.Second))

	It("[M5-3] opens work's breaker after five calls that each waited out the deadline; the sixth fails at once with peer_unavailable; after Restore a half-open probe closes it", func(_ SpecContext) {
		const deadline, openFor = time.Second, 3 * time.Second
		metricsAddr := freeAddr()
		homeAPI, gw := ownHomeGatewaySession(mergeMaps(cacheOverrides("0s", "10m"), map[string]any{
			"listen": map[string]any{"metrics": metricsAddr},
			"federation": map[string]any{
				"peer_timeout": deadline.String(), "breaker": map[string]any{"open_for": openFor.String()}}}))
		metrics := "http://" + metricsAddr
		live := header("Cache-Control", "no-cache")
		timed := func() (api.SourceStatus, time.Duration) {
			GinkgoHelper()
			start := time.Now()
			l := peerList(homeAPI, "tasks", live)
			return l.Sources[0], time.Since(start)
		}
		Expect(peerList(homeAPI, "tasks", live).Sources[0].Status).To(Equal("ok"))
		Expect(breakerState(metrics, "work")).To(Equal(breakerClosed), "the breaker metric says closed")

		l := link("home", "work")
		DeferCleanup(func() {
			Expect(l.Restore()).To(Succeed())
			expectPeerAnswers()
		})
		Expect(l.SetLatency(deadline + deadline/2)).To(Succeed()) // a round trip costs three deadlines
		for i := range 5 {
			src, took := timed()
			Expect(src).To(And(HaveField("Status", "error"), HaveField("Error", api.CodeTimeout)), "call %d", i+1)
			Expect(took).To(And(BeNumerically(">=", deadline), BeNumerically("<", deadline+deadline/2)), "call %d waits out the deadline", i+1)
		}
		src, took := timed()
		Expect(src).To(And(HaveField("Status", "error"), HaveField("Error", api.CodePeerUnavailable)))
		Expect(took).To(BeNumerically("<", 100*time.Millisecond), "an open breaker waits for nothing")
		Eventually(gw.Err).Should(gbytes.Say(breakerChanged("work", "closed", "open")))
		Expect(breakerState(metrics, "work")).To(Equal(breakerOpen), "the breaker metric says open")

		By("Restore: the breaker stays open for open_for, then one probe closes it")
		opened := time.Now()
		Expect(l.Restore()).To(Succeed())
		if src, _ := timed(); time.Since(opened) < openFor-time.Second {
			Expect(src.Error).To(Equal(api.CodePeerUnavailable), "the link is back, the breaker is not yet")
		}
		Eventually(func() string { src, _ := timed(); return src.Status }).
			WithTimeout(openFor + 10*time.Second).WithPolling(250 * time.Millisecond).Should(Equal("ok"))
		Eventually(gw.Err).Should(gbytes.Say(breakerChanged("work", "open", "half-open")))
		Eventually(gw.Err).Should(gbytes.Say(breakerChanged("work", "half-open", "closed")))
		Expect(breakerState(metrics, "work")).To(Equal(breakerClosed), "the breaker metric says closed again")
		for range 3 {
			src, _ := timed()
			Expect(src.Status).To(Equal("ok"), "closed: every call goes through")
		}
	}, SpecTimeout(2*time.Minute))

	It("[M5-4] persists nothing of work's rows after cached and stale answers: not in the database, Valkey, any file or the gateway's log", func(ctx SpecContext) {
		homeAPI, gw := ownHomeGatewaySession(cacheOverrides("2s", "10m"))
		var rows []map[string]any
		fresh := map[string][]string{}
		for _, r := range federatedResources {
			l := peerList(homeAPI, r)
			Expect(l.Sources[0].Status).To(Equal("ok"))
			Expect(l.Items).NotTo(BeEmpty())
			rows, fresh[r] = append(rows, l.Items...), idsOf(l.Items)
		}
		By("cached answers")
		for _, r := range federatedResources {
			Expect(peerList(homeAPI, r).Sources[0]).To(HaveField("Cached", true))
		}
		By("stale answers")
		cutLink()
		for _, r := range federatedResources {
			Expect(idsOf(expectStale(homeAPI, r).Items)).To(Equal(fresh[r]))
		}

		needles := rowNeedles(rows)
		expectNotPersisted(ctx, site("home"), needles)
		By("reading the own gateway's log")
		log := append(slices.Clone(gw.Out.Contents()), gw.Err.Contents()...)
		Expect(log).NotTo(BeEmpty())
		for _, n := range needles {
			Expect(bytes.Contains(log, n)).To(BeFalse(), "found %q in the gateway's log", n)
		}
	}, SpecTimeout(2*time.Minute))
})

var _ = Describe("The cache under many users", Label("M5", "cache", "security"), func() {
	It("[M5-5] two users with different grants asking the same query concurrently never see each other's rows", func(ctx SpecContext) {
		homeAPI := ownHomeGateway(cacheOverrides("30s", "10m"))
		home := site("home")
		type caller struct {
			user    world.User
			peer    string
			allowed map[string]map[string]bool // resource → id → in the grant's scope
		}
		var callers []caller
		for _, u := range home.Users[:2] {
			g := harnessGrant(u.Email)
			c := caller{user: u, peer: "federated:" + g.OwnerPeer, allowed: map[string]map[string]bool{}}
			for r, ids := range grantRows(g) {
				c.allowed[r] = map[string]bool{}
				for _, id := range ids {
					c.allowed[r][id] = true
				}
			}
			callers = append(callers, c)
		}
		Expect(callers[0].peer).NotTo(Equal(callers[1].peer))

		// Each round: both users' workers start together on the same URL, twice — a
		// cold entry (one call per user at most, collapsed) and then a fresh hit.
		const workers, repeats = 4, 2
		var mu sync.Mutex
		var failures []string
		cached := map[string]int{}
		for _, r := range federatedResources {
			url := fmt.Sprintf("%s/api/v1/%s?source=all&limit=200", homeAPI, r)
			start := make(chan struct{})
			var wg sync.WaitGroup
			for ci, c := range callers {
				other := callers[1-ci].peer
				for range workers {
					wg.Add(1)
					go func() {
						defer GinkgoRecover()
						defer wg.Done()
						<-start
						for range repeats {
							var l api.ListOf[map[string]any]
							st := call(http.MethodGet, url, &l, bearer(c.user.Token))
							problem, hit := checkOwnRows(st, l, c.allowed[r], c.peer, other)
							mu.Lock()
							if problem != "" {
								failures = append(failures, fmt.Sprintf("%s %s: %s", c.user.Email, r, problem))
							}
							if hit {
								cached[c.user.Email]++
							}
							mu.Unlock()
						}
					}()
				}
			}
			close(start)
			wg.Wait()
			Expect(ctx.Err()).NotTo(HaveOccurred())
		}
		Expect(failures).To(BeEmpty())
		for _, c := range callers {
			Expect(cached).To(HaveKeyWithValue(c.user.Email, BeNumerically(">", 0)), "%s was answered from the cache", c.user.Email)
		}
	}, SpecTimeout(2*time.Minute))
})

// checkOwnRows says what is wrong with a merged list for a caller reading through its
// peer (and maybe peers other specs gave it, left alone here), never the other
// caller's, or "", and whether the peer's part came from a fresh cache entry.
func checkOwnRows(status int, l api.ListOf[map[string]any], allowed map[string]bool, peer, other string) (string, bool) {
	if status != http.StatusOK {
		return fmt.Sprintf("status %d", status), false
	}
	i := slices.IndexFunc(l.Sources, func(s api.SourceStatus) bool { return s.Name == peer })
	if i < 0 || l.Sources[i].Status != "ok" || slices.ContainsFunc(l.Sources, func(s api.SourceStatus) bool { return s.Name == other }) {
		return fmt.Sprintf("sources %+v", l.Sources), false
	}
	remote := 0
	for _, it := range l.Items {
		switch it["_source"] {
		case peer:
			remote++
			if !allowed[fmt.Sprint(it["id"])] {
				return fmt.Sprintf("row %v is outside the caller's grant", it["id"]), false
			}
		case other:
			return fmt.Sprintf("row %v from the other caller's peer %v", it["id"], other), false
		}
	}
	if remote == 0 {
		return "no rows of the caller's peer", false
	}
	return "", l.Sources[i].Cached
}

// breakerChanged matches the log line of a peer's breaker changing state.
func breakerChanged(peer, from, to string) string {
	return `"msg":"peer circuit breaker changed state","peer":"` + peer + `","from":"` + from + `","to":"` + to + `"`
}
