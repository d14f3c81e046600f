package docker

import (
	"context"
	"fmt"
	"net/netip"
	"os"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/moby/moby/api/pkg/stdcopy"
	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/api/types/mount"
	"github.com/moby/moby/api/types/network"
	"github.com/moby/moby/client"
	"github.com/testcontainers/testcontainers-go"

	"github.com/mosaic-federation/mosaic/harness/world"
)

// spec is one container to create: what testcontainers needs plus our addressing.
type spec struct {
	name    string // the service's name, for errors and the log ("home/postgres")
	runDir  string
	site    string
	service string
	image   string
	// entrypoint overrides the image's (step rather than step-ca).
	entrypoint []string
	cmd        []string
	env        map[string]string
	user       string
	workDir    string
	// binds are host paths mounted at the same path (read-write unless in readOnly).
	binds    []string
	readOnly map[string]string // host path → container path, read-only
	// nets are the networks with this container's host number on each; the first is
	// its own site's.
	nets []*subnet
	host int
	// netns, when set, is the container whose network namespace this one joins (its
	// addresses and published ports): nets, host and ports are then that one's.
	netns string
	// ports are published on the host's loopback (besides the container's address), on
	// a port the engine picks unless hostPorts names one (kept across a restart).
	ports     []string
	hostPorts map[string]string
	logPath   string
	ready     func(ctx context.Context) error
	// stopTimeout is the grace period of Stop (default 10 s).
	stopTimeout time.Duration
}

// ctr is a running service: the world.Service of a container.
type ctr struct {
	b       *Backend
	id      string
	name    string
	logPath string
	ready   func(ctx context.Context) error
	grace   time.Duration

	mu        sync.Mutex
	logCancel context.CancelFunc
	logDone   chan struct{}
}

var _ world.Service = (*ctr)(nil)

// create makes the container (not started) through testcontainers: labelled with the
// run, on its first network at its fixed address, then connected to the others.
func (b *Backend) create(ctx context.Context, sp spec) (*ctr, error) {
	if _, err := b.engine(ctx); err != nil {
		return nil, err
	}
	req := request(sp)
	if sp.netns != "" {
		// In another container's network namespace: no network, address or port of
		// its own.
		joined := req.HostConfigModifier
		req.HostConfigModifier = func(h *container.HostConfig) {
			joined(h)
			h.NetworkMode = container.NetworkMode("container:" + sp.netns)
		}
		return b.createFrom(ctx, sp, req)
	}
	first := sp.nets[0]
	exposed := sp.ports
	if len(exposed) == 0 {
		exposed = []string{"65535/tcp"} // nothing listens there
	}
	req.Networks = []string{first.name}
	mounts := req.HostConfigModifier
	req.HostConfigModifier = func(h *container.HostConfig) {
		mounts(h)
		// testcontainers publishes what is exposed: on loopback only, so that no
		// container reaches another site's service through the host's bridges.
		h.PortBindings = network.PortMap{}
		for _, p := range exposed {
			h.PortBindings[network.MustParsePort(p)] = []network.PortBinding{{HostIP: netip.MustParseAddr("127.0.0.1"), HostPort: sp.hostPorts[p]}}
		}
	}
	req.EndpointSettingsModifier = func(m map[string]*network.EndpointSettings) {
		if sp.host == 0 {
			return // a one-shot: any address
		}
		for _, es := range m {
			es.IPAMConfig = &network.EndpointIPAMConfig{IPv4Address: first.addr(sp.host)}
		}
	}
	// Named ports only: with none, testcontainers would publish each of the image's
	// on every interface.
	req.ExposedPorts = exposed
	c, err := b.createFrom(ctx, sp, req)
	if err != nil {
		return c, err
	}
	for _, n := range sp.nets[1:] {
		if err := b.connect(ctx, c.id, n, sp.host); err != nil {
			return c, fmt.Errorf("%s: connect to network %s: %w", sp.name, n.name, err)
		}
	}
	return c, nil
}

// request is what every container of a spec has: image, name, command, environment,
// labels, user, working directory and mounts (HostConfigModifier: its bind mounts).
func request(sp spec) testcontainers.ContainerRequest {
	return testcontainers.ContainerRequest{
		Image:      sp.image,
		Name:       containerName(sp.runDir, sp.site, sp.service),
		Cmd:        sp.cmd,
		Entrypoint: sp.entrypoint,
		Env:        sp.env,
		Labels:     labels(sp.runDir, sp.site, sp.service),
		ConfigModifier: func(c *container.Config) {
			c.User, c.WorkingDir = sp.user, sp.workDir
		},
		HostConfigModifier: func(h *container.HostConfig) {
			for _, p := range sp.binds {
				h.Mounts = append(h.Mounts, mount.Mount{Type: mount.TypeBind, Source: p, Target: p})
			}
			for src, dst := range sp.readOnly {
				h.Mounts = append(h.Mounts, mount.Mount{Type: mount.TypeBind, Source: src, Target: dst, ReadOnly: true})
			}
		},
	}
}

// createFrom creates (does not start) the container of req. A container created
// with an error is still returned, so that the caller can remove it.
func (b *Backend) createFrom(ctx context.Context, sp spec, req testcontainers.ContainerRequest) (*ctr, error) {
	gc, err := testcontainers.GenericContainer(ctx, testcontainers.GenericContainerRequest{ContainerRequest: req})
	if gc == nil {
		return nil, fmt.Errorf("%s: create container from %s: %w", sp.name, sp.image, err)
	}
	c := &ctr{b: b, id: gc.GetContainerID(), name: sp.name, logPath: sp.logPath, ready: sp.ready, grace: sp.stopTimeout}
	if err != nil {
		return c, fmt.Errorf("%s: create container from %s: %w", sp.name, sp.image, err)
	}
	return c, nil
}

