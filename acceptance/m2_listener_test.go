package acceptance

import (
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"encoding/hex"
	"net/http"
	"strings"

	"github.com/google/uuid"
	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"

	"github.com/mosaic-federation/mosaic/gateway/api"
)

func hostPort(u string) string { return strings.TrimPrefix(u, "https://") }

var _ = Describe("The federation listener", Label("M2", "security"), func() {
	It("[M2-L1] speaks TLS 1.3 only, with a serverAuth certificate from its own site's CA and no federation OIDs", func() {
		work := site("work")
		conn, err := tls.Dial("tcp", hostPort(work.FederationURL), listenerTLS(work, &tls.Config{RootCAs: rootPool(work.CARoot), MinVersion: tls.VersionTLS12}))
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
		_, err = tls.Dial("tcp", hostPort(work.FederationURL), listenerTLS(work, &tls.Config{RootCAs: rootPool(work.CARoot), MaxVersion: tls.VersionTLS12}))
		Expect(err).To(HaveOccurred())

		By("not being trusted under another site's root")
		_, err = tls.Dial("tcp", hostPort(work.FederationURL), listenerTLS(work, &tls.Config{RootCAs: rootPool(site("home").CARoot)}))
		Expect(err).To(MatchError(ContainSubstring("certificate signed by unknown authority")))
	})

	It("[M2-L2] serves its root at /ca/root, whose SHA-256 is the fingerprint an enrollment URL pins", func() {
		work := site("work")
		// Fetched before trusting anything, as `peer add` does: the fingerprint decides.
		insecure := &http.Client{Timeout: Timeouts.Request, Transport: &http.Transport{TLSClientConfig: &tls.Config{InsecureSkipVerify: true}}}
		var b []byte
		Expect(call(http.MethodGet, work.FederationURL+"/api/federation/v1/ca/root", &b, via(insecure))).To(Equal(http.StatusOK))
		sum := sha256.Sum256(pemDER(b))
		Expect(hex.EncodeToString(sum[:])).To(Equal(work.CAFingerprint))
	})

	It("[M2-L3] refuses a client certificate from another site's CA at the handshake", func() {
		home, work := site("home"), site("work")
		key, csr := keyAndCSR(&x509.CertificateRequest{})
		token := mintToken(home, map[string]any{"grant_id": uuid.NewString(), "subject_user_id": uuid.NewString()})
		status, cert, msg := sign(home, map[string]any{"csr": csr, "ott": token})
		Expect(status).To(Equal(http.StatusCreated), msg)

		// mtlsClient presents the certificate whatever CAs the server names.
		foreign := mtlsClient(work, &tls.Certificate{Certificate: [][]byte{cert.Raw}, PrivateKey: key})
		// With TLS 1.3 the server's refusal surfaces at the client's first read.
		err := callError(http.MethodGet, work.FederationURL+"/api/federation/v1/ca/root", via(foreign))
		Expect(err).To(HaveOccurred())
		Expect(err.Error()).To(Or(ContainSubstring("bad certificate"), ContainSubstring("unknown certificate authority")))
	})

	It("[M2-L4] stops a gateway whose provisioner password is wrong, saying what to fix and never the password", func() {
		work := site("work")
		wrong := "wrong-" + uuid.NewString()
		pw := secretFile(work, wrong)
		cfg := siteConfig(work, map[string]any{"listen": map[string]any{"api": freeAddr(), "federation": freeAddr()},
			"ca": map[string]any{"provisioner_password_file": pw}})
		s := gateway("serve", "--config", cfg)
		Expect(s.ExitCode()).NotTo(Equal(0))
		out := string(s.Err.Contents())
		Expect(out).To(ContainSubstring("ca.provisioner_password_file"))
		Expect(out).NotTo(ContainSubstring(wrong))
	})
})
