package acceptance

import (
	"crypto/x509"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"

	"github.com/mosaic-federation/mosaic/gateway/api"
)

// goWords are what a message written from Go's errors would show a client.
var goWords = []string{"Go ", "struct", "int", "api.", "json:", "unmarshal"}

// expectOurWords checks an error message names a field and speaks no Go.
func expectOurWords(e api.ErrorBody, names string) {
	GinkgoHelper()
	Expect(e.Error.Message).To(ContainSubstring(names))
	for _, w := range goWords {
		Expect(e.Error.Message).NotTo(ContainSubstring(w))
	}
}

var _ = Describe("Bad input at the edges", Label("security"), func() {
	It("[EDGE-1] records an attacker-sized method as other, in an audit row of bounded size", func() {
		work := site("work")
		method := strings.Repeat("A", 60000)
		// From an address of its own (fresh each run): refusals without a certificate share one row per
		// address and minute, and other specs refuse from 127.0.0.1.
		resp, err := send(method, work.FederationURL+"/api/federation/v1/list/tasks", via(from(mtlsClient(work, nil), freshSource("work", "127.1"))))
		Expect(err).NotTo(HaveOccurred())
		_, _ = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		Expect(resp.StatusCode).To(Equal(http.StatusUnauthorized))
		rid := resp.Header.Get("X-Request-Id")
		Expect(rid).NotTo(BeEmpty())
		var row *api.AuditEntry
		for _, e := range auditOf(work) {
			if e.RequestID == rid {
				row = &e
			}
		}
		Expect(row).NotTo(BeNil(), "the refusal has its audit row")
		Expect(row.Action).To(HavePrefix("other "))
		Expect(len(row.Action) + len(row.Detail) + len(row.Actor)).To(BeNumerically("<", 1024))
	})

	It("[EDGE-2] answers a fractional limit and a non-object body with 400 naming the field, in our words", func() {
		p := enrolledPeer(site("work"), fullScope)
		var e api.ErrorBody
		Expect(call(http.MethodPost, p.site.FederationURL+"/api/federation/v1/list/tasks", &e, via(p.client),
			rawBody(strings.NewReader(`{"limit": 1.5}`)))).To(Equal(http.StatusBadRequest))
		Expect(e.Error.Code).To(Equal(api.CodeInvalidBody))
		expectOurWords(e, "/limit")

		e = api.ErrorBody{}
		Expect(call(http.MethodPost, p.site.FederationURL+"/api/federation/v1/list/tasks", &e, via(p.client),
			rawBody(strings.NewReader(`[]`)))).To(Equal(http.StatusBadRequest))
		expectOurWords(e, "JSON object")

		home := site("home")
		for body, names := range map[string]string{`[]`: "JSON object", `{"title": 1.5}`: "/title"} {
			e = api.ErrorBody{}
			Expect(call(http.MethodPost, home.APIURL+"/api/v1/tasks", &e, bearer(home.Users[0].Token),
				rawBody(strings.NewReader(body)))).To(Equal(http.StatusBadRequest), body)
			Expect(e.Error.Code).To(Equal(api.CodeInvalidBody))
			expectOurWords(e, names)
		}
	})

	It("[EDGE-3] refuses an enrollment body that names its token twice, and leaves the token unspent", func() {
		work := site("work")
		g := newGrant(work, fullScope)
		token := tokenOf(g.EnrollmentURL)
		_, csr := keyAndCSR(&x509.CertificateRequest{})
		twice := `{"token": "met_not_the_token", "csr_pem": ` + quote(csr) + `, "token": ` + quote(token) + `}`
		var e api.ErrorBody
		Expect(call(http.MethodPost, work.FederationURL+"/api/federation/v1/enroll", &e, via(mtlsClient(work, nil)),
			rawBody(strings.NewReader(twice)))).To(Equal(http.StatusBadRequest))
		Expect(e.Error.Code).To(Equal(api.CodeInvalidBody))
		expectOurWords(e, "/token")

		status, _, bad := enroll(work, token, csr)
		Expect(status).To(Equal(http.StatusCreated), "the token is still good: %s", bad.Error.Code)
	})

	It("[EDGE-4] refuses a filter status not of the list with 400 at work's listener, as home's API does", func() {
		p := enrolledPeer(site("work"), fullScope)
		var e api.ErrorBody
		Expect(p.call(http.MethodPost, "/list/tasks", api.FedListRequest{Filter: api.Filter{Status: "DONE"}}, &e)).
			To(Equal(http.StatusBadRequest))
		Expect(e.Error.Code).To(Equal(api.CodeInvalidStatus))

		home := site("home")
		var he api.ErrorBody
		Expect(call(http.MethodGet, home.APIURL+"/api/v1/tasks?status=DONE", &he, bearer(home.Users[0].Token))).
			To(Equal(http.StatusBadRequest))
		Expect(he.Error.Code).To(Equal(e.Error.Code))
	})

	It("[EDGE-5] answers a known route's wrong method with 405 and Allow behind the guard, 401 before it", func() {
		work := site("work")
		url := work.FederationURL + "/api/federation/v1/list/tasks"
		Expect(call(http.MethodGet, url, nil, via(mtlsClient(work, nil)))).To(Equal(http.StatusUnauthorized))

		p := enrolledPeer(work, fullScope)
		resp, err := send(http.MethodGet, url, via(p.client))
		Expect(err).NotTo(HaveOccurred())
		defer resp.Body.Close()
		Expect(resp.StatusCode).To(Equal(http.StatusMethodNotAllowed))
		Expect(resp.Header.Get("Allow")).To(Equal(http.MethodPost))
	})
})

