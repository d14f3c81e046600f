package telemetry

import (
	"context"
	"crypto/x509"
	"encoding/pem"
	"net/http"
	"net/http/pprof"
	"slices"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/mosaic-federation/mosaic/gateway/api"
)

// Metrics is the registry served on listen.metrics (and nowhere else: its per-peer
// and per-grant series would show one user's peers to every other user). Every label
// value comes from a fixed set: route templates, reason codes (api.ReasonCodes,
// "other" for any other), outcomes, verbs, configured peer names and grant ids.
// A nil *Metrics records nothing.
type Metrics struct {
	Registry *prometheus.Registry

	peerLatency  *prometheus.HistogramVec
	peerErrors   *prometheus.CounterVec
	breaker      *prometheus.GaugeVec
	cacheHits    *prometheus.CounterVec
	stale        *prometheus.CounterVec
	grantReqs    *prometheus.CounterVec
	grantRows    *prometheus.CounterVec
	grantLimited *prometheus.CounterVec
	certs        *certs
}

// Breaker states as the mosaic_peer_breaker_state gauge's values.
const (
	BreakerClosed   = 0
	BreakerHalfOpen = 1
	BreakerOpen     = 2
)

// NewMetrics registers the gateway's series and the Go runtime's.
func NewMetrics() *Metrics {
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	counter := func(name, help string, labels ...string) *prometheus.CounterVec {
		return prometheus.NewCounterVec(prometheus.CounterOpts{Name: name, Help: help}, labels)
	}
	m := &Metrics{
		Registry: reg,
		peerLatency: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "mosaic_peer_call_duration_seconds", Help: "Peer calls' latency by peer and verb.",
			Buckets: []float64{.001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5},
		}, []string{"peer", "verb"}),
		peerErrors: counter("mosaic_peer_errors_total", "Failed peer calls by peer and reason code.", "peer", "code"),
		breaker: prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "mosaic_peer_breaker_state",
			Help: "Each peer's circuit breaker: 0 closed, 1 half-open, 2 open."}, []string{"peer"}),
		cacheHits:    counter("mosaic_peer_cache_hits_total", "Peer answers served from the cache while fresh.", "peer"),
		stale:        counter("mosaic_peer_stale_answers_total", "Stale cached answers served for a failing peer.", "peer"),
		grantReqs:    counter("mosaic_grant_requests_total", "Federation requests by grant and audit outcome.", "grant", "outcome"),
		grantRows:    counter("mosaic_grant_rows_served_total", "Rows served under each grant.", "grant"),
		grantLimited: counter("mosaic_grant_rate_limited_total", "Requests refused by a grant's rate limit.", "grant"),
		certs:        &certs{},
	}
	reg.MustRegister(m.peerLatency, m.peerErrors, m.breaker, m.cacheHits, m.stale, m.grantReqs, m.grantRows,
		m.grantLimited, m.certs)
	return m
}

// Handler serves the registry in the Prometheus text format.
func (m *Metrics) Handler(profiles bool) http.Handler {
	mux := http.NewServeMux()
	mux.Handle("GET /metrics", promhttp.HandlerFor(m.Registry, promhttp.HandlerOpts{}))
	if profiles {
		mux.HandleFunc("GET /debug/pprof/", pprof.Index)
		mux.HandleFunc("GET /debug/pprof/cmdline", pprof.Cmdline)
		mux.HandleFunc("GET /debug/pprof/profile", pprof.Profile)
		mux.HandleFunc("GET /debug/pprof/symbol", pprof.Symbol)
		mux.HandleFunc("GET /debug/pprof/trace", pprof.Trace)
	}
	return mux
}

// Peer makes a configured peer's series exist at zero (a breaker closed, no hits),
// so a dashboard shows the peer before its first call.
func (m *Metrics) Peer(peer string) {
	if m == nil {
		return
	}
	m.breaker.WithLabelValues(peer).Set(BreakerClosed)
	m.cacheHits.WithLabelValues(peer)
	m.stale.WithLabelValues(peer)
}

// PeerCall records one call to a peer: its latency and, unless code is "ok" or "",
// its failure's reason code.
func (m *Metrics) PeerCall(peer, verb, code string, d time.Duration) {
	if m == nil {
		return
	}
	m.peerLatency.WithLabelValues(peer, Bounded(verb, "list", "get", "search", "capabilities")).Observe(d.Seconds())
	if code != "" && code != api.ReasonOK {
		m.peerErrors.WithLabelValues(peer, Code(code)).Inc()
	}
}

