package main

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"text/tabwriter"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/spf13/cobra"

	"github.com/mosaic-federation/mosaic/harness/world"
	"github.com/mosaic-federation/mosaic/harness/world/process"
)

// result is one measured line of `harness bench`.
type result struct {
	Name       string  `json:"name"`
	P50ms      float64 `json:"p50_ms"`
	P99ms      float64 `json:"p99_ms"`
	Throughput float64 `json:"throughput_rps,omitempty"`
	// CPUms is processor time per request summed over every process of the world
	// (user + system from /proc, before and after the latency run): the figure a
	// noisy machine disturbs least.
	CPUms float64 `json:"cpu_ms_per_request,omitempty"`
	Note  string  `json:"note,omitempty"`
}

func benchCmd() *cobra.Command {
	var n, tasks int
	var asJSON bool
	var wan time.Duration
	var compareTo, resultsFrom, profiles string
	cmd := &cobra.Command{
		Use:   "bench",
		Short: "Boot worlds of 2, 3 and 5 sites and measure boot, local vs federated lists, handshakes and fan-out (SPEC §8)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			var old []result
			if compareTo != "" {
				var err error
				if old, err = readResults(compareTo); err != nil {
					return err
				}
			}
			var results []result
			var err error
			if resultsFrom != "" {
				if compareTo == "" {
					return fmt.Errorf("--results %s needs --compare OLD.json: it compares two runs without booting a world", resultsFrom)
				}
				results, err = readResults(resultsFrom)
			} else {
				results, err = runBench(cmd.Context(), n, wan, tasks, profiles)
			}
			if err != nil {
				return err
			}
			if compareTo != "" {
				cs := compare(old, results)
				if asJSON {
					return writeJSON(os.Stdout, cs)
				}
				return printComparison(os.Stdout, cs)
			}
			if asJSON {
				return writeJSON(os.Stdout, results)
			}
			return printResults(os.Stdout, n, results)
		},
	}
	cmd.Flags().IntVar(&n, "requests", 500, "requests per latency measurement")
	cmd.Flags().BoolVar(&asJSON, "json", false, "print JSON")
	cmd.Flags().StringVar(&profiles, "pprof", "", "also: write CPU profiles of home's and work's gateways under the list through home to this directory")
	cmd.Flags().IntVar(&tasks, "tasks", 0, "also: give work this many more tasks (seed generate) and measure the list through home under each filter")
	cmd.Flags().DurationVar(&wan, "wan-latency", 0, "instead: measure through Toxiproxy links with this latency each way (SPEC §8's WAN lines)")
	cmd.Flags().StringVar(&compareTo, "compare", "", "print each line's ratio new ÷ old against an earlier `bench --json` output")
	cmd.Flags().StringVar(&resultsFrom, "results", "", "with --compare: take the new lines from this `bench --json` output instead of running")
	return cmd
}

// runBench builds the gateway and measures either the loopback worlds or, with a WAN
// latency, the worlds whose links go through Toxiproxy.
func runBench(ctx context.Context, n int, wan time.Duration, tasks int, profiles string) ([]result, error) {
	if wan < 0 || wan > time.Second {
		return nil, fmt.Errorf("--wan-latency %s: use 0 (no links) up to 1s", wan)
	}
	if tasks < 0 || (tasks > 0 && wan > 0) {
		return nil, fmt.Errorf("--tasks %d: use a positive count, without --wan-latency", tasks)
	}
	gw, err := buildGateway(false)
	if err != nil {
		return nil, err
	}
	if wan > 0 {
		return benchWAN(ctx, gw, n, wan)
	}
	return bench(ctx, gw, n, tasks, profiles)
}

func writeJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}

func printResults(w io.Writer, n int, results []result) error {
	host, _ := os.Hostname()
	fmt.Fprintf(w, "\nharness bench — %d requests per latency line, %s, %d CPUs (%s)\n\n", n, time.Now().UTC().Format(time.RFC3339), numCPU(), host)
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "WHAT\tP50 ms\tP99 ms\tREQ/S\tCPU ms/REQ\tNOTE")
	for _, r := range results {
		tp := ""
		if r.Throughput > 0 {
			tp = fmt.Sprintf("%.0f", r.Throughput)
		}
		fmt.Fprintf(tw, "%s\t%.2f\t%.2f\t%s\t%.3f\t%s\n", r.Name, r.P50ms, r.P99ms, tp, r.CPUms, r.Note)
	}
	return tw.Flush()
}

