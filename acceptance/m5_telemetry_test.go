package acceptance

import (
	"crypto/rand"
	"fmt"
	"math/big"
	"net/http"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	dto "github.com/prometheus/client_model/go"

	"github.com/mosaic-federation/mosaic/gateway/api"
	"github.com/mosaic-federation/mosaic/harness/world"
)

var _ = Describe("M5 telemetry (SPEC §6c)", func() {
	It("[M5-7] one trace id spans home's request and work's guard, scope and query spans, received over OTLP/HTTP", func() {
		home, work := site("home"), site("work")
		recv := newOTLPReceiver()
		telemetry := map[string]any{"telemetry": map[string]any{"otlp_endpoint": recv.URL}}

		By("a work gateway and a home gateway of the spec's own, each exporting to the receiver")
		workFed, workCfg, _ := ownGateway(telemetry)
		workX := work
		workX.Config = workCfg
		homeAPI := ownHomeGateway(telemetry) // home's database: it sees the peer added below

		// home's users[3], whose peers specs come and go (M2-6, M6-5): other specs count
		// the demo user's sources, and this peer would be one more while it lasts.
		owner := home.Users[3]
		By("a user of home's enrolling at that work gateway, through the CLI")
		name := uniqueName("traced")
		cliJSON(workX, &api.Peer{}, "federation", "peer", "create", "--name", name)
		var g api.GrantCreated
		cliJSON(workX, &g, "federation", "grant", "create", "--peer", name, "--subject-user", work.Users[0].Email,
			"--scope", scopeFile(fullScope))
		Expect(g.EnrollmentURL).To(HavePrefix(workFed))
		add := cliStdin(home, g.EnrollmentURL, "federation", "peer", "add", "-", "--name", name,
			"--local-user", owner.Email, "--json")
		Expect(add.ExitCode()).To(Equal(0), string(add.Err.Contents()))
		// The peer outlives this spec's gateways in home's database: removed after it,
		// so the owner's source=all in other specs never reaches a stopped gateway.
		DeferCleanup(func() {
			cliJSON(home, &api.Peer{}, "federation", "peer", "remove", name, "--local-user", owner.Email)
		})

		By("one request through home to that peer, in a trace the caller chose")
		traceparent, trace := inTrace()
		var l api.ListOf[map[string]any]
		Expect(call(http.MethodGet, homeAPI+"/api/v1/tasks?source=federated:"+name+"&limit=2", &l,
			bearer(owner.Token), traceparent)).To(Equal(http.StatusOK))
		Expect(l.Items).NotTo(BeEmpty(), "work's rows came through")

		By("the receiver holding home's spans and work's stage spans, all in that trace")
		want := []string{"home/api", "home/peer list", "work/federation", "work/guard", "work/rate_limit", "work/scope",
			"work/query", "work/audit"}
		Eventually(func() []string {
			var got []string
			for _, s := range recv.of(trace) {
				got = append(got, s.site+"/"+s.name)
			}
			return got
		}).WithTimeout(15 * time.Second).WithPolling(200 * time.Millisecond).Should(ContainElements(want))

		By("work's request span being the child of home's peer call")
		spans := recv.of(trace)
		byName := map[string]span{}
		for _, s := range spans {
			byName[s.site+"/"+s.name] = s
		}
		Expect(byName["work/federation"].parent).To(Equal(byName["home/peer list"].id))
		Expect(byName["home/peer list"].parent).To(Equal(byName["home/api"].id))
		for _, stage := range []string{"guard", "rate_limit", "scope", "query", "audit"} {
			Expect(byName["work/"+stage].parent).To(Equal(byName["work/federation"].id), stage)
		}
	})

	It("[M5-8] per-peer and per-grant metrics are on listen.metrics only, and every label value is from a fixed set", func() {
		home, work := site("home"), site("work")
		ada := home.Users[0].Token

		By("a federated list through home, so home has per-peer series and work per-grant ones")
		var l api.ListOf[map[string]any]
		Expect(call(http.MethodGet, home.APIURL+"/api/v1/tasks?source=federated:work&limit=2", &l, bearer(ada))).To(Equal(http.StatusOK))
		Expect(l.Partial).To(BeFalse())
		Expect(l.Items).NotTo(BeEmpty())
		homeM, workM := scrape(metricsURL(home)), scrape(metricsURL(work))
		Expect(homeM).To(HaveKey("mosaic_peer_call_duration_seconds"))
		Expect(homeM).To(HaveKey("mosaic_certificate_expiry_seconds"))
		Expect(workM).To(HaveKey("mosaic_grant_requests_total"))
		Expect(workM).To(HaveKey("mosaic_grant_rows_served_total"))
		Expect(labelValues(homeM["mosaic_peer_call_duration_seconds"], "peer")).To(ContainElement("work"))
		Expect(labelValues(workM["mosaic_certificate_expiry_seconds"], "certificate")).To(ContainElement("listener"))

		By("no /metrics on either API listener")
		for _, s := range []world.SiteInfo{home, work} {
			var b []byte
			Expect(call(http.MethodGet, s.APIURL+"/metrics", &b, bearer(ada))).To(Equal(http.StatusNotFound))
			Expect(string(b)).NotTo(ContainSubstring("mosaic_"))
		}

		By("10,000 requests to random paths with random methods, 16 at a time")
		p := enrolledAs(work, newGrant(work, fullScope))
		const marker = "zq7"
		var sent, failed atomic.Int64
		jobs := make(chan int)
		var wg sync.WaitGroup
		for range 16 {
			wg.Add(1)
			go func() {
				defer GinkgoRecover()
				defer wg.Done()
				for i := range jobs {
					method, path := randomMethod(), randomPath(marker)
					var err error
					var resp *http.Response
					if i%3 == 0 { // a third to work's federation listener, as an enrolled peer
						resp, err = send(method, work.FederationURL+"/api/federation/v1"+path, via(p.client))
					} else {
						resp, err = send(method, home.APIURL+path, bearer(ada))
					}
					if err != nil {
						failed.Add(1)
						continue
					}
					_ = resp.Body.Close()
					sent.Add(1)
				}
			}()
		}
		deadline := time.After(3 * time.Minute)
	feed:
		for i := range 10_000 {
			select {
			case jobs <- i:
			case <-deadline:
				break feed
			}
		}
		close(jobs)
		wg.Wait()
		Expect(sent.Load()).To(BeNumerically(">=", 9_900), "requests answered (%d failed)", failed.Load())

		By("every label value of every mosaic_ series being in its fixed set")
		// Scraped first, the fixed sets collected after: specs running beside this one
		// add peers and grants.
		scraped := map[string]map[string]*dtoFamilies{"home": families(scrape(metricsURL(home))),
			"work": families(scrape(metricsURL(work)))}
		var grants []api.Grant
		cliJSON(work, &grants, "federation", "grant", "list")
		grantIDs := []string{}
		for _, g := range grants {
			grantIDs = append(grantIDs, g.ID)
		}
		// Configured peer names: those home has now, and those it called before
		// (removed since by other specs; their outbound audit rows name them).
		var peers []api.Peer
		cliJSON(home, &peers, "federation", "peer", "list")
		peerNames := queryIDs(bgCtx(), sqlConn(bgCtx(), home.PostgresURL),
			`SELECT DISTINCT peer FROM federation_audit_log WHERE direction = 'outbound'`)
		for _, p := range peers {
			peerNames = append(peerNames, p.Name)
		}

		for site, fams := range scraped {
			n := 0
			for name, fam := range fams {
				for _, labels := range fam.series {
					n++
					for k, v := range labels {
						Expect(v).NotTo(ContainSubstring(marker), "%s %s{%s}: a raw path", site, name, k)
						Expect(allowedLabel(k, v, peerNames, grantIDs)).To(BeTrue(), "%s %s{%s=%q}", site, name, k, v)
					}
				}
			}
			Expect(n).To(BeNumerically("<", 2000), "%s: the series stay bounded", site)
		}
	})
})

