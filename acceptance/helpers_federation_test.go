package acceptance

import (
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"path/filepath"

	"github.com/google/uuid"
	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"

	"github.com/mosaic-federation/mosaic/gateway/api"
	"github.com/mosaic-federation/mosaic/harness/world"
)

const fullScope = `{"resources": ["tasks", "notes", "memories"], "include_personal": true, "max_rows_per_query": 50}`

// scopeJSON is a grant's scope document.
func scopeJSON(resources, excluded []string, teams []string, personal bool, limit int) string {
	b, _ := json.Marshal(api.Scope{Resources: resources, ExcludedResources: excluded, IncludeTeams: teams,
		IncludePersonal: personal, MaxRowsPerQuery: limit})
	return string(b)
}

// scopeFile writes a scope document into a file of the spec's own.
func scopeFile(doc string) string {
	GinkgoHelper()
	path := filepath.Join(GinkgoT().TempDir(), "scope.json")
	Expect(os.WriteFile(path, []byte(doc), 0o600)).To(Succeed())
	return path
}

// uniqueName is a peer name no other spec or process uses.
func uniqueName(prefix string) string {
	return fmt.Sprintf("%s-%d-%s", prefix, GinkgoParallelProcess(), uuid.NewString()[:8])
}

// newGrant registers a fresh inbound peer at a site and grants it the site's demo user.
func newGrant(s world.SiteInfo, scopeDoc string) api.GrantCreated {
	GinkgoHelper()
	peer := uniqueName("peer")
	var p api.Peer
	cliJSON(s, &p, "federation", "peer", "create", "--name", peer)
	Expect(p.State).To(Equal("pending"))
	var g api.GrantCreated
	cliJSON(s, &g, "federation", "grant", "create", "--peer", peer, "--subject-user", s.Users[0].Email, "--scope", scopeFile(scopeDoc))
	return g
}

// tokenOf reads the token from an enrollment URL's fragment.
func tokenOf(enrollmentURL string) string {
	GinkgoHelper()
	u, err := url.Parse(enrollmentURL)
	Expect(err).NotTo(HaveOccurred())
	q, err := url.ParseQuery(u.Fragment)
	Expect(err).NotTo(HaveOccurred())
	return q.Get("token")
}

// enroll redeems a token with a CSR on a verified connection to the site, and returns
// the status with whichever answer came: the certificate (201) or an error.
func enroll(s world.SiteInfo, token, csr string) (int, api.EnrollResponse, api.ErrorBody) {
	GinkgoHelper()
	var answer struct {
		api.EnrollResponse
		api.ErrorBody
	}
	status := call(http.MethodPost, s.FederationURL+"/api/federation/v1/enroll", &answer,
		via(mtlsClient(s, nil)), jsonBody(api.EnrollRequest{Token: token, CSRPEM: csr}))
	return status, answer.EnrollResponse, answer.ErrorBody
}

// peer is an enrolled client of a site's federation listener: a fresh grant of the
// site's demo user under a scope, and an mTLS client holding its certificate.
type peer struct {
	grant  api.GrantCreated
	client *http.Client
	site   world.SiteInfo
	cert   tls.Certificate // the enrolled certificate and its key
}

func enrolledPeer(s world.SiteInfo, scopeDoc string) peer {
	GinkgoHelper()
	return enrolledAs(s, newGrant(s, scopeDoc))
}

// enrolledAs enrolls for a grant already made.
func enrolledAs(s world.SiteInfo, g api.GrantCreated) peer {
	GinkgoHelper()
	key, csr := keyAndCSR(&x509.CertificateRequest{})
	status, resp, e := enroll(s, tokenOf(g.EnrollmentURL), csr)
	Expect(status).To(Equal(http.StatusCreated), e.Error.Code)
	leaf := parsePEMCert(resp.CertificatePEM)
	cert := tls.Certificate{Certificate: append([][]byte{leaf.Raw}, pemChain(resp.ChainPEM)...), PrivateKey: key, Leaf: leaf}
	return peer{grant: g, site: s, client: mtlsClient(s, &cert), cert: cert}
}

// serial is the peer's certificate's serial number (decimal, as step-ca names it).
func (p peer) serial() string { return p.cert.Leaf.SerialNumber.String() }

// call sends a federation request as the peer and decodes the answer.
func (p peer) call(method, path string, body any, out any) int {
	GinkgoHelper()
	return fedCall(p.client, p.site, method, path, body, out)
}

// fedCall sends a request to a site's federation API on client, with body as JSON
// (none when nil), and decodes the answer into out.
func fedCall(client *http.Client, s world.SiteInfo, method, path string, body any, out any) int {
	GinkgoHelper()
	return call(method, s.FederationURL+"/api/federation/v1"+path, out, via(client), jsonBody(body))
}

// fedList is a federation list answer with its items as objects.
type fedList = api.FedListOf[map[string]any]

// listEverything pages through a resource.
func (p peer) listEverything(resource string, limit int) []map[string]any {
	GinkgoHelper()
	var all []map[string]any
	cursor := ""
	for range 500 {
		var page fedList
		Expect(p.call(http.MethodPost, "/list/"+resource, api.FedListRequest{Limit: limit, Cursor: cursor}, &page)).To(Equal(http.StatusOK))
		all = append(all, page.Items...)
		if cursor = page.NextCursor; cursor == "" {
			return all
		}
	}
	Fail("paging did not end")
	return nil
}

// auditOf is a site's federation audit log, its newest 5,000 rows: with five Ginkgo
// processes writing, a thousand rows can be seconds old.
func auditOf(s world.SiteInfo) []api.AuditEntry {
	GinkgoHelper()
	var entries []api.AuditEntry
	cliJSON(s, &entries, "federation", "audit", "list", "--limit", "5000")
	return entries
}

// auditOfGrant is a site's audit rows of one grant (audit list --grant), read on the
// server: a spec's own rows, however many other specs wrote since.
func auditOfGrant(s world.SiteInfo, grantID string) []api.AuditEntry {
	GinkgoHelper()
	return auditRows(s.Config, "--grant", grantID)
}
