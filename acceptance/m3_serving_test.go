package acceptance

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"net/http"
	"os"
	"strings"

	"github.com/google/uuid"
	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"

	"github.com/mosaic-federation/mosaic/harness/world"
)

// peer is an enrolled client of a site's federation listener: a fresh grant of the
// site's demo user under a scope, and an mTLS client holding its certificate.
type peer struct {
	grant  grantCreated
	client *http.Client
	site   world.SiteInfo
}

func enrolledPeer(s world.SiteInfo, scopeDoc string) peer {
	GinkgoHelper()
	g := newGrant(s, scopeDoc)
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	Expect(err).NotTo(HaveOccurred())
	der, err := x509.CreateCertificateRequest(rand.Reader, &x509.CertificateRequest{}, key)
	Expect(err).NotTo(HaveOccurred())
	status, resp, e := enrollPOST(s, tokenOf(g.EnrollmentURL), string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE REQUEST", Bytes: der})))
	Expect(status).To(Equal(http.StatusCreated), e.Error.Code)
	chain := [][]byte{parsePEMCert(resp.CertificatePEM).Raw}
	for rest := []byte(resp.ChainPEM); ; {
		var block *pem.Block
		if block, rest = pem.Decode(rest); block == nil {
			break
		}
		chain = append(chain, block.Bytes)
	}
	return peer{grant: g, site: s, client: mtlsClient(s, &tls.Certificate{Certificate: chain, PrivateKey: key})}
}

func mtlsClient(s world.SiteInfo, cert *tls.Certificate) *http.Client {
	cfg := &tls.Config{RootCAs: rootPool(s.CARoot)}
	if cert != nil {
		cfg.GetClientCertificate = func(*tls.CertificateRequestInfo) (*tls.Certificate, error) { return cert, nil }
	}
	return &http.Client{Timeout: Timeouts.Request, Transport: &http.Transport{TLSClientConfig: cfg}}
}

// call sends a federation request and decodes the answer.
func (p peer) call(method, path string, body any, out any) int {
	GinkgoHelper()
	return fedCall(p.client, p.site, method, path, body, out)
}

func fedCall(client *http.Client, s world.SiteInfo, method, path string, body any, out any) int {
	GinkgoHelper()
	var b []byte
	if body != nil {
		b, _ = json.Marshal(body)
	}
	return call(client, method, s.FederationURL+"/api/federation/v1"+path, "", bytes.NewReader(b), out)
}

type fedList struct {
	Items      []map[string]any `json:"items"`
	NextCursor string           `json:"next_cursor"`
	Truncated  bool             `json:"truncated"`
}

// listEverything pages through a resource.
func (p peer) listEverything(resource string, limit int) []map[string]any {
	GinkgoHelper()
	var all []map[string]any
	cursor := ""
	for range 500 {
		var page fedList
		Expect(p.call(http.MethodPost, "/list/"+resource, map[string]any{"limit": limit, "cursor": cursor}, &page)).To(Equal(http.StatusOK))
		all = append(all, page.Items...)
		if cursor = page.NextCursor; cursor == "" {
			return all
		}
	}
	Fail("paging did not end")
	return nil
}

// effectiveIDs asks the database for a scope's effective rows of the demo user.
func effectiveIDs(s world.SiteInfo, table string, personal bool, teams []string) []string {
	GinkgoHelper()
	conn := sqlConn(bgCtx(), s.PostgresURL)
	rows, err := conn.Query(bgCtx(), `SELECT t.id::text FROM `+table+` t, users u WHERE u.email = $1 AND (
		($2 AND t.owner_user_id = u.id AND t.team_id IS NULL) OR
		(t.team_id = ANY($3::uuid[]) AND t.team_id IN (SELECT team_id FROM team_members WHERE user_id = u.id)))`,
		s.Users[0].Email, personal, teams)
	Expect(err).NotTo(HaveOccurred())
	var ids []string
	for rows.Next() {
		var id string
		Expect(rows.Scan(&id)).To(Succeed())
		ids = append(ids, id)
	}
	return ids
}

// teamIDs returns the demo user's teams and one team they are not in.
func teamIDs(s world.SiteInfo) (mine []string, other string) {
	GinkgoHelper()
	conn := sqlConn(bgCtx(), s.PostgresURL)
	rows, err := conn.Query(bgCtx(), `SELECT m.team_id::text FROM team_members m JOIN users u ON u.id = m.user_id WHERE u.email = $1 ORDER BY 1`, s.Users[0].Email)
	Expect(err).NotTo(HaveOccurred())
	for rows.Next() {
		var id string
		Expect(rows.Scan(&id)).To(Succeed())
		mine = append(mine, id)
	}
	Expect(conn.QueryRow(bgCtx(), `SELECT id::text FROM teams WHERE id <> ALL($1::uuid[]) LIMIT 1`, mine).Scan(&other)).To(Succeed())
	return mine, other
}

func scopeJSON(resources, excluded []string, teams []string, personal bool, limit int) string {
	b, _ := json.Marshal(map[string]any{"resources": resources, "excluded_resources": excluded, "include_teams": teams,
		"include_personal": personal, "max_rows_per_query": limit})
	return string(b)
}

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
		var caps map[string]any
		Expect(p.call(http.MethodGet, "/capabilities", nil, &caps)).To(Equal(http.StatusOK))
		Expect(caps["grant_id"]).To(Equal(p.grant.GrantID))
		Expect(caps["subject_user_id"]).To(Equal(p.grant.SubjectUserID))
		Expect(caps["resources"]).To(Equal([]any{"tasks"}))
		Expect(caps["excluded_resources"]).To(Equal([]any{"notes"}))
		Expect(caps["max_rows_per_query"]).To(BeNumerically("==", 7))
		Expect(caps["supported_verbs"]).To(ContainElements("list", "get", "capabilities"))
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
		var got map[string]any
		Expect(p.call(http.MethodPost, "/get/tasks/"+personal[0], nil, &got)).To(Equal(http.StatusOK))
		Expect(got["item"]).To(HaveKeyWithValue("_source", "work"))

		teamRow := effectiveIDs(work, "tasks", false, mine)[0] // exists, visible to her natively, not in this scope
		var missing, hidden errorBody
		Expect(p.call(http.MethodPost, "/get/tasks/"+teamRow, nil, &hidden)).To(Equal(http.StatusNotFound))
		Expect(p.call(http.MethodPost, "/get/tasks/"+uuid.NewString(), nil, &missing)).To(Equal(http.StatusNotFound))
		Expect(hidden.Error.Message).To(Equal(missing.Error.Message), "existence never leaks")
		Expect(p.call(http.MethodPost, "/get/tasks/not-a-uuid", nil, nil)).To(Equal(http.StatusBadRequest))

		var e errorBody
		Expect(p.call(http.MethodPost, "/list/notes", map[string]any{}, &e)).To(Equal(http.StatusForbidden))
		Expect(e.Error.Code).To(Equal("resource_not_in_scope"))
		Expect(p.call(http.MethodPost, "/get/notes/"+uuid.NewString(), nil, nil)).To(Equal(http.StatusForbidden))
		Expect(p.call(http.MethodPost, "/list/memories", map[string]any{}, nil)).To(Equal(http.StatusForbidden))
		Expect(p.call(http.MethodPost, "/list/credentials", map[string]any{}, nil)).To(Equal(http.StatusForbidden))
		var cred string
		Expect(sqlConn(ctx, work.PostgresURL).QueryRow(ctx, `SELECT id::text FROM credentials LIMIT 1`).Scan(&cred)).To(Succeed())
		Expect(p.call(http.MethodPost, "/get/credentials/"+cred, nil, nil)).To(Equal(http.StatusForbidden))
	})

	It("[M3-7] caps any limit at max_rows_per_query, saying so, and pages on by cursor", func() {
		p := enrolledPeer(work, scopeJSON([]string{"tasks"}, nil, mine, true, 5))
		var page fedList
		Expect(p.call(http.MethodPost, "/list/tasks", map[string]any{"limit": 10000}, &page)).To(Equal(http.StatusOK))
		Expect(page.Items).To(HaveLen(5))
		Expect(page.Truncated).To(BeTrue())
		Expect(page.NextCursor).NotTo(BeEmpty())
		Expect(p.call(http.MethodPost, "/list/tasks", map[string]any{"limit": 3}, &page)).To(Equal(http.StatusOK))
		Expect(page.Items).To(HaveLen(3))
		Expect(page.Truncated).To(BeFalse())
		Expect(idsOf(p.listEverything("tasks", 1000))).To(ConsistOf(effectiveIDs(work, "tasks", true, mine)))
	})

	It("[M3-6] [M3-12] refuses without a certificate (401) on every guarded route, a revoked grant (403), and audits each refusal", func() {
		anonymous := mtlsClient(work, nil)
		routes := []struct{ method, path string }{
			{http.MethodGet, "/capabilities"}, {http.MethodPost, "/list/tasks"}, {http.MethodPost, "/get/tasks/" + uuid.NewString()},
			{http.MethodPost, "/search/tasks"}, {http.MethodPost, "/renew"}, {http.MethodGet, "/nowhere"}, {http.MethodDelete, "/list/tasks"},
			{http.MethodGet, "//capabilities"}, {http.MethodGet, "/./capabilities"}, {http.MethodGet, "/capabilities/"},
		}
		for _, rt := range routes {
			var e errorBody
			Expect(fedCall(anonymous, work, rt.method, rt.path, nil, &e)).To(Equal(http.StatusUnauthorized), rt.method+" "+rt.path)
			Expect(e.Error.Code).To(Equal("client_certificate_required"))
		}

		p := enrolledPeer(work, fullScope)
		Expect(p.call(http.MethodGet, "/capabilities", nil, nil)).To(Equal(http.StatusOK))
		cliJSON(work, &map[string]any{}, "federation", "grant", "revoke", p.grant.GrantID, "--reason", "spec")
		var e errorBody
		Expect(p.call(http.MethodPost, "/list/tasks", map[string]any{}, &e)).To(Equal(http.StatusForbidden), "revocation applies to the next request")
		Expect(e.Error.Code).To(Equal("grant_revoked"))

		entries := auditOf(work)
		Expect(entries).To(ContainElement(HaveField("Reason", "client_certificate_required")))
		Expect(entries).To(ContainElement(And(HaveField("GrantID", p.grant.GrantID), HaveField("Reason", "grant_revoked"), HaveField("Outcome", "denied"))))
		Expect(entries).To(ContainElement(And(HaveField("GrantID", p.grant.GrantID), HaveField("Outcome", "allowed"))))
	})

	It("[M3-6] refuses (401) a certificate of the site's own CA that carries no federation identity", func() {
		key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		Expect(err).NotTo(HaveOccurred())
		der, err := x509.CreateCertificateRequest(rand.Reader, &x509.CertificateRequest{}, key)
		Expect(err).NotTo(HaveOccurred())
		csr := string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE REQUEST", Bytes: der}))
		token := mintTokenWith(work, world.BrokenProvisioner, map[string]any{"grant_id": uuid.NewString(), "subject_user_id": uuid.NewString()})
		status, cert, msg := sign(work, map[string]any{"csr": csr, "ott": token})
		Expect(status).To(Equal(http.StatusCreated), msg)
		chain := [][]byte{cert.Raw, intermediateOf(work)}
		client := mtlsClient(work, &tls.Certificate{Certificate: chain, PrivateKey: key})
		var e errorBody
		Expect(fedCall(client, work, http.MethodGet, "/capabilities", nil, &e)).To(Equal(http.StatusUnauthorized))
		Expect(e.Error.Code).To(Or(Equal("wrong_provisioner"), Equal("identity_missing")))
	})
})

// intermediateOf returns a site's intermediate certificate (DER).
func intermediateOf(s world.SiteInfo) []byte {
	GinkgoHelper()
	b, err := os.ReadFile(strings.Replace(s.CARoot, "root_ca.crt", "intermediate_ca.crt", 1))
	Expect(err).NotTo(HaveOccurred())
	block, _ := pem.Decode(b)
	Expect(block).NotTo(BeNil())
	return block.Bytes
}
