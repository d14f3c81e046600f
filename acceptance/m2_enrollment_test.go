package acceptance

import (
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/pem"
	"net/http"
	"net/url"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/google/uuid"
	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"

	"github.com/mosaic-federation/mosaic/gateway/api"
	"github.com/mosaic-federation/mosaic/harness/world"
)

var _ = Describe("Enrollment", Label("M2", "security"), func() {
	var work world.SiteInfo
	BeforeEach(func() { work = site("work") })

	It("[M2-1] creates a peer and a grant through the CLI, whose --json parses, with the secrets in the URL's fragment", func() {
		g := newGrant(work, fullScope)
		Expect(uuid.Validate(g.GrantID)).To(Succeed())
		Expect(g.Status).To(Equal("pending"))
		Expect(g.SubjectUserID).To(Equal(userID(work, work.Users[0].Email)))
		u, err := url.Parse(g.EnrollmentURL)
		Expect(err).NotTo(HaveOccurred())
		Expect(u.Scheme+"://"+u.Host).To(Equal(work.PublicURL), "the federation listener's public URL: the link's")
		Expect(u.Path).To(Equal("/api/federation/v1/enroll"))
		Expect(u.RawQuery).To(BeEmpty(), "no secret in the part an HTTP client sends")
		q, _ := url.ParseQuery(u.Fragment)
		Expect(q.Get("token")).To(HaveLen(47))
		Expect(q.Get("ca-sha256")).To(Equal(work.CAFingerprint))
		exp, err := time.Parse(time.RFC3339, g.TokenExpiresAt)
		Expect(err).NotTo(HaveOccurred())
		Expect(time.Until(exp)).To(BeNumerically("~", 15*time.Minute, time.Minute))

		var shown api.Grant
		cliJSON(work, &shown, "federation", "grant", "show", g.GrantID)
		Expect(shown.Status).To(Equal("pending"))
		var all []api.Grant
		cliJSON(work, &all, "federation", "grant", "list")
		Expect(all).To(ContainElement(HaveField("ID", g.GrantID)))

		By("storing the token only as a hash")
		conn := sqlConn(bgCtx(), work.PostgresURL)
		var stored int
		Expect(conn.QueryRow(bgCtx(), `SELECT count(*) FROM federation_enrollment_tokens WHERE encode(token_hash, 'escape') LIKE '%' || $1 || '%'`,
			tokenOf(g.EnrollmentURL)[4:20]).Scan(&stored)).To(Succeed())
		Expect(stored).To(BeZero())
	})

	DescribeTable("[M2-2] refuses an invalid scope, naming the field",
		func(doc, field string) {
			path := scopeFile(doc)
			peer := uniqueName("scope")
			Expect(cli(work, "federation", "peer", "create", "--name", peer).ExitCode()).To(Equal(0))
			s := cli(work, "federation", "grant", "create", "--peer", peer, "--subject-user", work.Users[0].Email, "--scope", path)
			Expect(s.ExitCode()).NotTo(Equal(0))
			Expect(string(s.Err.Contents())).To(ContainSubstring(`field "` + field + `"`))
		},
		Entry("credentials", `{"resources": ["tasks", "credentials"], "max_rows_per_query": 10}`, "resources[1]"),
		Entry("unknown resource", `{"resources": ["calendars"], "max_rows_per_query": 10}`, "resources[0]"),
		Entry("cap 0", `{"resources": ["tasks"], "max_rows_per_query": 0}`, "max_rows_per_query"),
		Entry("cap 10001", `{"resources": ["tasks"], "max_rows_per_query": 10001}`, "max_rows_per_query"),
		Entry("unknown field", `{"resources": ["tasks"], "max_rows_per_query": 10, "share_everything": true}`, "share_everything"),
	)

	It("[M2-3] answers 410 to a replayed token, 410 to an expired one and 404 to an unknown one", func(ctx SpecContext) {
		g := newGrant(work, fullScope)
		token := tokenOf(g.EnrollmentURL)
		status, _, e := enroll(work, token, newCSR())
		Expect(status).To(Equal(http.StatusCreated), e.Error.Code)
		status, _, e = enroll(work, token, newCSR())
		Expect(status).To(Equal(http.StatusGone))
		Expect(e.Error.Code).To(Equal(api.CodeTokenSpentOrExpired))

		expired := newGrant(work, fullScope)
		conn := sqlConn(ctx, work.PostgresURL)
		_, err := conn.Exec(ctx, `UPDATE federation_enrollment_tokens SET expires_at = now() - interval '1 minute' WHERE grant_id = $1`, expired.GrantID)
		Expect(err).NotTo(HaveOccurred())
		status, _, e = enroll(work, tokenOf(expired.EnrollmentURL), newCSR())
		Expect(status).To(Equal(http.StatusGone))

		status, _, e = enroll(work, "met_"+strings.Repeat("x", 43), newCSR())
		Expect(status).To(Equal(http.StatusNotFound))
		Expect(e.Error.Code).To(Equal(api.CodeUnknownToken))
		Expect(e.Error.RequestID).NotTo(BeEmpty())
	})

	It("[M2-4] issues a certificate carrying both OIDs with the grant's values", func() {
		g := newGrant(work, fullScope)
		status, resp, e := enroll(work, tokenOf(g.EnrollmentURL), newCSR())
		Expect(status).To(Equal(http.StatusCreated), e.Error.Code)
		cert := parsePEMCert(resp.CertificatePEM)
		Expect(extValues(cert, api.OIDGrantID)).To(Equal([]string{g.GrantID}))
		Expect(extValues(cert, api.OIDSubjectUserID)).To(Equal([]string{g.SubjectUserID}))
		Expect(resp.GrantID).To(Equal(g.GrantID))
		inter := x509.NewCertPool()
		Expect(inter.AppendCertsFromPEM([]byte(resp.ChainPEM))).To(BeTrue())
		_, err := cert.Verify(x509.VerifyOptions{Roots: rootPool(work.CARoot), Intermediates: inter, KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}})
		Expect(err).NotTo(HaveOccurred())

		var shown api.Grant
		cliJSON(work, &shown, "federation", "grant", "show", g.GrantID)
		Expect(shown.Status).To(Equal("active"))
		Expect(shown.CertSerial).To(Equal(cert.SerialNumber.String()))
	})

	It("[M2-4] fails loudly when the CA's template drops the OIDs, leaving the grant pending", func(ctx SpecContext) {
		apiAddr, fed := freeAddr(), freeAddr()
		cfg := siteConfig(work, map[string]any{"listen": map[string]any{"api": apiAddr, "federation": fed},
			"federation": map[string]any{"public_url": "https://" + fed}, "ca": map[string]any{"provisioner": world.BrokenProvisioner}})
		startGateway(cfg, "http://"+apiAddr)
		broken := work // its own gateway: its own listener, reached at its own public URL
		broken.Config, broken.FederationURL, broken.PublicURL = cfg, "https://"+fed, "https://"+fed
		g := newGrant(broken, fullScope)
		status, _, e := enroll(broken, tokenOf(g.EnrollmentURL), newCSR())
		Expect(status).To(Equal(http.StatusBadGateway))
		Expect(e.Error.Code).To(Equal(api.CodeIssuanceFailed))
		var shown api.Grant
		cliJSON(work, &shown, "federation", "grant", "show", g.GrantID)
		Expect(shown.Status).To(Equal("pending"))
		Expect(auditOfGrant(work, g.GrantID)).To(ContainElement(And(HaveField("GrantID", g.GrantID), HaveField("Reason", api.CodeIssuanceFailed), HaveField("Outcome", api.OutcomeFailed))))
	})

	It("[M2-7] lets exactly one of twenty concurrent redemptions of one token through", func() {
		g := newGrant(work, fullScope)
		token := tokenOf(g.EnrollmentURL)
		csrs := make([]string, 20)
		for i := range csrs {
			csrs[i] = newCSR()
		}
		statuses := make([]int, 20)
		var wg sync.WaitGroup
		for i := range statuses {
			wg.Add(1)
			go func() {
				defer GinkgoRecover()
				defer wg.Done()
				statuses[i], _, _ = enroll(work, token, csrs[i])
			}()
		}
		wg.Wait()
		created := 0
		for _, s := range statuses {
			if s == http.StatusCreated {
				created++
			} else {
				Expect(s).To(Equal(http.StatusGone))
			}
		}
		Expect(created).To(Equal(1))
	})

	DescribeTable("[M2-10] refuses (400) a bad CSR before spending the token",
		func(csr func() string) {
			g := newGrant(work, fullScope)
			token := tokenOf(g.EnrollmentURL)
			status, _, e := enroll(work, token, csr())
			Expect(status).To(Equal(http.StatusBadRequest))
			Expect(e.Error.Code).To(Equal(api.CodeInvalidCSR))
			status, _, _ = enroll(work, token, newCSR())
			Expect(status).To(Equal(http.StatusCreated), "the token was not spent")
		},
		Entry("carrying the reserved OIDs", func() string {
			return newCSR(utf8Ext(api.OIDGrantID, uuid.NewString()), utf8Ext(api.OIDSubjectUserID, uuid.NewString()))
		}),
		Entry("carrying step-ca's provisioner OID", func() string { return newCSR(utf8Ext(api.OIDStepProvisioner, "federation")) }),
		Entry("with SANs", func() string { return csrWith(&x509.CertificateRequest{DNSNames: []string{"home.example"}}) }),
		Entry("with a key the CA would refuse (RSA 1024)", func() string {
			key, err := rsa.GenerateKey(rand.Reader, 1024)
			Expect(err).NotTo(HaveOccurred())
			der, err := x509.CreateCertificateRequest(rand.Reader, &x509.CertificateRequest{}, key)
			Expect(err).NotTo(HaveOccurred())
			return string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE REQUEST", Bytes: der}))
		}),
		Entry("not PEM", func() string { return "-----BEGIN NOTHING-----" }),
		Entry("a certificate, not a CSR", func() string {
			b, _ := os.ReadFile(site("work").CARoot)
			return string(b)
		}),
	)

	It("[M2-8] refuses invalid status transitions", func() {
		By("a fresh token for a pending grant replaces the outstanding one")
		p0 := newGrant(work, fullScope)
		var fresh api.GrantCreated
		cliJSON(work, &fresh, "federation", "token", "create", "--grant", p0.GrantID)
		st0, _, _ := enroll(work, tokenOf(p0.EnrollmentURL), newCSR())
		Expect(st0).To(Equal(http.StatusGone))
		st0, _, _ = enroll(work, tokenOf(fresh.EnrollmentURL), newCSR())
		Expect(st0).To(Equal(http.StatusCreated))

		g := newGrant(work, fullScope)
		By("no fresh token for an active grant")
		status, _, _ := enroll(work, tokenOf(g.EnrollmentURL), newCSR())
		Expect(status).To(Equal(http.StatusCreated))
		s := cli(work, "federation", "token", "create", "--grant", g.GrantID)
		Expect(s.ExitCode()).NotTo(Equal(0))
		Expect(string(s.Err.Contents())).To(ContainSubstring("is active"))

		By("revoking: active -> revoked, then not again")
		var revoked api.Grant
		cliJSON(work, &revoked, "federation", "grant", "revoke", g.GrantID, "--reason", "spec")
		Expect(revoked.Status).To(Equal("revoked"))
		again := cli(work, "federation", "grant", "revoke", g.GrantID)
		Expect(again.ExitCode()).NotTo(Equal(0))
		Expect(cli(work, "federation", "token", "create", "--grant", g.GrantID).ExitCode()).NotTo(Equal(0))

		By("a grant past its expiry is expired: no enrollment, no revocation")
		x := newGrant(work, fullScope)
		conn := sqlConn(bgCtx(), work.PostgresURL)
		_, err := conn.Exec(bgCtx(), `UPDATE federation_grants SET expires_at = now() - interval '1 second' WHERE id = $1`, x.GrantID)
		Expect(err).NotTo(HaveOccurred())
		var shownX api.Grant
		cliJSON(work, &shownX, "federation", "grant", "show", x.GrantID)
		Expect(shownX.Status).To(Equal("expired"))
		st, _, ex := enroll(work, tokenOf(x.EnrollmentURL), newCSR())
		Expect(st).To(Equal(http.StatusConflict))
		Expect(ex.Error.Code).To(Equal(api.CodeGrantNotPending))
		Expect(cli(work, "federation", "grant", "revoke", x.GrantID).ExitCode()).NotTo(Equal(0))

		By("a pending grant can be revoked, and its outstanding token then fails with 409")
		p := newGrant(work, fullScope)
		cliJSON(work, &revoked, "federation", "grant", "revoke", p.GrantID)
		status, _, e := enroll(work, tokenOf(p.EnrollmentURL), newCSR())
		Expect(status).To(Equal(http.StatusConflict))
		Expect(e.Error.Code).To(Equal(api.CodeGrantNotPending))
	})

	It("[M2-9] writes an audit row for creation, enrollment and each failure", func() {
		g := newGrant(work, fullScope)
		token := tokenOf(g.EnrollmentURL)
		status, _, _ := enroll(work, token, newCSR(utf8Ext(api.OIDGrantID, uuid.NewString())))
		Expect(status).To(Equal(http.StatusBadRequest))
		status, _, _ = enroll(work, token, newCSR())
		Expect(status).To(Equal(http.StatusCreated))
		status, _, _ = enroll(work, token, newCSR())
		Expect(status).To(Equal(http.StatusGone))
		entries := auditOf(work)
		Expect(entries).To(ContainElements(
			And(HaveField("Action", "grant.create"), HaveField("Outcome", api.OutcomeAllowed), HaveField("GrantID", g.GrantID)),
			And(HaveField("Action", "token.create"), HaveField("Outcome", api.OutcomeAllowed), HaveField("GrantID", g.GrantID)),
			And(HaveField("Action", "enroll"), HaveField("Outcome", api.OutcomeAllowed), HaveField("GrantID", g.GrantID)),
			And(HaveField("Action", "enroll"), HaveField("Reason", api.CodeInvalidCSR), HaveField("Detail", "token "+token[:8]+"…")),
			And(HaveField("Action", "enroll"), HaveField("Reason", api.CodeTokenSpentOrExpired), HaveField("Detail", "token "+token[:8]+"…")),
		))
		for _, e := range entries {
			Expect(e.Detail).NotTo(ContainSubstring(token[8:]), "a token beyond its first 8 characters in the audit log")
		}
	})
})

