// Package acceptance is the Ginkgo v2 suite that drives real servers — step-ca,
// PostgreSQL with pgvector, Valkey and the gateways — booted once per run by the
// harness library, and the real CLI binaries. Nothing here is a mock.
package acceptance

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	"github.com/onsi/gomega/gexec"

	"github.com/mosaic-federation/mosaic/harness/world"
)

func TestAcceptance(t *testing.T) {
	RegisterFailHandler(Fail)
	RunSpecs(t, "Mosaic federation acceptance")
}

// suite is what process 1 hands every process: the world's description and the
// binaries it built.
type suite struct {
	World      world.Description `json:"world"`
	GatewayBin string            `json:"gateway_bin"`
	HarnessBin string            `json:"harness_bin"`
	BinDir     string            `json:"bin_dir"` // step-ca and step
	Backend    string            `json:"backend"` // process or docker (MOSAIC_BACKEND)
}

var (
	the suite
	// shared is the booted world, on process 1 only: Serial specs (which Ginkgo runs on
	// process 1) use it to stop and start shared services.
	shared *world.World
)

var _ = SynchronizedBeforeSuite(func(ctx SpecContext) []byte {
	s := suite{BinDir: world.DefaultBinDir(), Backend: suiteBackendName()}
	var err error
	By("building the gateway and harness binaries")
	var env []string
	if s.Backend == backendDocker {
		env = []string{"CGO_ENABLED=0"} // the gateway containers run it on scratch
	}
	s.GatewayBin, err = gexec.BuildWithEnvironment("github.com/mosaic-federation/mosaic/gateway", env)
	Expect(err).NotTo(HaveOccurred())
	s.HarnessBin, err = gexec.Build("github.com/mosaic-federation/mosaic/harness")
	Expect(err).NotTo(HaveOccurred())

	By("booting the two-site world on the " + s.Backend + " backend")
	shared, err = world.Up(ctx, world.Options{
		Backend:    newBackend(s.BinDir),
		GatewayBin: s.GatewayBin,
		Progress:   GinkgoWriter,
		KeepRunDir: os.Getenv("MOSAIC_KEEP_RUN_DIR") != "",
		// Home reaches every serving site through a Toxiproxy link, at no latency,
		// so that any spec can slow or cut it (SPEC §6a).
		Links: true,
		// The M2/M3/M6 specs mint tokens at BrokenProvisioner (no OIDs) to prove
		// gateways refuse what it issues.
		TestProvisioner: true,
		// Limits no parallel spec trips (SPEC §6a); specs of the limits make grants
		// and gateways of their own.
		// Fresh cache hits off (SPEC §6a): a spec sees the peer's rows as they are now;
		// the cache's spec runs a gateway of its own with a ttl.
		GatewayOverrides: map[string]any{"federation": map[string]any{"rate_limit": map[string]any{
			"per_grant": "100000/s", "burst": 100000, "per_address": "100000/s"},
			"cache": map[string]any{"ttl": "0s"}}},
	})
	Expect(err).NotTo(HaveOccurred())
	fmt.Fprintf(GinkgoWriter, "world booted in %.1fs at %s\n", shared.BootTime.Seconds(), shared.RunDir)
	s.World = shared.Describe()
	b, err := json.Marshal(s)
	Expect(err).NotTo(HaveOccurred())
	return b
}, func(b []byte) {
	Expect(json.Unmarshal(b, &the)).To(Succeed())
}, NodeTimeout(Timeouts.Boot))

var _ = SynchronizedAfterSuite(func() {}, func() {
	if shared == nil {
		return
	}
	runDir := shared.RunDir
	shared.Down()
	gexec.CleanupBuildArtifacts()
	Eventually(func() []string { return leftovers(runDir) }).
		WithTimeout(Timeouts.Teardown).Should(BeEmpty(), "processes or containers of the run left after teardown")
})

// On a failed spec, print the tail of every service's log of the shared world.
var _ = AfterEach(func() {
	if !CurrentSpecReport().Failed() {
		return
	}
	for name, site := range the.World.Sites {
		logs, _ := filepath.Glob(filepath.Join(site.Dir, "logs", "*.log"))
		for _, l := range logs {
			fmt.Fprintf(GinkgoWriter, "\n--- %s: %s (last lines)\n%s\n", name, filepath.Base(l), tail(l, 25))
		}
	}
	if len(the.World.Links) > 0 {
		l := filepath.Join(the.World.RunDir, world.ToxiproxyLog)
		fmt.Fprintf(GinkgoWriter, "\n--- toxiproxy (last lines)\n%s\n", tail(l, 25))
	}
})

// tail is the last n lines of a file.
func tail(path string, n int) string {
	b, _ := os.ReadFile(path)
	lines := strings.Split(strings.TrimRight(string(b), "\n"), "\n")
	return strings.Join(lines[max(0, len(lines)-n):], "\n")
}

// site returns a site of the shared world by name.
func site(name string) world.SiteInfo {
	GinkgoHelper()
	s, ok := the.World.Sites[name]
	Expect(ok).To(BeTrue(), "no site %q in the world", name)
	return s
}
