package acceptance

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"slices"
	"sort"
	"strings"
	"sync"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"

	"github.com/mosaic-federation/mosaic/gateway/api"
	"github.com/mosaic-federation/mosaic/harness/world"
)

// The soak (SPEC §7 M7-7) runs in cycles of soakCycle: in each, work's serving gateway
// is restarted at 15 %, the home→work link is cut at 45 % and restored at 60 %, and the
// rest is steady, so that the breaker's hold (federation.breaker.open_for, 10 s) and a
// half-open probe fit in before the next cycle. 60 s is one cycle; `make soak` runs ten.
const (
	soakCycle    = 60 * time.Second
	soakDefault  = soakCycle
	soakEnv      = "MOSAIC_SOAK"
	soakWorkers  = 2                      // per user: each user's peer sees concurrent calls
	soakInterval = 100 * time.Millisecond // per worker: steady, not a flood, on a shared 2-core machine
	// soakMargin is how far past the peer deadline an answer may come: home's own work
	// around the fan-out, on a loaded machine.
	soakMargin = 2 * time.Second
	// soakSlack is how many goroutines or descriptors above its baseline a gateway may
	// stay: an idle connection or two more in a pool (a leak per request is thousands).
	soakSlack = 10
)

// soakDuration is the soak's length: 60 s in the acceptance run, MOSAIC_SOAK when set
// (`make soak` sets 10m). A bad value is an error, and soakDefault.
func soakDuration() (time.Duration, error) {
	v := os.Getenv(soakEnv)
	if v == "" {
		return soakDefault, nil
	}
	d, err := time.ParseDuration(v)
	if err != nil || d < 10*time.Second {
		return soakDefault, fmt.Errorf("%s=%q: give a Go duration of at least 10s, such as 60s or 10m", soakEnv, v)
	}
	return d, nil
}

// soakTimeout bounds the spec: the soak, its warm-up and the waits for recovery.
func soakTimeout() time.Duration {
	d, _ := soakDuration()
	return d + 3*time.Minute
}

// gatewayLoad is what a gateway holds: goroutines (its go_goroutines metric, on
// listen.metrics) and open file descriptors (/proc/<pid>/fd).
type gatewayLoad struct{ Goroutines, FDs int }

func (l gatewayLoad) String() string {
	if l == (gatewayLoad{}) {
		return "not read"
	}
	return fmt.Sprintf("%d goroutines, %d fds", l.Goroutines, l.FDs)
}

// loadOf reads a gateway's goroutines and descriptors.
func loadOf(gw *world.Gateway) gatewayLoad {
	GinkgoHelper()
	Expect(gw.MetricsURL).To(HavePrefix("http://127.0.0.1:"), "the world sets listen.metrics on loopback")
	g := scrape(gw.MetricsURL)["go_goroutines"]
	Expect(g).NotTo(BeNil(), "no go_goroutines on %s/metrics", gw.MetricsURL)
	Expect(g.GetMetric()).To(HaveLen(1))
	pid := gw.Pid()
	Expect(pid).NotTo(BeZero(), "the gateway is running")
	fds, err := os.ReadDir(fmt.Sprintf("/proc/%d/fd", pid))
	Expect(err).NotTo(HaveOccurred())
	return gatewayLoad{Goroutines: int(g.GetMetric()[0].GetGauge().GetValue()), FDs: len(fds)}
}

// soakTally counts a soak's requests; it is shared by the workers.
type soakTally struct {
	mu        sync.Mutex
	sent      int
	byStatus  map[string]int // "200", "502", "hang", "transport error"
	sources   map[string]int // per source answer: ok, stale, error:<code>
	latencies []time.Duration
	problems  []string
}

func newSoakTally() *soakTally {
	return &soakTally{byStatus: map[string]int{}, sources: map[string]int{}}
}

func (t *soakTally) add(status string, took time.Duration, sources []api.SourceStatus, problem string) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.sent++
	t.byStatus[status]++
	t.latencies = append(t.latencies, took)
	for _, s := range sources {
		k := s.Status
		if s.Error != "" {
			k += ":" + s.Error
		}
		t.sources[k]++
	}
	if problem != "" && len(t.problems) < 10 {
		t.problems = append(t.problems, problem)
	}
}

