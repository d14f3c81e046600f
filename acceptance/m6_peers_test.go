package acceptance

import (
	"net/http"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"

	"github.com/mosaic-federation/mosaic/gateway/api"
)

var _ = Describe("Peer commands", Label("M6", "security"), func() {
	It("[PEER-1] peer suspend, resume and revoke apply to the serving site's next request; revoke takes the grants and certificates with it", func() {
		work := site("work")
		p := enrolledPeer(work, fullScope)
		name := p.grant.Peer
		next := func() (int, string) {
			var e api.ErrorBody
			status := p.call(http.MethodGet, "/capabilities", nil, &e)
			return status, e.Error.Code
		}
		Expect(next()).To(Equal(http.StatusOK))

		var shown api.Peer
		cliJSON(work, &shown, "federation", "peer", "suspend", name)
		Expect(shown.State).To(Equal("suspended"))
		status, code := next()
		Expect(status).To(Equal(http.StatusForbidden))
		Expect(code).To(Equal(api.CodePeerNotActive))
		Expect(cli(work, "federation", "peer", "suspend", name).ExitCode()).NotTo(Equal(0), "suspending a suspended peer")

		cliJSON(work, &shown, "federation", "peer", "resume", name)
		Expect(shown.State).To(Equal("active"))
		Expect(next()).To(Equal(http.StatusOK))

		cliJSON(work, &shown, "federation", "peer", "revoke", name)
		Expect(shown.State).To(Equal("revoked"))
		status, _ = next()
		Expect(status).To(Equal(http.StatusForbidden))
		var g api.Grant
		cliJSON(work, &g, "federation", "grant", "show", p.grant.GrantID)
		Expect(g.Status).To(Equal("revoked"))
		Eventually(crlSerials).WithArguments(work).WithTimeout(2 * time.Second).WithPolling(100 * time.Millisecond).
			Should(ContainElement(p.serial()))
		Expect(cli(work, "federation", "peer", "resume", name).ExitCode()).NotTo(Equal(0), "revoked is final")
		Expect(auditOf(work)).To(ContainElements(
			And(HaveField("Action", "peer.suspend"), HaveField("PeerID", shown.ID)),
			And(HaveField("Action", "peer.resume"), HaveField("PeerID", shown.ID)),
			And(HaveField("Action", "peer.revoke"), HaveField("PeerID", shown.ID)),
			And(HaveField("Action", "grant.revoke"), HaveField("GrantID", p.grant.GrantID))))
	})

	It("[PEER-2] peer add --replace swaps in a new enrollment only once it succeeded; peer remove deletes the certificate and key", func(ctx SpecContext) {
		home, work := site("home"), site("work")
		// users[3] is a user of the specs that give it peers of their own ([M2-5]).
		owner := home.Users[3]
		name := uniqueName("repl")
		first := newGrant(work, fullScope)
		add := func(url string, extra ...string) int {
			args := append([]string{"federation", "peer", "add", "-", "--name", name, "--local-user", owner.Email, "--json"}, extra...)
			return cliStdin(home, url, args...).ExitCode()
		}
		Expect(add(first.EnrollmentURL)).To(Equal(0))
		readable := func() int {
			return call(http.MethodGet, home.APIURL+"/api/v1/tasks?source=federated:"+name, nil, bearer(owner.Token))
		}
		grantAtHome := func() string {
			var g string
			Expect(sqlConn(ctx, home.PostgresURL).QueryRow(ctx, `SELECT grant_id::text FROM federation_peers
				WHERE direction = 'outbound' AND name = $1`, name).Scan(&g)).To(Succeed())
			return g
		}
		Expect(readable()).To(Equal(http.StatusOK))

		By("adding the name again without --replace, or replacing with a spent token: refused, the old enrollment stays")
		Expect(add(newGrant(work, fullScope).EnrollmentURL)).NotTo(Equal(0))
		Expect(add(first.EnrollmentURL, "--replace")).NotTo(Equal(0))
		Expect(grantAtHome()).To(Equal(first.GrantID))
		Expect(readable()).To(Equal(http.StatusOK))

		By("replacing with a fresh grant: the same peer, the new grant's certificate")
		second := newGrant(work, fullScope)
		Expect(add(second.EnrollmentURL, "--replace")).To(Equal(0))
		Expect(grantAtHome()).To(Equal(second.GrantID))
		Expect(readable()).To(Equal(http.StatusOK))
		var verified api.PeerVerified
		cliJSON(home, &verified, "federation", "peer", "verify", name, "--local-user", owner.Email)
		Expect(verified.KeyMatches).To(BeTrue())

		By("removing it: no row, no certificate, no key; the name no longer resolves")
		cliJSON(home, &api.Peer{}, "federation", "peer", "remove", name, "--local-user", owner.Email)
		var rows int
		Expect(sqlConn(ctx, home.PostgresURL).QueryRow(ctx, `SELECT count(*) FROM federation_peers
			WHERE direction = 'outbound' AND name = $1`, name).Scan(&rows)).To(Succeed())
		Expect(rows).To(BeZero())
		var e api.ErrorBody
		Expect(call(http.MethodGet, home.APIURL+"/api/v1/tasks?source=federated:"+name, &e, bearer(owner.Token))).To(Equal(http.StatusNotFound))
		Expect(e.Error.Code).To(Equal(api.CodeUnknownPeer))
	})
})
