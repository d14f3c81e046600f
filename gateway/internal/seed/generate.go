package seed

import (
	"context"
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/mosaic-federation/mosaic/gateway/api"
	"github.com/mosaic-federation/mosaic/gateway/internal/embed"
	"github.com/mosaic-federation/mosaic/gateway/internal/store"
)

// Counts are how many synthetic rows Generate adds per table.
type Counts struct{ Tasks, Notes, Memories int }

// Generate adds synthetic rows for the store's existing users and teams (see
// store.GenerateOptions for the mix), embedding memories with e, and reports
// progress on progress (nil: silent) after every batch.
func Generate(ctx context.Context, st store.Store, e embed.Embedder, c Counts, progress io.Writer) (api.SeedGenerated, error) {
	g, ok := st.(store.Generator)
	if !ok {
		return api.SeedGenerated{}, errors.New("this store cannot generate rows")
	}
	var embedErr error
	o := store.GenerateOptions{Tasks: c.Tasks, Notes: c.Notes, Memories: c.Memories,
		Embed: func(content string) []float32 {
			v, err := e.Embed(ctx, content)
			if err != nil && embedErr == nil {
				embedErr = err
			}
			return v
		}}
	start := time.Now()
	if progress != nil {
		o.Progress = func(table string, done, total int) {
			fmt.Fprintf(progress, "%s: %d of %d (%.1f s)\n", table, done, total, time.Since(start).Seconds())
		}
	}
	if err := g.Generate(ctx, o); err != nil {
		return api.SeedGenerated{}, err
	}
	if embedErr != nil {
		return api.SeedGenerated{}, fmt.Errorf("embed a generated memory: %w", embedErr)
	}
	secs := time.Since(start).Seconds()
	res := api.SeedGenerated{Counts: map[string]int{"tasks": c.Tasks, "notes": c.Notes, "memories": c.Memories}, Seconds: secs}
	if secs > 0 {
		res.RowsPerSec = float64(c.Tasks+c.Notes+c.Memories) / secs
	}
	return res, nil
}
