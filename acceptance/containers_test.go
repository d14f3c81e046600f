package acceptance

import (
	"context"
	"net"
	"net/url"
	"os/exec"
	"path/filepath"
	"strings"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"

	"github.com/mosaic-federation/mosaic/harness/world/docker"
)

var _ = Describe("Sites as containers", Label("M7", "security", "docker"), func() {
	// SPEC §6e: each site has its own network and a link network carries the
	// federation traffic, so from home's gateway only work's federation listener,
	// through its link proxy, is reachable; work's database, Valkey, CA, API listener
	// and the listener itself, dialled around the link, are not.
	It("[CTR-1] home's gateway container reaches work only through the link proxy", func(ctx SpecContext) {
		if !onDocker() {
			Skip("network isolation is between containers: this spec runs on the docker backend (make acceptance-docker)")
		}
		home, work := site("home"), site("work")
		from := filepath.Base(the.World.RunDir) + "-home-gateway" // the docker backend's container name
		reach := reachableFrom(ctx, from, map[string]string{
			"work's link proxy":             addrOf(work.PublicURL),
			"home's own PostgreSQL":         addrOf(home.PostgresURL),
			"work's PostgreSQL":             addrOf(work.PostgresURL),
			"work's Valkey":                 addrOf(work.ValkeyURL),
			"work's step-ca":                addrOf(work.CAURL),
			"work's API listener":           addrOf(work.APIURL),
			"work's listener, not the link": addrOf(work.FederationURL),
		})
		Expect(reach).To(Equal(map[string]bool{
			"work's link proxy": true, "home's own PostgreSQL": true,
			"work's PostgreSQL": false, "work's Valkey": false, "work's step-ca": false,
			"work's API listener": false, "work's listener, not the link": false,
		}))
	})
})

// addrOf is a URL's host:port (a redis:// or postgres:// URL's too).
func addrOf(raw string) string {
	GinkgoHelper()
	u, err := url.Parse(raw)
	Expect(err).NotTo(HaveOccurred())
	Expect(u.Port()).NotTo(BeEmpty(), "no port in %s", u.Redacted())
	return net.JoinHostPort(u.Hostname(), u.Port())
}

// reachableFrom tries a TCP connection to each address from inside a container's
// network namespace (a throw-away container of the local Valkey image, a Debian root
// with bash, joined to it: the gateway's own image is scratch), 2 s each.
func reachableFrom(ctx context.Context, ctr string, addrs map[string]string) map[string]bool {
	GinkgoHelper()
	var script strings.Builder
	names := make([]string, 0, len(addrs))
	for name, addr := range addrs {
		host, port, err := net.SplitHostPort(addr)
		Expect(err).NotTo(HaveOccurred())
		names = append(names, name)
		script.WriteString("if timeout 2 bash -c '</dev/tcp/" + host + "/" + port + "' 2>/dev/null; then echo yes; else echo no; fi\n")
	}
	rctx, cancel := context.WithTimeout(ctx, 60*time.Second)
	defer cancel()
	out, err := exec.CommandContext(rctx, "docker", "run", "--rm", "--network", "container:"+ctr,
		"--entrypoint", "bash", docker.DefaultImages().Valkey, "-c", script.String()).CombinedOutput()
	Expect(err).NotTo(HaveOccurred(), "probe from %s: %s", ctr, out)
	lines := strings.Fields(string(out))
	Expect(lines).To(HaveLen(len(names)), "probe output: %s", out)
	got := map[string]bool{}
	for i, name := range names {
		got[name] = lines[i] == "yes"
	}
	return got
}
