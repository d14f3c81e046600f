package store

import (
	"context"
	"slices"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/mosaic-federation/mosaic/gateway/api"
)

// BenchmarkList10k measures one page (50 rows, the API's default) of a user's tasks out
// of 10⁴ visible rows, half personal and half in a team, per engine. It reports the
// median latency as p50-µs next to Go's mean.
//
//	go test -run='^$' -bench=List10k -benchtime=2000x ./gateway/internal/store
func BenchmarkList10k(b *testing.B) {
	for _, e := range engines() {
		b.Run(e.name, func(b *testing.B) {
			s := e.open(b)
			ctx := context.Background()
			owner, team := uuid.NewString(), uuid.NewString()
			if err := s.UpsertUser(ctx, User{ID: owner, Email: "bench@example.test", DisplayName: "B", Role: "member", CreatedAt: epoch}); err != nil {
				b.Fatal(err)
			}
			if err := s.UpsertTeam(ctx, Team{ID: team, Name: "bench", CreatedAt: epoch}); err != nil {
				b.Fatal(err)
			}
			if err := s.AddMember(ctx, team, owner); err != nil {
				b.Fatal(err)
			}
			for i := range 10_000 {
				tk := task(owner, nil, i)
				if i%2 == 0 {
					tk.TeamID = &team
				}
				if err := s.PutTask(ctx, tk); err != nil {
					b.Fatal(err)
				}
			}
			lat := make([]time.Duration, 0, b.N)
			b.ResetTimer()
			for range b.N {
				start := time.Now()
				page, err := s.List(ctx, Viewer{owner}, api.ResourceTasks, ListOptions{Limit: 50})
				if err != nil || len(page.Items) != 50 {
					b.Fatal(err, len(page.Items))
				}
				lat = append(lat, time.Since(start))
			}
			b.StopTimer()
			slices.Sort(lat)
			b.ReportMetric(float64(lat[len(lat)/2].Microseconds()), "p50-µs")
		})
	}
}
