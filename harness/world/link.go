package world

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"sync"
	"time"

	toxiproxy "github.com/Shopify/toxiproxy/v2/client"
)

// Links (SPEC §6a): a Toxiproxy stands between the requesting site and each serving
// site. The serving gateway's federation.public_url is the proxy's address, so its
// enrollment URLs — hence the peer URL the requesting site stores — name the proxy,
// and the requesting gateway reaches the serving one only through it. The listener
// certificate's address is public_url's host (127.0.0.1 either way), so it still
// verifies. Specs talking to a serving listener directly use Gateway.FederationURL.

// Toxiproxy is the world's fault-injecting TCP proxy server.
type Toxiproxy struct {
	Service
	URL string // its HTTP API, http://127.0.0.1:port
	// LinkHost is the address the links' proxies listen on, reachable from the
	// requesting site's gateways and from this host ("" means 127.0.0.1).
	LinkHost string
	// Host is this host's address as the requesting site's gateways reach it, where a
	// spec's own serving gateway may listen for them ("" means 127.0.0.1).
	Host string
	// Source, when set, is the address a serving site's listener sees its link's
	// connections come from (nil: LinkHost's, the proxy dialling from where it listens).
	Source func(site string) string
}

// sourceFor is the address site's listener sees its link's connections come from.
func (t *Toxiproxy) sourceFor(site string) string {
	if t.Source != nil {
		if a := t.Source(site); a != "" {
			return a
		}
	}
	if t.LinkHost != "" {
		return t.LinkHost
	}
	return "127.0.0.1"
}

// ToxiproxyLog is the Toxiproxy server's log file, relative to the run directory.
const ToxiproxyLog = LogsDir + "/toxiproxy.log"

// LinkInfo describes a link, for `harness status --json` and for acceptance processes
// other than the one that booted the world (AttachLink).
type LinkInfo struct {
	From     string `json:"from"`     // the requesting site
	To       string `json:"to"`       // the serving site
	Listen   string `json:"listen"`   // host:port the requesting gateway dials
	Upstream string `json:"upstream"` // the serving gateway's federation listener
	API      string `json:"api"`      // the Toxiproxy API driving it
	Proxy    string `json:"proxy"`    // the proxy's name there
	// LatencyMS is the world's WAN latency each way: what Restore returns to.
	LatencyMS int64 `json:"latency_ms"`
	// Source is the address the serving listener sees the link's connections come from
	// (its audit rows' client_addr): 127.0.0.1 on the process backend.
	Source string `json:"source,omitempty"`
	// Host is this host's address as the requesting site's gateways reach it (a
	// listener of a spec's own, outside the world, binds there): 127.0.0.1 on the
	// process backend, this host's address on the link network on docker.
	Host string `json:"host,omitempty"`
}

// Link is a handle on one link. Its methods are safe for concurrent use within a
// process; specs that disturb a shared link run Serial.
type Link struct {
	info  LinkInfo
	mu    sync.Mutex
	proxy *toxiproxy.Proxy
}

// The toxics a link uses, by name: latency each way, and resets each way.
const (
	toxicLatencyUp   = "latency_up"
	toxicLatencyDown = "latency_down"
	toxicResetUp     = "reset_peer_up"
	toxicResetDown   = "reset_peer_down"
)

// proxyName names the proxy of a link; '_' is not allowed in site names, so no two
// links share a name.
func proxyName(from, to string) string { return from + "_to_" + to }

// AttachLink is a handle on a link booted by another process (from its LinkInfo).
func AttachLink(info LinkInfo) (*Link, error) {
	p, err := toxiproxy.NewClient(info.API).Proxy(info.Proxy)
	if err != nil {
		return nil, fmt.Errorf("link %s→%s: Toxiproxy at %s: %w", info.From, info.To, info.API, err)
	}
	return &Link{info: info, proxy: p}, nil
}

// Info describes the link.
func (l *Link) Info() LinkInfo {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.info
}

// URL is the https:// URL the requesting site reaches the serving site at.
func (l *Link) URL() string { return "https://" + l.info.Listen } // Listen never changes

// SetLatency delays data by d in each direction (a round trip costs 2·d); 0 removes
// the delay. Open connections are slowed too.
func (l *Link) SetLatency(d time.Duration) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.setLatency(d)
}

func (l *Link) setLatency(d time.Duration) error {
	for _, t := range []struct{ name, stream string }{{toxicLatencyUp, "upstream"}, {toxicLatencyDown, "downstream"}} {
		if err := l.removeToxic(t.name); err != nil {
			return err
		}
		if d <= 0 {
			continue
		}
		if _, err := l.proxy.AddToxic(t.name, "latency", t.stream, 1, toxiproxy.Attributes{"latency": d.Milliseconds()}); err != nil {
			return l.errorf("set latency %s: %w", d, err)
		}
	}
	return nil
}

// Cut takes the link down: the proxy stops listening (new connections are refused)
// and closes every open connection.
func (l *Link) Cut() error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if err := l.proxy.Disable(); err != nil {
		return l.errorf("cut: %w", err)
	}
	return nil
}

// ResetPeers makes the link answer with a TCP reset: every connection, open or new,
// is reset as soon as data crosses it, until Restore.
func (l *Link) ResetPeers() error {
	l.mu.Lock()
	defer l.mu.Unlock()
	for _, t := range []struct{ name, stream string }{{toxicResetUp, "upstream"}, {toxicResetDown, "downstream"}} {
		if err := l.removeToxic(t.name); err != nil {
			return err
		}
		if _, err := l.proxy.AddToxic(t.name, "reset_peer", t.stream, 1, toxiproxy.Attributes{"timeout": 0}); err != nil {
			return l.errorf("reset peers: %w", err)
		}
	}
	return nil
}

