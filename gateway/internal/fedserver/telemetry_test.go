package fedserver

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"
	"time"

	"go.opentelemetry.io/otel"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"

	"github.com/mosaic-federation/mosaic/gateway/api"
	"github.com/mosaic-federation/mosaic/gateway/internal/errs"
	"github.com/mosaic-federation/mosaic/gateway/internal/fedclient"
	"github.com/mosaic-federation/mosaic/gateway/internal/scope"
	"github.com/mosaic-federation/mosaic/gateway/internal/store"
	"github.com/mosaic-federation/mosaic/gateway/internal/telemetry"
)

// traced is a Server whose spans a recorder keeps.
func traced(g Guard, metrics *telemetry.Metrics) (*Server, *tracetest.SpanRecorder) {
	rec := tracetest.NewSpanRecorder()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(rec))
	return &Server{Site: "work", Root: &x509.Certificate{Raw: []byte("root")}, Guard: g, Store: &fakeStore{},
		Audit: &fakeAudit{}, Tracer: tp.Tracer("t"), Metrics: metrics, Log: slog.New(slog.NewTextHandler(io.Discard, nil))}, rec
}

// names is each ended span's name, with its parent's name ("" for a root).
func names(spans []sdktrace.ReadOnlySpan) map[string]string {
	byID := map[string]string{}
	for _, s := range spans {
		byID[s.SpanContext().SpanID().String()] = s.Name()
	}
	out := map[string]string{}
	for _, s := range spans {
		out[s.Name()] = byID[s.Parent().SpanID().String()]
	}
	return out
}

// TestEveryStageIsAChildSpanOfTheRequest: the serving pipeline's stages are spans
// under the request's, which continues the caller's trace.
func TestEveryStageIsAChildSpanOfTheRequest(t *testing.T) {
	s, rec := traced(fakeGuard{caller: activeCaller()}, nil)
	req := httptest.NewRequest(http.MethodPost, Prefix+"/list/tasks", strings.NewReader(`{"limit":1}`))
	const caller = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
	req.Header.Set("traceparent", caller)
	w := httptest.NewRecorder()
	s.Handler().ServeHTTP(w, req)
	if w.Code != http.StatusOK {
		t.Fatalf("status %d: %s", w.Code, w.Body)
	}
	got := names(rec.Ended())
	want := map[string]string{"federation": "", "guard": "federation", "rate_limit": "federation",
		"scope": "federation", "query": "federation", "audit": "federation"}
	for name, parent := range want {
		if p, ok := got[name]; !ok || p != parent {
			t.Errorf("span %q: parent %q (present %v), want %q; all: %v", name, p, ok, parent, got)
		}
	}
	for _, sp := range rec.Ended() {
		if tid := sp.SpanContext().TraceID().String(); tid != "4bf92f3577b34da6a3ce929d0e0e4736" {
			t.Errorf("span %q in trace %s, not the caller's", sp.Name(), tid)
		}
	}
}

// TestARefusedStageEndsThePipelineSpans: a guard refusal is the guard span's reason,
// and no stage after it runs.
func TestARefusedStageEndsThePipelineSpans(t *testing.T) {
	s, rec := traced(fakeGuard{err: errs.New(errs.Forbidden, api.CodeGrantRevoked, "revoked")}, nil)
	w := httptest.NewRecorder()
	s.Handler().ServeHTTP(w, httptest.NewRequest(http.MethodPost, Prefix+"/list/tasks", strings.NewReader(`{}`)))
	got := names(rec.Ended())
	for _, later := range []string{"rate_limit", "scope", "query"} {
		if _, ok := got[later]; ok {
			t.Errorf("stage %q ran after the guard refused", later)
		}
	}
	for _, sp := range rec.Ended() {
		if sp.Name() == "guard" && sp.Status().Description != api.CodeGrantRevoked {
			t.Errorf("guard span status %q, want %q", sp.Status().Description, api.CodeGrantRevoked)
		}
	}
}

