package acceptance

import (
	"crypto"
	"crypto/x509"
	"net/http"
	"path/filepath"
	"strings"

	"github.com/google/uuid"
	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"

	"github.com/mosaic-federation/mosaic/fixtures"
	"github.com/mosaic-federation/mosaic/gateway/api"
	"github.com/mosaic-federation/mosaic/harness/world"
)

// provisionerKID is a provisioner's (public) key id.
func provisionerKID(s world.SiteInfo, name string) string {
	GinkgoHelper()
	_, kid := provisionerOf(s, name)
	return kid
}

// federationProvisioner is step-ca's extension naming the work site's federation
// provisioner, with its real key id.
func federationProvisioner() fixtures.Ext {
	GinkgoHelper()
	return fixtures.StepProvisioner(api.OIDStepProvisioner, world.FederationProvisioner, provisionerKID(site("work"), world.FederationProvisioner))
}

// stolenIntermediate decrypts a site's intermediate key with the real step CLI: the
// attacker of these specs holds the CA's signing key, and still must not pass the
// guard without a well-formed identity.
func stolenIntermediate(s world.SiteInfo) (*fixtures.Issuer, []byte) {
	GinkgoHelper()
	caDir := filepath.Dir(filepath.Dir(s.CAConfig))
	keyPEM, err := output(nil, filepath.Join(the.BinDir, "step"), "crypto", "key", "format", filepath.Join(caDir, "secrets", "intermediate_ca_key"),
		"--pem", "--password-file", filepath.Join(s.Dir, "secrets", "ca.pass"), "--no-password", "--insecure")
	Expect(err).NotTo(HaveOccurred())
	key, err := x509.ParseECPrivateKey(pemDER(keyPEM))
	Expect(err).NotTo(HaveOccurred())
	der := intermediateOf(s)
	cert, err := x509.ParseCertificate(der)
	Expect(err).NotTo(HaveOccurred())
	return &fixtures.Issuer{Cert: cert, Key: crypto.Signer(key)}, der
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
			federationProvisioner()})
		Expect(err).NotTo(HaveOccurred())
		err = callError(http.MethodGet, work.FederationURL+"/api/federation/v1/capabilities", via(mtlsClient(work, cert)))
		Expect(err).To(HaveOccurred())
		Expect(err.Error()).To(Or(ContainSubstring("bad certificate"), ContainSubstring("unknown certificate authority")))
	})

	DescribeTable("[M3-6] a certificate from the site's own (stolen) intermediate is refused with 401 when its identity is wrong",
		func(code string, exts func(g api.GrantCreated) []fixtures.Ext) {
			is, inter := stolenIntermediate(work)
			cert, err := is.ClientCert(active.grant.GrantID, exts(active.grant), inter)
			Expect(err).NotTo(HaveOccurred())
			var e api.ErrorBody
			Expect(fedCall(mtlsClient(work, cert), work, http.MethodGet, "/capabilities", nil, &e)).To(Equal(http.StatusUnauthorized))
			Expect(e.Error.Code).To(Equal(code))
			Expect(auditOf(work)).To(ContainElement(And(HaveField("Reason", code), HaveField("Outcome", api.OutcomeDenied))), "[M3-12] audited")
		},
		Entry("no OIDs", api.CodeIdentityMissing, func(g api.GrantCreated) []fixtures.Ext {
			return []fixtures.Ext{federationProvisioner()}
		}),
		Entry("a malformed grant UUID", api.CodeIdentityMalformed, func(g api.GrantCreated) []fixtures.Ext {
			return []fixtures.Ext{fixtures.UTF8(api.OIDGrantID, strings.ToUpper(g.GrantID)), fixtures.UTF8(api.OIDSubjectUserID, g.SubjectUserID),
				federationProvisioner()}
		}),
		Entry("a subject that is not a UUID", api.CodeIdentityMalformed, func(g api.GrantCreated) []fixtures.Ext {
			return []fixtures.Ext{fixtures.UTF8(api.OIDGrantID, g.GrantID), fixtures.UTF8(api.OIDSubjectUserID, "ada@work.example"),
				federationProvisioner()}
		}),
		Entry("the federation provisioner's name with another key", api.CodeWrongProvisioner, func(g api.GrantCreated) []fixtures.Ext {
			return []fixtures.Ext{fixtures.UTF8(api.OIDGrantID, g.GrantID), fixtures.UTF8(api.OIDSubjectUserID, g.SubjectUserID),
				fixtures.StepProvisioner(api.OIDStepProvisioner, world.FederationProvisioner, "another-key-id")}
		}),
		Entry("another provisioner", api.CodeWrongProvisioner, func(g api.GrantCreated) []fixtures.Ext {
			return []fixtures.Ext{fixtures.UTF8(api.OIDGrantID, g.GrantID), fixtures.UTF8(api.OIDSubjectUserID, g.SubjectUserID),
				fixtures.StepProvisioner(api.OIDStepProvisioner, world.ListenerProvisioner, provisionerKID(site("work"), world.ListenerProvisioner))}
		}),
	)

	It("[M3-6] a well-formed forged identity for a live grant is 403: its serial is not the grant's", func() {
		is, inter := stolenIntermediate(work)
		cert, err := is.ClientCert(active.grant.GrantID, []fixtures.Ext{
			fixtures.UTF8(api.OIDGrantID, active.grant.GrantID), fixtures.UTF8(api.OIDSubjectUserID, active.grant.SubjectUserID),
			federationProvisioner()}, inter)
		Expect(err).NotTo(HaveOccurred())
		var e api.ErrorBody
		Expect(fedCall(mtlsClient(work, cert), work, http.MethodGet, "/capabilities", nil, &e)).To(Equal(http.StatusForbidden))
		Expect(e.Error.Code).To(Equal(api.CodeStaleCertificate))

		By("and an unknown grant is 403 too")
		other, err := is.ClientCert(uuid.NewString(), []fixtures.Ext{
			fixtures.UTF8(api.OIDGrantID, uuid.NewString()), fixtures.UTF8(api.OIDSubjectUserID, uuid.NewString()),
			federationProvisioner()}, inter)
		Expect(err).NotTo(HaveOccurred())
		Expect(fedCall(mtlsClient(work, other), work, http.MethodGet, "/capabilities", nil, &e)).To(Equal(http.StatusForbidden))
		Expect(e.Error.Code).To(Equal(api.CodeGrantUnknown))
	})
})

