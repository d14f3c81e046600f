package acceptance

import (
	"crypto"
	"crypto/x509"
	"encoding/pem"
	"net/http"
	"os"
	"path/filepath"
	"strings"

	"github.com/google/uuid"
	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"

	"github.com/mosaic-federation/mosaic/fixtures"
	"github.com/mosaic-federation/mosaic/gateway/api"
	"github.com/mosaic-federation/mosaic/harness/world"
)

// stolenIntermediate decrypts a site's intermediate key with the real step CLI: the
// attacker of these specs holds the CA's signing key, and still must not pass the
// guard without a well-formed identity.
func stolenIntermediate(s world.SiteInfo) (*fixtures.Issuer, []byte) {
	GinkgoHelper()
	caDir := filepath.Dir(filepath.Dir(s.CAConfig))
	keyPEM, err := output(filepath.Join(the.BinDir, "step"), "crypto", "key", "format", filepath.Join(caDir, "secrets", "intermediate_ca_key"),
		"--pem", "--password-file", filepath.Join(s.Dir, "secrets", "ca.pass"), "--no-password", "--insecure")
	Expect(err).NotTo(HaveOccurred())
	block, _ := pem.Decode(keyPEM)
	Expect(block).NotTo(BeNil())
	key, err := x509.ParseECPrivateKey(block.Bytes)
	Expect(err).NotTo(HaveOccurred())
	certPEM, err := os.ReadFile(filepath.Join(caDir, "certs", "intermediate_ca.crt"))
	Expect(err).NotTo(HaveOccurred())
	cb, _ := pem.Decode(certPEM)
	cert, err := x509.ParseCertificate(cb.Bytes)
	Expect(err).NotTo(HaveOccurred())
	return &fixtures.Issuer{Cert: cert, Key: crypto.Signer(key)}, cb.Bytes
}

var _ = Describe("Forged client certificates", Label("M3", "security"), func() {
	var work world.SiteInfo
	var active peer
	BeforeEach(func() {
		work = site("work")
		active = enrolledPeer(work, fullScope)
	})

	It("[M3-6] a foreign CA copying a live grant's OIDs fails the handshake", func() {
		ca, err := fixtures.NewCA("Mosaic work CA") // even the same name
		Expect(err).NotTo(HaveOccurred())
		cert, err := ca.ClientCert(active.grant.GrantID, []fixtures.Ext{
			fixtures.UTF8(api.OIDGrantID, active.grant.GrantID), fixtures.UTF8(api.OIDSubjectUserID, active.grant.SubjectUserID),
			fixtures.StepProvisioner(api.OIDStepProvisioner, world.FederationProvisioner)})
		Expect(err).NotTo(HaveOccurred())
		_, err = mtlsClient(work, cert).Get(work.FederationURL + "/api/federation/v1/capabilities")
		Expect(err).To(HaveOccurred())
		Expect(err.Error()).To(Or(ContainSubstring("bad certificate"), ContainSubstring("unknown certificate authority")))
	})

	DescribeTable("[M3-6] a certificate from the site's own (stolen) intermediate is refused with 401 when its identity is wrong",
		func(code string, exts func(g grantCreated) []fixtures.Ext) {
			is, inter := stolenIntermediate(work)
			cert, err := is.ClientCert(active.grant.GrantID, exts(active.grant), inter)
			Expect(err).NotTo(HaveOccurred())
			var e errorBody
			Expect(fedCall(mtlsClient(work, cert), work, http.MethodGet, "/capabilities", nil, &e)).To(Equal(http.StatusUnauthorized))
			Expect(e.Error.Code).To(Equal(code))
		},
		Entry("no OIDs", "identity_missing", func(g grantCreated) []fixtures.Ext {
			return []fixtures.Ext{fixtures.StepProvisioner(api.OIDStepProvisioner, world.FederationProvisioner)}
		}),
		Entry("a malformed grant UUID", "identity_malformed", func(g grantCreated) []fixtures.Ext {
			return []fixtures.Ext{fixtures.UTF8(api.OIDGrantID, strings.ToUpper(g.GrantID)), fixtures.UTF8(api.OIDSubjectUserID, g.SubjectUserID),
				fixtures.StepProvisioner(api.OIDStepProvisioner, world.FederationProvisioner)}
		}),
		Entry("a subject that is not a UUID", "identity_malformed", func(g grantCreated) []fixtures.Ext {
			return []fixtures.Ext{fixtures.UTF8(api.OIDGrantID, g.GrantID), fixtures.UTF8(api.OIDSubjectUserID, "ada@work.example"),
				fixtures.StepProvisioner(api.OIDStepProvisioner, world.FederationProvisioner)}
		}),
		Entry("another provisioner", "wrong_provisioner", func(g grantCreated) []fixtures.Ext {
			return []fixtures.Ext{fixtures.UTF8(api.OIDGrantID, g.GrantID), fixtures.UTF8(api.OIDSubjectUserID, g.SubjectUserID),
				fixtures.StepProvisioner(api.OIDStepProvisioner, world.ListenerProvisioner)}
		}),
	)

	It("[M3-6] a well-formed forged identity for a live grant is 403: its serial is not the grant's", func() {
		is, inter := stolenIntermediate(work)
		cert, err := is.ClientCert(active.grant.GrantID, []fixtures.Ext{
			fixtures.UTF8(api.OIDGrantID, active.grant.GrantID), fixtures.UTF8(api.OIDSubjectUserID, active.grant.SubjectUserID),
			fixtures.StepProvisioner(api.OIDStepProvisioner, world.FederationProvisioner)}, inter)
		Expect(err).NotTo(HaveOccurred())
		var e errorBody
		Expect(fedCall(mtlsClient(work, cert), work, http.MethodGet, "/capabilities", nil, &e)).To(Equal(http.StatusForbidden))
		Expect(e.Error.Code).To(Equal("stale_certificate"))

		By("and an unknown grant is 403 too")
		other, err := is.ClientCert(uuid.NewString(), []fixtures.Ext{
			fixtures.UTF8(api.OIDGrantID, uuid.NewString()), fixtures.UTF8(api.OIDSubjectUserID, uuid.NewString()),
			fixtures.StepProvisioner(api.OIDStepProvisioner, world.FederationProvisioner)}, inter)
		Expect(err).NotTo(HaveOccurred())
		Expect(fedCall(mtlsClient(work, other), work, http.MethodGet, "/capabilities", nil, &e)).To(Equal(http.StatusForbidden))
		Expect(e.Error.Code).To(Equal("grant_unknown"))
	})
})
