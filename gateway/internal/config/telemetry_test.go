package config

import (
	"strings"
	"testing"
)

func TestTelemetryEndpointAndMetricsListener(t *testing.T) {
	tests := []struct {
		name, endpoint, want string // want: "" loads
	}{
		{"none", "", ""},
		{"http", "http://127.0.0.1:4318", ""},
		{"https with a path", "https://collector.example/otlp", ""},
		{"grpc scheme", "grpc://127.0.0.1:4317", `"telemetry.otlp_endpoint" must be`},
		{"no host", "http://", `"telemetry.otlp_endpoint" must be`},
		{"a query", "http://127.0.0.1:4318/?x=1", `"telemetry.otlp_endpoint" must be`},
		{"credentials", "http://user:secret@127.0.0.1:4318", `"telemetry.otlp_endpoint" holds credentials`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			cfg, err := Load(write(t, federated), env(map[string]string{
				"GATEWAY_TELEMETRY_OTLP_ENDPOINT": tc.endpoint, "GATEWAY_LISTEN_METRICS": "127.0.0.1:9100"}))
			switch {
			case tc.want == "" && err != nil:
				t.Fatalf("got %v, want it to load", err)
			case tc.want == "" && (cfg.Telemetry.OTLPEndpoint != tc.endpoint || cfg.Listen.Metrics != "127.0.0.1:9100"):
				t.Fatalf("got %+v / %q", cfg.Telemetry, cfg.Listen.Metrics)
			case tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want)):
				t.Fatalf("got error %v, want it to contain %q", err, tc.want)
			case err != nil && strings.Contains(err.Error(), "secret"):
				t.Fatalf("the error shows the credentials: %v", err)
			}
		})
	}
}
