package main

import (
	"context"
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
		out = append(out, inRTTs(measure(w.RunDir, fmt.Sprintf("WAN %s: warm federated list via home API, 100 rows", d), n,
			get(home.Gateway.APIURL+"/api/v1/tasks?source=federated:work&limit=100"), false), rtt))
		// A client of its own, through the link, that handshakes on every request:
		// TLS 1.3 plus the request. The TCP handshake is with the local proxy, which
		// delays data only, so it costs no round trip here.
		_, fresh, err := peerClients(ctx, w.Site("work"))
		if err != nil {
			return nil, err
		}
		url := w.Link("home", "work").URL() + "/api/federation/v1/list/tasks"
		out = append(out, inRTTs(measure(w.RunDir, fmt.Sprintf("WAN %s: first request on a new mTLS connection through the link", d), max(n/5, 20),
			func() error { return do(fresh, http.MethodPost, url, "", []byte(`{"limit":100}`)) }, false), rtt))
	}
	peers := len(w.Order) - 1
	out = append(out, inRTTs(measure(w.RunDir, fmt.Sprintf("WAN %s: fan-out source=all to %d peer(s), 50 rows each", d, peers), n/2,
		get(home.Gateway.APIURL+"/api/v1/tasks?source=all&limit=50"), false), rtt))
	return out, nil
}

// inRTTs notes a line's p50 and p99 in round trips of the link.
func inRTTs(r result, rtt time.Duration) result {
	if r.Note == "" && rtt > 0 {
		r.Note = fmt.Sprintf("%.2f / %.2f round trips (%s each)", r.P50ms/ms(rtt), r.P99ms/ms(rtt), rtt)
	}
	return r
}
