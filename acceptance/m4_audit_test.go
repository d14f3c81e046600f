package acceptance

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"os/exec"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	"github.com/onsi/gomega/gexec"
	. "github.com/onsi/gomega/gstruct"

	"github.com/mosaic-federation/mosaic/fixtures"
	"github.com/mosaic-federation/mosaic/gateway/api"
	"github.com/mosaic-federation/mosaic/harness/world"
)

// auditRows is a site's audit log as `audit list --json` prints it, newest first.
func auditRows(config string, args ...string) []api.AuditEntry {
	GinkgoHelper()
	s := gateway(append([]string{"--config", config, "federation", "audit", "list", "--json", "--limit", "5000"}, args...)...)
	Expect(s.ExitCode()).To(Equal(0), string(s.Err.Contents()))
	var rows []api.AuditEntry
	decodeOut(s, &rows)
	return rows
}

// verifyAudit runs `audit verify --json` and returns what it said and its exit code.
func verifyAudit(config string, args ...string) (api.AuditVerify, int) {
	GinkgoHelper()
	s := gateway(append([]string{"--config", config, "federation", "audit", "verify", "--json"}, args...)...)
	var v api.AuditVerify
	decodeOut(s, &v)
	return v, s.ExitCode()
}

// ownGateway runs a gateway of the spec's own at work — work's database, Valkey and
// CA, fresh listeners, overrides deep-merged — until the spec ends or stop is called.
func ownGateway(overrides map[string]any) (fedURL, config string, stop func()) {
	GinkgoHelper()
	// The federation listener is where the requesting site's gateways reach this host:
	// a spec may enroll home at it (M6-2).
	api, fed := freeAddr(), freeAddrOn(requestingHost())
	config = siteConfig(site("work"), mergeMaps(map[string]any{
		"listen":     map[string]any{"api": api, "federation": fed},
		"federation": map[string]any{"public_url": "https://" + fed},
	}, overrides))
	cmd := exec.Command(the.GatewayBin, "serve", "--config", config)
	s, err := gexec.Start(cmd, GinkgoWriter, GinkgoWriter)
	Expect(err).NotTo(HaveOccurred())
	stop = func() { s.Terminate().Wait(Timeouts.Teardown) }
	DeferCleanup(stop)
	Eventually(readyz).WithArguments("http://" + api).WithTimeout(Timeouts.Readiness).WithPolling(Timeouts.Poll).Should(Equal(http.StatusOK))
	return "https://" + fed, config, stop
}

// from sends a client's requests from a loopback address of its own, so flood specs
// do not spend the per-address budget of every other spec.
func from(c *http.Client, ip string) *http.Client {
	d := &net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(ip)}, Timeout: Timeouts.Request}
	return &http.Client{Timeout: c.Timeout, Transport: withDial(c.Transport, d.DialContext)}
}

// rateGrant is an enrolled peer of work under a grant with a rate of its own.
func rateGrant(rate string) peer {
	GinkgoHelper()
	work := site("work")
	name := uniqueName("rate")
	cliJSON(work, &api.Peer{}, "federation", "peer", "create", "--name", name)
	var g api.GrantCreated
	cliJSON(work, &g, "federation", "grant", "create", "--peer", name, "--subject-user", work.Users[0].Email,
		"--scope", scopeFile(fullScope), "--rate", rate)
	var shown api.Grant
	cliJSON(work, &shown, "federation", "grant", "show", g.GrantID)
	Expect(shown.RateLimit).To(Equal(rate), "grant show prints the grant's own rate")
	return enrolledAs(work, g)
}

// floodWindow is how long one key's refusals share a summary row (audit.FloodWindow).
const floodWindow = time.Minute

// statusAt sends one capabilities request as p to a federation listener.
func statusAt(p peer, fedURL string) (int, http.Header) {
	GinkgoHelper()
	resp, err := send(http.MethodGet, fedURL+"/api/federation/v1/capabilities", via(p.client))
	Expect(err).NotTo(HaveOccurred())
	_, _ = io.Copy(io.Discard, resp.Body) // read to its end, so the connection is kept for the next
	resp.Body.Close()
	return resp.StatusCode, resp.Header
}

