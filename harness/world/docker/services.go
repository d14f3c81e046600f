package docker

import (
	"context"
	"crypto/rand"
	"debug/elf"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"time"

	"github.com/mosaic-federation/mosaic/harness/world"
)

// siteNet is the network of a site (made on its first service).
func (b *Backend) siteNet(ctx context.Context, s *world.Site) (*run, *subnet, error) {
	r := b.run(s.Run().Dir)
	n, err := b.network(ctx, r, s.Name, !s.Requesting())
	return r, n, err
}

// StartCA initialises a standalone CA with the image's `step` (one-shot containers on
// the site directory, at its own path), lets world.ConfigureCA install the OID
// template and the extra provisioners, and runs the image's step-ca on the files.
func (b *Backend) StartCA(ctx context.Context, s *world.Site) (*world.CA, error) {
	_, n, err := b.siteNet(ctx, s)
	if err != nil {
		return nil, err
	}
	stepPath := s.Path(world.CADir)
	ca := &world.CA{
		StepPath:                stepPath,
		ConfigPath:              filepath.Join(stepPath, "config", "ca.json"),
		RootPath:                s.Path(world.CARootFile),
		ProvisionerPasswordFile: s.Path(world.ProvisionerPasswordFile),
	}
	caPass := s.Path(world.SecretsDir, "ca.pass")
	for _, f := range []string{caPass, ca.ProvisionerPasswordFile} {
		if err := os.WriteFile(f, []byte(randomHex(24)+"\n"), 0o600); err != nil {
			return nil, err
		}
	}
	ip := n.addr(hostCA).String()
	address := net.JoinHostPort(ip, portCA)
	step := func(name string, args ...string) spec {
		return spec{name: s.Name + "/" + name, runDir: s.Run().Dir, site: s.Name, service: name, image: b.cfg.Images.StepCA,
			cmd: args, user: user(), binds: []string{s.Dir}, nets: []*subnet{n}, host: 0,
			env: map[string]string{"STEPPATH": stepPath, "HOME": "/tmp"}, logPath: s.LogPath(name)}
	}
	// The CA and the extra provisioners' keys are independent: make them in parallel.
	specs := []spec{withEntrypointStep(step("step-ca-init", stepCAInitArgs(s.Name, ip, address, caPass, ca.ProvisionerPasswordFile)...))}
	for _, name := range world.ExtraProvisioners() {
		specs = append(specs, withEntrypointStep(step("step-ca-init-"+name, jwkCreateArgs(s.Path(world.SecretsDir, name+".pub.json"),
			s.Path(world.SecretsDir, name+".key.json"), ca.ProvisionerPasswordFile)...)))
	}
	errs := make([]error, len(specs))
	var wg sync.WaitGroup
	for i, sp := range specs {
		wg.Go(func() { errs[i] = b.oneShot(ctx, sp) })
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	if err := world.ConfigureCA(ca.ConfigPath, filepath.Join(stepPath, "templates"), s.Path(world.SecretsDir)); err != nil {
		return nil, fmt.Errorf("configure %s: %w", ca.ConfigPath, err)
	}
	if ca.URL, err = world.SetCAAddress(stepPath, address); err != nil {
		return nil, err
	}
	if ca.Fingerprint, err = world.Fingerprint(ca.RootPath); err != nil {
		return nil, err
	}
	roots, err := world.CertPool(ca.RootPath)
	if err != nil {
		return nil, err
	}
	sp := step("step-ca", ca.ConfigPath, "--password-file", caPass)
	sp.host, sp.ports = hostCA, []string{portCA + "/tcp"}
	sp.ready = func(ctx context.Context) error { return world.CheckHealth(ctx, ca.URL+"/health", roots) }
	return startService(ctx, b, sp, ca, func(svc world.Service) { ca.Service = svc })
}

// withEntrypointStep runs `step` rather than the image's step-ca.
func withEntrypointStep(sp spec) spec {
	sp.entrypoint = []string{"/usr/local/bin/step"}
	return sp
}

// stepCAInitArgs builds `step ca init` for a standalone CA that asks nothing, at its
// container's address.
func stepCAInitArgs(site, ip, address, caPass, provPass string) []string {
	return []string{"ca", "init", "--deployment-type", "standalone",
		"--name", "Mosaic " + site + " CA", "--dns", ip, "--address", address,
		"--provisioner", world.FederationProvisioner,
		"--password-file", caPass, "--provisioner-password-file", provPass}
}

// jwkCreateArgs builds `step crypto jwk create` for a provisioner's key pair.
func jwkCreateArgs(pubPath, keyPath, passFile string) []string {
	return []string{"crypto", "jwk", "create", pubPath, keyPath,
		"--kty", "EC", "--crv", "P-256", "--use", "sig", "--password-file", passFile, "--force"}
}

// StartPostgres runs the PostgreSQL image (the official image's environment contract)
// and creates the gateway database with the vector extension. Its data stays in the
// container's volume, which Down removes.
func (b *Backend) StartPostgres(ctx context.Context, s *world.Site) (*world.Postgres, error) {
	_, n, err := b.siteNet(ctx, s)
	if err != nil {
		return nil, err
	}
	password := randomHex(16)
	pg := &world.Postgres{Port: portPostgres}
	host := n.addr(hostPostgres).String()
	pg.AdminURL = postgresURL(password, host, "postgres")
	pg.URL = postgresURL(password, host, world.PostgresDatabase)
	sp := spec{name: s.Name + "/postgres", runDir: s.Run().Dir, site: s.Name, service: "postgres", image: b.cfg.Images.Postgres,
		cmd: []string{"postgres", "-c", "max_connections=200"},
		env: map[string]string{"POSTGRES_USER": world.PostgresSuperuser, "POSTGRES_PASSWORD": password, "POSTGRES_DB": "postgres",
			"POSTGRES_INITDB_ARGS": "--locale=C -E UTF8 --no-sync"},
		nets: []*subnet{n}, host: hostPostgres, ports: []string{strconv.Itoa(portPostgres) + "/tcp"}, logPath: s.LogPath("postgres"),
		stopTimeout: 10 * time.Second,
		ready:       func(ctx context.Context) error { return world.PingPostgres(ctx, pg.AdminURL) }}
	if _, err := startService(ctx, b, sp, pg, func(svc world.Service) { pg.Service = svc }); err != nil {
		return pg, err
	}
	return pg, world.CreateGatewayDatabase(ctx, pg.AdminURL, pg.URL)
}

// postgresURL connects to db at a container's address as the cluster's superuser.
func postgresURL(password, host, db string) string {
	u := url.URL{Scheme: "postgres", User: url.UserPassword(world.PostgresSuperuser, password),
		Host: net.JoinHostPort(host, strconv.Itoa(portPostgres)), Path: "/" + db, RawQuery: "sslmode=disable"}
	return u.String()
}

// static reports whether an executable is statically linked (no ELF interpreter):
// only such a binary runs on the scratch gateway image.
func static(path string) bool {
	f, err := elf.Open(path)
	if err != nil {
		return false
	}
	defer f.Close()
	for _, p := range f.Progs {
		if p.Type == elf.PT_INTERP {
			return false
		}
	}
	return true
}

// StartValkey runs the Valkey image without persistence and waits for PING.
func (b *Backend) StartValkey(ctx context.Context, s *world.Site) (*world.Valkey, error) {
	_, n, err := b.siteNet(ctx, s)
	if err != nil {
		return nil, err
	}
	v := &world.Valkey{URL: fmt.Sprintf("redis://%s/0", net.JoinHostPort(n.addr(hostValkey).String(), strconv.Itoa(portValkey)))}
	sp := spec{name: s.Name + "/valkey", runDir: s.Run().Dir, site: s.Name, service: "valkey", image: b.cfg.Images.Valkey,
		// Protected mode refuses every address but loopback when there is no password:
		// the site's network is the boundary here, as in the official image.
		cmd:  []string{"valkey-server", "--save", "", "--appendonly", "no", "--protected-mode", "no"},
		nets: []*subnet{n}, host: hostValkey, ports: []string{strconv.Itoa(portValkey) + "/tcp"}, logPath: s.LogPath("valkey"),
		ready: func(ctx context.Context) error { return world.PingValkey(ctx, v.URL) }}
	return startService(ctx, b, sp, v, func(svc world.Service) { v.Service = svc })
}

// StartGateway writes <site>/<name>.json with the container's address on the site's
// network and runs `gateway serve` on it. The requesting site's gateways are on the
// link network too. The run's gateway binary runs when it is static (the image is
// scratch), else the image's own.
func (b *Backend) StartGateway(ctx context.Context, s *world.Site, name string, overrides map[string]any) (*world.Gateway, error) {
	r, n, err := b.siteNet(ctx, s)
	if err != nil {
		return nil, err
	}
	nets := []*subnet{n}
	if s.Requesting() {
		r.mu.Lock()
		link := r.nets[linkNet]
		r.mu.Unlock()
		if link != nil {
			nets = append(nets, link)
		}
	}
	r.mu.Lock()
	host := hostGateways + r.gateways[s.Name]
	r.gateways[s.Name]++
	r.mu.Unlock()
	if host > hostLast {
		return nil, fmt.Errorf("site %s: no address left for gateway %s", s.Name, name)
	}
	ip := n.addr(host).String()
	api, fed, metrics := net.JoinHostPort(ip, portAPI), net.JoinHostPort(ip, portFederation), net.JoinHostPort(ip, portMetrics)
	gw := &world.Gateway{ConfigPath: s.Path(name + ".json"), APIURL: "http://" + api, FederationURL: "https://" + fed, MetricsURL: "http://" + metrics}
	cfg := world.Merge(world.GatewayConfig(s.Name, api, fed, s.CA.URL, s.Valkey.URL), overrides)
	cfg = world.Merge(cfg, map[string]any{"listen": map[string]any{"metrics": metrics}})
	if err := world.WriteConfig(gw.ConfigPath, cfg); err != nil {
		return nil, err
	}
	sp := spec{name: s.Name + "/" + name, runDir: s.Run().Dir, site: s.Name, service: name, image: b.cfg.Images.Gateway,
		cmd: []string{"serve", "--config", gw.ConfigPath}, user: user(), workDir: s.Dir, binds: []string{s.Dir},
		nets: nets, host: host, ports: []string{portAPI + "/tcp", portFederation + "/tcp"}, logPath: s.LogPath(name),
		ready: func(ctx context.Context) error { return world.CheckHealth(ctx, gw.APIURL+"/readyz", nil) }}
	if bin := s.Run().GatewayBin; static(bin) {
		sp.readOnly = map[string]string{bin: "/usr/local/bin/gateway"}
	}
	return startService(ctx, b, sp, gw, func(svc world.Service) { gw.Service = svc })
}

// StartToxiproxy runs the world's Toxiproxy on the link network; its links listen on
// its address there, which the requesting gateways and this host both reach.
func (b *Backend) StartToxiproxy(ctx context.Context, rw world.Run, logPath string) (*world.Toxiproxy, error) {
	r := b.run(rw.Dir)
	link, err := b.network(ctx, r, linkNet, false)
	if err != nil {
		return nil, err
	}
	ip := link.addr(hostToxiproxy).String()
	t := &world.Toxiproxy{URL: "http://" + net.JoinHostPort(ip, portToxiproxy), LinkHost: ip}
	sp := spec{name: "toxiproxy", runDir: rw.Dir, service: "toxiproxy", image: b.cfg.Images.Toxiproxy,
		cmd:  []string{"-host=0.0.0.0", "-port=" + portToxiproxy},
		nets: []*subnet{link}, host: hostToxiproxy, ports: []string{portToxiproxy + "/tcp"}, logPath: logPath,
		ready: func(ctx context.Context) error { return world.CheckHealth(ctx, t.URL+"/version", nil) }}
	tp, err := startService(ctx, b, sp, t, func(svc world.Service) { t.Service = svc })
	if c, ok := t.Service.(*ctr); ok && err == nil {
		// world.Up starts the links before any site: each serving site's network,
		// made next, gets the proxy (network).
		r.mu.Lock()
		r.toxiproxy = c.id
		r.mu.Unlock()
	}
	return tp, err
}

// startService creates and starts a container, handing its handle to the world's
// service (set) even when the start fails, so that Down removes it.
func startService[T any](ctx context.Context, b *Backend, sp spec, svc *T, set func(world.Service)) (*T, error) {
	c, err := b.create(ctx, sp)
	if c != nil {
		set(c)
	}
	if err != nil {
		if c == nil {
			return nil, err
		}
		return svc, err
	}
	return svc, c.Start(ctx)
}

func randomHex(n int) string {
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		panic(err)
	}
	return hex.EncodeToString(b)
}
