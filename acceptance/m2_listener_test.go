package acceptance

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"encoding/hex"
	"encoding/pem"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"

	"github.com/google/uuid"
	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"

	"github.com/mosaic-federation/mosaic/gateway/api"
)

func rootPool(path string) *x509.CertPool {
	GinkgoHelper()
	b, err := os.ReadFile(path)
	Expect(err).NotTo(HaveOccurred())
	pool := x509.NewCertPool()
	Expect(pool.AppendCertsFromPEM(b)).To(BeTrue())
	return pool
}

func hostPort(u string) string { return strings.TrimPrefix(u, "https://") }

var _ = Describe("The federation listener", Label("M2", "security"), func() {
	It("[M2-L1] speaks TLS 1.3 only, with a serverAuth certificate from its own site's CA and no federation OIDs", func() {
		work := site("work")
		conn, err := tls.Dial("tcp", hostPort(work.FederationURL), &tls.Config{RootCAs: rootPool(work.CARoot), MinVersion: tls.VersionTLS12})
		Expect(err).NotTo(HaveOccurred())
		defer conn.Close()
		st := conn.ConnectionState()
		Expect(st.Version).To(Equal(uint16(tls.VersionTLS13)))
		leaf := st.PeerCertificates[0]
		Expect(leaf.ExtKeyUsage).To(ContainElement(x509.ExtKeyUsageServerAuth))
		Expect(leaf.ExtKeyUsage).NotTo(ContainElement(x509.ExtKeyUsageClientAuth))
		for _, e := range leaf.Extensions {
			Expect(e.Id.Equal(api.OIDGrantID) || e.Id.Equal(api.OIDSubjectUserID)).To(BeFalse())
		}

		By("refusing TLS 1.2")
		_, err = tls.Dial("tcp", hostPort(work.FederationURL), &tls.Config{RootCAs: rootPool(work.CARoot), MaxVersion: tls.VersionTLS12})
		Expect(err).To(HaveOccurred())

		By("not being trusted under another site's root")
		_, err = tls.Dial("tcp", hostPort(work.FederationURL), &tls.Config{RootCAs: rootPool(site("home").CARoot)})
		Expect(err).To(MatchError(ContainSubstring("certificate signed by unknown authority")))
	})

	It("[M2-L2] serves its root at /ca/root, whose SHA-256 is the fingerprint an enrollment URL pins", func() {
		work := site("work")
		// Fetched before trusting anything, as `peer add` does: the fingerprint decides.
		insecure := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{InsecureSkipVerify: true}}}
		resp, err := insecure.Get(work.FederationURL + "/api/federation/v1/ca/root")
		Expect(err).NotTo(HaveOccurred())
		defer resp.Body.Close()
		Expect(resp.StatusCode).To(Equal(http.StatusOK))
		b, _ := io.ReadAll(resp.Body)
		block, _ := pem.Decode(b)
		Expect(block).NotTo(BeNil())
		sum := sha256.Sum256(block.Bytes)
		Expect(hex.EncodeToString(sum[:])).To(Equal(work.CAFingerprint))
	})

	It("[M2-L3] refuses a client certificate from another site's CA at the handshake", func() {
		home, work := site("home"), site("work")
		key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		Expect(err).NotTo(HaveOccurred())
		der, err := x509.CreateCertificateRequest(rand.Reader, &x509.CertificateRequest{}, key)
		Expect(err).NotTo(HaveOccurred())
		csr := string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE REQUEST", Bytes: der}))
		token := mintToken(home, map[string]any{"grant_id": uuid.NewString(), "subject_user_id": uuid.NewString()})
		status, cert, msg := sign(home, map[string]any{"csr": csr, "ott": token})
		Expect(status).To(Equal(http.StatusCreated), msg)

		foreign := &tls.Certificate{Certificate: [][]byte{cert.Raw}, PrivateKey: key}
		client := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{
			RootCAs: rootPool(work.CARoot),
			// Sent whatever CAs the server names (Go's client would otherwise hold back a
			// certificate the server's CA list does not cover).
			GetClientCertificate: func(*tls.CertificateRequestInfo) (*tls.Certificate, error) { return foreign, nil },
		}}}
		// With TLS 1.3 the server's refusal surfaces at the client's first read.
		_, err = client.Get(work.FederationURL + "/api/federation/v1/ca/root")
		Expect(err).To(HaveOccurred())
		Expect(err.Error()).To(Or(ContainSubstring("bad certificate"), ContainSubstring("unknown certificate authority")))
	})

	It("[M2-L4] stops a gateway whose provisioner password is wrong, saying what to fix and never the password", func() {
		work := site("work")
		wrong := "wrong-" + uuid.NewString()
		pw := filepath.Join(work.Dir, "secrets", "spec-wrong-"+uuid.NewString()[:8])
		Expect(os.WriteFile(pw, []byte(wrong+"\n"), 0o600)).To(Succeed())
		DeferCleanup(os.Remove, pw)
		cfg := siteConfig(work, map[string]any{"listen": map[string]any{"api": freeAddr(), "federation": freeAddr()},
			"ca": map[string]any{"provisioner_password_file": pw}})
		s := gateway("serve", "--config", cfg)
		Expect(s.ExitCode()).NotTo(Equal(0))
		out := string(s.Err.Contents())
		Expect(out).To(ContainSubstring("ca.provisioner_password_file"))
		Expect(out).NotTo(ContainSubstring(wrong))
	})
})