var _ = Describe("The audit trail", Label("M4", "security"), func() {
	It("[M4-5] writes one row per request on each side, joined by the peer request id and the trace id, with no row content", func() {
		home, work := site("home"), site("work")
		traceID := hex.EncodeToString(randomBytes(16))
		var page api.ListOf[map[string]any]
		resp, err := send(http.MethodGet, home.APIURL+"/api/v1/tasks?source=federated:work&limit=5", bearer(home.Users[0].Token),
			header("traceparent", "00-"+traceID+"-"+hex.EncodeToString(randomBytes(8))+"-01"))
		Expect(err).NotTo(HaveOccurred())
		Expect(json.NewDecoder(resp.Body).Decode(&page)).To(Succeed())
		resp.Body.Close()
		Expect(resp.StatusCode).To(Equal(http.StatusOK))
		Expect(page.Sources).To(ConsistOf(HaveField("Status", "ok")))
		Expect(page.Items).NotTo(BeEmpty())

		ofTrace := func(rows []api.AuditEntry) []api.AuditEntry {
			var out []api.AuditEntry
			for _, r := range rows {
				if strings.Contains(r.Traceparent, traceID) {
					out = append(out, r)
				}
			}
			return out
		}
		By("home's one outbound row (written without holding up the answer)")
		var out []api.AuditEntry
		Eventually(func() []api.AuditEntry { out = ofTrace(auditRows(home.Config)); return out }).
			WithTimeout(Timeouts.Readiness).Should(HaveLen(1))
		Expect(out[0]).To(And(HaveField("Direction", "outbound"), HaveField("Peer", "work"), HaveField("Verb", "list"),
			HaveField("Resource", "tasks"), HaveField("Outcome", api.OutcomeAllowed), HaveField("Rows", len(page.Items))))
		Expect(out[0].LocalUserID).NotTo(BeEmpty())

		By("work's one inbound row, joined on the peer request id, in the same trace")
		var in []api.AuditEntry
		for _, r := range auditRows(work.Config) {
			if r.PeerRequestID == out[0].RequestID {
				in = append(in, r)
			}
		}
		Expect(in).To(HaveLen(1))
		Expect(in[0]).To(And(HaveField("Direction", "inbound"), HaveField("Verb", "list"), HaveField("Resource", "tasks"),
			HaveField("Status", http.StatusOK), HaveField("Rows", len(page.Items)), HaveField("ClientAddr", linkSource("home", "work"))))
		Expect(in[0].Traceparent).To(ContainSubstring(traceID))
		Expect(in[0].RequestID).NotTo(Equal(out[0].RequestID), "the serving side keeps an id of its own")

		By("neither row holds a row's content")
		rowsJSON, _ := json.Marshal([]api.AuditEntry{out[0], in[0]})
		for _, it := range page.Items {
			Expect(string(rowsJSON)).NotTo(ContainSubstring(it["title"].(string)))
			Expect(string(rowsJSON)).NotTo(ContainSubstring(it["id"].(string)))
		}
	})

	DescribeTable("[M4-6] audit verify finds a chain edited by the database's superuser",
		func(ctx SpecContext, tamper func(conn *pgx.Conn, seqs []int64) (bad int64, reason string)) {
			work := site("work")
			dbURL := freshDatabase(ctx, "audit")
			config := siteConfig(work, map[string]any{"storage": map[string]any{"postgres_url_file": secretFile(work, dbURL)}})
			for range 6 {
				Expect(gateway("--config", config, "federation", "peer", "create", "--name", uniqueName("a")).ExitCode()).To(Equal(0))
			}
			v, code := verifyAudit(config)
			Expect(code).To(Equal(0))
			Expect(v).To(And(HaveField("OK", true), HaveField("Rows", BeNumerically(">=", 6))))

			conn := sqlConn(ctx, dbURL)
			var seqs []int64
			rows, err := conn.Query(ctx, `SELECT seq FROM federation_audit_log ORDER BY seq`)
			Expect(err).NotTo(HaveOccurred())
			seqs, err = pgx.CollectRows(rows, pgx.RowTo[int64])
			Expect(err).NotTo(HaveOccurred())
			bad, reason := tamper(conn, seqs)

			v, code = verifyAudit(config)
			Expect(code).To(Equal(1))
			Expect(v.OK).To(BeFalse())
			Expect(v.FirstBad).To(PointTo(And(HaveField("Seq", bad), HaveField("Reason", reason))))
		},
		Entry("an UPDATE of a middle row", func(conn *pgx.Conn, seqs []int64) (int64, string) {
			execSQL(conn, `UPDATE federation_audit_log SET detail = 'nothing happened' WHERE seq = $1`, seqs[2])
			return seqs[2], "mac_mismatch"
		}),
		Entry("an UPDATE whose hash is recomputed without the key (as the old unkeyed formula)", func(conn *pgx.Conn, seqs []int64) (int64, string) {
			execSQL(conn, `UPDATE federation_audit_log SET detail = 'nothing happened' WHERE seq = $1`, seqs[2])
			rehashUnkeyed(conn, seqs[2])
			return seqs[2], "mac_mismatch"
		}),
		Entry("the DELETE of a middle row", func(conn *pgx.Conn, seqs []int64) (int64, string) {
			execSQL(conn, `DELETE FROM federation_audit_log WHERE seq = $1`, seqs[2])
			return seqs[3], "broken_link"
		}),
		Entry("a swap of two rows", func(conn *pgx.Conn, seqs []int64) (int64, string) {
			execSQL(conn, `UPDATE federation_audit_log SET seq = -1 WHERE seq = $1`, seqs[1])
			execSQL(conn, `UPDATE federation_audit_log SET seq = $1 WHERE seq = $2`, seqs[1], seqs[3])
			execSQL(conn, `UPDATE federation_audit_log SET seq = $1 WHERE seq = -1`, seqs[3])
			return seqs[1], "broken_link"
		}),
	)

	It("[M4-6] audit verify --since-head catches the newest rows cut off", func(ctx SpecContext) {
		work := site("work")
		dbURL := freshDatabase(ctx, "audit")
		config := siteConfig(work, map[string]any{"storage": map[string]any{"postgres_url_file": secretFile(work, dbURL)}})
		for range 3 {
			Expect(gateway("--config", config, "federation", "peer", "create", "--name", uniqueName("a")).ExitCode()).To(Equal(0))
		}
		s := gateway("--config", config, "federation", "audit", "head", "--json")
		Expect(s.ExitCode()).To(Equal(0))
		var head api.AuditHead
		decodeOut(s, &head)
		for range 2 {
			Expect(gateway("--config", config, "federation", "peer", "create", "--name", uniqueName("a")).ExitCode()).To(Equal(0))
		}
		v, code := verifyAudit(config, "--since-head", head.Head)
		Expect(code).To(Equal(0), "%+v", v)

		conn := sqlConn(ctx, dbURL)
		execSQL(conn, `DELETE FROM federation_audit_log WHERE seq >= $1`, head.Seq)
		_, code = verifyAudit(config)
		Expect(code).To(Equal(0), "without a head, a cut-off tail is a shorter good chain")
		v, code = verifyAudit(config, "--since-head", head.Head)
		Expect(code).To(Equal(1))
		Expect(v.FirstBad).To(PointTo(And(HaveField("Seq", head.Seq), HaveField("Reason", "head_missing"))))
	})
})

