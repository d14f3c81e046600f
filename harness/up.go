package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/spf13/cobra"

	"github.com/mosaic-federation/mosaic/harness/world"
	"github.com/mosaic-federation/mosaic/harness/world/process"
)

type upFlags struct {
	sites    string
	backend  string
	detach   bool
	timeout  time.Duration
	replicas int
	// wanLatency > 0 puts a Toxiproxy link with this latency each way before every
	// serving site (SPEC §6a Links).
	wanLatency time.Duration
	// gatewayBin is a prebuilt gateway (default: build ./gateway into .cache/bin).
	gatewayBin string
}

func (f *upFlags) register(cmd *cobra.Command) {
	cmd.Flags().StringVar(&f.sites, "sites", "home,work", "sites to boot; the first is the requesting site")
	// process stays the default until the whole catalogue is green on docker (issue 17).
	cmd.Flags().StringVar(&f.backend, "backend", "process", "process, docker or auto (docker only when an engine answers and the images are built)")
	cmd.Flags().DurationVar(&f.timeout, "timeout", 3*time.Minute, "give up booting after this long")
	cmd.Flags().IntVar(&f.replicas, "replicas", 1, "gateways per serving site, sharing its PostgreSQL, Valkey and CA")
	cmd.Flags().DurationVar(&f.wanLatency, "wan-latency", 0, "reach each serving site through a Toxiproxy link with this latency each way (a round trip costs twice)")
}

func (f *upFlags) args() []string {
	return []string{"--sites", f.sites, "--backend", f.backend, "--timeout", f.timeout.String(), "--replicas", strconv.Itoa(f.replicas),
		"--wan-latency", f.wanLatency.String()}
}

func upCmd() *cobra.Command {
	f := &upFlags{}
	cmd := &cobra.Command{
		Use:   "up",
		Short: "Boot the world, print how to use it, and keep it running until Ctrl-C",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if _, err := sweepDead(cmd.Context(), os.Stdout); err != nil {
				return err
			}
			if err := refuseRunningWorld(); err != nil {
				return err
			}
			// Once, here: the supervisor of --detach gets the backend by its name.
			f.backend = resolveBackend(f.backend)
			gw := f.gatewayBin
			if gw == "" {
				var err error
				if gw, err = buildGateway(f.backend == "docker"); err != nil {
					return err
				}
			}
			if f.detach {
				return detach(f, gw)
			}
			ctx, stop := signal.NotifyContext(cmd.Context(), stopSignals...)
			defer stop()
			return runWorld(ctx, f, gw, os.Stdout, func() { fmt.Println("\nPress Ctrl-C to stop the world and remove it.") })
		},
	}
	f.register(cmd)
	cmd.Flags().BoolVar(&f.detach, "detach", false, "return once ready and leave the world running (stop it with `harness down`)")
	cmd.Flags().StringVar(&f.gatewayBin, "gateway-bin", "", "use this gateway binary instead of building ./gateway")
	return cmd
}

// superviseCmd is the background owner of a detached world: started with setsid by
// `up --detach`, it reports progress on fd 3 until the world is ready, then closes it.
func superviseCmd() *cobra.Command {
	f := &upFlags{}
	cmd := &cobra.Command{
		Use:    "supervise",
		Hidden: true,
		Args:   cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			// fd 3 must not leak into the world's children, or the reader in `up
			// --detach` would never see EOF.
			syscall.CloseOnExec(3)
			report := os.NewFile(3, "report")
			ctx, stop := signal.NotifyContext(cmd.Context(), stopSignals...)
			defer stop()
			return runWorld(ctx, f, f.gatewayBin, report, func() { report.Close() })
		},
	}
	f.register(cmd)
	cmd.Flags().StringVar(&f.gatewayBin, "gateway-bin", "", "built gateway binary")
	return cmd
}

// stopSignals all stop the world the same way, and the harness then exits 0: Ctrl-C,
// `kill`, and a closed terminal (SIGHUP).
var stopSignals = []os.Signal{os.Interrupt, syscall.SIGTERM, syscall.SIGHUP}

