package acceptance

import (
	"crypto/x509"
	"crypto/x509/pkix"
	"fmt"
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

		start := time.Now()
		cliJSON(work, &api.Grant{}, "federation", "grant", "revoke", p.grant.GrantID, "--reason", "left the company")
		var e api.ErrorBody
		Expect(p.call(http.MethodGet, "/capabilities", nil, &e)).To(Equal(http.StatusForbidden))
		Expect(e.Error.Code).To(Equal(api.CodeGrantRevoked))
		Eventually(crlSerials).WithArguments(work).WithTimeout(2 * time.Second).WithPolling(50 * time.Millisecond).
			Should(ContainElement(p.serial()))
		inCRL := time.Since(start)
		// A new connection with the certificate is refused in the handshake.
		Eventually(func() error {
			_, err := send(http.MethodGet, work.FederationURL+"/api/federation/v1/capabilities", via(mtlsClient(work, &p.cert)))
			return err
		}).WithTimeout(2 * time.Second).WithPolling(50 * time.Millisecond).Should(MatchError(ContainSubstring("bad certificate")))
		// README: time from grant revoke (the CLI process included) to the serial in
		// step-ca's CRL, and to the listener refusing it in the handshake.
		AddReportEntry("revocation", ReportEntryVisibilityAlways,
			fmt.Sprintf("grant revoke → serial in step-ca's CRL %v; → handshake refused %v", inCRL.Round(time.Millisecond),
				time.Since(start).Round(time.Millisecond)))
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

var _ = Describe("A CRL that cannot be refreshed", Label("M6", "security"), Serial, func() {
	It("[M6-6] keeps the last one enforced, and doctor says yellow until the CA is back", func(ctx SpecContext) {
		Expect(shared).NotTo(BeNil(), "Serial specs run on process 1, which owns the world")
		work, ca := site("work"), shared.Site("work").CA
		p := enrolledPeer(work, fullScope)
		Expect(p.call(http.MethodGet, "/capabilities", nil, nil)).To(Equal(http.StatusOK))
		revokeAtCA(work, p.serial())
		refusal := func() string {
			var e api.ErrorBody
			p.call(http.MethodGet, "/capabilities", nil, &e)
			return e.Error.Code
		}
		Eventually(refusal).WithTimeout(Timeouts.Readiness).WithPolling(200 * time.Millisecond).Should(Equal(api.CodeCertificateRevoked))

		By("stopping step-ca: refreshes fail, the last CRL stays in force")
		Expect(ca.Stop(ctx)).To(Succeed())
		DeferCleanup(func(ctx SpecContext) {
			if !ca.Running() {
				Expect(ca.Start(ctx)).To(Succeed())
			}
		})
		// Longer than the world's crl_refresh (2 s): at least one refresh fails meanwhile.
		Consistently(refusal).WithTimeout(3 * time.Second).WithPolling(500 * time.Millisecond).Should(Equal(api.CodeCertificateRevoked))
		_, err := send(http.MethodGet, work.FederationURL+"/api/federation/v1/capabilities", via(mtlsClient(work, &p.cert)))
		Expect(err).To(MatchError(ContainSubstring("bad certificate")), "a new connection is still refused in the handshake")
		s, report := doctor(work.Config)
		Expect(s.ExitCode()).To(Equal(0), "yellow: the site serves")
		Expect(report.Overall).To(Equal("yellow"))
		Expect(report.Problems).To(ContainElement(ContainSubstring("does not serve its CRL")))

		By("starting step-ca again: doctor is green")
		Expect(ca.Start(ctx)).To(Succeed())
		Eventually(func() string { _, r := doctor(work.Config); return r.Overall }).WithTimeout(Timeouts.Readiness).Should(Equal("green"))
	}, SpecTimeout(Timeouts.Boot))
})
