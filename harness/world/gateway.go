package world

import (
	"context"
	"fmt"
	"os"

	"github.com/mosaic-federation/mosaic/harness/internal/proc"
)

// gatewayConfig is a site's standard federated-tier gateway.json (SPEC §4). Paths are
// relative to the site directory, where the file lives.
func gatewayConfig(site string, apiPort, fedPort int, caURL, valkeyURL string) map[string]any {
	return map[string]any{
		"tier": "federated",
		"site": site,
		"listen": map[string]any{
			"api":        addr(apiPort),
			"federation": addr(fedPort),
		},
		"federation": map[string]any{"public_url": "https://" + addr(fedPort)},
		"storage":    map[string]any{"postgres_url_file": secretsDir + "/pg.url"},
		"valkey":     map[string]any{"url": valkeyURL},
		"ca": map[string]any{
			"url":                       caURL,
			"root":                      "ca/certs/root_ca.crt",
			"provisioner":               FederationProvisioner,
			"provisioner_password_file": secretsDir + "/provisioner.pass",
		},
		"sealing_key_file": secretsDir + "/sealing.key",
	}
}

// merge deep-merges src into dst: maps merge key by key, anything else replaces.
func merge(dst, src map[string]any) map[string]any {
	for k, v := range src {
		sub, ok := v.(map[string]any)
		if d, isMap := dst[k].(map[string]any); ok && isMap {
			dst[k] = merge(d, sub)
			continue
		}
		dst[k] = v
	}
	return dst
}

// StartGateway writes <site>/<name>.json and runs `gateway serve` on it.
func (b *processBackend) StartGateway(ctx context.Context, s *Site, name string, overrides map[string]any) (*Gateway, error) {
	if !validSiteName(name) {
		return nil, fmt.Errorf("gateway name %q: use 1-32 lowercase letters, digits or '-'", name)
	}
	// O_EXCL: two gateways of a site starting together must not both write a key.
	f, err := os.OpenFile(s.path(secretsDir, "sealing.key"), os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err == nil {
		_, err = f.WriteString(randomKeyLine())
		if cerr := f.Close(); err == nil {
			err = cerr
		}
	}
	if err != nil && !os.IsExist(err) {
		return nil, err
	}
	gw := &Gateway{ConfigPath: s.path(name + ".json")}
	p := b.newProc(proc.Spec{
		Name: s.Name + "/" + name, Path: b.opts.GatewayBin, Env: b.env(), Dir: s.Dir,
		Args:    []string{"serve", "--config", gw.ConfigPath},
		LogPath: s.logPath(name),
		Ready:   func(ctx context.Context) error { return checkHealth(ctx, gw.APIURL+"/readyz", nil) },
	})
	gw.Service = p
	s.world.track(gw)
	_, err = startOnFreePorts(ctx, p, 2, func(ports []int) error {
		cfg := merge(gatewayConfig(s.Name, ports[0], ports[1], s.CA.URL, s.Valkey.URL), overrides)
		gw.APIURL = "http://" + addr(ports[0])
		gw.FederationURL = "https://" + addr(ports[1])
		p.SetPorts(ports[0]) // the federation listener arrives with enrollment
		return writeJSON(gw.ConfigPath, cfg)
	})
	if err != nil {
		return nil, err
	}
	return gw, nil
}