var _ = Describe("Enrolling a peer (the requesting side)", Label("M2", "security"), func() {
	It("[M2-5] [M2-6] peer add makes an active peer with a valid certificate and a sealed key; the grant is active", func(ctx SpecContext) {
		home, work := site("home"), site("work")
		g := newGrant(work, fullScope)
		// users[3] is this spec's alone: [M3-8] relies on another user owning no peer.
		name, owner := uniqueName("work"), home.Users[3].Email
		sess := cliStdin(home, g.EnrollmentURL, "federation", "peer", "add", "-", "--name", name, "--local-user", owner, "--json")
		Expect(sess.ExitCode()).To(Equal(0), string(sess.Err.Contents()))
		var added api.PeerAdded
		decodeOut(sess, &added)
		Expect(added.State).To(Equal("active"))
		Expect(added.GrantID).To(Equal(g.GrantID))

		var shown api.Grant
		cliJSON(work, &shown, "federation", "grant", "show", g.GrantID)
		Expect(shown.Status).To(Equal("active"))

		By("keeping the key sealed at rest: no PEM, no bare DER")
		conn := sqlConn(ctx, home.PostgresURL)
		var sealed []byte
		var certPEM string
		Expect(conn.QueryRow(ctx, `SELECT key_sealed, cert_pem FROM federation_peers WHERE direction = 'outbound' AND name = $1`, name).
			Scan(&sealed, &certPEM)).To(Succeed())
		Expect(string(sealed)).NotTo(ContainSubstring("PRIVATE KEY"))
		Expect(sealed[0]).To(Equal(byte(1)), "a sealing envelope, not a DER SEQUENCE")
		Expect(extValues(parsePEMCert(certPEM), api.OIDGrantID)).To(Equal([]string{g.GrantID}))

		By("unsealing it with peer verify, which never prints the key")
		var verified api.PeerVerified
		cliJSON(home, &verified, "federation", "peer", "verify", name, "--local-user", owner)
		Expect(verified.KeyMatches).To(BeTrue())
		Expect(string(cli(home, "federation", "peer", "verify", name, "--local-user", owner).Out.Contents())).NotTo(ContainSubstring("PRIVATE"))

		By("the harness's own enrollment is there too")
		Expect(the.World.Grants).NotTo(BeEmpty())
	})

	It("[M2-11] peer add refuses a root whose fingerprint does not match, sending nothing: the token stays unspent", func() {
		home, work := site("home"), site("work")
		g := newGrant(work, fullScope)
		tampered := strings.Replace(g.EnrollmentURL, "ca-sha256="+work.CAFingerprint, "ca-sha256="+home.CAFingerprint, 1)
		sess := cliStdin(home, tampered, "federation", "peer", "add", "-", "--name", uniqueName("evil"), "--local-user", home.Users[0].Email)
		Expect(sess.ExitCode()).NotTo(Equal(0))
		Expect(string(sess.Err.Contents())).To(ContainSubstring("does not match"))
		Expect(string(sess.Err.Contents())).NotTo(ContainSubstring(tokenOf(g.EnrollmentURL)))
		status, _, _ := enroll(work, tokenOf(g.EnrollmentURL), newCSR())
		Expect(status).To(Equal(http.StatusCreated), "the token was never sent")
	})
})