// runWorld boots, records the state file, prints the sites table, calls ready, and
// holds the world until ctx ends; then it tears everything down. A stop signal while
// booting tears down what had started and is not an error either.
func runWorld(ctx context.Context, f *upFlags, gatewayBin string, out io.Writer, ready func()) error {
	bootCtx, cancel := context.WithTimeout(ctx, f.timeout)
	defer cancel()
	backend, err := backendNamed(f.backend)
	if err != nil {
		return err
	}
	if f.replicas < 1 || f.replicas > 8 {
		return fmt.Errorf("--replicas %d: use 1 to 8", f.replicas)
	}
	if f.wanLatency < 0 || f.wanLatency > time.Minute {
		return fmt.Errorf("--wan-latency %s: use 0 (no links) up to 1m", f.wanLatency)
	}
	runDir, err := newRunDir()
	if err != nil {
		return err
	}
	w, err := world.Up(bootCtx, world.Options{
		RunDir:   runDir,
		Replicas: f.replicas,
		// Sites' networks are apart on docker: home reaches work only through a link.
		Links:      f.wanLatency > 0 || backend.Name() == "docker",
		WANLatency: f.wanLatency,
		Sites:      strings.Split(f.sites, ","),
		Backend:    backend,
		GatewayBin: gatewayBin,
		Progress:   out,
		Log:        slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn})),
	})
	if err != nil {
		_ = os.RemoveAll(runDir) // a world that failed before starting anything keeps it
	}
	if err != nil && ctx.Err() != nil {
		fmt.Fprintln(os.Stderr, "harness: stopped while booting; what had started is removed")
		return nil
	}
	if err != nil {
		return err
	}
	// Deferred calls run last-first: the world goes down, then its state file.
	defer removeState(os.Getpid())
	defer w.Down()
	st := state{Pid: os.Getpid(), PidStart: process.StartTime(os.Getpid()), BootSeconds: w.BootTime.Seconds(), World: w.Describe()}
	if err := writeState(st); err != nil {
		return fmt.Errorf("write state file: %w", err)
	}
	printWorld(out, st)
	ready()
	<-ctx.Done()
	fmt.Fprintln(os.Stderr, "harness: stopping the world")
	return nil
}

// detach starts `harness supervise` in its own session, relays its progress lines
// until it reports ready (or dies), then returns.
func detach(f *upFlags, gatewayBin string) error {
	exe, err := os.Executable()
	if err != nil {
		return err
	}
	pr, pw, err := os.Pipe()
	if err != nil {
		return err
	}
	dir, err := stateDir()
	if err != nil {
		return err
	}
	logPath := filepath.Join(dir, "supervisor.log")
	logf, err := os.OpenFile(logPath, os.O_CREATE|os.O_TRUNC|os.O_WRONLY|syscall.O_NOFOLLOW, 0o600)
	if err != nil {
		return err
	}
	defer logf.Close()
	cmd := exec.Command(exe, append([]string{"supervise", "--gateway-bin", gatewayBin}, f.args()...)...)
	cmd.Stdout, cmd.Stderr, cmd.ExtraFiles = logf, logf, []*os.File{pw}
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("start supervisor: %w", err)
	}
	pw.Close()
	// Ctrl-C while the world boots stops the supervisor too, rather than leaving a
	// world booting in a session of its own.
	sigs := make(chan os.Signal, 1)
	signal.Notify(sigs, stopSignals...)
	defer signal.Stop(sigs)
	go func() {
		if _, ok := <-sigs; ok {
			_ = cmd.Process.Signal(syscall.SIGTERM)
		}
	}()
	sc := bufio.NewScanner(pr)
	for sc.Scan() {
		fmt.Println(sc.Text())
	}
	st, err := readState()
	if err != nil || st.Pid != cmd.Process.Pid || !st.ownerAlive() {
		_ = cmd.Wait()
		return fmt.Errorf("the world did not come up; the supervisor's log is %s:\n%s", logPath, tailFile(logPath))
	}
	_ = cmd.Process.Release()
	fmt.Printf("\nDetached (supervisor pid %d, log %s). Stop it with: go run ./harness down\n", st.Pid, logPath)
	return nil
}

func refuseRunningWorld() error {
	st, err := readState()
	if errors.Is(err, errNoWorld) {
		return nil
	}
	if err == nil && !st.ownerAlive() { // sweepDead runs first: only when it failed
		return fmt.Errorf("a previous world (pid %d) died and could not be swept: run `go run ./harness down`", st.Pid)
	}
	if err == nil {
		return fmt.Errorf("a world is already running (pid %d, %s): `go run ./harness status` shows it, `go run ./harness down` stops it", st.Pid, st.World.RunDir)
	}
	return err
}

// buildGateway compiles ./gateway into .cache/bin so the boot time counts no compile;
// static (CGO_ENABLED=0, as gateway-static) for the docker backend, whose containers
// run it on a scratch image.
func buildGateway(static bool) (string, error) {
	root, err := world.ModuleRoot()
	if err != nil {
		return "", err
	}
	out := filepath.Join(root, ".cache", "bin", "gateway")
	if static {
		out += "-static"
	}
	cmd := exec.Command("go", "build", "-o", out, "./gateway")
	cmd.Dir, cmd.Stdout, cmd.Stderr = root, os.Stderr, os.Stderr
	if static {
		cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	}
	if err := cmd.Run(); err != nil {
		return "", fmt.Errorf("build the gateway: %w", err)
	}
	return out, nil
}

func tailFile(path string) string {
	b, _ := os.ReadFile(path)
	lines := strings.Split(strings.TrimRight(string(b), "\n"), "\n")
	return strings.Join(lines[max(0, len(lines)-20):], "\n")
}
