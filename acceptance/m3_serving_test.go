package acceptance

import (
	"crypto/tls"
	"crypto/x509"
	"io"
	"net/http"

	"github.com/google/uuid"
	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"

	"github.com/mosaic-federation/mosaic/gateway/api"
	"github.com/mosaic-federation/mosaic/harness/world"
)

var _ = Describe("Serving a peer over mTLS", Label("M3", "security"), func() {
	var work world.SiteInfo
	var mine []string
	var notMine string
	BeforeEach(func() {
		work = site("work")
		mine, notMine = teamIDs(work)
	})

	It("[M3-1] capabilities mirror the scope", func() {
		p := enrolledPeer(work, scopeJSON([]string{"tasks", "notes"}, []string{"notes"}, mine[:1], true, 7))
		var caps api.Capabilities
		Expect(p.call(http.MethodGet, "/capabilities", nil, &caps)).To(Equal(http.StatusOK))
		Expect(caps.GrantID).To(Equal(p.grant.GrantID))
		Expect(caps.SubjectUserID).To(Equal(p.grant.SubjectUserID))
		Expect(caps.Resources).To(Equal([]string{"tasks"}))
		Expect(caps.ExcludedResources).To(Equal([]string{"notes"}))
		Expect(caps.MaxRowsPerQuery).To(BeNumerically("==", 7))
		Expect(caps.SupportedVerbs).To(ContainElements("list", "get", "capabilities"))
	})

	DescribeTable("[M3-2] [M3-5] [M3-10] list returns exactly the scope's effective rows, tagged _source",
		func(personal bool, teams func() []string) {
			ts := teams()
			p := enrolledPeer(work, scopeJSON([]string{"tasks", "notes", "memories"}, nil, ts, personal, 100))
			for _, r := range []string{"tasks", "notes", "memories"} {
				items := p.listEverything(r, 9)
				Expect(idsOf(items)).To(ConsistOf(effectiveIDs(work, r, personal, ts)), r)
				for _, it := range items {
					Expect(it["_source"]).To(Equal("work"))
				}
			}
		},
		Entry("personal and all her teams", true, func() []string { return mine }),
		Entry("personal only (no teams)", true, func() []string { return []string{} }),
		Entry("one team, no personal rows", false, func() []string { return mine[:1] }),
		Entry("a team she is not in yields nothing from it", false, func() []string { return []string{notMine} }),
	)

	It("[M3-3] [M3-4] [M3-11] get: 200 in scope, 404 outside it whether or not the row exists, 403 for a resource outside the scope or credentials", func(ctx SpecContext) {
		p := enrolledPeer(work, scopeJSON([]string{"tasks", "notes"}, []string{"notes"}, nil, true, 50))
		personal := effectiveIDs(work, "tasks", true, nil)
		Expect(personal).NotTo(BeEmpty())
		var got api.ItemResponse
		Expect(p.call(http.MethodPost, "/get/tasks/"+personal[0], nil, &got)).To(Equal(http.StatusOK))
		Expect(got.Item).To(HaveKeyWithValue("_source", "work"))

		teamRow := effectiveIDs(work, "tasks", false, mine)[0] // exists, visible to her natively, not in this scope
		var missing, hidden api.ErrorBody
		Expect(p.call(http.MethodPost, "/get/tasks/"+teamRow, nil, &hidden)).To(Equal(http.StatusNotFound))
		Expect(p.call(http.MethodPost, "/get/tasks/"+uuid.NewString(), nil, &missing)).To(Equal(http.StatusNotFound))
		Expect(hidden.Error.Message).To(Equal(missing.Error.Message), "existence never leaks")
		Expect(p.call(http.MethodPost, "/get/tasks/not-a-uuid", nil, nil)).To(Equal(http.StatusBadRequest))

		var e api.ErrorBody
		Expect(p.call(http.MethodPost, "/list/notes", api.FedListRequest{}, &e)).To(Equal(http.StatusForbidden))
		Expect(e.Error.Code).To(Equal(api.CodeResourceNotInScope))
		Expect(p.call(http.MethodPost, "/get/notes/"+uuid.NewString(), nil, nil)).To(Equal(http.StatusForbidden))
		Expect(p.call(http.MethodPost, "/list/memories", api.FedListRequest{}, nil)).To(Equal(http.StatusForbidden))
		Expect(p.call(http.MethodPost, "/list/credentials", api.FedListRequest{}, nil)).To(Equal(http.StatusForbidden))
		var cred string
		Expect(sqlConn(ctx, work.PostgresURL).QueryRow(ctx, `SELECT id::text FROM credentials LIMIT 1`).Scan(&cred)).To(Succeed())
		Expect(p.call(http.MethodPost, "/get/credentials/"+cred, nil, nil)).To(Equal(http.StatusForbidden))
	})

	It("[M3-7] caps any limit at max_rows_per_query, saying so, and pages on by cursor", func() {
		p := enrolledPeer(work, scopeJSON([]string{"tasks"}, nil, mine, true, 5))
		var page fedList
		Expect(p.call(http.MethodPost, "/list/tasks", api.FedListRequest{Limit: 10000}, &page)).To(Equal(http.StatusOK))
		Expect(page.Items).To(HaveLen(5))
		Expect(page.Truncated).To(BeTrue())
		Expect(page.NextCursor).NotTo(BeEmpty())
		Expect(p.call(http.MethodPost, "/list/tasks", api.FedListRequest{Limit: 3}, &page)).To(Equal(http.StatusOK))
		Expect(page.Items).To(HaveLen(3))
		Expect(page.Truncated).To(BeFalse())
		Expect(idsOf(p.listEverything("tasks", 1000))).To(ConsistOf(effectiveIDs(work, "tasks", true, mine)))
	})

	It("[M3-6] [M3-12] refuses without a certificate (401) on every guarded route, a revoked grant (403), and audits each refusal", func() {
		// From an address of its own: refusals without a certificate share one audit row
		// per address and minute (the first, written at once), and other specs refuse
		// from 127.0.0.1, whose row may be far past the newest thousand by now.
		anonymous := from(mtlsClient(work, nil), freshSource("work", "127.2"))
		resp, err := send(http.MethodGet, work.FederationURL+"/api/federation/v1/capabilities", via(anonymous))
		Expect(err).NotTo(HaveOccurred())
		_, _ = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		Expect(resp.StatusCode).To(Equal(http.StatusUnauthorized))
		firstRefusal := resp.Header.Get("X-Request-Id")
		routes := []struct{ method, path string }{
			{http.MethodGet, "/capabilities"}, {http.MethodPost, "/list/tasks"}, {http.MethodPost, "/get/tasks/" + uuid.NewString()},
			{http.MethodPost, "/search/tasks"}, {http.MethodPost, "/renew"}, {http.MethodGet, "/nowhere"}, {http.MethodDelete, "/list/tasks"},
			{http.MethodGet, "//capabilities"}, {http.MethodGet, "/./capabilities"}, {http.MethodGet, "/capabilities/"},
		}
		for _, rt := range routes {
			var e api.ErrorBody
			Expect(fedCall(anonymous, work, rt.method, rt.path, nil, &e)).To(Equal(http.StatusUnauthorized), rt.method+" "+rt.path)
			Expect(e.Error.Code).To(Equal(api.CodeClientCertificateRequired))
		}

		p := enrolledPeer(work, fullScope)
		Expect(p.call(http.MethodGet, "/capabilities", nil, nil)).To(Equal(http.StatusOK))
		cliJSON(work, &api.Grant{}, "federation", "grant", "revoke", p.grant.GrantID, "--reason", "spec")
		var e api.ErrorBody
		Expect(p.call(http.MethodPost, "/list/tasks", api.FedListRequest{}, &e)).To(Equal(http.StatusForbidden), "revocation applies to the next request")
		Expect(e.Error.Code).To(Equal(api.CodeGrantRevoked))

		entries := auditOf(work)
		Expect(entries).To(ContainElement(And(HaveField("RequestID", firstRefusal), HaveField("Reason", api.CodeClientCertificateRequired))))
		Expect(entries).To(ContainElement(And(HaveField("GrantID", p.grant.GrantID), HaveField("Reason", api.CodeGrantRevoked), HaveField("Outcome", api.OutcomeDenied))))
		Expect(entries).To(ContainElement(And(HaveField("GrantID", p.grant.GrantID), HaveField("Outcome", api.OutcomeAllowed))))
	})

	It("[M3-6] refuses (401) a certificate of the site's own CA that carries no federation identity", func() {
		key, csr := keyAndCSR(&x509.CertificateRequest{})
		token := mintTokenWith(work, world.BrokenProvisioner, map[string]any{"grant_id": uuid.NewString(), "subject_user_id": uuid.NewString()})
		status, cert, msg := sign(work, map[string]any{"csr": csr, "ott": token})
		Expect(status).To(Equal(http.StatusCreated), msg)
		chain := [][]byte{cert.Raw, intermediateOf(work)}
		client := mtlsClient(work, &tls.Certificate{Certificate: chain, PrivateKey: key})
		var e api.ErrorBody
		Expect(fedCall(client, work, http.MethodGet, "/capabilities", nil, &e)).To(Equal(http.StatusUnauthorized))
		Expect(e.Error.Code).To(Or(Equal(api.CodeWrongProvisioner), Equal(api.CodeIdentityMissing)))
	})
})
