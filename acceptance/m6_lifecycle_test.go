package acceptance

import (
	"crypto/x509"
	"crypto/x509/pkix"
	"net/http"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"

	"github.com/mosaic-federation/mosaic/gateway/api"
	"github.com/mosaic-federation/mosaic/harness/world"
)

var _ = Describe("Certificate lifecycle", Label("M6", "security"), func() {
	var work world.SiteInfo
	BeforeEach(func() { work = site("work") })

	It("[M6-1] grant revoke: the next request is 403 and the serial is in step-ca's CRL within 2 s", func() {
		p := enrolledPeer(work, fullScope)
		Expect(p.call(http.MethodGet, "/capabilities", nil, nil)).To(Equal(http.StatusOK))
		Expect(crlSerials(work)).NotTo(ContainElement(p.serial()))

		cliJSON(work, &api.Grant{}, "federation", "grant", "revoke", p.grant.GrantID, "--reason", "left the company")
		var e api.ErrorBody
		Expect(p.call(http.MethodGet, "/capabilities", nil, &e)).To(Equal(http.StatusForbidden))
		Expect(e.Error.Code).To(Equal(api.CodeGrantRevoked))
		Eventually(crlSerials).WithArguments(work).WithTimeout(2 * time.Second).WithPolling(100 * time.Millisecond).
			Should(ContainElement(p.serial()))
	})

	It("[M6-1] a serial revoked at step-ca directly is refused in the TLS handshake while its grant reads active", func() {
		p := enrolledPeer(work, fullScope)
		// A kept-alive connection, opened before the revocation.
		Expect(p.call(http.MethodGet, "/capabilities", nil, nil)).To(Equal(http.StatusOK))

		revokeAtCA(work, p.serial())
		var g api.Grant
		cliJSON(work, &g, "federation", "grant", "show", p.grant.GrantID)
		Expect(g.Status).To(Equal("active"), "revoked behind the gateway's back: the grant itself says nothing")
		// The listener refreshes the CRL every 2 s in this world; the connection opened
		// before is refused on its next request.
		Eventually(func() string {
			var e api.ErrorBody
			p.call(http.MethodGet, "/capabilities", nil, &e)
			return e.Error.Code
		}).WithTimeout(Timeouts.Readiness).WithPolling(200 * time.Millisecond).Should(Equal(api.CodeCertificateRevoked))
		// A new connection does not get past the handshake.
		_, err := send(http.MethodGet, work.FederationURL+"/api/federation/v1/capabilities", via(mtlsClient(work, &p.cert)))
		Expect(err).To(MatchError(ContainSubstring("bad certificate")))
		// The refusal on the kept-alive connection has its audit row.
		Expect(auditOf(work)).To(ContainElement(SatisfyAll(
			HaveField("GrantID", p.grant.GrantID), HaveField("Reason", api.CodeCertificateRevoked))))
	})

	It("[M6-7] enrolls a CSR with any subject; the certificate is named after the grant", func() {
		for _, subject := range []pkix.Name{
			{CommonName: "x"},
			{CommonName: "home.example", Organization: []string{"Home"}, Country: []string{"DE"}},
		} {
			g := newGrant(work, fullScope)
			status, resp, e := enroll(work, tokenOf(g.EnrollmentURL), csrWith(&x509.CertificateRequest{Subject: subject}))
			Expect(status).To(Equal(http.StatusCreated), e.Error.Code)
			cert := parsePEMCert(resp.CertificatePEM)
			Expect(cert.Subject.String()).To(Equal("CN=" + g.GrantID))
			Expect(extValues(cert, api.OIDGrantID)).To(Equal([]string{g.GrantID}))
			Expect(extValues(cert, api.OIDSubjectUserID)).To(Equal([]string{g.SubjectUserID}))
		}
	})
})
