// Package localapi is the requesting side's HTTP API. For now it serves the probes:
// /healthz (the process is up) and /readyz (every dependency answers).
package localapi

import (
	"context"
	"encoding/json"
	"log/slog"
	"net/http"
	"sync"
	"time"

	"github.com/mosaic-federation/mosaic/gateway/api"
)

// Checker is one dependency the gateway needs to serve (PostgreSQL, Valkey, …). A
// soft one down leaves the gateway serving, degraded (Valkey: limits in memory).
type Checker struct {
	Name  string
	Check func(ctx context.Context) error
	Soft  bool
}

// checkTimeout bounds each readiness probe so /readyz answers quickly when a
// dependency hangs rather than refuses.
const checkTimeout = 2 * time.Second

// Health returns /healthz and /readyz handlers.
func Health(log *slog.Logger, checkers []Checker) (healthz, readyz http.Handler) {
	healthz = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, http.StatusOK, api.Health{Status: "ok"})
	})
	readyz = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		checks := make([]api.Check, len(checkers))
		var wg sync.WaitGroup
		for i, c := range checkers {
			wg.Add(1)
			go func() {
				defer wg.Done()
				ctx, cancel := context.WithTimeout(r.Context(), checkTimeout)
				defer cancel()
				start := time.Now()
				err := c.Check(ctx)
				checks[i] = api.Check{Name: c.Name, Status: "up", LatencyMS: time.Since(start).Milliseconds()}
				if err != nil {
					checks[i].Status = "down"
					// The cause goes to the log only; drivers' errors can name hosts and users.
					log.Warn("readiness check failed", "dependency", c.Name, "err", err)
				}
			}()
		}
		wg.Wait()
		body, status := api.Health{Status: "ready", Checks: checks}, http.StatusOK
		for i, c := range checks {
			switch {
			case c.Status == "up":
			case checkers[i].Soft && status == http.StatusOK:
				body.Status = "degraded"
			default:
				body.Status, status = "unavailable", http.StatusServiceUnavailable
			}
		}
		writeJSON(w, status, body)
	})
	return healthz, readyz
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}
