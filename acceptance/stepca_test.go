package acceptance

import (
	"bytes"
	"crypto/x509"
	"net/http"
	"time"

	"github.com/google/uuid"
	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"

	"github.com/mosaic-federation/mosaic/gateway/api"
	"github.com/mosaic-federation/mosaic/harness/world"
)

var _ = Describe("step-ca issuing federation client certificates", Label("harness", "security"), func() {
	var work world.SiteInfo
	var grantID, subjectID string
	BeforeEach(func() {
		work = site("work")
		grantID, subjectID = uuid.NewString(), uuid.NewString()
	})

	It("[H-5] binds grant_id and subject_user_id from the token's signed claims into both OIDs", func() {
		token := mintToken(work, map[string]any{"grant_id": grantID, "subject_user_id": subjectID})
		status, cert, msg := sign(work, map[string]any{"csr": newCSR(), "ott": token})
		Expect(status).To(Equal(http.StatusCreated), msg)

		Expect(extValues(cert, api.OIDGrantID)).To(Equal([]string{grantID}))
		Expect(extValues(cert, api.OIDSubjectUserID)).To(Equal([]string{subjectID}))
		Expect(cert.Subject.CommonName).To(Equal(grantID))
		Expect(cert.ExtKeyUsage).To(Equal([]x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}))
		Expect(cert.DNSNames).To(BeEmpty())
		Expect(cert.IPAddresses).To(BeEmpty())
		Expect(cert.URIs).To(BeEmpty())
		Expect(cert.EmailAddresses).To(BeEmpty())
		Expect(cert.NotAfter.Sub(cert.NotBefore)).To(BeNumerically("~", 30*24*time.Hour, time.Hour))

		By("naming the federation provisioner in step-ca's own extension")
		var named bool
		for _, e := range cert.Extensions {
			if e.Id.Equal(api.OIDStepProvisioner) {
				named = bytes.Contains(e.Value, []byte(world.FederationProvisioner))
			}
		}
		Expect(named).To(BeTrue())
	})

	It("[H-6] takes the identity from the token, never from OIDs inside the CSR", func() {
		forged := newCSR(utf8Ext(api.OIDGrantID, uuid.NewString()), utf8Ext(api.OIDSubjectUserID, uuid.NewString()))
		token := mintToken(work, map[string]any{"grant_id": grantID, "subject_user_id": subjectID})
		status, cert, msg := sign(work, map[string]any{"csr": forged, "ott": token})
		Expect(status).To(Equal(http.StatusCreated), msg)
		Expect(extValues(cert, api.OIDGrantID)).To(Equal([]string{grantID}))
		Expect(extValues(cert, api.OIDSubjectUserID)).To(Equal([]string{subjectID}))
	})

	DescribeTable("[H-7] refuses (400) a token that lacks the claims, whatever else the request carries",
		func(claims map[string]any, withForgedCSR, withTemplateData bool) {
			csr := newCSR()
			if withForgedCSR {
				csr = newCSR(utf8Ext(api.OIDGrantID, grantID), utf8Ext(api.OIDSubjectUserID, subjectID))
			}
			body := map[string]any{"csr": csr, "ott": mintToken(work, claims)}
			if withTemplateData { // unsigned data the template must never read
				body["templateData"] = map[string]any{"grant_id": grantID, "subject_user_id": subjectID}
			}
			status, cert, msg := sign(work, body)
			Expect(cert).To(BeNil())
			Expect(status).To(Equal(http.StatusBadRequest))
			Expect(msg).To(ContainSubstring("claim"))
		},
		Entry("no claims", map[string]any{}, false, false),
		Entry("grant_id only", map[string]any{"grant_id": "7b0c5a1e-1111-4222-8333-444455556666"}, false, false),
		Entry("subject_user_id only", map[string]any{"subject_user_id": "9d2e6f30-aaaa-4bbb-8ccc-ddddeeeeffff"}, false, false),
		Entry("no claims, OIDs in the CSR", map[string]any{}, true, false),
		Entry("no claims, identity in templateData", map[string]any{}, false, true),
		Entry("grant_id not a UUID", map[string]any{"grant_id": "7b0c5a1e", "subject_user_id": "9d2e6f30-aaaa-4bbb-8ccc-ddddeeeeffff"}, false, false),
		Entry("grant_id in upper case", map[string]any{"grant_id": "7B0C5A1E-1111-4222-8333-444455556666", "subject_user_id": "9d2e6f30-aaaa-4bbb-8ccc-ddddeeeeffff"}, false, false),
		Entry("subject_user_id a number", map[string]any{"grant_id": "7b0c5a1e-1111-4222-8333-444455556666", "subject_user_id": 42}, false, false),
		Entry("subject_user_id an object", map[string]any{"grant_id": "7b0c5a1e-1111-4222-8333-444455556666", "subject_user_id": map[string]any{"a": "b"}}, false, false),
		Entry("grant_id with a JSON break-out", map[string]any{"grant_id": "x\"},{\"id\":\"2.5.29.17", "subject_user_id": "9d2e6f30-aaaa-4bbb-8ccc-ddddeeeeffff"}, false, false),
	)

	It("[H-8] answers 401 to a replayed one-time token", func() {
		token := mintToken(work, map[string]any{"grant_id": grantID, "subject_user_id": subjectID})
		status, _, msg := sign(work, map[string]any{"csr": newCSR(), "ott": token})
		Expect(status).To(Equal(http.StatusCreated), msg)
		status, cert, _ := sign(work, map[string]any{"csr": newCSR(), "ott": token})
		Expect(status).To(Equal(http.StatusUnauthorized))
		Expect(cert).To(BeNil())
	})

	It("[H-9] gives each site its own root: home's CA does not accept work's token", func() {
		token := mintToken(work, map[string]any{"grant_id": grantID, "subject_user_id": subjectID})
		home := site("home")
		Expect(home.CAFingerprint).NotTo(Equal(work.CAFingerprint))
		status, cert, _ := sign(home, map[string]any{"csr": newCSR(), "ott": token})
		Expect(cert).To(BeNil())
		Expect(status).To(Equal(http.StatusUnauthorized))
	})
})
