package docker

import (
	"context"
	"crypto/rand"
	"debug/elf"
	"encoding/hex"
	"fmt"
	"net"
	"net/url"
	"os"
	"strconv"
	"time"

	"github.com/mosaic-federation/mosaic/harness/world"
)

// siteNet is the network of a site (made on its first service).
func (b *Backend) siteNet(ctx context.Context, s *world.Site) (*run, *subnet, error) {
	r := b.run(s.Run().Dir)
	n, err := b.network(ctx, r, s.Name, !s.Requesting())
	return r, n, err
}

// StartCA writes the site's CA with siteinit (world.Site.InitCA) at its container's
// address on the site's network and runs the image's step-ca on the files (the site
// directory mounted at its own path).
func (b *Backend) StartCA(ctx context.Context, s *world.Site) (*world.CA, error) {
	_, n, err := b.siteNet(ctx, s)
	if err != nil {
		return nil, err
	}
	address := net.JoinHostPort(n.addr(hostCA).String(), portCA)
	ca, caPass, err := s.InitCA(address)
	if err != nil {
		return nil, err
	}
	roots, err := world.CertPool(ca.RootPath)
	if err != nil {
		return nil, err
	}
	sp := spec{name: s.Name + "/step-ca", runDir: s.Run().Dir, site: s.Name, service: "step-ca", image: b.cfg.Images.StepCA,
		cmd: []string{ca.ConfigPath, "--password-file", caPass}, user: user(), binds: []string{s.Dir}, nets: []*subnet{n},
		env: map[string]string{"STEPPATH": ca.StepPath, "HOME": "/tmp"}, logPath: s.LogPath("step-ca"),
		host: hostCA, ports: []string{portCA + "/tcp"}}
	sp.ready = func(ctx context.Context) error { return world.CheckHealth(ctx, ca.URL+"/health", roots) }
	return startService(ctx, b, sp, ca, func(svc world.Service) { ca.Service = svc })
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
	api, fed := net.JoinHostPort(ip, portAPI), net.JoinHostPort(ip, portFederation)
	// The world reads listen.metrics through a port published on this host's loopback
	// only, fixed so that it survives a restart. The engine forwards a published port to
	// the address of whichever of the container's networks sorts first by name, so the
	// listener takes every address of the container: its site's network and, for the
	// requesting site, the link network, where only its own gateways and the link proxy
	// stand. No peer reaches it, as on the process backend's loopback.
	metrics := net.JoinHostPort("0.0.0.0", portMetrics)
	metricsPort, err := freePort()
	if err != nil {
		return nil, fmt.Errorf("site %s: a loopback port for %s's metrics: %w", s.Name, name, err)
	}
	gw := &world.Gateway{ConfigPath: s.Path(name + ".json"), APIURL: "http://" + api, FederationURL: "https://" + fed,
		MetricsURL: "http://" + net.JoinHostPort("127.0.0.1", metricsPort)}
	cfg := world.Merge(world.GatewayConfig(s.Name, api, fed, s.CA.URL, s.Valkey.URL), overrides)
	cfg = world.Merge(cfg, map[string]any{"listen": map[string]any{"metrics": metrics}})
	if err := world.WriteConfig(gw.ConfigPath, cfg); err != nil {
		return nil, err
	}
	// The gateway's addresses and published ports belong to a holder container that
	// only sleeps; the gateway joins its network namespace. A stopped or killed gateway
	// then leaves its addresses up with nothing listening, so a peer dialling it is
	// refused at once, as when a gateway process dies on a host that stays up, rather
	// than left to time out on an address gone from the network.
	holder := spec{name: s.Name + "/" + name + "-net", runDir: s.Run().Dir, site: s.Name, service: name + "-net",
		image: b.cfg.Images.Valkey, entrypoint: []string{"sleep", "infinity"},
		nets: nets, host: host, ports: []string{portAPI + "/tcp", portFederation + "/tcp", portMetrics + "/tcp"},
		hostPorts: map[string]string{portMetrics + "/tcp": metricsPort}, logPath: os.DevNull,
		ready: func(context.Context) error { return nil }}
	h, err := b.create(ctx, holder)
	if err == nil {
		err = h.Start(ctx)
	}
	if err != nil {
		if h != nil {
			_ = h.Kill()
		}
		return nil, err
	}
	sp := spec{name: s.Name + "/" + name, runDir: s.Run().Dir, site: s.Name, service: name, image: b.cfg.Images.Gateway,
		cmd: []string{"serve", "--config", gw.ConfigPath}, user: user(), workDir: s.Dir, binds: []string{s.Dir},
		netns: h.id, logPath: s.LogPath(name),
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
	t := &world.Toxiproxy{URL: "http://" + net.JoinHostPort(ip, portToxiproxy), LinkHost: ip,
		Host: link.addr(1).String(), // the bridge: this host's address on the link network
		// The proxy stands on each serving site's network at the same host number.
		Source: func(site string) string {
			r.mu.Lock()
			defer r.mu.Unlock()
			if n, ok := r.nets[site]; ok {
				return n.addr(hostToxiproxy).String()
			}
			return ""
		}}
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

// freePort is a TCP port free on this host's loopback now.
func freePort() (string, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	defer l.Close()
	_, port, err := net.SplitHostPort(l.Addr().String())
	return port, err
}

func randomHex(n int) string {
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		panic(err)
	}
	return hex.EncodeToString(b)
}