// routeTemplate is a mux route template of the gateway (no user input in it).
var routeTemplate = regexp.MustCompile(`^/(healthz|readyz|api/v1(/[a-z_/{}:|.*\-\[\]0-9]*)?|api/federation/v1/[a-z_/{}:|.*\-\[\]0-9]+)$`)

// allowedLabel says whether a label value is one of its label's fixed set.
func allowedLabel(k, v string, peers, grants []string) bool {
	switch k {
	case "listener":
		return v == "api" || v == "federation"
	case "route":
		return v == "unmatched" || routeTemplate.MatchString(v)
	case "method":
		return v == "other" || slices.Contains([]string{"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "CONNECT", "OPTIONS", "TRACE"}, v)
	case "code":
		if n, err := strconv.Atoi(v); err == nil {
			return n >= 100 && n <= 599
		}
		return v == "other" || slices.Contains(api.ReasonCodes, v)
	case "outcome":
		return v == api.OutcomeAllowed || v == api.OutcomeDenied || v == api.OutcomeFailed || v == "other"
	case "verb":
		return slices.Contains([]string{"list", "get", "search", "capabilities", "other"}, v)
	case "peer":
		return v == "" || slices.Contains(peers, v)
	case "grant":
		return slices.Contains(grants, v)
	case "certificate":
		return v == "listener" || v == "peer"
	case "le": // histogram buckets
		return true
	}
	return false
}

// dtoFamilies is a metric family's series as label maps.
type dtoFamilies struct{ series []map[string]string }

// families keeps the gateway's own (mosaic_) families, as label maps.
func families(fams map[string]*dto.MetricFamily) map[string]*dtoFamilies {
	out := map[string]*dtoFamilies{}
	for name, f := range fams {
		if !strings.HasPrefix(name, "mosaic_") {
			continue
		}
		d := &dtoFamilies{}
		for _, m := range f.GetMetric() {
			labels := map[string]string{}
			for _, l := range m.GetLabel() {
				labels[l.GetName()] = l.GetValue()
			}
			d.series = append(d.series, labels)
		}
		out[name] = d
	}
	return out
}

// labelValues is every value a family's series have for one label.
func labelValues(f *dto.MetricFamily, label string) []string {
	var out []string
	for _, m := range f.GetMetric() {
		for _, l := range m.GetLabel() {
			if l.GetName() == label {
				out = append(out, l.GetValue())
			}
		}
	}
	return out
}

func randomInt(n int) int {
	v, _ := rand.Int(rand.Reader, big.NewInt(int64(n)))
	return int(v.Int64())
}

// randomMethod is a method HTTP defines, or one it does not.
func randomMethod() string {
	methods := []string{http.MethodGet, http.MethodPost, http.MethodPut, http.MethodDelete, http.MethodPatch, http.MethodOptions}
	if randomInt(5) == 0 {
		return "ZQ7" + strconv.Itoa(randomInt(1_000_000))
	}
	return methods[randomInt(len(methods))]
}

// randomPath is a path of one to four segments, some close to real routes, each
// random part carrying marker, with a random query.
func randomPath(marker string) string {
	seg := func() string { return marker + fmt.Sprintf("%x", randomBytes(4)) }
	var p string
	switch randomInt(5) {
	case 0:
		p = "/api/v1/" + seg()
	case 1:
		p = "/api/v1/tasks/" + seg()
	case 2:
		p = "/list/" + seg()
	case 3:
		p = "/get/tasks/" + seg()
	default:
		p = "/" + seg()
		for range randomInt(3) {
			p += "/" + seg()
		}
	}
	return p + "?source=federated:" + seg() + "&" + seg() + "=" + seg()
}