// forgedFor issues, from the stolen intermediate, a certificate for a grant and subject.
func forgedFor(s world.SiteInfo, grantID, subject string) *http.Client {
	GinkgoHelper()
	is, inter := stolenIntermediate(s)
	cert, err := is.ClientCert(grantID, []fixtures.Ext{fixtures.UTF8(api.OIDGrantID, grantID), fixtures.UTF8(api.OIDSubjectUserID, subject),
		federationProvisioner()}, inter)
	Expect(err).NotTo(HaveOccurred())
	return mtlsClient(s, cert)
}

var _ = Describe("The guard's 403s", Label("M3", "security"), func() {
	DescribeTable("[M3-6] [M3-12] refuse a grant that is not usable, and audit the reason",
		func(code string, setup func(p peer) (grantID, subject string)) {
			work := site("work")
			p := enrolledPeer(work, fullScope)
			grantID, subject := setup(p)
			// The real certificate where possible, so only the grant's state differs.
			client := p.client
			if grantID != p.grant.GrantID || subject != p.grant.SubjectUserID {
				client = forgedFor(work, grantID, subject)
			}
			var e api.ErrorBody
			Expect(fedCall(client, work, http.MethodPost, "/list/tasks", api.FedListRequest{}, &e)).To(Equal(http.StatusForbidden))
			Expect(e.Error.Code).To(Equal(code))
			Expect(auditOfGrant(work, grantID)).To(ContainElement(And(HaveField("GrantID", grantID), HaveField("Reason", code), HaveField("Outcome", api.OutcomeDenied))))
		},
		Entry("pending", api.CodeGrantPending, func(p peer) (string, string) {
			g := newGrant(site("work"), fullScope) // never enrolled
			return g.GrantID, g.SubjectUserID
		}),
		Entry("expired", api.CodeGrantExpired, func(p peer) (string, string) {
			_, err := sqlConn(bgCtx(), site("work").PostgresURL).Exec(bgCtx(),
				`UPDATE federation_grants SET expires_at = now() - interval '1 second' WHERE id = $1`, p.grant.GrantID)
			Expect(err).NotTo(HaveOccurred())
			return p.grant.GrantID, p.grant.SubjectUserID
		}),
		Entry("its peer suspended", api.CodePeerNotActive, func(p peer) (string, string) {
			_, err := sqlConn(bgCtx(), site("work").PostgresURL).Exec(bgCtx(),
				`UPDATE federation_peers SET state = 'suspended' WHERE id = (SELECT peer_id FROM federation_grants WHERE id = $1)`, p.grant.GrantID)
			Expect(err).NotTo(HaveOccurred())
			return p.grant.GrantID, p.grant.SubjectUserID
		}),
		Entry("another subject than the grant's", api.CodeSubjectMismatch, func(p peer) (string, string) {
			return p.grant.GrantID, uuid.NewString()
		}),
	)
})
