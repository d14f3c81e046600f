package process

import (
	"context"
	"fmt"
	"strconv"

	"github.com/mosaic-federation/mosaic/harness/world"
	"github.com/mosaic-federation/mosaic/harness/world/process/internal/proc"
)

// StartValkey starts a Valkey (or Redis) server on a free port and waits for PING.
func (b *Backend) StartValkey(ctx context.Context, s *world.Site) (*world.Valkey, error) {
	dir := s.Path("valkey")
	if err := mkdirPrivate(dir); err != nil {
		return nil, err
	}
	v := &world.Valkey{}
	p := newProc(s, proc.Spec{
		Name: s.Name + "/valkey", Path: b.programs().valkey, Env: childEnv(s.Run().Dir), Dir: dir,
		LogPath: s.LogPath("valkey"),
		Ready:   func(ctx context.Context) error { return world.PingValkey(ctx, v.URL) },
	})
	v.Service = p
	_, err := startOnFreePorts(ctx, p, 1, func(ports []int) error {
		v.URL = fmt.Sprintf("redis://127.0.0.1:%d/0", ports[0])
		p.SetArgs(valkeyArgs(dir, ports[0]), ports[0])
		return nil
	})
	return v, err
}

// valkeyArgs builds the server's argv: loopback only, no persistence of any kind.
func valkeyArgs(dir string, port int) []string {
	return []string{
		"--bind", "127.0.0.1",
		"--port", strconv.Itoa(port),
		"--dir", dir,
		"--save", "",
		"--appendonly", "no",
		"--protected-mode", "yes",
		"--daemonize", "no",
		"--logfile", "",
	}
}
