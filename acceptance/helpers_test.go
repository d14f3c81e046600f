package acceptance

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"net/http"
	"os"
	"os/exec"
	"strings"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	"github.com/onsi/gomega/gexec"
)

// run starts a binary like a user would, echoes it to the spec's output, and waits
// for it to exit (bounded); the caller checks the exit code.
func run(env []string, bin string, args ...string) *gexec.Session {
	GinkgoHelper()
	By("running: " + bin[strings.LastIndex(bin, "/")+1:] + " " + strings.Join(args, " "))
	cmd := exec.Command(bin, args...)
	cmd.Env = append(os.Environ(), env...)
	s, err := gexec.Start(cmd, GinkgoWriter, GinkgoWriter)
	Expect(err).NotTo(HaveOccurred())
	Eventually(s).WithTimeout(Timeouts.CLI).Should(gexec.Exit())
	return s
}

// getJSON GETs url and decodes a JSON body into v; it returns the status code.
func getJSON(ctx context.Context, client *http.Client, url string, v any) int {
	GinkgoHelper()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	Expect(err).NotTo(HaveOccurred())
	resp, err := client.Do(req)
	Expect(err).NotTo(HaveOccurred())
	defer resp.Body.Close()
	if v != nil {
		Expect(json.NewDecoder(resp.Body).Decode(v)).To(Succeed())
	}
	return resp.StatusCode
}

// caClient trusts one site's CA root and nothing else.
func caClient(rootPath string) *http.Client {
	GinkgoHelper()
	pem, err := os.ReadFile(rootPath)
	Expect(err).NotTo(HaveOccurred())
	pool := x509.NewCertPool()
	Expect(pool.AppendCertsFromPEM(pem)).To(BeTrue())
	return &http.Client{Timeout: Timeouts.Request, Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}}}
}

func tail(path string, n int) string {
	b, _ := os.ReadFile(path)
	lines := strings.Split(strings.TrimRight(string(b), "\n"), "\n")
	return strings.Join(lines[max(0, len(lines)-n):], "\n")
}
