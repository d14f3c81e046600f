package world

import (
	"context"
	"fmt"
	"strconv"

	"github.com/redis/go-redis/v9"

	"github.com/mosaic-federation/mosaic/harness/internal/proc"
)

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

// StartValkey starts a Valkey (or Redis) server and waits for PING.
func (b *processBackend) StartValkey(ctx context.Context, s *Site) (*Valkey, error) {
	dir := s.path("valkey")
	if err := mkdirPrivate(dir); err != nil {
		return nil, err
	}
	v := &Valkey{}
	p := b.newProc(proc.Spec{
		Name: s.Name + "/valkey", Path: b.bins.valkey, Env: b.env(), Dir: dir,
		LogPath: s.logPath("valkey"),
		Ready:   func(ctx context.Context) error { return pingValkey(ctx, v.URL) },
	})
	v.Service = p
	s.world.track(v)
	_, err := startOnFreePorts(ctx, p, 1, func(ports []int) error {
		v.URL = fmt.Sprintf("redis://127.0.0.1:%d/0", ports[0])
		p.SetArgs(valkeyArgs(dir, ports[0]), ports[0])
		return nil
	})
	return v, err
}

func pingValkey(ctx context.Context, rawURL string) error {
	opt, err := redis.ParseURL(rawURL)
	if err != nil {
		return err
	}
	opt.MaxRetries = -1
	c := redis.NewClient(opt)
	defer c.Close()
	return c.Ping(ctx).Err()
}