// containerName is unique per run: <run dir's base>-<site>-<service>.
func containerName(runDir, site, service string) string {
	base := runDir[strings.LastIndex(runDir, "/")+1:]
	if site == "" {
		return base + "-" + service
	}
	return base + "-" + site + "-" + service
}

// Name is the service's name ("work/postgres").
func (c *ctr) Name() string { return c.name }

// LogPath is the file the container's output is copied to.
func (c *ctr) LogPath() string { return c.logPath }

// Start starts the container, follows its output into the log file and returns once
// the service answers its readiness check; a container that exits first fails at once.
func (c *ctr) Start(ctx context.Context) error {
	cli, err := c.b.engine(ctx)
	if err != nil {
		return err
	}
	since := time.Now()
	if _, err := cli.ContainerStart(ctx, c.id, client.ContainerStartOptions{}); err != nil {
		return fmt.Errorf("%s: start: %w", c.name, err)
	}
	c.followLogs(since)
	for {
		rerr := c.ready(ctx)
		if rerr == nil {
			return nil
		}
		if !c.Running() {
			return fmt.Errorf("%s exited before it was ready (%v); last log lines (%s):\n%s", c.name, rerr, c.logPath, tail(c.logPath, 15))
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("%s not ready: %w (last check: %v); log %s", c.name, ctx.Err(), rerr, c.logPath)
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// followLogs copies the container's output since a start into the log file, until the
// container stops.
func (c *ctr) followLogs(since time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.logCancel != nil {
		c.logCancel()
		<-c.logDone
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	c.logCancel, c.logDone = cancel, done
	go func() {
		defer close(done)
		f, err := os.OpenFile(c.logPath, os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o600)
		if err != nil {
			return
		}
		defer f.Close()
		cli, err := c.b.engine(ctx)
		if err != nil {
			return
		}
		rc, err := cli.ContainerLogs(ctx, c.id, client.ContainerLogsOptions{ShowStdout: true, ShowStderr: true, Follow: true,
			Since: strconv.FormatFloat(float64(since.UnixNano())/1e9, 'f', 9, 64)})
		if err != nil {
			return
		}
		defer rc.Close()
		_, _ = stdcopy.StdCopy(f, f, rc)
	}()
}

// Stop stops the container: its stop signal, then SIGKILL after the grace period or
// when ctx ends.
func (c *ctr) Stop(ctx context.Context) error {
	cli, err := c.b.engine(ctx)
	if err != nil {
		return err
	}
	grace := c.grace
	if grace == 0 {
		grace = 10 * time.Second
	}
	if dl, ok := ctx.Deadline(); ok && time.Until(dl) < grace {
		grace = max(0, time.Until(dl)-500*time.Millisecond)
	}
	secs := int(grace.Seconds())
	if _, err := cli.ContainerStop(context.WithoutCancel(ctx), c.id, client.ContainerStopOptions{Timeout: &secs}); err != nil && !notFound(err) {
		return fmt.Errorf("%s: stop: %w", c.name, err)
	}
	c.waitLogs()
	return nil
}

// Kill sends SIGKILL and returns once the container is gone.
func (c *ctr) Kill() error {
	ctx := context.Background()
	cli, err := c.b.engine(ctx)
	if err != nil {
		return err
	}
	if _, err := cli.ContainerKill(ctx, c.id, client.ContainerKillOptions{Signal: "KILL"}); err != nil && !notFound(err) && c.Running() {
		return fmt.Errorf("%s: kill: %w", c.name, err)
	}
	wait := cli.ContainerWait(ctx, c.id, client.ContainerWaitOptions{Condition: container.WaitConditionNotRunning})
	select {
	case <-wait.Result:
	case err := <-wait.Error:
		if c.Running() {
			return fmt.Errorf("%s: wait for the kill: %w", c.name, err)
		}
	case <-time.After(10 * time.Second):
		return fmt.Errorf("%s: still running 10 s after SIGKILL", c.name)
	}
	c.waitLogs()
	return nil
}

// Restart stops and starts the container.
func (c *ctr) Restart(ctx context.Context) error {
	if err := c.Stop(ctx); err != nil {
		return err
	}
	return c.Start(ctx)
}

// Running reports whether the container is running.
func (c *ctr) Running() bool {
	st := c.state()
	return st != nil && st.Running
}

// Pid is the container's main process on this host (the engine's pid namespace is
// this host's), or 0 when it is not running.
func (c *ctr) Pid() int {
	if st := c.state(); st != nil && st.Running {
		return st.Pid
	}
	return 0
}

func (c *ctr) state() *container.State {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	cli, err := c.b.engine(ctx)
	if err != nil {
		return nil
	}
	res, err := cli.ContainerInspect(ctx, c.id, client.ContainerInspectOptions{})
	if err != nil {
		return nil
	}
	return res.Container.State
}

// waitLogs lets the log copier drain what the stopped container wrote.
func (c *ctr) waitLogs() {
	c.mu.Lock()
	done := c.logDone
	c.mu.Unlock()
	if done == nil {
		return
	}
	select {
	case <-done:
	case <-time.After(2 * time.Second):
	}
}

func notFound(err error) bool {
	return err != nil && (strings.Contains(err.Error(), "No such container") || strings.Contains(err.Error(), "not found"))
}

// tail is the last n lines of a file.
func tail(path string, n int) string {
	b, _ := os.ReadFile(path)
	lines := strings.Split(strings.TrimRight(string(b), "\n"), "\n")
	return strings.Join(lines[max(0, len(lines)-n):], "\n")
}