var _ = Describe("Rate limits", Label("M4"), func() {
	It("[M4-7] lets a grant's burst pass, then answers 429 with Retry-After, one limit across two replicas", func() {
		// Per minute: a token comes back after 30 s, not 500 ms, which three requests
		// on a loaded machine (each one answered once its audit row is written) can take.
		p := rateGrant("2/m")
		replica, _, _ := ownGateway(nil)
		for i := range 2 {
			code, _ := statusAt(p, site("work").FederationURL)
			Expect(code).To(Equal(http.StatusOK), "request %d of the burst", i+1)
		}
		code, h := statusAt(p, replica)
		Expect(code).To(Equal(http.StatusTooManyRequests), "the other replica shares the limit")
		Expect(h.Get("Retry-After")).To(MatchRegexp(`^[1-9][0-9]*$`))
		Expect(auditRows(site("work").Config, "--grant", p.grant.GrantID)).To(ContainElement(And(
			HaveField("Reason", api.CodeRateLimited), HaveField("Status", http.StatusTooManyRequests))))
	})
})

var _ = Describe("Rate limits without Valkey", Label("M4"), Serial, func() {
	It("[M4-8] fall back to each replica's memory at the same rate, say degraded, and share again once Valkey is back", func(ctx SpecContext) {
		work := shared.Site("work")
		// Per minute: a token comes back after 30 s, not 500 ms, which three requests
		// on a loaded machine (each one answered once its audit row is written) can take.
		p := rateGrant("2/m")
		replica, _, _ := ownGateway(nil)
		main := site("work").FederationURL
		burst := func(to ...string) []int {
			var codes []int
			for _, u := range to {
				code, _ := statusAt(p, u)
				codes = append(codes, code)
			}
			return codes
		}

		By("stopping Valkey: limits still hold, per replica, and /readyz says degraded")
		Expect(work.Valkey.Stop(ctx)).To(Succeed())
		DeferCleanup(func(ctx SpecContext) {
			if !work.Valkey.Running() {
				Expect(work.Valkey.Start(ctx)).To(Succeed())
			}
		})
		Expect(burst(main, main, main)).To(Equal([]int{200, 200, 429}), "never unlimited")
		Expect(burst(replica, replica)).To(Equal([]int{200, 200}), "never refusing everything: its own memory")
		var h api.Health
		Expect(call(http.MethodGet, site("work").APIURL+"/readyz", &h)).To(Equal(http.StatusOK))
		Expect(h.Status).To(Equal("degraded"))

		By("starting Valkey: one limit across the replicas again")
		Expect(work.Valkey.Start(ctx)).To(Succeed())
		// Each try waits out the burst's refill (2/s), so it starts from a full budget.
		Eventually(func() []int { return burst(main, main, replica) }).WithPolling(1500 * time.Millisecond).
			WithTimeout(Timeouts.Readiness).Should(Equal([]int{200, 200, 429}))
	}, SpecTimeout(Timeouts.Boot))
})