var _ = Describe("Floods against the federation listener", func() {
	It("[EDGE-6] holds an over-limit address's refusals until it may send again, so a flood runs at its allowed rate", func(ctx SpecContext) {
		fed, _, _ := ownGateway(map[string]any{"federation": map[string]any{"rate_limit": map[string]any{
			"per_grant": "20/s", "burst": 40, "per_address": "10/s"}}}) // refusal_hold: the default 1s
		work := site("work")
		flooder := from(mtlsClient(work, nil), fmt.Sprintf("127.2.%d.%d", randomBytes(1)[0], 1+randomBytes(1)[0]%250))

		By("sending as fast as one connection can for two seconds, never waiting for Retry-After")
		answered, limited := 0, 0
		for end := time.Now().Add(2 * time.Second); time.Now().Before(end); {
			resp, err := send(http.MethodGet, fed+"/api/federation/v1/capabilities", via(flooder))
			Expect(err).NotTo(HaveOccurred())
			_, _ = io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			answered++
			if resp.StatusCode == http.StatusTooManyRequests {
				limited++
				Expect(resp.Header.Get("Retry-After")).NotTo(BeEmpty())
			}
		}
		// Allowed (401s): a burst of 10 and 10/s for 2 s; refused (429s): each held
		// until the next would be allowed, about 100 ms, so about 20. Unheld, one
		// connection gets hundreds of answers a second.
		Expect(answered).To(BeNumerically("<=", 60), "refusals are held until the address may send again")
		Expect(limited).To(BeNumerically(">", 0))

		By("another address is answered at once meanwhile")
		other := from(mtlsClient(work, nil), fmt.Sprintf("127.3.%d.%d", randomBytes(1)[0], 1+randomBytes(1)[0]%250))
		start := time.Now()
		Expect(call(http.MethodGet, fed+"/api/federation/v1/ca/root", nil, via(other))).To(Equal(http.StatusOK))
		Expect(time.Since(start)).To(BeNumerically("<", time.Second))
	}, SpecTimeout(2*Timeouts.Boot))
})

// quote is s as a JSON string.
func quote(s string) string {
	b, _ := json.Marshal(s)
	return string(b)
}