func bench(ctx context.Context, gatewayBin string, n, tasks int, profiles string) ([]result, error) {
	var out []result
	for i, sites := range [][]string{{"home", "work"}, {"home", "work", "lab"}, {"home", "work", "lab", "ops", "dev"}} {
		fmt.Fprintf(os.Stderr, "booting %v…\n", sites)
		replicas := 1
		if i == 0 {
			replicas = 2 // the lines across two replicas of work
		}
		w, err := world.Up(ctx, world.Options{Sites: sites, Backend: process.New(process.Config{BinDir: world.DefaultBinDir()}), GatewayBin: gatewayBin,
			Log: slog.New(slog.NewTextHandler(io.Discard, nil)), Replicas: replicas,
			// The bench's own grants are not what it measures; the per-address limit
			// stays the default one a flood meets.
			GatewayOverrides: map[string]any{"federation": map[string]any{"rate_limit": map[string]any{
				"per_grant": "1000000/s", "burst": 1000000}},
				"telemetry": map[string]any{"pprof": profiles != ""}}})
		if err != nil {
			return nil, err
		}
		rs, err := benchWorld(ctx, w, n, i == 0)
		if err == nil && i == 0 && profiles != "" {
			err = profileViaHome(ctx, w, profiles)
		}
		if err == nil && i == 0 && tasks > 0 {
			var more []result
			more, err = scaleLines(ctx, w, n, tasks)
			rs = append(rs, more...)
		}
		w.Down()
		if err != nil {
			return nil, err
		}
		out = append(out, rs...)
		if i == 0 {
			out = append(out, dockerBoot(ctx))
		}
	}
	return out, nil
}

func benchWorld(ctx context.Context, w *world.World, n int, full bool) ([]result, error) {
	home := w.Site("home")
	token := home.Users[0].Token
	api := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 8}}
	get := func(url string) func() error {
		return func() error { return do(api, http.MethodGet, url, token, nil) }
	}
	peers := len(w.Order) - 1
	var out []result
	if full {
		out = append(out, result{Name: "cold boot, 2 sites (seeded, enrolled)", P50ms: ms(w.BootTime), P99ms: ms(w.BootTime), Note: "one boot"})
		out = append(out, measure(w.RunDir, "local list, 100 rows (home API)", n, get(home.Gateway.APIURL+"/api/v1/tasks?source=local&limit=100"), true))
		out = append(out, measure(w.RunDir, "federated list via home API, 100 rows", n, get(home.Gateway.APIURL+"/api/v1/tasks?source=federated:work&limit=100"), true))
		direct, fresh, err := peerClients(ctx, w.Site("work"))
		if err != nil {
			return nil, err
		}
		list := func(c *http.Client) func() error {
			return func() error {
				return do(c, http.MethodPost, w.Site("work").Gateway.FederationURL+"/api/federation/v1/list/tasks", "", []byte(`{"limit":100}`))
			}
		}
		idle := measure(w.RunDir, "federated list, kept-alive mTLS, 100 rows (work listener)", n, list(direct), true)
		out = append(out, idle)
		out = append(out, measure(w.RunDir, "federated list, fresh mTLS handshake each time", n/5, list(fresh), false))
		out = append(out, underFlood(w.Site("work"), idle, n, list(direct)))
		rs, err := replicaLines(ctx, w.Site("work"), direct)
		if err != nil {
			return nil, err
		}
		out = append(out, rs...)
	}
	out = append(out, measure(w.RunDir, fmt.Sprintf("fan-out source=all to %d peer(s), 50 rows each", peers), n/2,
		get(home.Gateway.APIURL+"/api/v1/tasks?source=all&limit=50"), false))
	return out, nil
}