// Restore brings the link back to how the world booted it: enabled, no toxic but the
// world's WAN latency.
func (l *Link) Restore() error {
	l.mu.Lock()
	defer l.mu.Unlock()
	toxics, err := l.proxy.Toxics()
	if err != nil {
		return l.errorf("restore: %w", err)
	}
	for _, t := range toxics {
		if err := l.removeToxic(t.Name); err != nil {
			return err
		}
	}
	// Always: the cached state of a handle attached in another process may be stale.
	if err := l.proxy.Enable(); err != nil {
		return l.errorf("restore: %w", err)
	}
	return l.setLatency(time.Duration(l.info.LatencyMS) * time.Millisecond)
}

// removeToxic removes a toxic; one that is not there is no error.
func (l *Link) removeToxic(name string) error {
	err := l.proxy.RemoveToxic(name)
	var apiErr *toxiproxy.ApiError
	if err == nil || (errors.As(err, &apiErr) && apiErr.Status == http.StatusNotFound) {
		return nil
	}
	return l.errorf("remove toxic %s: %w", name, err)
}

func (l *Link) errorf(format string, args ...any) error {
	return fmt.Errorf("link %s→%s (Toxiproxy %s, proxy %s): "+format,
		append([]any{l.info.From, l.info.To, l.info.API, l.info.Proxy}, args...)...)
}

// Link returns the link from one site to another, or panics: specs name links of
// the world they booted (Options.Links).
func (w *World) Link(from, to string) *Link {
	w.mu.Lock()
	defer w.mu.Unlock()
	l, ok := w.links[proxyName(from, to)]
	if !ok {
		panic(fmt.Sprintf("world: no link %s→%s (Options.Links is %v)", from, to, w.opts.Links))
	}
	return l
}

// Links lists the world's links in boot order of their serving sites.
func (w *World) Links() []*Link {
	w.mu.Lock()
	defer w.mu.Unlock()
	var out []*Link
	for _, to := range w.Order[1:] {
		if l, ok := w.links[proxyName(w.Order[0], to)]; ok {
			out = append(out, l)
		}
	}
	return out
}

// startLinks starts the Toxiproxy server and makes one proxy per serving site, on a
// loopback port the kernel picks. The upstream is a placeholder until the serving
// gateway's federation address is known (connectLink); nothing dials it before.
func (w *World) startLinks(ctx context.Context) error {
	if err := os.MkdirAll(filepath.Join(w.RunDir, LogsDir), 0o700); err != nil {
		return err
	}
	tp, err := w.backend.StartToxiproxy(ctx, Run{Dir: w.RunDir, GatewayBin: w.opts.GatewayBin, Log: w.opts.Log}, ToxiproxyLogPath(w.RunDir))
	if tp != nil {
		w.track(tp, KindToxiproxy)
	}
	if err != nil {
		return fmt.Errorf("toxiproxy: %w", err)
	}
	w.toxiproxy = tp
	client := toxiproxy.NewClient(tp.URL)
	listen := "127.0.0.1:0"
	if tp.LinkHost != "" {
		listen = net.JoinHostPort(tp.LinkHost, "0")
	}
	from := w.Order[0]
	for _, to := range w.Order[1:] {
		name := proxyName(from, to)
		p, err := client.CreateProxy(name, listen, placeholderUpstream)
		if err != nil {
			return fmt.Errorf("toxiproxy: create the link %s→%s: %w", from, to, err)
		}
		host := tp.Host
		if host == "" {
			host = "127.0.0.1"
		}
		l := &Link{proxy: p, info: LinkInfo{From: from, To: to, Listen: p.Listen, API: tp.URL, Proxy: name,
			LatencyMS: w.opts.WANLatency.Milliseconds(), Host: host}}
		w.mu.Lock()
		w.links[name] = l
		w.mu.Unlock()
	}
	w.progress("links  toxiproxy ready at %s (%d links, %s each way)", tp.URL, len(w.Order)-1, w.opts.WANLatency)
	return nil
}

// placeholderUpstream is a link's upstream before its serving gateway has started:
// the discard port of loopback, never dialled.
const placeholderUpstream = "127.0.0.1:9"

// ToxiproxyLogPath is the Toxiproxy server's log in a run directory.
func ToxiproxyLogPath(runDir string) string { return filepath.Join(runDir, ToxiproxyLog) }

// linkOverrides are the config overrides of a serving site's gateway behind a link:
// its public URL is the link's address.
func (s *Site) linkOverrides() map[string]any {
	l := s.inboundLink()
	if l == nil {
		return nil
	}
	return map[string]any{"federation": map[string]any{"public_url": l.URL()}}
}

func (s *Site) inboundLink() *Link {
	w := s.world
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.links[proxyName(w.Order[0], s.Name)]
}

// connectLink points the site's inbound link at its gateway's federation listener and
// applies the world's WAN latency.
func (s *Site) connectLink(gw *Gateway) error {
	l := s.inboundLink()
	if l == nil {
		return nil
	}
	u, err := url.Parse(gw.FederationURL)
	if err != nil || u.Host == "" {
		return fmt.Errorf("link to %s: gateway federation URL %q has no host", s.Name, gw.FederationURL)
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	l.proxy.Upstream = u.Host
	if err := l.proxy.Save(); err != nil {
		return l.errorf("point at %s: %w", u.Host, err)
	}
	l.info.Upstream = u.Host
	if tp := s.world.toxiproxy; tp != nil {
		l.info.Source = tp.sourceFor(s.Name)
	}
	if err := l.setLatency(time.Duration(l.info.LatencyMS) * time.Millisecond); err != nil {
		return err
	}
	s.world.progress("%-5s link %s→%s at %s", s.Name, l.info.From, l.info.To, l.info.Listen)
	return nil
}
