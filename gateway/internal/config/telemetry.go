package config

import (
	"errors"
	"net/url"
)

// Telemetry is where spans go (SPEC §6c).
type Telemetry struct {
	// OTLPEndpoint is an OTLP/HTTP collector's base URL, such as
	// "http://127.0.0.1:4318" (spans are posted to its /v1/traces); "" exports nothing.
	OTLPEndpoint string `json:"otlp_endpoint"`
	// Pprof serves Go's profiles (/debug/pprof/) beside /metrics on listen.metrics,
	// for profiling a loaded gateway; off unless asked for. A profile shows code and
	// call stacks, never request data, but listen.metrics must stay an operator's
	// address either way.
	Pprof bool `json:"pprof"`
}

func (t *Telemetry) normalise() error {
	if t.OTLPEndpoint == "" {
		return nil
	}
	u, err := url.Parse(t.OTLPEndpoint)
	switch {
	case err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || u.RawQuery != "" || u.Fragment != "":
		return errors.New(`config: field "telemetry.otlp_endpoint" must be an OTLP/HTTP collector's http:// or https:// base URL, such as "http://127.0.0.1:4318"`)
	case u.User != nil:
		return errors.New(`config: field "telemetry.otlp_endpoint" holds credentials: a collector URL must not`)
	}
	return nil
}
