package acceptance

import (
	"fmt"
	"net/http"
	"time"

	"github.com/jackc/pgx/v5"
	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	"github.com/pgvector/pgvector-go"
	pgxvec "github.com/pgvector/pgvector-go/pgx"

	"github.com/mosaic-federation/mosaic/gateway/api"
	"github.com/mosaic-federation/mosaic/harness/world"
)

var _ = Describe("Tiers: the federated world", Label("M1"), func() {
	DescribeTable("[M1-1] boots a federated gateway whose /readyz answers 200 with storage and Valkey up",
		func(ctx SpecContext, name string) {
			var h api.Health
			status := call(http.MethodGet, site(name).APIURL+"/readyz", &h)
			Expect(status).To(Equal(http.StatusOK))
			Expect(h.Status).To(Equal("ready"))
			Expect(h.Checks).To(ConsistOf(
				HaveField("Name", "storage"), HaveField("Name", "valkey")))
			for _, c := range h.Checks {
				Expect(c.Status).To(Equal("up"), c.Name)
			}
		},
		Entry("home", SpecTimeout(Timeouts.Request), "home"),
		Entry("work", SpecTimeout(Timeouts.Request), "work"))

	DescribeTable("[M1-5] round-trips a vector(3) through pgvector",
		func(ctx SpecContext, name string) {
			conn, err := pgx.Connect(ctx, site(name).PostgresURL)
			Expect(err).NotTo(HaveOccurred())
			DeferCleanup(func(ctx SpecContext) { conn.Close(ctx) })
			Expect(pgxvec.RegisterTypes(ctx, conn)).To(Succeed())

			table := fmt.Sprintf("vec_roundtrip_%d_%d", GinkgoParallelProcess(), time.Now().UnixNano())
			_, err = conn.Exec(ctx, "CREATE TABLE "+table+" (id int PRIMARY KEY, v vector(3))")
			Expect(err).NotTo(HaveOccurred())
			DeferCleanup(func(ctx SpecContext) { _, _ = conn.Exec(ctx, "DROP TABLE "+table) })

			in := pgvector.NewVector([]float32{1.5, -2, 3.25})
			_, err = conn.Exec(ctx, "INSERT INTO "+table+" VALUES (1, $1)", in)
			Expect(err).NotTo(HaveOccurred())
			var out pgvector.Vector
			var dist float64
			Expect(conn.QueryRow(ctx, "SELECT v, v <-> '[1.5,-2,3.25]' FROM "+table+" WHERE id = 1").
				Scan(&out, &dist)).To(Succeed())
			Expect(out.Slice()).To(Equal(in.Slice()))
			Expect(dist).To(BeZero())

			_, err = conn.Exec(ctx, "INSERT INTO "+table+" VALUES (2, '[1,2]')")
			Expect(err).To(MatchError(ContainSubstring("expected 3 dimensions")))
		},
		Entry("home", SpecTimeout(Timeouts.Request), "home"),
		Entry("work", SpecTimeout(Timeouts.Request), "work"))
})

var _ = Describe("A site's services", Label("harness"), func() {
	It("[H-4] stop, start and restart; the gateway's readiness follows; teardown leaves no process", func(ctx SpecContext) {
		By("booting a one-site world of its own")
		w, err := world.Up(ctx, world.Options{Sites: []string{"solo"}, Backend: newBackend(the.BinDir),
			GatewayBin: the.GatewayBin, Progress: GinkgoWriter})
		Expect(err).NotTo(HaveOccurred())
		DeferCleanup(w.Down)
		s := w.Site("solo")
		ready := func() int { return readyz(s.Gateway.APIURL) }
		Expect(ready()).To(Equal(http.StatusOK))

		By("stopping Valkey: /readyz still answers 200, degraded, with the Valkey check down")
		Expect(s.Valkey.Stop(ctx)).To(Succeed())
		Expect(s.Valkey.Running()).To(BeFalse())
		health := func() api.Health {
			var h api.Health
			Expect(call(http.MethodGet, s.Gateway.APIURL+"/readyz", &h)).To(Equal(http.StatusOK))
			return h
		}
		Eventually(health).WithTimeout(Timeouts.Readiness).Should(And(HaveField("Status", "degraded"),
			HaveField("Checks", ContainElement(And(HaveField("Name", "valkey"), HaveField("Status", "down"))))))
		By("starting it again: ready")
		Expect(s.Valkey.Start(ctx)).To(Succeed())
		Eventually(health).WithTimeout(Timeouts.Readiness).Should(HaveField("Status", "ready"))

		By("killing PostgreSQL: 503, then restart: 200")
		Expect(s.Postgres.Kill()).To(Succeed())
		Eventually(ready).WithTimeout(Timeouts.Readiness).Should(Equal(http.StatusServiceUnavailable))
		Expect(s.Postgres.Start(ctx)).To(Succeed())
		Eventually(ready).WithTimeout(Timeouts.Readiness).Should(Equal(http.StatusOK))

		By("restarting the gateway on the same address")
		oldPid := s.Gateway.Pid()
		Expect(s.Gateway.Restart(ctx)).To(Succeed())
		Expect(s.Gateway.Pid()).NotTo(Equal(oldPid))
		Expect(ready()).To(Equal(http.StatusOK))

		By("starting an extra gateway with a config override")
		extra, err := s.StartGateway(ctx, "extra", map[string]any{"site": "solo-extra"})
		Expect(err).NotTo(HaveOccurred())
		Expect(extra.APIURL).NotTo(Equal(s.Gateway.APIURL))
		Expect(extra.Running()).To(BeTrue())

		By("tearing down: no process of the run is left")
		runDir, pgids := w.RunDir, w.ProcessGroups()
		Expect(pgids).To(HaveLen(5)) // step-ca, postgres, valkey, two gateways
		w.Down()
		Eventually(func() []string { return leftovers(runDir) }).
			WithTimeout(Timeouts.Teardown).Should(BeEmpty())
		Expect(runDir).NotTo(BeADirectory())
	}, SpecTimeout(Timeouts.Boot))
})
