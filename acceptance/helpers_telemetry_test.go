package acceptance

import (
	"encoding/hex"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
	coltrace "go.opentelemetry.io/proto/otlp/collector/trace/v1"
	"google.golang.org/protobuf/proto"

	"github.com/mosaic-federation/mosaic/harness/world"
)

// metricsURL is the base URL of a site gateway's listen.metrics.
func metricsURL(s world.SiteInfo) string {
	GinkgoHelper()
	Expect(s.MetricsURL).To(HavePrefix("http://127.0.0.1:"), "the world sets listen.metrics on loopback")
	return s.MetricsURL
}

// scrape parses a /metrics answer (the Prometheus text format).
func scrape(url string) map[string]*dto.MetricFamily {
	GinkgoHelper()
	var b []byte
	Expect(call(http.MethodGet, url+"/metrics", &b)).To(Equal(http.StatusOK))
	parser := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := parser.TextToMetricFamilies(strings.NewReader(string(b)))
	Expect(err).NotTo(HaveOccurred())
	return fams
}

// The mosaic_peer_breaker_state gauge's closed and open values (telemetry.BreakerClosed, BreakerOpen).
const breakerClosed, breakerOpen = 0.0, 2.0

// breakerState is the mosaic_peer_breaker_state gauge of a peer on a gateway's
// listen.metrics (breakerClosed, …), or -1 without that series.
func breakerState(url, peer string) float64 {
	GinkgoHelper()
	for _, m := range scrape(url)["mosaic_peer_breaker_state"].GetMetric() {
		for _, l := range m.GetLabel() {
			if l.GetName() == "peer" && l.GetValue() == peer {
				return m.GetGauge().GetValue()
			}
		}
	}
	return -1
}

// span is one span a receiver got: its trace, ids, name and the site that sent it.
type span struct {
	trace, id, parent, name, site string
}

// otlpReceiver is an OTLP/HTTP collector of the spec's own: POST /v1/traces with
// the official protobuf ExportTraceServiceRequest, kept in memory.
type otlpReceiver struct {
	URL   string
	mu    sync.Mutex
	spans []span
}

func newOTLPReceiver() *otlpReceiver {
	GinkgoHelper()
	r := &otlpReceiver{}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		b, err := io.ReadAll(req.Body)
		var ex coltrace.ExportTraceServiceRequest
		if err != nil || req.URL.Path != "/v1/traces" || req.Header.Get("Content-Type") != "application/x-protobuf" ||
			proto.Unmarshal(b, &ex) != nil {
			http.Error(w, "not an OTLP/HTTP protobuf trace export", http.StatusBadRequest)
			return
		}
		r.add(&ex)
		out, _ := proto.Marshal(&coltrace.ExportTraceServiceResponse{})
		w.Header().Set("Content-Type", "application/x-protobuf")
		_, _ = w.Write(out)
	}))
	DeferCleanup(srv.Close)
	r.URL = srv.URL
	return r
}

func (r *otlpReceiver) add(ex *coltrace.ExportTraceServiceRequest) {
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, rs := range ex.GetResourceSpans() {
		site := ""
		for _, a := range rs.GetResource().GetAttributes() {
			if a.GetKey() == "mosaic.site" {
				site = a.GetValue().GetStringValue()
			}
		}
		for _, ss := range rs.GetScopeSpans() {
			for _, s := range ss.GetSpans() {
				r.spans = append(r.spans, span{trace: hex.EncodeToString(s.GetTraceId()), id: hex.EncodeToString(s.GetSpanId()),
					parent: hex.EncodeToString(s.GetParentSpanId()), name: s.GetName(), site: site})
			}
		}
	}
}

// of is every span received in one trace.
func (r *otlpReceiver) of(trace string) []span {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []span
	for _, s := range r.spans {
		if s.trace == trace {
			out = append(out, s)
		}
	}
	return out
}
