// Package telemetry is the gateway's traces and metrics (SPEC §6c): the tracer
// provider and its optional OTLP/HTTP exporter, the client span of every peer call,
// and the Prometheus registry served only on listen.metrics, whose every label value
// comes from a fixed set.
package telemetry

import (
	"context"
	"net/http"
	"strings"
	"time"

	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracehttp"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/sdk/resource"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/trace"
)

// Scope is the instrumentation scope of the gateway's spans.
const Scope = "mosaic-gateway"

// exportTimeout bounds one batch's post to the collector: a slow collector costs
// dropped spans, never a request's time (the batch processor exports off the
// request path).
const exportTimeout = 5 * time.Second

// NewTracerProvider is the process's tracer provider. With endpoint (an OTLP/HTTP
// collector's base URL, validated by config) a batch span processor posts spans to
// endpoint/v1/traces; without, no processor and no exporter run: spans still carry
// the ids of the trace context (SPEC §6b: every request gets a traceparent, and both
// sites' audit rows share it) but are dropped when they end.
func NewTracerProvider(site, endpoint string) (*sdktrace.TracerProvider, error) {
	res := resource.NewSchemaless(attribute.String("service.name", Scope), attribute.String("mosaic.site", site))
	opts := []sdktrace.TracerProviderOption{sdktrace.WithResource(res)}
	if endpoint != "" {
		exp, err := otlptracehttp.New(context.Background(),
			otlptracehttp.WithEndpointURL(strings.TrimSuffix(endpoint, "/")+"/v1/traces"),
			otlptracehttp.WithTimeout(exportTimeout))
		if err != nil {
			return nil, err
		}
		opts = append(opts, sdktrace.WithBatcher(exp))
	}
	return sdktrace.NewTracerProvider(opts...), nil
}

// traceContext is the W3C propagator (traceparent).
var traceContext = propagation.TraceContext{}

// PeerTransport runs each call to a peer in a client span of the global tracer
// provider (serve sets it) and sends that span's context as traceparent, so the
// serving site's spans are its children. Only bounded values become attributes:
// our name for the peer and the verb, never a path's id or the peer's URL.
func PeerTransport(peer string, base http.RoundTripper) http.RoundTripper {
	return peerTransport{peer: peer, base: base}
}

type peerTransport struct {
	peer string
	base http.RoundTripper
}

func (t peerTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	ctx, span := otel.Tracer(Scope).Start(r.Context(), "peer "+VerbOf(r.URL.Path), trace.WithSpanKind(trace.SpanKindClient),
		trace.WithAttributes(attribute.String("mosaic.peer", t.peer)))
	defer span.End()
	r = r.Clone(ctx) // a RoundTripper must not change the caller's request
	traceContext.Inject(ctx, propagation.HeaderCarrier(r.Header))
	resp, err := t.base.RoundTrip(r)
	if err != nil {
		span.SetStatus(codes.Error, "transport")
		return nil, err
	}
	span.SetAttributes(attribute.Int("http.response.status_code", resp.StatusCode))
	if resp.StatusCode >= 500 {
		span.SetStatus(codes.Error, "status")
	}
	return resp, nil
}

// VerbOf is the federation verb a path calls, from a fixed set ("other" otherwise).
func VerbOf(path string) string {
	rest, _ := strings.CutPrefix(path, "/api/federation/v1/")
	verb, _, _ := strings.Cut(rest, "/")
	switch verb {
	case "capabilities", "list", "get", "search", "enroll", "ca":
		return verb
	}
	return "other"
}

// Stage starts a child span of ctx's span for one stage of the serving pipeline;
// end records the stage's outcome (a reason code: a bounded value).
func Stage(ctx context.Context, tracer trace.Tracer, name string) (context.Context, func(code string)) {
	ctx, span := tracer.Start(ctx, name)
	return ctx, func(code string) {
		if code != "" {
			span.SetAttributes(attribute.String("mosaic.reason", code))
			span.SetStatus(codes.Error, code)
		}
		span.End()
	}
}
