package process

import (
	"context"
	"strconv"

	"github.com/mosaic-federation/mosaic/harness/world"
	"github.com/mosaic-federation/mosaic/harness/world/process/internal/proc"
)

// StartToxiproxy starts the world's Toxiproxy server with its API on a free loopback
// port and waits for its /version. The links' proxies are made through that API.
func (b *Backend) StartToxiproxy(ctx context.Context, run world.Run, logPath string) (*world.Toxiproxy, error) {
	t := &world.Toxiproxy{}
	p := proc.New(proc.Spec{
		Name: "toxiproxy", Path: b.programs().toxiproxy, Env: childEnv(run.Dir), Dir: run.Dir,
		LogPath: logPath,
		Ready:   func(ctx context.Context) error { return world.CheckHealth(ctx, t.URL+"/version", nil) },
	}, run.Log)
	t.Service = p
	_, err := startOnFreePorts(ctx, p, 1, func(ports []int) error {
		t.URL = "http://" + addr(ports[0])
		p.SetArgs(toxiproxyArgs(ports[0]), ports[0])
		return nil
	})
	return t, err
}

// toxiproxyArgs builds the server's argv: its API on loopback only.
func toxiproxyArgs(port int) []string {
	return []string{"-host", "127.0.0.1", "-port", strconv.Itoa(port)}
}
