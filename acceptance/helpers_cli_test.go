package acceptance

import (
	"encoding/json"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	"github.com/onsi/gomega/gexec"

	"github.com/mosaic-federation/mosaic/gateway/api"
	"github.com/mosaic-federation/mosaic/harness/world"
)

// execute starts a command like a user would, echoes it to the spec's output, and
// waits for it to exit (bounded); the caller checks the exit code.
func execute(cmd *exec.Cmd) *gexec.Session {
	GinkgoHelper()
	By("running: " + filepath.Base(cmd.Path) + " " + strings.Join(cmd.Args[1:], " "))
	s, err := gexec.Start(cmd, GinkgoWriter, GinkgoWriter)
	Expect(err).NotTo(HaveOccurred())
	Eventually(s).WithTimeout(Timeouts.CLI).Should(gexec.Exit())
	return s
}

// run runs a binary with env added to this process's environment.
func run(env []string, bin string, args ...string) *gexec.Session {
	GinkgoHelper()
	cmd := exec.Command(bin, args...)
	cmd.Env = append(os.Environ(), env...)
	return execute(cmd)
}

// output runs a program with stdin (none when nil) and returns its standard output;
// its standard error goes to the spec's output.
func output(stdin io.Reader, bin string, args ...string) ([]byte, error) {
	cmd := exec.Command(bin, args...)
	cmd.Stdin = stdin
	cmd.Stderr = GinkgoWriter
	return cmd.Output()
}

// gateway runs the real gateway CLI.
func gateway(args ...string) *gexec.Session {
	GinkgoHelper()
	return run(nil, the.GatewayBin, args...)
}

// cli runs the gateway CLI against a site's config.
func cli(s world.SiteInfo, args ...string) *gexec.Session {
	GinkgoHelper()
	return gateway(append([]string{"--config", s.Config}, args...)...)
}

// cliStdin is cli with the given standard input.
func cliStdin(s world.SiteInfo, stdin string, args ...string) *gexec.Session {
	GinkgoHelper()
	cmd := exec.Command(the.GatewayBin, append([]string{"--config", s.Config}, args...)...)
	cmd.Stdin = strings.NewReader(stdin)
	return execute(cmd)
}

// cliJSON runs a CLI command with --json, expects it to succeed and decodes what it
// printed into out (a gateway/api type).
func cliJSON(s world.SiteInfo, out any, args ...string) {
	GinkgoHelper()
	sess := cli(s, append(args, "--json")...)
	Expect(sess.ExitCode()).To(Equal(0), string(sess.Err.Contents()))
	decodeOut(sess, out)
}

// decodeOut decodes a session's standard output, JSON, into out.
func decodeOut(s *gexec.Session, out any) {
	GinkgoHelper()
	Expect(json.Unmarshal(s.Out.Contents(), out)).To(Succeed(), string(s.Out.Contents()))
}

// seedLoad loads a seed file through the CLI into the store of a config.
func seedLoad(config, file string) api.SeedResult {
	GinkgoHelper()
	s := gateway("--config", config, "seed", "load", "--json", file)
	Expect(s.ExitCode()).To(Equal(0), string(s.Err.Contents()))
	var res api.SeedResult
	decodeOut(s, &res)
	return res
}

// startGateway runs `gateway serve` in the background until the spec ends and waits
// for /readyz.
func startGateway(config, apiURL string) {
	GinkgoHelper()
	cmd := exec.Command(the.GatewayBin, "serve", "--config", config)
	s, err := gexec.Start(cmd, GinkgoWriter, GinkgoWriter)
	Expect(err).NotTo(HaveOccurred())
	DeferCleanup(func() { s.Terminate().Wait(Timeouts.Teardown) })
	Eventually(readyz).WithArguments(apiURL).WithTimeout(Timeouts.Readiness).WithPolling(Timeouts.Poll).Should(Equal(http.StatusOK))
	Expect(s.ExitCode()).To(Equal(-1), "the gateway exited")
}

// noSecrets checks output holds neither the password nor the full DSN of a URL.
func noSecrets(output string, dsns ...string) {
	GinkgoHelper()
	for _, dsn := range dsns {
		Expect(output).NotTo(ContainSubstring(dsn))
		if i, j := strings.Index(dsn, "://"), strings.Index(dsn, "@"); i >= 0 && j > i {
			userinfo := dsn[i+3 : j]
			if _, pw, ok := strings.Cut(userinfo, ":"); ok && pw != "" {
				Expect(output).NotTo(ContainSubstring(pw), "a password leaked")
			}
		}
	}
}
