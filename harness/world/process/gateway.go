package process

import (
	"context"

	"github.com/mosaic-federation/mosaic/harness/world"
	"github.com/mosaic-federation/mosaic/harness/world/process/internal/proc"
)

// StartGateway writes <site>/<name>.json on two free ports and runs `gateway serve` on it.
func (b *Backend) StartGateway(ctx context.Context, s *world.Site, name string, overrides map[string]any) (*world.Gateway, error) {
	run := s.Run()
	gw := &world.Gateway{ConfigPath: s.Path(name + ".json")}
	p := newProc(s, proc.Spec{
		Name: s.Name + "/" + name, Path: run.GatewayBin, Env: childEnv(run.Dir), Dir: s.Dir,
		Args:    []string{"serve", "--config", gw.ConfigPath},
		LogPath: s.LogPath(name),
		Ready:   func(ctx context.Context) error { return world.CheckHealth(ctx, gw.APIURL+"/readyz", nil) },
	})
	gw.Service = p
	_, err := startOnFreePorts(ctx, p, 3, func(ports []int) error {
		api, fed := addr(ports[0]), addr(ports[1])
		cfg := world.Merge(world.GatewayConfig(s.Name, api, fed, s.CA.URL, s.Valkey.URL), overrides)
		// /metrics on a loopback port of its own, never on the API listener (§6c).
		cfg = world.Merge(cfg, map[string]any{"listen": map[string]any{"metrics": addr(ports[2])}})
		gw.APIURL = "http://" + api
		gw.MetricsURL = "http://" + addr(ports[2])
		gw.FederationURL = "https://" + fed
		p.SetPorts(ports[0]) // the federation listener arrives with enrollment
		return world.WriteConfig(gw.ConfigPath, cfg)
	})
	return gw, err
}
