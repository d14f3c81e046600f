package acceptance

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"fmt"
	"net/http"
	"time"

	"github.com/google/uuid"
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
		Expect(auditOfGrant(work, p.grant.GrantID)).To(ContainElement(SatisfyAll(
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

var _ = Describe("Certificate renewal", Label("M6", "security"), func() {
	var work world.SiteInfo
	BeforeEach(func() { work = site("work") })

	It("[M6-2] renews through the gateway: a new serial, the old one accepted for the overlap and refused after; a renewal whose answer was lost recovers", startsFirst, func() {
		fedURL := shortLived("3m", "30s")
		g := newGrant(work, fullScope)
		a := enrolledAt(fedURL, g)
		// The gateway's lifetime, plus the minute step-ca backdates.
		Expect(a.Leaf.NotAfter.Sub(a.Leaf.NotBefore)).To(BeNumerically("~", 4*time.Minute, 5*time.Second))
		withA := mtlsClient(work, &a) // kept alive across the renewal
		Expect(codeWith(withA, fedURL)).To(Equal("ok"))

		status, b, code := renewAt(fedURL, a)
		Expect(status).To(Equal(http.StatusCreated), code)
		Expect(b.Leaf.SerialNumber.String()).NotTo(Equal(a.Leaf.SerialNumber.String()))
		Expect(b.Leaf.PublicKey).NotTo(Equal(a.Leaf.PublicKey))
		Expect(extValues(b.Leaf, api.OIDGrantID)).To(Equal([]string{g.GrantID}))
		Expect(extValues(b.Leaf, api.OIDSubjectUserID)).To(Equal([]string{g.SubjectUserID}))
		Expect(b.Leaf.NotAfter.Sub(b.Leaf.NotBefore)).To(BeNumerically("~", 4*time.Minute, 5*time.Second))
		withB := mtlsClient(work, &b)
		Expect(codeWith(withB, fedURL)).To(Equal("ok"))
		Expect(codeWith(withA, fedURL)).To(Equal("ok"), "the previous certificate inside its overlap")
		Expect(serialStates(work, g.GrantID)).To(Equal(map[string]string{a.Leaf.SerialNumber.String(): "previous", b.Leaf.SerialNumber.String(): "current"}))

		By("renewing with the previous certificate again, as a site whose 201 was lost does")
		status, c, code := renewAt(fedURL, a)
		Expect(status).To(Equal(http.StatusCreated), code)
		withC := mtlsClient(work, &c)
		Expect(codeWith(withC, fedURL)).To(Equal("ok"))
		Expect(codeWith(withB, fedURL)).To(Equal(api.CodeStaleCertificate), "the unclaimed certificate, on its kept-alive connection")
		Eventually(crlSerials).WithArguments(work).WithTimeout(5*time.Second).WithPolling(200*time.Millisecond).
			Should(ContainElement(b.Leaf.SerialNumber.String()), "the unclaimed certificate is revoked at the CA")
		Eventually(func() string { return codeWith(mtlsClient(work, &b), fedURL) }).WithTimeout(5*time.Second).
			WithPolling(200*time.Millisecond).Should(Equal(refusedInHandshake), "a new connection with it, once the listener has the CRL")

		By("waiting out the overlap")
		Eventually(codeWith).WithArguments(withA, fedURL).WithTimeout(45 * time.Second).WithPolling(500 * time.Millisecond).
			Should(Equal(api.CodeStaleCertificate))
		Eventually(crlSerials).WithArguments(work).WithTimeout(10*time.Second).WithPolling(200*time.Millisecond).
			Should(ContainElement(a.Leaf.SerialNumber.String()), "the previous certificate is revoked at the CA once its overlap ended")
		Expect(codeWith(withC, fedURL)).To(Equal("ok"))
		Expect(codeWith(mtlsClient(work, &c), work.FederationURL)).To(Equal("ok"), "every listener of the site accepts it")

		Expect(auditOfGrant(work, g.GrantID)).To(ContainElements(
			SatisfyAll(HaveField("GrantID", g.GrantID), HaveField("Verb", "renew"), HaveField("Outcome", api.OutcomeAllowed),
				HaveField("Detail", "serial "+b.Leaf.SerialNumber.String()+" replaces "+a.Leaf.SerialNumber.String())),
			SatisfyAll(HaveField("GrantID", g.GrantID), HaveField("Verb", "renew"), HaveField("Outcome", api.OutcomeAllowed),
				HaveField("Detail", ContainSubstring("unclaimed "+b.Leaf.SerialNumber.String()+" revoked")))))
	})

	It("[M6-2] the requesting gateway renews its peer at renew_at: a steady request loop across it sees no failure", startsFirst, func(ctx SpecContext) {
		home := site("home")
		fedURL := shortLived("3m", "30s")
		g := newGrant(work, fullScope)
		// users[3] owns the peers of enrollment specs; nothing lists all of its sources.
		name, owner := uniqueName("short"), home.Users[3]
		add := cliStdin(home, atListener(g.EnrollmentURL, fedURL), "federation", "peer", "add", "-", "--name", name,
			"--local-user", owner.Email, "--json")
		Expect(add.ExitCode()).To(Equal(0), string(add.Err.Contents()))
		conn := sqlConn(ctx, home.PostgresURL)
		DeferCleanup(func(ctx context.Context) {
			// This spec's gateway stops with it: the peer must not linger as the user's.
			_, err := conn.Exec(ctx, `UPDATE federation_peers SET state = 'revoked' WHERE direction = 'outbound' AND name = $1`, name)
			Expect(err).NotTo(HaveOccurred())
		})
		before := outboundPeer(home, name)
		Expect(before.NotAfter).NotTo(BeNil())
		Expect(before.RenewAt).NotTo(BeNil())
		Expect(*before.RenewAt).To(BeTemporally("<", *before.NotAfter))
		Expect(before.RenewalError).To(BeEmpty())
		oldSerial := serialStates(work, g.GrantID)
		Expect(oldSerial).To(HaveLen(1))

		succeeded, stop := requestLoop(home, owner.Token, "federated:"+name, 1, 250*time.Millisecond)
		// Load across the switch: four clients back to back from a few seconds before
		// renew_at (a known instant, not a condition to poll) until after it.
		time.Sleep(time.Until(before.RenewAt.Add(-3 * time.Second)))
		loaded, stopLoad := requestLoop(home, owner.Token, "federated:"+name, 4, 0)
		loadStart := time.Now()
		Eventually(func() time.Time { return *outboundPeer(home, name).NotAfter }).
			WithTimeout(time.Until(*before.RenewAt) + 40*time.Second).WithPolling(500 * time.Millisecond).
			Should(BeTemporally(">", *before.NotAfter))
		// The loops keep going on the new certificate for a while.
		atSwitch, loadedAtSwitch := succeeded(), loaded()
		Eventually(loaded).WithTimeout(20 * time.Second).Should(BeNumerically(">", loadedAtSwitch+200))
		loadFailures := stopLoad()
		loadFor := time.Since(loadStart)
		Eventually(succeeded).WithTimeout(20 * time.Second).Should(BeNumerically(">", atSwitch+10))
		failures := append(stop(), loadFailures...)
		// README: requests failed during a renewal under load (goal 0).
		AddReportEntry("renewal", ReportEntryVisibilityAlways,
			fmt.Sprintf("%d requests across the renewal (one every 250 ms), %d of them from 4 clients back to back over the %.1f s around the switch (%.0f req/s); %d failed",
				succeeded()+loaded()+int64(len(failures)), loaded(), loadFor.Seconds(), float64(loaded())/loadFor.Seconds(), len(failures)))
		Expect(failures).To(BeEmpty(), "requests failed across the renewal")
		Expect(loadedAtSwitch).To(BeNumerically(">", 20), "the load ran before the renewal")
		Expect(atSwitch).To(BeNumerically(">", 20), "the loop ran before the renewal")

		after := outboundPeer(home, name)
		Expect(after.RenewalError).To(BeEmpty())
		states := serialStates(work, g.GrantID)
		Expect(states).To(HaveLen(2))
		for serial := range oldSerial {
			Expect(states[serial]).To(Equal("previous"))
		}
		Expect(auditOfGrant(home, g.GrantID)).To(ContainElement(SatisfyAll(HaveField("Direction", "outbound"), HaveField("Verb", "renew"),
			HaveField("Peer", name), HaveField("GrantID", g.GrantID), HaveField("Outcome", api.OutcomeAllowed),
			HaveField("At", BeTemporally(">=", *before.RenewAt)))))
		Expect(auditOfGrant(work, g.GrantID)).To(ContainElement(SatisfyAll(HaveField("Direction", "inbound"), HaveField("Verb", "renew"),
			HaveField("GrantID", g.GrantID), HaveField("Outcome", api.OutcomeAllowed))))
	})

	DescribeTable("[M6-3] refuses to renew for a grant no longer active, and audits the refusal",
		func(code string, end func(p peer)) {
			p := enrolledPeer(work, fullScope)
			// A connection opened before (a new one is refused in the handshake once
			// the revoked grant's serial is in the CRL).
			Expect(codeWith(p.client, work.FederationURL)).To(Equal("ok"))
			end(p)
			status, _, got := renewWith(p.client, work.FederationURL)
			Expect(status).To(Equal(http.StatusForbidden))
			Expect(got).To(Equal(code))
			Expect(serialStates(work, p.grant.GrantID)).To(HaveLen(1), "no certificate was issued")
			Expect(auditOfGrant(work, p.grant.GrantID)).To(ContainElement(SatisfyAll(HaveField("GrantID", p.grant.GrantID), HaveField("Verb", "renew"),
				HaveField("Reason", code), HaveField("Outcome", api.OutcomeDenied))))
		},
		Entry("revoked", api.CodeGrantRevoked, func(p peer) {
			cliJSON(site("work"), &api.Grant{}, "federation", "grant", "revoke", p.grant.GrantID, "--reason", "renewal spec")
		}),
		Entry("expired", api.CodeGrantExpired, func(p peer) {
			_, err := sqlConn(bgCtx(), site("work").PostgresURL).Exec(bgCtx(),
				`UPDATE federation_grants SET expires_at = now() - interval '1 second' WHERE id = $1`, p.grant.GrantID)
			Expect(err).NotTo(HaveOccurred())
		}),
	)

	It("[M6-3] refuses to renew with a certificate revoked at the CA, on a connection opened before", func() {
		p := enrolledPeer(work, fullScope)
		kept := mtlsClient(work, &p.cert)
		Expect(codeWith(kept, work.FederationURL)).To(Equal("ok"))
		revokeAtCA(work, p.serial())
		// Once a new connection is refused the listener has the CRL; the refusal below
		// is then the first of its grant, so it has a row of its own (not a flood's).
		Eventually(func() string { return codeWith(mtlsClient(work, &p.cert), work.FederationURL) }).
			WithTimeout(Timeouts.Readiness).WithPolling(200 * time.Millisecond).Should(Equal(refusedInHandshake))
		status, _, code := renewWith(kept, work.FederationURL)
		Expect(status).To(Equal(http.StatusUnauthorized))
		Expect(code).To(Equal(api.CodeCertificateRevoked))
		Expect(serialStates(work, p.grant.GrantID)).To(HaveLen(1), "no certificate was issued")
		Expect(auditOfGrant(work, p.grant.GrantID)).To(ContainElement(SatisfyAll(HaveField("GrantID", p.grant.GrantID), HaveField("Verb", "renew"),
			HaveField("Reason", api.CodeCertificateRevoked))))
	})

	It("[M6-4] step-ca's own /1.0/renew refuses a federation certificate (disableRenewal)", func() {
		p := enrolledPeer(work, fullScope)
		var out struct {
			Crt     string `json:"crt"`
			Message string `json:"message"`
		}
		status := call(http.MethodPost, work.CAURL+"/1.0/renew", &out, via(mtlsClient(work, &p.cert)))
		Expect(status).To(Equal(http.StatusUnauthorized), out.Message)
		Expect(out.Crt).To(BeEmpty())

		By("renewing a certificate of a provisioner that allows it, so the refusal is the claim's")
		key, csr := keyAndCSR(&x509.CertificateRequest{})
		token := mintTokenWith(work, world.BrokenProvisioner, map[string]any{"grant_id": uuid.NewString(), "subject_user_id": uuid.NewString()})
		status, cert, msg := sign(work, map[string]any{"csr": csr, "ott": token})
		Expect(status).To(Equal(http.StatusCreated), msg)
		other := tls.Certificate{Certificate: [][]byte{cert.Raw, intermediateOf(work)}, PrivateKey: key}
		status = call(http.MethodPost, work.CAURL+"/1.0/renew", &out, via(mtlsClient(work, &other)))
		Expect(status).To(Equal(http.StatusCreated), out.Message)
		Expect(out.Crt).NotTo(BeEmpty())
	})

	It("[M6-5] at the requesting site, a certificate that expired unrenewed is certificate_expired: in peer list and in the peer's source", startsFirst, func(ctx SpecContext) {
		home := site("home")
		fedURL, _, stopServing := ownGateway(map[string]any{"federation": map[string]any{
			"client_cert_lifetime": "2m", "renewal_overlap": "30s"}})
		g := newGrant(work, fullScope)
		name, owner := uniqueName("lapse"), home.Users[3]
		add := cliStdin(home, atListener(g.EnrollmentURL, fedURL), "federation", "peer", "add", "-", "--name", name,
			"--local-user", owner.Email, "--json")
		Expect(add.ExitCode()).To(Equal(0), string(add.Err.Contents()))
		conn := sqlConn(ctx, home.PostgresURL)
		DeferCleanup(func(ctx context.Context) {
			_, err := conn.Exec(ctx, `UPDATE federation_peers SET state = 'revoked' WHERE direction = 'outbound' AND name = $1`, name)
			Expect(err).NotTo(HaveOccurred())
		})
		p := outboundPeer(home, name)
		By("taking the serving listener away, as a site offline for days sees it")
		stopServing()
		Eventually(func() string { return outboundPeer(home, name).RenewalError }).
			WithTimeout(time.Until(*p.RenewAt) + 30*time.Second).WithPolling(2 * time.Second).ShouldNot(BeEmpty())
		Eventually(func() string { return outboundPeer(home, name).RenewalError }).
			WithTimeout(time.Until(*p.NotAfter) + 30*time.Second).WithPolling(2 * time.Second).
			Should(HavePrefix(api.CodeCertificateExpired + ":"))
		Expect(outboundPeer(home, name).RenewalError).To(ContainSubstring("peer add --replace"))
		var l api.ListOf[map[string]any]
		Expect(call(http.MethodGet, home.APIURL+"/api/v1/tasks?source=federated:"+name, &l, bearer(owner.Token))).To(Equal(http.StatusOK))
		Expect(l.Sources).To(ConsistOf(SatisfyAll(HaveField("Name", "federated:"+name), HaveField("Status", "error"),
			HaveField("Error", ContainSubstring(api.CodeCertificateExpired)))))
	})

	It("[M6-5] an expired certificate is refused in the TLS handshake and on a kept-alive connection", startsFirst, func() {
		fedURL := shortLived("2m", "30s")
		cert := enrolledAt(fedURL, newGrant(work, fullScope))
		// Two minutes from now: step-ca backdates a minute.
		Expect(time.Until(cert.Leaf.NotAfter)).To(BeNumerically("~", 2*time.Minute, 10*time.Second))
		kept := mtlsClient(work, &cert)
		Expect(codeWith(kept, fedURL)).To(Equal("ok"))
		// One request a second keeps the connection busy (the listener closes idle ones).
		Eventually(codeWith).WithArguments(kept, fedURL).WithTimeout(3 * time.Minute).WithPolling(time.Second).
			Should(Equal(api.CodeCertificateExpired))
		Expect(time.Now()).To(BeTemporally(">=", cert.Leaf.NotAfter))
		Expect(codeWith(mtlsClient(work, &cert), fedURL)).To(Equal(refusedInHandshake))
		Expect(auditOfGrant(work, extValues(cert.Leaf, api.OIDGrantID)[0])).To(ContainElement(SatisfyAll(HaveField("GrantID", extValues(cert.Leaf, api.OIDGrantID)[0]),
			HaveField("Reason", api.CodeCertificateExpired))))
	})
})