// TestOneTraceFromThePeerCallIntoTheServingStages: the requesting side's client span
// passes its context on in traceparent, so the serving side's request span is its
// child, in the same trace as the caller's own span.
func TestOneTraceFromThePeerCallIntoTheServingStages(t *testing.T) {
	s, served := traced(fakeGuard{caller: activeCaller()}, nil)
	s.Store = datedStore{&fakeStore{}} // the requesting side decodes rows strictly
	srv := httptest.NewTLSServer(s.Handler())
	defer srv.Close()
	home := tracetest.NewSpanRecorder()
	prev := otel.GetTracerProvider()
	otel.SetTracerProvider(sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(home)))
	defer otel.SetTracerProvider(prev)

	ctx, root := otel.Tracer("home").Start(context.Background(), "api")
	roots := x509.NewCertPool()
	roots.AddCert(srv.Certificate())
	c := fedclient.NewClient("work", srv.URL, &tls.Config{RootCAs: roots, MinVersion: tls.VersionTLS12})
	if _, err := c.List(ctx, "tasks", api.FedListRequest{Limit: 1}); err != nil {
		t.Fatal(err)
	}
	root.End()
	var call sdktrace.ReadOnlySpan
	for _, sp := range home.Ended() {
		if sp.Name() == "peer list" {
			call = sp
		}
	}
	if call == nil || call.Parent().SpanID() != root.SpanContext().SpanID() {
		t.Fatalf("no client span under the caller's: %v", names(home.Ended()))
	}
	for _, sp := range served.Ended() {
		if sp.SpanContext().TraceID() != root.SpanContext().TraceID() {
			t.Errorf("served span %q in another trace", sp.Name())
		}
		if sp.Name() == "federation" && sp.Parent().SpanID() != call.SpanContext().SpanID() {
			t.Errorf("the served request's parent is not the peer call's span")
		}
	}
	if n := len(served.Ended()); n < 6 {
		t.Errorf("%d served spans, want the request's and its five stages'", n)
	}
}

// TestPerGrantMetricsTakeOnlyTheStoredGrantID: a request the guard matched counts
// under its grant with its rows; one it did not (a certificate's claimed id) does not
// become a label, and a rate-limited one counts as such.
func TestPerGrantMetricsTakeOnlyTheStoredGrantID(t *testing.T) {
	m := telemetry.NewMetrics()
	s, _ := traced(fakeGuard{caller: activeCaller()}, m)
	h := s.Handler()
	h.ServeHTTP(httptest.NewRecorder(), httptest.NewRequest(http.MethodPost, Prefix+"/list/tasks", strings.NewReader(`{"limit":2}`)))
	h.ServeHTTP(httptest.NewRecorder(), httptest.NewRequest(http.MethodGet, Prefix+"/no/such/"+strings.Repeat("x", 40), nil))
	unknown := fakeGuard{caller: activeCaller(), err: errs.New(errs.Forbidden, api.CodeGrantUnknown, "no such grant")}
	unknown.caller.Grant.ID = "" // the guard found no grant: only the certificate's claim
	unknown.caller.Identity.GrantID = "99999999-9999-4999-8999-999999999999"
	s2, _ := traced(unknown, m)
	s2.Metrics = nil // its routes' series are the first server's
	s2.observe(done{caller: unknown.caller, err: unknown.err})

	body := scrape(t, m)
	if strings.Contains(body, "99999999-9999") {
		t.Errorf("a certificate's claimed grant id became a label:\n%s", body)
	}
	for _, want := range []string{
		`mosaic_grant_rows_served_total{grant="` + grantID + `"} 2`,
		`mosaic_grant_requests_total{grant="` + grantID + `",outcome="allowed"} 1`,
		`mosaic_grant_requests_total{grant="` + grantID + `",outcome="denied"} 1`,
		`mosaic_http_requests_total{code="200",listener="federation",method="POST",outcome="allowed",route="/api/federation/v1/list/{resource}"} 1`,
		`mosaic_http_requests_total{code="404",listener="federation",method="GET",outcome="denied",route="unmatched"} 1`,
	} {
		if !strings.Contains(body, want) {
			t.Errorf("missing %s in\n%s", want, grep(body, "mosaic_"))
		}
	}
}

// datedStore's rows carry the creation time a peer's rows must have.
type datedStore struct{ *fakeStore }

func (s datedStore) ListGranted(ctx context.Context, rows scope.Rows, o store.ListOptions) (store.Page, error) {
	p, err := s.fakeStore.ListGranted(ctx, rows, o)
	for i, it := range p.Items {
		if t, ok := it.(api.Task); ok {
			t.CreatedAt, t.UpdatedAt = time.Now().UTC(), time.Now().UTC()
			p.Items[i] = t
		}
	}
	return p, err
}

func scrape(t *testing.T, m *telemetry.Metrics) string {
	t.Helper()
	w := httptest.NewRecorder()
	m.Handler(false).ServeHTTP(w, httptest.NewRequest(http.MethodGet, "/metrics", nil))
	return w.Body.String()
}

func grep(body, prefix string) string {
	var out []string
	for l := range strings.Lines(body) {
		if strings.HasPrefix(l, prefix) {
			out = append(out, l)
		}
	}
	return strings.Join(slices.Compact(out), "")
}