var _ = Describe("Floods", Label("M4", "security"), func() {
	It("[M4-9] turn 10,000 unauthenticated requests into a few audit rows, while a forged certificate's refusals are each a row", startsFirst, func(ctx SpecContext) {
		start := time.Now().Add(-time.Second)
		// Refusals are not held here (EDGE-6 holds them), so 10,000 take seconds, not hours.
		fed, _, stop := ownGateway(map[string]any{"federation": map[string]any{"rate_limit": map[string]any{
			"per_grant": "20/s", "burst": 40, "per_address": "10/s", "refusal_hold": "0s"}}})
		work := site("work")

		By("10,000 requests without a certificate from 127.0.0.2")
		anon := from(mtlsClient(work, nil), "127.0.0.2")
		codes := map[int]int{}
		for range 10000 {
			resp, err := send(http.MethodGet, fed+"/api/federation/v1/capabilities", via(anon))
			Expect(err).NotTo(HaveOccurred())
			_, _ = io.Copy(io.Discard, resp.Body) // read to its end: one kept connection, not 10,000 handshakes
			resp.Body.Close()
			codes[resp.StatusCode]++
		}
		// Each reason's refusals share one row per flood window (a minute): on a slow
		// machine the 10,000 may span a second window.
		windows := int(time.Since(start)/floodWindow) + 1
		Expect(codes[http.StatusUnauthorized] + codes[http.StatusTooManyRequests]).To(Equal(10000))
		Expect(codes[http.StatusTooManyRequests]).To(BeNumerically(">", 9000), "the address is limited")

		By("five requests with a forged certificate from 127.0.0.3")
		forged := from(forgedNoIdentity(work), "127.0.0.3")
		for range 5 {
			Expect(call(http.MethodGet, fed+"/api/federation/v1/capabilities", nil, via(forged))).To(Equal(http.StatusUnauthorized))
		}

		By("the per-address limit on what needs no certificate")
		roots := from(mtlsClient(work, nil), "127.0.0.4")
		limited := 0
		for range 30 {
			if call(http.MethodGet, fed+"/api/federation/v1/ca/root", nil, via(roots)) == http.StatusTooManyRequests {
				limited++
			}
		}
		Expect(limited).To(BeNumerically(">", 0))

		By("stopping the gateway, which writes the open windows' summaries")
		stop()
		conn := sqlConn(ctx, work.PostgresURL)
		var rows, total int
		Expect(conn.QueryRow(ctx, `SELECT count(*), coalesce(sum(count), 0) FROM federation_audit_log
			WHERE client_addr = '127.0.0.2' AND at >= $1`, start).Scan(&rows, &total)).To(Succeed())
		Expect(rows).To(BeNumerically("<=", 2*2*windows+2), "a few rows: per reason (two) and window, its first and a summary")
		Expect(total).To(Equal(10000), "the summaries count every refusal")
		var forgedRows int
		Expect(conn.QueryRow(ctx, `SELECT count(*) FROM federation_audit_log
			WHERE client_addr = '127.0.0.3' AND reason = 'identity_missing' AND count = 1 AND at >= $1`, start).Scan(&forgedRows)).To(Succeed())
		Expect(forgedRows).To(Equal(5))
	}, SpecTimeout(2*Timeouts.Boot))
})

