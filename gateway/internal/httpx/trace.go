package httpx

import (
	"context"
	"net/http"

	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/trace"
)

// traceContext is the W3C propagator: the traceparent header in and out.
var traceContext = propagation.TraceContext{}

// Trace continues the caller's W3C trace when its traceparent is well formed, else
// starts a new one, and runs the request in a server span named name. (The spans go
// nowhere until an exporter is configured; the ids are what both sites' audit rows
// share.)
func Trace(tracer trace.Tracer, name string, next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ctx := traceContext.Extract(r.Context(), propagation.HeaderCarrier(r.Header))
		ctx, span := tracer.Start(ctx, name, trace.WithSpanKind(trace.SpanKindServer))
		defer span.End()
		next.ServeHTTP(w, r.WithContext(ctx))
	})
}

// Traceparent is the W3C traceparent of ctx's span, or "".
func Traceparent(ctx context.Context) string {
	c := propagation.MapCarrier{}
	traceContext.Inject(ctx, c)
	return c["traceparent"]
}

// InjectTrace passes ctx's trace context on in an outgoing request's headers.
func InjectTrace(ctx context.Context, h http.Header) {
	traceContext.Inject(ctx, propagation.HeaderCarrier(h))
}
