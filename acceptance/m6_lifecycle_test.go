package acceptance

import (
	"crypto/x509"
	"crypto/x509/pkix"
	"net/http"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"

	"github.com/mosaic-federation/mosaic/gateway/api"
	"github.com/mosaic-federation/mosaic/harness/world"
)

var _ = Describe("Certificate lifecycle", Label("M6", "security"), func() {
	var work world.SiteInfo
	BeforeEach(func() { work = site("work") })

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
