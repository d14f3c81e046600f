package acceptance

import (
	"encoding/json"
	"net/http"
	"os"
	"path/filepath"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	"github.com/onsi/gomega/gbytes"
	"github.com/onsi/gomega/gexec"

	"github.com/mosaic-federation/mosaic/harness/world"
	"github.com/mosaic-federation/mosaic/harness/world/process"
)

var _ = Describe("The harness command", Label("harness"), func() {
	It("[H-3] runs a detached world that status --json describes and down removes without a trace", func(ctx SpecContext) {
		statePath := filepath.Join(GinkgoT().TempDir(), "state.json")
		env := []string{"MOSAIC_HARNESS_STATE=" + statePath, "MOSAIC_BIN_DIR=" + the.BinDir}
		harness := func(args ...string) *gexec.Session { return run(env, the.HarnessBin, args...) }

		By("refusing status and down when no world runs")
		Expect(harness("status").ExitCode()).NotTo(Equal(0))

		up := harness(append([]string{"up", "--detach", "--gateway-bin", the.GatewayBin, "--wan-latency", "5ms"}, backendFlag()...)...)
		Expect(up.ExitCode()).To(Equal(0))
		Expect(up.Out).To(gbytes.Say("world ready in"))
		DeferCleanup(func() { harness("down") })

		By("keeping the state file private")
		st, err := os.Stat(statePath)
		Expect(err).NotTo(HaveOccurred())
		Expect(st.Mode().Perm()).To(Equal(os.FileMode(0o600)))

		By("refusing a second world while one runs")
		Expect(harness(append([]string{"up", "--detach", "--gateway-bin", the.GatewayBin}, backendFlag()...)...).ExitCode()).NotTo(Equal(0))

		status := harness("status", "--json")
		Expect(status.ExitCode()).To(Equal(0))
		var d world.Description
		decodeOut(status, &d)
		Expect(d.RunDir).To(BeADirectory())
		Expect(d.Sites).To(HaveKey("home"))
		Expect(d.Sites).To(HaveKey("work"))
		By("listing both user pairs: users[0] through peer work, users[1] through work-2 (SPEC §6a multi-user)")
		Expect(d.Grants).To(ConsistOf(
			And(HaveField("Owner", d.Sites["home"].Users[0].Email), HaveField("Subject", d.Sites["work"].Users[0].Email), HaveField("OwnerPeer", "work")),
			And(HaveField("Owner", d.Sites["home"].Users[1].Email), HaveField("Subject", d.Sites["work"].Users[1].Email), HaveField("OwnerPeer", "work-2"),
				HaveField("Personal", true))))
		for name, s := range d.Sites {
			for field, p := range map[string]string{"ca_root": s.CARoot, "config": s.Config} {
				Expect(filepath.IsAbs(p)).To(BeTrue(), "%s.%s", name, field)
				Expect(p).To(BeARegularFile(), "%s.%s", name, field)
			}
			Expect(s.PostgresURL).To(HavePrefix("postgres://"))
			Expect(s.ValkeyURL).To(HavePrefix("redis://"))
			// Loopback on the process backend; the containers' own addresses on docker.
			local := "https://127.0.0.1:"
			if onDocker() {
				local = "https://10.242."
			}
			Expect(s.CAURL).To(HavePrefix(local))
			Expect(s.FederationURL).To(HavePrefix(local))
			Expect(call(http.MethodGet, s.APIURL+"/readyz", nil)).To(Equal(http.StatusOK), name)
		}

		By("putting home's peer behind a Toxiproxy link with --wan-latency")
		Expect(d.Links).To(ConsistOf(And(HaveField("From", "home"), HaveField("To", "work"), HaveField("LatencyMS", int64(5)),
			HaveField("Upstream", hostPort(d.Sites["work"].FederationURL)))))
		Expect(d.Sites["work"].PublicURL).To(Equal("https://"+d.Links[0].Listen), "work's public URL is the link's")
		var l struct {
			Sources []struct{ Name, Status string } `json:"sources"`
		}
		Expect(call(http.MethodGet, d.Sites["home"].APIURL+"/api/v1/tasks?source=all", &l,
			bearer(d.Sites["home"].Users[0].Token))).To(Equal(http.StatusOK))
		Expect(l.Sources).To(ContainElement(And(HaveField("Name", "federated:work"), HaveField("Status", "ok"))))

		var owner struct { // the harness's state file (package main's type)
			Pid int `json:"pid"`
		}
		b, err := os.ReadFile(statePath)
		Expect(err).NotTo(HaveOccurred())
		Expect(json.Unmarshal(b, &owner)).To(Succeed())
		Expect(leftovers(d.RunDir)).NotTo(BeEmpty())

		down := harness("down")
		Expect(down.ExitCode()).To(Equal(0))
		Expect(process.Alive(owner.Pid)).To(BeFalse())
		Expect(owner.Pid).NotTo(BeZero())
		Eventually(func() []string { return leftovers(d.RunDir) }).
			WithTimeout(Timeouts.Teardown).Should(BeEmpty())
		Expect(d.RunDir).NotTo(BeADirectory())
		Expect(statePath).NotTo(BeAnExistingFile())
		Expect(harness("status").ExitCode()).NotTo(Equal(0))
	}, SpecTimeout(Timeouts.Boot))
})