// measure runs f n times in a row (after a warm-up) for latency percentiles and the
// world's CPU per request (runDir's processes), and, if asked, 4 workers for 2 s for
// throughput. Any error aborts the line.
func measure(runDir, name string, n int, f func() error, throughput bool) result {
	for range 20 {
		if err := f(); err != nil {
			return result{Name: name, Note: "error: " + err.Error()}
		}
	}
	lat := make([]time.Duration, 0, n)
	cpu := process.CPU(runDir)
	for range n {
		start := time.Now()
		if err := f(); err != nil {
			return result{Name: name, Note: "error: " + err.Error()}
		}
		lat = append(lat, time.Since(start))
	}
	used := process.CPU(runDir) - cpu
	slices.Sort(lat)
	r := result{Name: name, P50ms: ms(lat[len(lat)/2]), P99ms: ms(lat[len(lat)*99/100]), CPUms: ms(used) / float64(n)}
	if throughput {
		var count int64
		var mu sync.Mutex
		var wg sync.WaitGroup
		deadline := time.Now().Add(2 * time.Second)
		for range 4 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				local := int64(0)
				for time.Now().Before(deadline) {
					if f() == nil {
						local++
					}
				}
				mu.Lock()
				count += local
				mu.Unlock()
			}()
		}
		wg.Wait()
		r.Throughput = float64(count) / 2
	}
	return r
}

func ms(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }

func do(c *http.Client, method, url, token string, body []byte) error {
	req, err := http.NewRequest(method, url, bytes.NewReader(body))
	if err != nil {
		return err
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	// Every line measures the live path; a line about the cache would say so.
	req.Header.Set("Cache-Control", "no-cache")
	resp, err := c.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	_, _ = io.Copy(io.Discard, resp.Body)
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("%s %s: %s", method, url, resp.Status)
	}
	return nil
}