// BreakerState records a peer's breaker state (BreakerClosed, …).
func (m *Metrics) BreakerState(peer string, state int) {
	if m != nil {
		m.breaker.WithLabelValues(peer).Set(float64(state))
	}
}

// CacheHit counts a fresh cached answer of a peer (no call made).
func (m *Metrics) CacheHit(peer string) {
	if m != nil {
		m.cacheHits.WithLabelValues(peer).Inc()
	}
}

// StaleAnswer counts a stale cached answer served for a failing peer.
func (m *Metrics) StaleAnswer(peer string) {
	if m != nil {
		m.stale.WithLabelValues(peer).Inc()
	}
}

// GrantRequest records a federation request the guard matched to a grant (grantID
// is the grant's stored id, never a certificate's claim): its audit outcome, the
// rows served and whether the grant's rate limit refused it.
func (m *Metrics) GrantRequest(grantID, outcome, code string, rows int) {
	if m == nil || grantID == "" {
		return
	}
	m.grantReqs.WithLabelValues(grantID, Bounded(outcome, api.OutcomeAllowed, api.OutcomeDenied, api.OutcomeFailed)).Inc()
	m.grantRows.WithLabelValues(grantID).Add(float64(rows))
	if code == api.CodeRateLimited {
		m.grantLimited.WithLabelValues(grantID).Inc()
	}
}

// Certificate exports the seconds until a certificate expires: kind "listener" (peer
// "") or "peer" (our certificate for a peer); notAfter is asked at each scrape, so a
// renewed certificate shows at once.
func (m *Metrics) Certificate(kind string, notAfter func() time.Time) {
	if m != nil {
		m.certs.add(func(context.Context) ([]Cert, error) { return []Cert{{Kind: kind, NotAfter: notAfter()}}, nil })
	}
}

// PeerCertificates exports our certificate for each outbound peer, listed at each
// scrape (peers come and go through the CLI).
func (m *Metrics) PeerCertificates(list func(ctx context.Context) ([]Cert, error)) {
	if m != nil {
		m.certs.add(list)
	}
}

// Code is a reason code if it is one of api.ReasonCodes, else "other": a peer's
// code is the peer's to choose.
func Code(c string) string { return Bounded(c, api.ReasonCodes...) }

// Bounded is v if it is one of allowed, else "other".
func Bounded(v string, allowed ...string) string {
	if slices.Contains(allowed, v) {
		return v
	}
	return "other"
}

// Cert is one certificate's expiry.
type Cert struct {
	Kind     string // "listener" or "peer"
	Peer     string // our name for the peer ("" for the listener)
	NotAfter time.Time
}

// NotAfterOf is a PEM certificate's expiry (zero when it does not parse).
func NotAfterOf(certPEM string) time.Time {
	block, _ := pem.Decode([]byte(certPEM))
	if block == nil {
		return time.Time{}
	}
	c, err := x509.ParseCertificate(block.Bytes)
	if err != nil {
		return time.Time{}
	}
	return c.NotAfter
}

// certs collects certificates' seconds to expiry at scrape time.
type certs struct {
	mu    sync.Mutex
	lists []func(context.Context) ([]Cert, error)
}

var certDesc = prometheus.NewDesc("mosaic_certificate_expiry_seconds",
	"Seconds until a certificate expires: the federation listener's, and ours for each peer.",
	[]string{"certificate", "peer"}, nil)

func (c *certs) add(f func(context.Context) ([]Cert, error)) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.lists = append(c.lists, f)
}

func (c *certs) Describe(ch chan<- *prometheus.Desc) { ch <- certDesc }

// Collect lists every certificate once per (kind, peer): two users may name their
// peers alike, and the sooner expiry is the one to act on.
func (c *certs) Collect(ch chan<- prometheus.Metric) {
	c.mu.Lock()
	lists := slices.Clone(c.lists)
	c.mu.Unlock()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	soonest := map[[2]string]time.Time{}
	for _, list := range lists {
		cs, err := list(ctx)
		if err != nil {
			continue // a scrape shows what it can; the database's health is /readyz's
		}
		for _, cert := range cs {
			k := [2]string{cert.Kind, cert.Peer}
			if t, ok := soonest[k]; (!ok || cert.NotAfter.Before(t)) && !cert.NotAfter.IsZero() {
				soonest[k] = cert.NotAfter
			}
		}
	}
	for k, t := range soonest {
		ch <- prometheus.MustNewConstMetric(certDesc, prometheus.GaugeValue, time.Until(t).Seconds(), k[0], k[1])
	}
}
