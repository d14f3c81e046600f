package httpx

import (
	"context"
	"net/http"
	"strconv"
	"time"

	"github.com/gorilla/mux"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/mosaic-federation/mosaic/gateway/api"
)

// Metrics counts and times one listener's requests. Labels are bounded: the route
// template (never the raw path; "unmatched" when no route matched), a method HTTP
// defines ("other" for any other), the status code and the audit outcome it means.
type Metrics struct {
	requests *prometheus.CounterVec
	duration *prometheus.HistogramVec
}

// NewMetrics registers a listener's HTTP metrics with reg (the registry served on
// listen.metrics; listeners share it and differ by their "listener" label).
func NewMetrics(reg prometheus.Registerer, listener string) *Metrics {
	m := &Metrics{
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "mosaic_http_requests_total", Help: "HTTP requests by route, method, status code and outcome.",
			ConstLabels: prometheus.Labels{"listener": listener},
		}, []string{"route", "method", "code", "outcome"}),
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "mosaic_http_request_duration_seconds", Help: "HTTP request latency by route.",
			ConstLabels: prometheus.Labels{"listener": listener},
			Buckets:     []float64{.0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5},
		}, []string{"route"}),
	}
	reg.MustRegister(m.requests, m.duration)
	return m
}

type routeKey struct{}

// Wrap records each request to router, which must use m.Route as a middleware: mux
// runs middlewares only on a match, so what reaches no route stays "unmatched".
func (m *Metrics) Wrap(router http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start, route := time.Now(), "unmatched"
		rec := &statusRecorder{ResponseWriter: w, status: http.StatusOK}
		router.ServeHTTP(rec, r.WithContext(context.WithValue(r.Context(), routeKey{}, &route)))
		m.requests.WithLabelValues(route, methodLabel(r.Method), strconv.Itoa(rec.status), outcomeOf(rec.status)).Inc()
		m.duration.WithLabelValues(route).Observe(time.Since(start).Seconds())
	})
}

// Route is the mux middleware that tells Wrap the matched route's template.
func (m *Metrics) Route(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if p, ok := r.Context().Value(routeKey{}).(*string); ok {
			if cr := mux.CurrentRoute(r); cr != nil {
				if t, err := cr.GetPathTemplate(); err == nil {
					*p = t
				}
			}
		}
		next.ServeHTTP(w, r)
	})
}

// methodLabel is a method HTTP defines, else "other": the client chooses it.
func methodLabel(m string) string {
	switch m {
	case http.MethodGet, http.MethodHead, http.MethodPost, http.MethodPut, http.MethodPatch,
		http.MethodDelete, http.MethodConnect, http.MethodOptions, http.MethodTrace:
		return m
	}
	return "other"
}

// outcomeOf is the audit outcome a status means: denied for the caller's mistakes
// and refusals, failed for ours (as errs.Kind.Outcome).
func outcomeOf(status int) string {
	switch {
	case status >= 500:
		return api.OutcomeFailed
	case status >= 400:
		return api.OutcomeDenied
	}
	return api.OutcomeAllowed
}

type statusRecorder struct {
	http.ResponseWriter
	status int
	wrote  bool
}

func (s *statusRecorder) WriteHeader(code int) {
	if !s.wrote {
		s.status, s.wrote = code, true
	}
	s.ResponseWriter.WriteHeader(code)
}

func (s *statusRecorder) Write(b []byte) (int, error) {
	s.wrote = true
	return s.ResponseWriter.Write(b)
}

// Unwrap lets http.ResponseController reach the connection (flush, deadlines).
func (s *statusRecorder) Unwrap() http.ResponseWriter { return s.ResponseWriter }