// peerClients enrolls a bench peer at a site (a grant of its demo user, all resources,
// cap 100) and returns a kept-alive mTLS client and one that handshakes every time.
func peerClients(ctx context.Context, s *world.Site) (keep, fresh *http.Client, err error) {
	scope := filepath.Join(s.Dir, "scope-bench.json")
	if err := os.WriteFile(scope, []byte(`{"resources":["tasks","notes","memories"],"include_personal":true,"max_rows_per_query":100}`), 0o600); err != nil {
		return nil, nil, err
	}
	if _, err := s.GatewayCLI(ctx, "federation", "peer", "create", "--name", "bench"); err != nil {
		return nil, nil, err
	}
	b, err := s.GatewayCLI(ctx, "federation", "grant", "create", "--peer", "bench", "--subject-user", s.Users[0].Email, "--scope", scope, "--json")
	if err != nil {
		return nil, nil, err
	}
	var g struct {
		EnrollmentURL string `json:"enrollment_url"`
	}
	if err := json.Unmarshal(b, &g); err != nil {
		return nil, nil, err
	}
	u, _ := url.Parse(g.EnrollmentURL)
	q, _ := url.ParseQuery(u.Fragment)
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, nil, err
	}
	der, _ := x509.CreateCertificateRequest(rand.Reader, &x509.CertificateRequest{}, key)
	body, _ := json.Marshal(map[string]string{"token": q.Get("token"),
		"csr_pem": string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE REQUEST", Bytes: der}))})
	rootPEM, err := os.ReadFile(s.CA.RootPath)
	if err != nil {
		return nil, nil, err
	}
	roots := x509.NewCertPool()
	roots.AppendCertsFromPEM(rootPEM)
	plain := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: roots}}}
	resp, err := plain.Post(s.Gateway.FederationURL+"/api/federation/v1/enroll", "application/json", bytes.NewReader(body))
	if err != nil {
		return nil, nil, err
	}
	defer resp.Body.Close()
	var e struct {
		CertificatePEM string `json:"certificate_pem"`
		ChainPEM       string `json:"chain_pem"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&e); err != nil || resp.StatusCode != http.StatusCreated {
		return nil, nil, fmt.Errorf("bench enrollment: %s", resp.Status)
	}
	var chain [][]byte
	for rest := []byte(e.CertificatePEM + e.ChainPEM); ; {
		var block *pem.Block
		if block, rest = pem.Decode(rest); block == nil {
			break
		}
		chain = append(chain, block.Bytes)
	}
	cert := &tls.Certificate{Certificate: chain, PrivateKey: key}
	tlsCfg := func() *tls.Config {
		return &tls.Config{RootCAs: roots, GetClientCertificate: func(*tls.CertificateRequestInfo) (*tls.Certificate, error) { return cert, nil },
			ClientSessionCache: nil}
	}
	keep = &http.Client{Transport: &http.Transport{TLSClientConfig: tlsCfg(), MaxIdleConnsPerHost: 8}}
	fresh = &http.Client{Transport: &http.Transport{TLSClientConfig: tlsCfg(), DisableKeepAlives: true}}
	return keep, fresh, nil
}

// underFlood measures f while four clients without a certificate flood work's
// federation listener from another loopback address, and compares its p50 with idle.
func underFlood(work *world.Site, idle result, n int, f func() error) result {
	roots := x509.NewCertPool()
	if pemRoot, err := os.ReadFile(work.CA.RootPath); err == nil {
		roots.AppendCertsFromPEM(pemRoot)
	}
	dialer := &net.Dialer{LocalAddr: &net.TCPAddr{IP: net.IPv4(127, 0, 0, 2)}}
	anon := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: roots}, DialContext: dialer.DialContext, MaxIdleConnsPerHost: 4}}
	stop := make(chan struct{})
	var wg sync.WaitGroup
	var sent int64
	var mu sync.Mutex
	for range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			local := int64(0)
			for {
				select {
				case <-stop:
					mu.Lock()
					sent += local
					mu.Unlock()
					return
				default:
				}
				if resp, err := anon.Get(work.Gateway.FederationURL + "/api/federation/v1/capabilities"); err == nil {
					_, _ = io.Copy(io.Discard, resp.Body)
					resp.Body.Close()
					local++
				}
			}
		}()
	}
	start := time.Now()
	r := measure(work.Run().Dir, "federated list under an unauthenticated flood (4 clients, 127.0.0.2)", n, f, false)
	close(stop)
	wg.Wait()
	if idle.P50ms > 0 && r.Note == "" {
		r.Note = fmt.Sprintf("p50 %.2f× idle; flood %.0f req/s", r.P50ms/idle.P50ms, float64(sent)/time.Since(start).Seconds())
	}
	return r
}

// replicaLines measures federated lists across work's two replicas (8 workers,
// alternating) and the audit rows per second that load writes to work's one chain.
func replicaLines(ctx context.Context, work *world.Site, c *http.Client) ([]result, error) {
	if len(work.Replicas) == 0 {
		return nil, nil
	}
	urls := []string{work.Gateway.FederationURL, work.Replicas[0].FederationURL}
	conn, err := pgx.Connect(ctx, work.Postgres.URL)
	if err != nil {
		return nil, err
	}
	defer conn.Close(ctx)
	count := func() (n int64) {
		_ = conn.QueryRow(ctx, `SELECT count(*) FROM federation_audit_log`).Scan(&n)
		return n
	}
	before, start := count(), time.Now()
	var done int64
	var mu sync.Mutex
	var wg sync.WaitGroup
	deadline := start.Add(3 * time.Second)
	for i := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			local := int64(0)
			for time.Now().Before(deadline) {
				if do(c, http.MethodPost, urls[i%2]+"/api/federation/v1/list/tasks", "", []byte(`{"limit":100}`)) == nil {
					local++
				}
			}
			mu.Lock()
			done += local
			mu.Unlock()
		}()
	}
	wg.Wait()
	secs := time.Since(start).Seconds()
	rows := count() - before
	return []result{
		{Name: "federated list across 2 replicas of work, 100 rows (8 workers)", Throughput: float64(done) / secs},
		{Name: "audit rows written to work's chain by that load", Throughput: float64(rows) / secs, Note: "rows/s, both replicas, group commit"},
	}, nil
}