// p99 is the 99th percentile of the answers' latencies.
func (t *soakTally) p99() time.Duration {
	t.mu.Lock()
	defer t.mu.Unlock()
	if len(t.latencies) == 0 {
		return 0
	}
	l := slices.Clone(t.latencies)
	slices.Sort(l)
	return l[(len(l)*99-1)/100]
}

// disturbed is how many source answers were not ok: the restart and the cut reached
// the requests.
func (t *soakTally) disturbed() int {
	t.mu.Lock()
	defer t.mu.Unlock()
	n := 0
	for k, v := range t.sources {
		if k != "ok" {
			n += v
		}
	}
	return n
}

// summary is the tally for the report: counts by status and by source answer.
func (t *soakTally) summary() string {
	t.mu.Lock()
	defer t.mu.Unlock()
	return fmt.Sprintf("sent %d; by status %s; sources %s", t.sent, counts(t.byStatus), counts(t.sources))
}

// counts writes a map of counts sorted by key.
func counts(m map[string]int) string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	parts := make([]string, len(keys))
	for i, k := range keys {
		parts[i] = fmt.Sprintf("%s=%d", k, m[k])
	}
	return strings.Join(parts, " ")
}

// soakCall sends the i-th request of a user's worker (lists of each resource and a
// search, every source, every other one bypassing home's cache) and says what was
// wrong with its answer, if anything.
func soakCall(client *http.Client, home world.SiteInfo, u world.User, peer string, i int) (string, time.Duration, []api.SourceStatus, string) {
	paths := []string{"/api/v1/tasks?source=all&limit=20", "/api/v1/notes?source=all&limit=20",
		"/api/v1/memories?source=all&limit=20", "/api/v1/search?resource=notes&q=the&source=all&limit=20"}
	req, err := http.NewRequest(http.MethodGet, home.APIURL+paths[i%len(paths)], nil)
	if err != nil {
		return "transport error", 0, nil, err.Error()
	}
	req.Header.Set("Authorization", "Bearer "+u.Token)
	if i%2 == 1 {
		req.Header.Set("Cache-Control", "no-cache")
	}
	start := time.Now()
	resp, err := client.Do(req)
	took := time.Since(start)
	var to interface{ Timeout() bool }
	if errors.As(err, &to) && to.Timeout() {
		return "hang", took, nil, fmt.Sprintf("%s %s: no answer after %s", u.Email, req.URL.Path, took)
	}
	if err != nil {
		return "transport error", took, nil, fmt.Sprintf("%s %s: %v", u.Email, req.URL.Path, err)
	}
	defer resp.Body.Close()
	status := fmt.Sprint(resp.StatusCode)
	if resp.StatusCode != http.StatusOK {
		// The envelope's code only: a body may hold rows, which stay out of reports.
		var e api.ErrorBody
		_ = json.NewDecoder(io.LimitReader(resp.Body, 1<<20)).Decode(&e)
		return status, took, nil, fmt.Sprintf("%s %s: %d (error code %q)", u.Email, req.URL.Path, resp.StatusCode, e.Error.Code)
	}
	var l api.ListOf[map[string]any]
	if err := json.NewDecoder(resp.Body).Decode(&l); err != nil {
		return status, took, nil, fmt.Sprintf("%s %s: undecodable answer: %v", u.Email, req.URL.Path, err)
	}
	if took > peerDeadline+soakMargin {
		return status, took, l.Sources, fmt.Sprintf("%s %s: answered after %s, past the peer deadline %s", u.Email, req.URL.Path, took, peerDeadline)
	}
	return status, took, own(l.Sources, peer), checkSoakSources(l, peer)
}

// own keeps the sources the soak is about: home's own and the caller's peer. Other
// specs give these users peers of their own (a narrower scope, an expired grant) whose
// errors say nothing about the faults the soak injects.
func own(sources []api.SourceStatus, peer string) []api.SourceStatus {
	var out []api.SourceStatus
	for _, s := range sources {
		if s.Name == "local" || s.Name == "federated:"+peer {
			out = append(out, s)
		}
	}
	return out
}

