// Package proc runs one service of the harness as a child process: its own process
// group, a parent-death signal, a bounded log file, readiness that fails fast, and the
// lifecycle verbs Start, Stop, Kill and Restart.
package proc

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os/exec"
	"strings"
	"sync"
	"syscall"
	"time"
)

// StopGrace is how long Stop waits after SIGTERM before it sends SIGKILL.
const StopGrace = 10 * time.Second

// Spec describes a process. It is plain data so that argv and environment can be built
// by pure functions and tested without spawning anything.
type Spec struct {
	Name    string   // "work/postgres"
	Path    string   // executable
	Args    []string // argv[1:]
	Env     []string // the whole child environment (see CleanEnv)
	Dir     string
	LogPath string
	// Credential runs the child as another user (PostgreSQL refuses to run as root).
	Credential *syscall.Credential
	// Ready is polled until it returns nil, the process exits, or the context ends.
	Ready func(ctx context.Context) error
	// Redact hides secrets in the spawn log line.
	Redact func(string) string
	// Ports the child must be listening on itself before it counts as ready, so a
	// stranger already holding a port cannot pass the readiness check for it.
	Ports []int
	// StopSignal asks the child to stop (default SIGTERM; PostgreSQL wants SIGINT,
	// its fast shutdown, rather than waiting for clients to leave).
	StopSignal syscall.Signal
}

// Process is a handle on a running (or stopped) child.
type Process struct {
	spec Spec
	log  *slog.Logger

	mu       sync.Mutex
	cmd      *exec.Cmd
	done     chan struct{} // closed when the current child has exited
	waitErr  error
	logStart int64 // log size at spawn: errors quote only this run's lines
}

// New returns a handle; nothing runs until Start.
func New(spec Spec, log *slog.Logger) *Process {
	if log == nil {
		log = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	return &Process{spec: spec, log: log}
}

// Name is the service name given in the spec.
func (p *Process) Name() string { return p.spec.Name }

// LogPath is the file the child's stdout and stderr go to.
func (p *Process) LogPath() string { return p.spec.LogPath }

// SetArgs replaces argv[1:] and the ports to own for the next Start (used to pick new
// ports on retry).
func (p *Process) SetArgs(args []string, ports ...int) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.spec.Args = args
	p.spec.Ports = ports
}

// SetPorts replaces the ports to own, for children configured through a file.
func (p *Process) SetPorts(ports ...int) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.spec.Ports = ports
}

// Pid is the pid of the running child, or 0.
func (p *Process) Pid() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.cmd == nil || p.cmd.Process == nil || p.exitedLocked() {
		return 0
	}
	return p.cmd.Process.Pid
}

// Running reports whether the child is alive.
func (p *Process) Running() bool { return p.Pid() != 0 }

func (p *Process) exitedLocked() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

// Start spawns the child and waits until Ready passes. If the child exits first, or ctx
// ends, the error carries the last lines of its log and the child is killed.
func (p *Process) Start(ctx context.Context) error {
	if err := p.spawn(); err != nil {
		return err
	}
	if err := p.waitReady(ctx); err != nil {
		_ = p.Kill()
		return err
	}
	return nil
}

func (p *Process) spawn() error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.cmd != nil && !p.exitedLocked() {
		return fmt.Errorf("%s: already running (pid %d)", p.spec.Name, p.cmd.Process.Pid)
	}
	out, err := OpenLog(p.spec.LogPath)
	if err != nil {
		return fmt.Errorf("%s: open log: %w", p.spec.Name, err)
	}
	p.logStart = logSize(p.spec.LogPath)
	cmd := exec.Command(p.spec.Path, p.spec.Args...)
	cmd.Env = p.spec.Env
	cmd.Dir = p.spec.Dir
	cmd.Stdout = out
	cmd.Stderr = out
	cmd.SysProcAttr = &syscall.SysProcAttr{
		Setpgid:    true,            // one group per service, so Stop reaches its children
		Pdeathsig:  syscall.SIGKILL, // nothing outlives the harness (or its supervisor)
		Credential: p.spec.Credential,
	}
	// Grandchildren that keep the output pipe open must not block Wait forever.
	cmd.WaitDelay = 2 * time.Second
	if err := cmd.Start(); err != nil {
		out.Close()
		return fmt.Errorf("%s: start %s: %w", p.spec.Name, p.spec.Path, err)
	}
	p.log.Info("spawned", "service", p.spec.Name, "pid", cmd.Process.Pid,
		"argv", p.redact(strings.Join(append([]string{p.spec.Path}, p.spec.Args...), " ")),
		"log", p.spec.LogPath)
	done := make(chan struct{})
	p.cmd, p.done, p.waitErr = cmd, done, nil
	go func() {
		err := cmd.Wait()
		out.Close()
		p.mu.Lock()
		p.waitErr = err
		p.mu.Unlock()
		close(done)
	}()
	return nil
}

