package acceptance

import (
	"context"
	"fmt"
	"os"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"

	"github.com/mosaic-federation/mosaic/harness/world"
	"github.com/mosaic-federation/mosaic/harness/world/docker"
	"github.com/mosaic-federation/mosaic/harness/world/process"
)

// The suite runs on one backend, named by MOSAIC_BACKEND: process (the default) or
// docker (`make acceptance-docker`). Specs ask the helpers below, never a backend's
// package, about what a run leaves behind.
const (
	backendProcess = "process"
	backendDocker  = "docker"
)

// suiteBackendName is MOSAIC_BACKEND, process when unset.
func suiteBackendName() string {
	if b := os.Getenv("MOSAIC_BACKEND"); b != "" {
		return b
	}
	return backendProcess
}

// newBackend is a fresh backend of the suite's kind.
func newBackend(binDir string) world.Backend {
	if suiteBackendName() == backendDocker {
		return docker.New(docker.Config{Images: docker.DefaultImages()})
	}
	return process.New(process.Config{BinDir: binDir})
}

// onDocker reports whether the suite runs on the docker backend.
func onDocker() bool { return the.Backend == backendDocker }

// backendFlag is `harness up`'s flag for the suite's backend, so a spec's own world is
// of the same kind as the suite's.
func backendFlag() []string { return []string{"--backend", the.Backend} }

// leftovers lists what a run still has (processes, containers, networks) in the suite
// backend's words; empty once the run is gone.
func leftovers(runDir string) []string {
	out, err := newBackend(the.BinDir).Leftovers(context.Background(), runDir)
	Expect(err).NotTo(HaveOccurred())
	return out
}

// linkSource is the address the serving site of the link from→to sees the link's
// connections come from: 127.0.0.1 on the process backend, the link proxy's address
// on the serving site's network on docker.
func linkSource(from, to string) string {
	GinkgoHelper()
	for _, l := range the.World.Links {
		if l.From == from && l.To == to {
			Expect(l.Source).NotTo(BeEmpty(), "the world names the link's source address")
			return l.Source
		}
	}
	Fail(fmt.Sprintf("no link %s→%s in the world", from, to))
	return ""
}

// requestingHost is this host's address as the requesting site's gateways reach it:
// where a spec's own serving gateway listens for them (127.0.0.1 on the process
// backend, this host's address on the link network on docker).
func requestingHost() string {
	GinkgoHelper()
	for _, l := range the.World.Links {
		if l.Host != "" {
			return l.Host
		}
	}
	return "127.0.0.1"
}

// freshSource is a source address of this host's own for a client of site's
// listeners, used by no other spec: the federation listener counts refusals per
// address. On the process backend an address of loopback16 (127.N.0.0/16, each spec
// its own N); on docker an address the backend adds to the site network's bridge for
// the spec's duration.
func freshSource(site, loopback16 string) string {
	GinkgoHelper()
	if !onDocker() {
		b := randomBytes(2)
		return fmt.Sprintf("%s.%d.%d", loopback16, b[0], 1+b[1]%250)
	}
	be, ok := newBackend(the.BinDir).(*docker.Backend)
	Expect(ok).To(BeTrue())
	addr, release, err := be.HostSource(context.Background(), the.World.RunDir, site)
	Expect(err).NotTo(HaveOccurred())
	DeferCleanup(release)
	return addr
}