// checkSoakSources says what is wrong with the sources of a 200: home's own source is
// always ok, the caller's peer is asked, every source is ok, stale or an error, and an
// error makes the answer _partial.
func checkSoakSources(l api.ListOf[map[string]any], peer string) string {
	names := map[string]string{}
	for _, s := range l.Sources {
		names[s.Name] = s.Status
		switch s.Status {
		case "ok", "stale":
		case "error":
			if !l.Partial {
				return fmt.Sprintf("source %s is an error (%s) but the answer is not _partial", s.Name, s.Error)
			}
		default:
			return fmt.Sprintf("source %s has status %q", s.Name, s.Status)
		}
	}
	if names["local"] != "ok" {
		return fmt.Sprintf("local source is %q, not ok: %+v", names["local"], l.Sources)
	}
	if _, ok := names["federated:"+peer]; !ok {
		return fmt.Sprintf("the caller's peer %s is not among the sources %+v", peer, l.Sources)
	}
	return ""
}

// soakLoad runs each user's workers until ctx ends, every worker one request per
// soakInterval, and returns the tally.
func soakLoad(ctx context.Context, home world.SiteInfo, users []world.User, peers []string) *soakTally {
	t := newSoakTally()
	var wg sync.WaitGroup
	for ui, u := range users {
		client := &http.Client{Timeout: peerDeadline + soakMargin + time.Second, Transport: &http.Transport{MaxIdleConnsPerHost: soakWorkers}}
		for w := range soakWorkers {
			wg.Add(1)
			go func() {
				defer GinkgoRecover()
				defer wg.Done()
				tick := time.NewTicker(soakInterval)
				defer tick.Stop()
				for i := w; ctx.Err() == nil; i += soakWorkers {
					t.add(soakCall(client, home, u, peers[ui], i))
					select {
					case <-ctx.Done():
					case <-tick.C:
					}
				}
			}()
		}
		// Idle connections to home closed: their goroutines are not counted in what
		// home holds after the load.
		defer client.CloseIdleConnections()
	}
	wg.Wait()
	return t
}

// at waits until offset past start, or ctx's end; false when ctx ended first.
func at(ctx context.Context, start time.Time, offset time.Duration) bool {
	select {
	case <-ctx.Done():
		return false
	case <-time.After(time.Until(start.Add(offset))):
		return true
	}
}

// disturb restarts work's gateway and cuts and restores the link, once per soakCycle,
// until run ends; a restart begun runs to its end under the spec's own ctx.
func disturb(run, ctx context.Context, gw *world.Gateway, l *world.Link) {
	GinkgoHelper()
	start := time.Now()
	for c := time.Duration(0); ; c += soakCycle {
		if !at(run, start, c+soakCycle*15/100) {
			return
		}
		By(fmt.Sprintf("restarting work's gateway at %s", time.Since(start).Round(time.Second)))
		Expect(gw.Restart(ctx)).To(Succeed())
		if !at(run, start, c+soakCycle*45/100) {
			return
		}
		By(fmt.Sprintf("cutting the home→work link at %s", time.Since(start).Round(time.Second)))
		Expect(l.Cut()).To(Succeed())
		if !at(run, start, c+soakCycle*60/100) {
			return
		}
		By(fmt.Sprintf("restoring the link at %s", time.Since(start).Round(time.Second)))
		Expect(l.Restore()).To(Succeed())
	}
}

// peersAnswer waits until each user's own peer answers ok through home, live.
func peersAnswer(home world.SiteInfo, users []world.User, peers []string) {
	GinkgoHelper()
	for i, u := range users {
		Eventually(func(g Gomega) {
			var got api.ListOf[map[string]any]
			g.Expect(call(http.MethodGet, home.APIURL+"/api/v1/tasks?source=all&limit=5", &got, bearer(u.Token),
				header("Cache-Control", "no-cache"))).To(Equal(http.StatusOK))
			g.Expect(got.Sources).To(ContainElement(And(HaveField("Name", "federated:"+peers[i]), HaveField("Status", "ok"))))
		}).WithTimeout(30*time.Second).WithPolling(250*time.Millisecond).Should(Succeed(), "%s's peer %s", u.Email, peers[i])
	}
}

