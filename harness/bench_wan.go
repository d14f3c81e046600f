package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"time"

	"github.com/mosaic-federation/mosaic/harness/world"
	"github.com/mosaic-federation/mosaic/harness/world/process"
)

// benchWAN (`bench --wan-latency D`, SPEC §8) boots worlds of 2, 3 and 5 sites whose
// serving sites home reaches through Toxiproxy links of D each way, and measures what
// a WAN costs, in milliseconds and in round trips (2·D each).
func benchWAN(ctx context.Context, gatewayBin string, n int, d time.Duration) ([]result, error) {
	var out []result
	for i, sites := range [][]string{{"home", "work"}, {"home", "work", "lab"}, {"home", "work", "lab", "ops", "dev"}} {
		fmt.Fprintf(os.Stderr, "booting %v with %s links…\n", sites, d)
		w, err := world.Up(ctx, world.Options{Sites: sites, Backend: process.New(process.Config{BinDir: world.DefaultBinDir()}),
			GatewayBin: gatewayBin, Log: slog.New(slog.NewTextHandler(io.Discard, nil)), Links: true, WANLatency: d,
			GatewayOverrides: map[string]any{"federation": map[string]any{"rate_limit": map[string]any{
				"per_grant": "1000000/s", "burst": 1000000}}}})
		if err != nil {
			return nil, err
		}
		rs, err := benchWANWorld(ctx, w, n, d, i == 0)
		w.Down()
		if err != nil {
			return nil, err
		}
		out = append(out, rs...)
	}
	return out, nil
}

func benchWANWorld(ctx context.Context, w *world.World, n int, d time.Duration, full bool) ([]result, error) {
	home := w.Site("home")
	token := home.Users[0].Token
	api := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 8}}
	get := func(url string) func() error {
		return func() error { return do(api, http.MethodGet, url, token, nil) }
	}
	rtt := 2 * d
	var out []result
	if full {
		local := measure(w.RunDir, fmt.Sprintf("WAN %s: local list, 100 rows (home API)", d), n,
			get(home.Gateway.APIURL+"/api/v1/tasks?source=local&limit=100"), false)
		out = append(out, local)
		out = append(out, inRTTs(measure(w.RunDir, fmt.Sprintf("WAN %s: warm federated list via home API, 100 rows", d), n,
			get(home.Gateway.APIURL+"/api/v1/tasks?source=federated:work&limit=100"), false), rtt))
		link := w.Link("home", "work")
		keep, fresh, err := peerClients(ctx, w.Site("work"))
		if err != nil {
			return nil, err
		}
		url := link.URL() + "/api/federation/v1/list/tasks"
		list := func(c *http.Client) func() error {
			return func() error { return do(c, http.MethodPost, url, "", []byte(`{"limit":100}`)) }
		}
		// The link alone: a kept-alive peer client of the bench's own straight to
		// work's listener through it, without home's API in front.
		out = append(out, inRTTs(measure(w.RunDir, fmt.Sprintf("WAN %s: warm federated list, kept-alive mTLS through the link (work listener), 100 rows", d), n,
			list(keep), false), rtt))
		// A client of its own, through the link, that handshakes on every request:
		// TLS 1.3 plus the request. The TCP handshake is with the local proxy, which
		// delays data only, so it costs no round trip here.
		out = append(out, inRTTs(measure(w.RunDir, fmt.Sprintf("WAN %s: first request on a new mTLS connection through the link", d), max(n/5, 20),
			list(fresh), false), rtt))
	}
	peers := len(w.Order) - 1
	out = append(out, inRTTs(measure(w.RunDir, fmt.Sprintf("WAN %s: fan-out source=all to %d peer(s), 50 rows each", d, peers), n/2,
		get(home.Gateway.APIURL+"/api/v1/tasks?source=all&limit=50"), false), rtt))
	if full { // last: the breaker stays open for a while after the link is back
		open, err := behindOpenBreaker(w.RunDir, w.Link("home", "work"), out[0], n, func() error {
			return sourceError(api, home.Gateway.APIURL+"/api/v1/tasks?source=federated:work&limit=100", token, "peer_unavailable")
		})
		if err != nil {
			return nil, err
		}
		out = append(out, open)
	}
	return out, nil
}

// inRTTs notes a line's p50 and p99 in round trips of the link.
func inRTTs(r result, rtt time.Duration) result {
	if r.Note == "" && rtt > 0 {
		r.Note = fmt.Sprintf("%.2f / %.2f round trips (%s each)", r.P50ms/ms(rtt), r.P99ms/ms(rtt), rtt)
	}
	return r
}

// behindOpenBreaker measures f, a list of one peer, while that peer's breaker is
// open: the link cut, calls fail until the breaker opens (SPEC §6c: after 5
// consecutive failures), then every list is answered at once with the peer's source
// in error: f fails until then. Its note compares its p50 with the local list's.
func behindOpenBreaker(runDir string, link *world.Link, local result, n int, f func() error) (result, error) {
	d := time.Duration(link.Info().LatencyMS) * time.Millisecond
	if err := link.Cut(); err != nil {
		return result{}, err
	}
	for i := 0; f() != nil; i++ {
		if i == 10 {
			_ = link.Restore()
			return result{}, fmt.Errorf("the breaker did not open after %d failed calls: %w", i, f())
		}
	}
	r := measure(runDir, fmt.Sprintf("WAN %s: list of a peer behind an open breaker (the link cut)", d), n, f, false)
	if err := link.Restore(); err != nil {
		return result{}, err
	}
	if r.Note == "" && local.P50ms > 0 {
		r.Note = fmt.Sprintf("p50 %+.2f ms vs the local list (goal ≤ +1 ms)", r.P50ms-local.P50ms)
	}
	return r, nil
}

// sourceError lists with one peer as its only source and fails unless that source is
// in error with code.
func sourceError(c *http.Client, url, token, code string) error {
	req, err := http.NewRequest(http.MethodGet, url, nil)
	if err != nil {
		return err
	}
	req.Header.Set("Authorization", "Bearer "+token)
	req.Header.Set("Cache-Control", "no-cache")
	resp, err := c.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	var l struct {
		Sources []struct{ Status, Error string } `json:"sources"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&l); err != nil {
		return err
	}
	if len(l.Sources) != 1 || l.Sources[0].Error != code {
		return fmt.Errorf("%s: sources %+v, not one in error with %s", url, l.Sources, code)
	}
	return nil
}
