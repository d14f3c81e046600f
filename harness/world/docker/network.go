package docker

import (
	"context"
	"crypto/rand"
	"fmt"
	"net/netip"
	"path/filepath"
	"strings"
	"sync"

	"github.com/moby/moby/api/types/network"
	"github.com/moby/moby/client"
	tcnetwork "github.com/testcontainers/testcontainers-go/network"
)

// Host numbers on a /24 of the backend's: the bridge itself is .1. Fixed addresses,
// not the engine's: a container stopped and started again keeps its address, so the
// URLs in a site's gateway.json stay true.
const (
	hostCA        = 2
	hostPostgres  = 3
	hostValkey    = 4
	hostToxiproxy = 5 // on the link network and on every serving site's network
	hostGateways  = 10
	hostLast      = 63 // 64-126: this host's source addresses (HostSource); from 128 on, the engine's own
)

// Ports inside the containers (each has an address of its own, so they never clash).
const (
	portCA         = "9000"
	portPostgres   = 5432
	portValkey     = 6379
	portAPI        = "8080"
	portFederation = "8443"
	portMetrics    = "9090"
	portToxiproxy  = "8474"
)

// linkNet is the key of the link network in a run's networks (site names are never "").
const linkNet = ""

// run is what the backend keeps of one run.
type run struct {
	dir string
	mu  sync.Mutex
	// nets by site name, linkNet for the link network.
	nets map[string]*subnet
	// toxiproxy is the world's Toxiproxy container, once started.
	toxiproxy string
	// gateways counts the gateways started per site, for their addresses.
	gateways map[string]int
}

// subnet is one network of a run.
type subnet struct {
	name   string
	prefix netip.Prefix
}

// addr is host number h on the network.
func (n *subnet) addr(h int) netip.Addr {
	a := n.prefix.Addr().As4()
	a[3] = byte(h)
	return netip.AddrFrom4(a)
}

func (b *Backend) run(dir string) *run {
	b.mu.Lock()
	defer b.mu.Unlock()
	r, ok := b.runs[dir]
	if !ok {
		r = &run{dir: dir, nets: map[string]*subnet{}, gateways: map[string]int{}}
		b.runs[dir] = r
	}
	return r
}

func (b *Backend) forget(dir string) {
	b.mu.Lock()
	defer b.mu.Unlock()
	delete(b.runs, dir)
}

// network returns the run's network for a site (or linkNet), creating it first. A
// serving site's network gets the world's Toxiproxy too, so its link reaches the
// site's federation listener.
func (b *Backend) network(ctx context.Context, r *run, site string, serving bool) (*subnet, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if n, ok := r.nets[site]; ok {
		return n, nil
	}
	n, err := b.createNetwork(ctx, r.dir, site)
	if err != nil {
		return nil, err
	}
	r.nets[site] = n
	if serving && r.toxiproxy != "" {
		if err := b.connect(ctx, r.toxiproxy, n, hostToxiproxy); err != nil {
			return nil, fmt.Errorf("connect the link proxy to %s's network: %w", site, err)
		}
	}
	return n, nil
}

// createNetwork makes a bridge network on a free 10.242.N.0/24: the engine refuses a
// subnet that overlaps one of its networks, and the next is tried.
func (b *Backend) createNetwork(ctx context.Context, runDir, site string) (*subnet, error) {
	if _, err := b.engine(ctx); err != nil {
		return nil, err
	}
	var start [1]byte
	_, _ = rand.Read(start[:])
	var lastErr error
	for i := range 64 {
		third := (int(start[0]) + i*37) % 256
		prefix := netip.MustParsePrefix(fmt.Sprintf("10.242.%d.0/24", third))
		sn := &subnet{prefix: prefix}
		nw, err := tcnetwork.New(ctx,
			tcnetwork.WithLabels(labels(runDir, site, "network")),
			// The engine hands out addresses (to one-shots) from the upper half only:
			// the fixed ones are below it.
			tcnetwork.WithIPAM(&network.IPAM{Config: []network.IPAMConfig{{Subnet: prefix,
				IPRange: netip.PrefixFrom(sn.addr(128), 25), Gateway: sn.addr(1)}}}))
		if err == nil {
			sn.name = nw.Name
			return sn, nil
		}
		lastErr = err
		if !strings.Contains(err.Error(), "overlap") {
			break
		}
	}
	return nil, fmt.Errorf("create the %s network of run %s: %w", netLabel(site), filepath.Base(runDir), lastErr)
}

func netLabel(site string) string {
	if site == linkNet {
		return "link"
	}
	return site
}

// connect attaches a container to a network at host number h.
func (b *Backend) connect(ctx context.Context, id string, n *subnet, h int) error {
	cli, err := b.engine(ctx)
	if err != nil {
		return err
	}
	_, err = cli.NetworkConnect(ctx, n.name, client.NetworkConnectOptions{Container: id,
		EndpointConfig: &network.EndpointSettings{IPAMConfig: &network.EndpointIPAMConfig{IPv4Address: n.addr(h)}}})
	return err
}

// labels mark what belongs to a run (and to which site and service).
func labels(runDir, site, service string) map[string]string {
	return map[string]string{LabelRun: runDir, LabelSite: site, LabelService: service}
}
