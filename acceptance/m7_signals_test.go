package acceptance

import (
	"bufio"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"syscall"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	"github.com/onsi/gomega/gbytes"
)

// foreground is a `harness up` in the foreground, its stdout and stderr on one pipe
// that the spec reads line by line (and may close, as a closed terminal would).
type foreground struct {
	cmd    *exec.Cmd
	out    *os.File // the pipe's read end
	lines  *gbytes.Buffer
	runDir string
	exited chan int // the exit code; -1 for death by a signal
}

var runDirLine = regexp.MustCompile(`run directory (/\S+) \(backend`)

// startForeground runs the real harness binary with a state file of the spec's own,
// so the suite's world and any other harness world are untouched.
func startForeground(env []string) *foreground {
	GinkgoHelper()
	pr, pw, err := os.Pipe()
	Expect(err).NotTo(HaveOccurred())
	cmd := exec.Command(the.HarnessBin, append([]string{"up", "--gateway-bin", the.GatewayBin}, backendFlag()...)...)
	cmd.Env = append(os.Environ(), env...)
	cmd.Stdout, cmd.Stderr = pw, pw
	By("running: harness up")
	Expect(cmd.Start()).To(Succeed())
	pw.Close()
	f := &foreground{cmd: cmd, out: pr, lines: gbytes.NewBuffer(), exited: make(chan int, 1)}
	go func() {
		defer GinkgoRecover()
		// Copy until the spec closes the pipe or the harness ends.
		_, _ = io.Copy(io.MultiWriter(f.lines, GinkgoWriter), bufio.NewReader(pr))
	}()
	go func() {
		_ = cmd.Wait()
		f.exited <- cmd.ProcessState.ExitCode()
	}()
	DeferCleanup(func() { _ = cmd.Process.Kill() })
	Eventually(f.lines).WithTimeout(Timeouts.Readiness).Should(gbytes.Say(`run directory \S+`))
	m := runDirLine.FindSubmatch(f.lines.Contents())
	Expect(m).NotTo(BeNil(), string(f.lines.Contents()))
	f.runDir = string(m[1])
	return f
}

// nothingLeft checks a run left no process tagged with its directory (no container or
// network labelled with it), and no directory.
func nothingLeft(runDir, statePath string) {
	GinkgoHelper()
	Eventually(func() []string { return leftovers(runDir) }).WithTimeout(Timeouts.Teardown).
		Should(BeEmpty(), "processes or containers of the run left behind")
	Expect(runDir).NotTo(BeADirectory(), "the run directory (its CA keys, sealing keys, databases) left behind")
	Expect(statePath).NotTo(BeAnExistingFile())
}

var _ = Describe("Stopping the harness", Label("M7", "harness", "slow"), Serial, func() {
	var env []string
	var statePath string
	BeforeEach(func() {
		statePath = filepath.Join(GinkgoT().TempDir(), "state.json")
		env = []string{"MOSAIC_HARNESS_STATE=" + statePath, "MOSAIC_BIN_DIR=" + the.BinDir}
	})

	// One boot each: the stage varies with the signal so that the three cover a ready
	// world, a half-booted one, and a world whose terminal (its output pipe) is gone.
	DescribeTable("[M7-8] tears the world down and exits 0 on a stop signal, leaving nothing behind",
		func(ctx SpecContext, sig syscall.Signal, waitFor string, closeOutput bool) {
			f := startForeground(env)
			Eventually(f.lines).WithContext(ctx).WithTimeout(Timeouts.Boot).Should(gbytes.Say(waitFor))
			if closeOutput {
				By("closing the harness's stdout and stderr, as a closed terminal does")
				Expect(f.out.Close()).To(Succeed())
			}
			Expect(f.cmd.Process.Signal(sig)).To(Succeed())
			var code int
			Eventually(f.exited).WithContext(ctx).WithTimeout(Timeouts.Boot).Should(Receive(&code))
			Expect(code).To(Equal(0), "exit code after %v", sig)
			nothingLeft(f.runDir, statePath)
		},
		Entry("SIGINT (Ctrl-C) once the world is ready", syscall.SIGINT, "Press Ctrl-C", false, SpecTimeout(Timeouts.Boot)),
		Entry("SIGTERM while the world boots", syscall.SIGTERM, `(step-ca|postgres|valkey) ready`, false, SpecTimeout(Timeouts.Boot)),
		Entry("SIGHUP once ready, with stdout and stderr closed", syscall.SIGHUP, "Press Ctrl-C", true, SpecTimeout(Timeouts.Boot)),
	)

	It("[M7-8] sweeps a world whose harness was SIGKILLed on the next `down`, and says what it removed", func(ctx SpecContext) {
		f := startForeground(env)
		By("killing the harness mid-boot, before it has written its state file")
		Eventually(f.lines).WithContext(ctx).WithTimeout(Timeouts.Boot).Should(gbytes.Say(`gateway ready at`))
		Expect(f.cmd.Process.Signal(syscall.SIGKILL)).To(Succeed())
		Eventually(f.exited).WithContext(ctx).WithTimeout(Timeouts.Teardown).Should(Receive())
		Expect(f.runDir).To(BeADirectory(), "a killed harness cannot clean up")

		down := run(env, the.HarnessBin, "down")
		Expect(down.ExitCode()).To(Equal(0), string(down.Err.Contents()))
		Expect(down.Out).To(gbytes.Say(`removed a dead world's run directory ` + regexp.QuoteMeta(f.runDir)))
		nothingLeft(f.runDir, statePath)
	}, SpecTimeout(Timeouts.Boot))
})
