package process

import (
	"context"
	"io"
	"net"
	"os"
	"path/filepath"
	"testing"
	"time"

	toxiproxy "github.com/Shopify/toxiproxy/v2/client"

	"github.com/mosaic-federation/mosaic/harness/world"
)

// echoServer answers every connection with what it reads, until the test ends.
func echoServer(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				_, _ = io.Copy(c, c)
			}()
		}
	}()
	return l.Addr().String()
}

// roundTrip sends a few bytes on c and reads them back, and says how long it took.
func roundTrip(c net.Conn) (time.Duration, error) {
	start := time.Now()
	_ = c.SetDeadline(time.Now().Add(5 * time.Second))
	if _, err := c.Write([]byte("ping")); err != nil {
		return 0, err
	}
	buf := make([]byte, 4)
	if _, err := io.ReadFull(c, buf); err != nil {
		return 0, err
	}
	return time.Since(start), nil
}

// dialTrip opens a fresh connection to addr and makes one round trip on it.
func dialTrip(addr string) (time.Duration, error) {
	c, err := net.DialTimeout("tcp", addr, 2*time.Second)
	if err != nil {
		return 0, err
	}
	defer c.Close()
	return roundTrip(c)
}

// startLink runs a real toxiproxy-server (from `make deps`) with one proxy to an echo
// server and returns a handle on it whose baseline latency is base.
func startLink(t *testing.T, base time.Duration) *world.Link {
	t.Helper()
	bin := world.DefaultBinDir()
	if _, err := os.Stat(filepath.Join(bin, "toxiproxy-server")); err != nil {
		t.Fatalf("toxiproxy-server not in %s: run `make deps`", bin)
	}
	dir := t.TempDir()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	tp, err := New(Config{BinDir: bin}).StartToxiproxy(ctx, world.Run{Dir: dir}, filepath.Join(dir, "toxiproxy.log"))
	if tp != nil {
		t.Cleanup(func() { _ = tp.Stop(context.Background()) })
	}
	if err != nil {
		t.Fatal(err)
	}
	p, err := toxiproxy.NewClient(tp.URL).CreateProxy("home_to_work", "127.0.0.1:0", echoServer(t))
	if err != nil {
		t.Fatal(err)
	}
	l, err := world.AttachLink(world.LinkInfo{From: "home", To: "work", Listen: p.Listen, API: tp.URL,
		Proxy: p.Name, LatencyMS: base.Milliseconds()})
	if err != nil {
		t.Fatal(err)
	}
	return l
}

func TestLinkLatencyCutRestoreAndResets(t *testing.T) {
	const d = 150 * time.Millisecond
	l := startLink(t, 0)
	addr := l.Info().Listen
	if rtt, err := dialTrip(addr); err != nil || rtt >= 2*d {
		t.Fatalf("through a fresh link: %v, %v; want a quick echo", rtt, err)
	}

	if err := l.SetLatency(d); err != nil {
		t.Fatal(err)
	}
	if rtt, err := dialTrip(addr); err != nil || rtt < 2*d {
		t.Errorf("with %s each way a round trip took %v (%v), want at least %v", d, rtt, err, 2*d)
	}
	if err := l.SetLatency(0); err != nil {
		t.Fatal(err)
	}
	if rtt, err := dialTrip(addr); err != nil || rtt >= 2*d {
		t.Errorf("latency 0: a round trip took %v (%v)", rtt, err)
	}

	open, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer open.Close()
	if _, err := roundTrip(open); err != nil {
		t.Fatal(err)
	}
	if err := l.Cut(); err != nil {
		t.Fatal(err)
	}
	if _, err := dialTrip(addr); err == nil {
		t.Error("a cut link let a new connection through")
	}
	if _, err := roundTrip(open); err == nil {
		t.Error("a cut link kept an open connection working")
	}
	if err := l.Restore(); err != nil {
		t.Fatal(err)
	}
	if _, err := dialTrip(addr); err != nil {
		t.Errorf("after Restore: %v", err)
	}

	open2, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer open2.Close()
	if _, err := roundTrip(open2); err != nil {
		t.Fatal(err)
	}
	if err := l.ResetPeers(); err != nil {
		t.Fatal(err)
	}
	if _, err := roundTrip(open2); err == nil {
		t.Error("ResetPeers left an open connection working")
	}
	if _, err := dialTrip(addr); err == nil {
		t.Error("ResetPeers let a new connection's data through")
	}
	if err := l.Restore(); err != nil {
		t.Fatal(err)
	}
	if _, err := dialTrip(addr); err != nil {
		t.Errorf("after Restore from resets: %v", err)
	}
}

func TestRestoreReturnsToTheWorldsLatency(t *testing.T) {
	const base = 100 * time.Millisecond
	l := startLink(t, base)
	if err := l.Cut(); err != nil {
		t.Fatal(err)
	}
	if err := l.Restore(); err != nil {
		t.Fatal(err)
	}
	if rtt, err := dialTrip(l.Info().Listen); err != nil || rtt < 2*base {
		t.Errorf("after Restore a round trip took %v (%v), want the world's %v each way back", rtt, err, base)
	}
}
