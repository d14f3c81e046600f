package acceptance

import (
	"encoding/json"
	"fmt"
	"net"
	"os"
	"path/filepath"

	"github.com/google/uuid"
	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"

	"github.com/mosaic-federation/mosaic/harness/world"
)

// siteConfig writes a gateway.json for a site — its standard config with overrides
// deep-merged (a nil value deletes a key) — into the site's folder (relative paths in
// it resolve there) and returns the path.
func siteConfig(s world.SiteInfo, overrides map[string]any) string {
	GinkgoHelper()
	var cfg map[string]any
	b, err := os.ReadFile(s.Config)
	Expect(err).NotTo(HaveOccurred())
	Expect(json.Unmarshal(b, &cfg)).To(Succeed())
	// The site's own gateway holds its listen.metrics port: another gateway from this
	// config serves metrics only where the overrides say.
	if l, ok := cfg["listen"].(map[string]any); ok {
		delete(l, "metrics")
	}
	cfg = mergeMaps(cfg, overrides)
	path := filepath.Join(s.Dir, fmt.Sprintf("spec-%d-%s.json", GinkgoParallelProcess(), uuid.NewString()[:8]))
	writeJSONFile(path, cfg)
	DeferCleanup(os.Remove, path)
	return path
}

func writeJSONFile(path string, v any) {
	GinkgoHelper()
	b, err := json.MarshalIndent(v, "", "  ")
	Expect(err).NotTo(HaveOccurred())
	Expect(os.WriteFile(path, b, 0o600)).To(Succeed())
}

func mergeMaps(dst, src map[string]any) map[string]any {
	for k, v := range src {
		if sub, ok := v.(map[string]any); ok {
			if d, ok := dst[k].(map[string]any); ok {
				dst[k] = mergeMaps(d, sub)
				continue
			}
		}
		if v == nil {
			delete(dst, k)
			continue
		}
		dst[k] = v
	}
	return dst
}

// secretFile writes a secret (a database URL, say) into a 0600 file of the site,
// removed when the spec ends.
func secretFile(s world.SiteInfo, content string) string {
	GinkgoHelper()
	path := filepath.Join(s.Dir, "secrets", fmt.Sprintf("spec-%d-%s", GinkgoParallelProcess(), uuid.NewString()[:8]))
	Expect(os.WriteFile(path, []byte(content+"\n"), 0o600)).To(Succeed())
	DeferCleanup(os.Remove, path)
	return path
}

// freeAddr returns a loopback address with a port nobody listens on right now.
func freeAddr() string {
	GinkgoHelper()
	return freeAddrOn("127.0.0.1")
}

// freeAddrOn returns an address of host with a port nobody listens on right now.
func freeAddrOn(host string) string {
	GinkgoHelper()
	l, err := net.Listen("tcp", net.JoinHostPort(host, "0"))
	Expect(err).NotTo(HaveOccurred())
	defer l.Close()
	return l.Addr().String()
}
