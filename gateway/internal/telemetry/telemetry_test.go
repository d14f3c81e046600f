package telemetry

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	coltrace "go.opentelemetry.io/proto/otlp/collector/trace/v1"
	"google.golang.org/protobuf/proto"
)

// TestAnEndpointExportsSpansOverOTLPHTTP: with an endpoint, ended spans reach a
// collector's /v1/traces as an OTLP protobuf export; flushed on shutdown.
func TestAnEndpointExportsSpansOverOTLPHTTP(t *testing.T) {
	got := make(chan *coltrace.ExportTraceServiceRequest, 4)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		var req coltrace.ExportTraceServiceRequest
		if r.URL.Path != "/v1/traces" || proto.Unmarshal(b, &req) != nil {
			http.Error(w, "bad export", http.StatusBadRequest)
			return
		}
		got <- &req
		w.Header().Set("Content-Type", "application/x-protobuf")
		_, _ = w.Write(nil)
	}))
	defer srv.Close()
	tp, err := NewTracerProvider("work", srv.URL+"/")
	if err != nil {
		t.Fatal(err)
	}
	_, span := tp.Tracer(Scope).Start(context.Background(), "guard")
	span.End()
	if err := tp.Shutdown(context.Background()); err != nil {
		t.Fatal(err)
	}
	select {
	case req := <-got:
		rs := req.GetResourceSpans()[0]
		name := rs.GetScopeSpans()[0].GetSpans()[0].GetName()
		if name != "guard" || !strings.Contains(rs.GetResource().String(), "work") {
			t.Fatalf("exported %q from %v", name, rs.GetResource())
		}
	case <-time.After(5 * time.Second):
		t.Fatal("no export reached the collector")
	}
}

// TestNoEndpointNoExporter: without an endpoint, spans still carry ids (the audit
// rows' trace context) and nothing is exported.
func TestNoEndpointNoExporter(t *testing.T) {
	tp, err := NewTracerProvider("home", "")
	if err != nil {
		t.Fatal(err)
	}
	_, span := tp.Tracer(Scope).Start(context.Background(), "api")
	if !span.SpanContext().IsValid() {
		t.Fatal("no trace id without an exporter")
	}
	span.End()
	if err := tp.ForceFlush(context.Background()); err != nil {
		t.Fatal(err)
	}
}

// TestLabelValuesAreBounded: a peer's own code and an unknown verb never become
// label values.
func TestLabelValuesAreBounded(t *testing.T) {
	m := NewMetrics()
	m.PeerCall("work", "list", "timeout", time.Millisecond)
	m.PeerCall("work", "drop table", "made_up_by_the_peer", time.Millisecond)
	m.Peer("lab")
	m.Certificate("listener", func() time.Time { return time.Now().Add(time.Hour) })
	w := httptest.NewRecorder()
	m.Handler(false).ServeHTTP(w, httptest.NewRequest(http.MethodGet, "/metrics", nil))
	body := w.Body.String()
	for _, want := range []string{`mosaic_peer_errors_total{code="timeout",peer="work"} 1`,
		`mosaic_peer_errors_total{code="other",peer="work"} 1`, `verb="other"`,
		`mosaic_peer_breaker_state{peer="lab"} 0`, `mosaic_peer_cache_hits_total{peer="lab"} 0`,
		`mosaic_certificate_expiry_seconds{certificate="listener",peer=""} 3`} {
		if !strings.Contains(body, want) {
			t.Errorf("missing %s", want)
		}
	}
	for _, never := range []string{"made_up", "drop table"} {
		if strings.Contains(body, never) {
			t.Errorf("%q became a label value", never)
		}
	}
}

func TestVerbOf(t *testing.T) {
	for path, want := range map[string]string{"/api/federation/v1/list/tasks": "list",
		"/api/federation/v1/get/notes/x": "get", "/api/federation/v1/evil": "other", "/x": "other"} {
		if got := VerbOf(path); got != want {
			t.Errorf("VerbOf(%q) = %q, want %q", path, got, want)
		}
	}
}

// Go's profiles are served beside /metrics only when telemetry.pprof asks for them.
func TestProfilesOnlyWhenAsked(t *testing.T) {
	m := NewMetrics()
	for _, on := range []bool{false, true} {
		w := httptest.NewRecorder()
		m.Handler(on).ServeHTTP(w, httptest.NewRequest(http.MethodGet, "/debug/pprof/", nil))
		if want := map[bool]int{false: http.StatusNotFound, true: http.StatusOK}[on]; w.Code != want {
			t.Errorf("pprof %v: /debug/pprof/ answered %d, want %d", on, w.Code, want)
		}
	}
}