// Serial: it restarts work's gateway and cuts the link every other spec's calls cross.
var _ = Describe("A soak of two users while the serving side fails and recovers", Label("M7", "slow"), Serial, func() {
	It("[M7-7] answers every request 200 with ok, stale or _partial sources, none past the deadline; both gateways' goroutines and fds return to baseline", func(ctx SpecContext) {
		Expect(shared).NotTo(BeNil(), "Serial specs run on the process that booted the world")
		d, err := soakDuration()
		Expect(err).NotTo(HaveOccurred())
		home := site("home")
		users := home.Users[:2]
		peers := []string{harnessGrant(users[0].Email).OwnerPeer, harnessGrant(users[1].Email).OwnerPeer}
		homeGW, workGW := shared.Site("home").Gateway, shared.Site("work").Gateway
		l := link("home", "work")
		DeferCleanup(func(ctx SpecContext) {
			Expect(l.Restore()).To(Succeed())
			if !workGW.Running() {
				Expect(workGW.Start(ctx)).To(Succeed())
			}
		})

		By("warming up both users' connections with the soak's own load, then reading the baseline")
		peersAnswer(home, users, peers) // a breaker an earlier spec opened has closed
		warm, stop := context.WithTimeout(ctx, 3*time.Second)
		w := soakLoad(warm, home, users, peers)
		stop()
		Expect(w.problems).To(BeEmpty(), "before any fault: %s", w.summary())
		Expect(w.disturbed()).To(BeZero(), "before any fault every source answers ok: %s", w.summary())
		baseHome, baseWork := loadOf(homeGW), loadOf(workGW)

		By(fmt.Sprintf("soaking for %s: %d workers per user, one request each per %s", d, soakWorkers, soakInterval))
		run, end := context.WithTimeout(ctx, d)
		defer end()
		var t *soakTally
		done := make(chan struct{})
		go func() {
			defer GinkgoRecover()
			defer close(done)
			t = soakLoad(run, home, users, peers)
		}()
		disturb(run, ctx, workGW, l)
		<-done
		Expect(l.Restore()).To(Succeed())
		var afterHome, afterWork gatewayLoad
		// The figures go into the report, a failing run's too.
		DeferCleanup(func() {
			AddReportEntry("M7-7 soak figures", fmt.Sprintf("%s of soak (%s); p99 %s; home %s → %s; work %s → %s",
				d, t.summary(), t.p99().Round(time.Millisecond), baseHome, afterHome, baseWork, afterWork))
		})

		Expect(t.problems).To(BeEmpty(), t.summary())
		Expect(t.byStatus).To(Equal(map[string]int{"200": t.sent}), "every request answered 200")
		Expect(t.sent).To(BeNumerically(">=", int(d/soakInterval)*len(users)*soakWorkers/2), "steady requests: %s", t.summary())
		Expect(t.disturbed()).To(BeNumerically(">", 0), "the restart and the cut reached the requests: %s", t.summary())
		Expect(t.p99()).To(BeNumerically("<", peerDeadline+soakMargin))

		By("waiting for each user's peer to answer again")
		peersAnswer(home, users, peers)

		By("waiting for both gateways' goroutines and descriptors to come back to baseline")
		backToBase := func(gw *world.Gateway, base gatewayLoad, after *gatewayLoad) func(Gomega) {
			return func(g Gomega) {
				*after = loadOf(gw)
				g.Expect(after.Goroutines).To(BeNumerically("<=", base.Goroutines+soakSlack), "goroutines: baseline %s", base)
				g.Expect(after.FDs).To(BeNumerically("<=", base.FDs+soakSlack), "fds: baseline %s", base)
			}
		}
		Eventually(backToBase(homeGW, baseHome, &afterHome)).WithTimeout(30*time.Second).WithPolling(time.Second).Should(Succeed(), "home's gateway")
		Eventually(backToBase(workGW, baseWork, &afterWork)).WithTimeout(30*time.Second).WithPolling(time.Second).Should(Succeed(), "work's gateway")
	}, SpecTimeout(soakTimeout()))
})
