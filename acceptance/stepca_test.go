package acceptance

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/asn1"
	"encoding/json"
	"encoding/pem"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"time"

	"github.com/google/uuid"
	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"

	"github.com/mosaic-federation/mosaic/gateway/api"
	"github.com/mosaic-federation/mosaic/harness/world"
)

// Until the gateway's CA client exists, specs mint step-ca one-time tokens with the
// real `step crypto jwt sign`, using the federation provisioner's encrypted key from
// ca.json; top-level claims come from the JSON payload on its stdin.
func mintToken(s world.SiteInfo, claims map[string]any) string {
	GinkgoHelper()
	return mintTokenWith(s, world.FederationProvisioner, claims)
}

// mintTokenWith mints a one-time token with one of the CA's JWK provisioners.
func mintTokenWith(s world.SiteInfo, provisioner string, claims map[string]any) string {
	GinkgoHelper()
	encryptedKey, kid := provisionerOf(s, provisioner)
	keyFile := filepath.Join(GinkgoT().TempDir(), "provisioner.jwe")
	Expect(os.WriteFile(keyFile, []byte(encryptedKey), 0o600)).To(Succeed())

	payload, err := json.Marshal(claims)
	Expect(err).NotTo(HaveOccurred())
	now := time.Now()
	sub, _ := claims["grant_id"].(string)
	if sub == "" {
		sub = uuid.NewString()
	}
	cmd := exec.Command(filepath.Join(the.BinDir, "step"), "crypto", "jwt", "sign",
		"--key", keyFile, "--password-file", s.ProvisionerPasswordFile, "--kid", kid,
		"--iss", provisioner, "--aud", s.CAURL+"/1.0/sign", "--sub", sub,
		"--nbf", strconv.FormatInt(now.Unix(), 10), "--exp", strconv.FormatInt(now.Add(5*time.Minute).Unix(), 10),
		"--jti", uuid.NewString())
	cmd.Stdin = bytes.NewReader(payload)
	cmd.Stderr = GinkgoWriter
	out, err := cmd.Output()
	Expect(err).NotTo(HaveOccurred(), "step crypto jwt sign")
	return string(bytes.TrimSpace(out))
}

// provisionerOf reads a JWK provisioner's encrypted key and key id from the CA's
// configuration (the key id is public; the key opens only with the password).
func provisionerOf(s world.SiteInfo, name string) (encryptedKey, kid string) {
	GinkgoHelper()
	var cfg struct {
		Authority struct {
			Provisioners []struct {
				Name         string `json:"name"`
				EncryptedKey string `json:"encryptedKey"`
				Key          struct {
					Kid string `json:"kid"`
				} `json:"key"`
			} `json:"provisioners"`
		} `json:"authority"`
	}
	b, err := os.ReadFile(s.CAConfig)
	Expect(err).NotTo(HaveOccurred())
	Expect(json.Unmarshal(b, &cfg)).To(Succeed())
	for _, p := range cfg.Authority.Provisioners {
		if p.Name == name {
			return p.EncryptedKey, p.Key.Kid
		}
	}
	Fail("no provisioner " + name + " in " + s.CAConfig)
	return "", ""
}

// newCSR makes a CSR with an empty subject and no SANs, plus any extra extensions.
func newCSR(extra ...pkix.Extension) string {
	GinkgoHelper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	Expect(err).NotTo(HaveOccurred())
	der, err := x509.CreateCertificateRequest(rand.Reader, &x509.CertificateRequest{ExtraExtensions: extra}, key)
	Expect(err).NotTo(HaveOccurred())
	return string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE REQUEST", Bytes: der}))
}

func utf8Ext(oid asn1.ObjectIdentifier, value string) pkix.Extension {
	GinkgoHelper()
	der, err := asn1.MarshalWithParams(value, "utf8")
	Expect(err).NotTo(HaveOccurred())
	return pkix.Extension{Id: oid, Value: der}
}

// sign POSTs a sign request to a site's step-ca and returns the status and, on
// success, the leaf certificate.
func sign(s world.SiteInfo, body map[string]any) (int, *x509.Certificate, string) {
	GinkgoHelper()
	b, err := json.Marshal(body)
	Expect(err).NotTo(HaveOccurred())
	resp, err := caClient(s.CARoot).Post(s.CAURL+"/1.0/sign", "application/json", bytes.NewReader(b))
	Expect(err).NotTo(HaveOccurred())
	defer resp.Body.Close()
	var out struct {
		Crt     string `json:"crt"`
		Message string `json:"message"`
	}
	Expect(json.NewDecoder(resp.Body).Decode(&out)).To(Succeed())
	if out.Crt == "" {
		return resp.StatusCode, nil, out.Message
	}
	block, _ := pem.Decode([]byte(out.Crt))
	Expect(block).NotTo(BeNil())
	cert, err := x509.ParseCertificate(block.Bytes)
	Expect(err).NotTo(HaveOccurred())
	return resp.StatusCode, cert, ""
}

// extValues returns the UTF8String values of every extension with the given OID.
func extValues(cert *x509.Certificate, oid asn1.ObjectIdentifier) []string {
	GinkgoHelper()
	var vals []string
	for _, e := range cert.Extensions {
		if e.Id.Equal(oid) {
			Expect(e.Value[0]).To(Equal(byte(asn1.TagUTF8String)), "extension %s is not a UTF8String", oid)
			var v string
			_, err := asn1.UnmarshalWithParams(e.Value, &v, "utf8")
			Expect(err).NotTo(HaveOccurred())
			vals = append(vals, v)
		}
	}
	return vals
}

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
