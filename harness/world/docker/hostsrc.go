package docker

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"net/netip"
	"os/exec"
	"strings"

	"github.com/moby/moby/client"
)

// Host numbers this host may take as source addresses on a site's network (HostSource):
// above the gateways' and below the engine's own.
const (
	hostSourceFirst = hostLast + 1
	hostSourceLast  = 126
)

// HostSource gives this host a fresh address on a site's network of the run, for a
// client that must be told apart from every other by its source address (the
// federation listener counts refusals per address), as the process backend's specs
// send from an address of 127.0.0.0/8 of their own. The address is added to the
// network's bridge (this needs CAP_NET_ADMIN) and goes with it at Down or Sweep;
// release removes it sooner.
func (b *Backend) HostSource(ctx context.Context, runDir, site string) (addr string, release func() error, err error) {
	cli, err := b.engine(ctx)
	if err != nil {
		return "", nil, err
	}
	f := client.Filters{}.Add("label", LabelRun+"="+runDir).Add("label", LabelSite+"="+site).Add("label", LabelService+"=network")
	nl, err := cli.NetworkList(ctx, client.NetworkListOptions{Filters: f})
	if err != nil {
		return "", nil, fmt.Errorf("list the networks of site %s: %w", site, err)
	}
	if len(nl.Items) != 1 {
		return "", nil, fmt.Errorf("site %s of run %s has %d networks, not one", site, runDir, len(nl.Items))
	}
	res, err := cli.NetworkInspect(ctx, nl.Items[0].ID, client.NetworkInspectOptions{})
	if err != nil {
		return "", nil, fmt.Errorf("inspect the network of site %s: %w", site, err)
	}
	nw := res.Network
	if len(nw.IPAM.Config) == 0 {
		return "", nil, fmt.Errorf("the network of site %s has no subnet", site)
	}
	sn := &subnet{name: nw.Name, prefix: nw.IPAM.Config[0].Subnet}
	if !sn.prefix.Addr().Is4() {
		return "", nil, fmt.Errorf("the network of site %s is not IPv4", site)
	}
	bridge := nw.Options["com.docker.network.bridge.name"]
	if bridge == "" {
		bridge = "br-" + nw.ID[:12]
	}
	var r [1]byte
	_, _ = rand.Read(r[:])
	span := hostSourceLast - hostSourceFirst + 1
	var lastErr error
	for i := range span {
		a := sn.addr(hostSourceFirst + (int(r[0])+i)%span)
		out, err := exec.CommandContext(ctx, "ip", "addr", "add", netip.PrefixFrom(a, 32).String(), "dev", bridge).CombinedOutput()
		if err == nil {
			release := func() error {
				out, err := exec.Command("ip", "addr", "del", netip.PrefixFrom(a, 32).String(), "dev", bridge).CombinedOutput()
				if err != nil && !strings.Contains(string(out), "Cannot assign") {
					return fmt.Errorf("ip addr del %s dev %s: %w: %s", a, bridge, err, strings.TrimSpace(string(out)))
				}
				return nil
			}
			return a.String(), release, nil
		}
		lastErr = fmt.Errorf("ip addr add %s dev %s: %w: %s", a, bridge, err, strings.TrimSpace(string(out)))
		if !strings.Contains(string(out), "File exists") {
			break // not a taken address: no permission, no such device
		}
	}
	return "", nil, errors.Join(errors.New("no source address for this host on site "+site+"'s network (it needs CAP_NET_ADMIN)"), lastErr)
}
