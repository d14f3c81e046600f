package docker

import (
	"net/netip"
	"testing"
)

// The fixed host numbers of a site's /24 never meet: services, gateways, this host's
// source addresses (HostSource), then the engine's range from .128 (createNetwork).
func TestHostNumbersDoNotOverlap(t *testing.T) {
	fixed := []int{hostCA, hostPostgres, hostValkey, hostToxiproxy}
	for _, h := range fixed {
		if h <= 1 || h >= hostGateways {
			t.Errorf("service host number %d is not between the bridge (.1) and the gateways (.%d)", h, hostGateways)
		}
	}
	// Each range's first number, its last, the next range's first, …: never decreasing
	// within a range, strictly increasing across them.
	ranges := [][2]int{{hostGateways, hostLast}, {hostSourceFirst, hostSourceLast}, {128, 255}}
	for i, r := range ranges {
		if r[0] > r[1] {
			t.Errorf("range .%d-.%d is empty", r[0], r[1])
		}
		if i > 0 && ranges[i-1][1] >= r[0] {
			t.Errorf("range .%d-.%d overlaps .%d-.%d", ranges[i-1][0], ranges[i-1][1], r[0], r[1])
		}
	}
}

func TestSubnetAddr(t *testing.T) {
	n := &subnet{prefix: netip.MustParsePrefix("10.242.7.0/24")}
	if got := n.addr(hostToxiproxy).String(); got != "10.242.7.5" {
		t.Errorf("addr(%d) = %s, want 10.242.7.5", hostToxiproxy, got)
	}
}