func (p *Process) redact(s string) string {
	if p.spec.Redact == nil {
		return s
	}
	return p.spec.Redact(s)
}

func (p *Process) waitReady(ctx context.Context) error {
	p.mu.Lock()
	done, pid, ports, since := p.done, p.cmd.Process.Pid, p.spec.Ports, p.logStart
	p.mu.Unlock()
	tick := time.NewTicker(50 * time.Millisecond)
	defer tick.Stop()
	var last error
	for {
		last = p.checkReady(ctx, pid, ports)
		if last == nil {
			return nil
		}
		select {
		case <-done:
			p.mu.Lock()
			werr := p.waitErr
			p.mu.Unlock()
			return &ExitError{Name: p.spec.Name, Err: werr, Tail: TailSince(p.spec.LogPath, since, 20)}
		case <-ctx.Done():
			return fmt.Errorf("%s: not ready: %w (last check: %v)\n%s", p.spec.Name, ctx.Err(), last,
				indent(TailSince(p.spec.LogPath, since, 20)))
		case <-tick.C:
		}
	}
}

// checkReady passes when the child itself listens on its ports and Ready passes.
func (p *Process) checkReady(ctx context.Context, pid int, ports []int) error {
	for _, port := range ports {
		if !ListensOn(pid, port) {
			return fmt.Errorf("pid %d does not listen on port %d yet", pid, port)
		}
	}
	if p.spec.Ready == nil {
		return nil
	}
	attempt, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	return p.spec.Ready(attempt)
}

// ExitError says a child exited before it was ready.
type ExitError struct {
	Name string
	Err  error
	Tail string
}

func (e *ExitError) Error() string {
	return fmt.Sprintf("%s exited before it was ready (%v); last log lines:\n%s", e.Name, e.Err, indent(e.Tail))
}

// AddressInUse reports whether the child failed because its port was taken, which the
// caller answers by picking another port.
func (e *ExitError) AddressInUse() bool {
	t := strings.ToLower(e.Tail)
	return strings.Contains(t, "address already in use") || strings.Contains(t, "could not bind")
}

// Stop sends the stop signal (SIGTERM by default) to the process group and SIGKILL
// after StopGrace.
func (p *Process) Stop(ctx context.Context) error {
	sig := p.spec.StopSignal
	if sig == 0 {
		sig = syscall.SIGTERM
	}
	return p.signal(ctx, sig, StopGrace)
}

// Kill sends SIGKILL to the process group and waits for the child to be reaped.
func (p *Process) Kill() error {
	return p.signal(context.Background(), syscall.SIGKILL, 0)
}

// Restart stops the child (gracefully) and starts it again with the same spec.
func (p *Process) Restart(ctx context.Context) error {
	if err := p.Stop(ctx); err != nil {
		return err
	}
	return p.Start(ctx)
}

func (p *Process) signal(ctx context.Context, sig syscall.Signal, grace time.Duration) error {
	p.mu.Lock()
	cmd, done := p.cmd, p.done
	p.mu.Unlock()
	if cmd == nil || cmd.Process == nil {
		return nil
	}
	pgid := cmd.Process.Pid
	_ = syscall.Kill(-pgid, sig)
	if grace > 0 {
		timer := time.NewTimer(grace)
		defer timer.Stop()
		select {
		case <-done:
		case <-timer.C:
			p.log.Warn("no exit after SIGTERM; killing", "service", p.spec.Name, "pid", pgid)
		case <-ctx.Done():
		}
		_ = syscall.Kill(-pgid, syscall.SIGKILL)
	}
	select {
	case <-done:
	case <-time.After(StopGrace):
		return fmt.Errorf("%s: pid %d did not exit after SIGKILL", p.spec.Name, pgid)
	}
	// Members that outlive the leader (postgres backends, a shell's children) go too.
	return drainGroup(pgid)
}

// Exited returns a channel closed when the current child exits (nil before Start).
func (p *Process) Exited() <-chan struct{} {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.done
}

// ErrNotRunning is returned by helpers that need a live process.
var ErrNotRunning = errors.New("not running")

func indent(s string) string {
	if s == "" {
		return "    (log is empty)"
	}
	return "    " + strings.ReplaceAll(strings.TrimRight(s, "\n"), "\n", "\n    ")
}
