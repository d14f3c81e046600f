package main

import (
	"context"

	"github.com/mosaic-federation/mosaic/gateway/internal/fedstore"
	"github.com/mosaic-federation/mosaic/gateway/internal/telemetry"
)

// peerMetrics makes each configured outbound peer's series exist from the start and
// exports our certificates' expiry for every outbound peer, listed at each scrape.
func peerMetrics(ctx context.Context, m *telemetry.Metrics, fed *fedstore.Store) {
	if rows, err := fed.Peers(ctx, "outbound"); err == nil {
		for _, p := range rows {
			m.Peer(p.Name)
		}
	}
	m.PeerCertificates(func(ctx context.Context) ([]telemetry.Cert, error) {
		rows, err := fed.Peers(ctx, "outbound")
		if err != nil {
			return nil, err
		}
		out := make([]telemetry.Cert, 0, len(rows))
		for _, p := range rows {
			out = append(out, telemetry.Cert{Kind: "peer", Peer: p.Name, NotAfter: telemetry.NotAfterOf(p.CertPEM)})
		}
		return out, nil
	})
}