// forgedNoIdentity is a client whose certificate chains to work's CA (its stolen
// intermediate) and names the federation provisioner, but carries no identity.
func forgedNoIdentity(s world.SiteInfo) *http.Client {
	GinkgoHelper()
	is, inter := stolenIntermediate(s)
	cert, err := is.ClientCert("forged", []fixtures.Ext{federationProvisioner()}, inter)
	Expect(err).NotTo(HaveOccurred())
	return mtlsClient(s, cert)
}

// rehashUnkeyed recomputes a row's hash as the unkeyed formula of the legacy rows
// would, marks it a legacy row, and links the next row to it: all an attacker without
// the audit key can do.
func rehashUnkeyed(conn *pgx.Conn, seq int64) {
	GinkgoHelper()
	ctx := context.Background()
	var at time.Time
	var rid, actor, action, outcome, reason, grant, peerID, detail string
	var prev []byte
	Expect(conn.QueryRow(ctx, `SELECT at, request_id, actor, action, outcome, reason, coalesce(grant_id::text, ''),
		coalesce(peer_id::text, ''), detail, prev_hash FROM federation_audit_log WHERE seq = $1`, seq).
		Scan(&at, &rid, &actor, &action, &outcome, &reason, &grant, &peerID, &detail, &prev)).To(Succeed())
	fields, _ := json.Marshal([]string{at.UTC().Format(time.RFC3339Nano), rid, actor, action, outcome, reason, grant, peerID, detail})
	h := sha256.New()
	h.Write(prev)
	h.Write(fields)
	sum := h.Sum(nil)
	execSQL(conn, `UPDATE federation_audit_log SET version = 1, hash = $1 WHERE seq = $2`, sum, seq)
	execSQL(conn, `UPDATE federation_audit_log SET prev_hash = $1 WHERE seq = (SELECT min(seq) FROM federation_audit_log WHERE seq > $2)`, sum, seq)
}

func execSQL(conn *pgx.Conn, sql string, args ...any) {
	GinkgoHelper()
	_, err := conn.Exec(context.Background(), sql, args...)
	Expect(err).NotTo(HaveOccurred())
}

func randomBytes(n int) []byte {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return b
}

var _ = Describe("Changes between processes", Label("M4"), func() {
	It("[CHG-1] are announced with LISTEN/NOTIFY: a token made and a grant revoked by the CLI reach a listener at once", func(ctx SpecContext) {
		work := site("work")
		conn := sqlConn(ctx, work.PostgresURL)
		execSQL(conn, `LISTEN mosaic_changes`)
		g := newGrant(work, fullScope)
		Expect(cli(work, "federation", "grant", "revoke", g.GrantID).ExitCode()).To(Equal(0))
		seen := map[string]bool{}
		for !seen["token "+g.GrantID] || !seen["grant "+g.GrantID] {
			wctx, cancel := context.WithTimeout(ctx, Timeouts.Request)
			n, err := conn.WaitForNotification(wctx)
			cancel()
			Expect(err).NotTo(HaveOccurred(), "seen so far: %v", seen)
			var c struct{ Kind, ID string }
			Expect(json.Unmarshal([]byte(n.Payload), &c)).To(Succeed())
			seen[c.Kind+" "+c.ID] = true
		}
	}, SpecTimeout(Timeouts.CLI))
})
