package main

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/mosaic-federation/mosaic/harness/world"
)

// profileSeconds is how long --pprof profiles the gateways under load.
const profileSeconds = 5

// profileViaHome writes CPU profiles of home's and work's gateways (telemetry.pprof,
// on their metrics listeners) taken while 4 workers list through home, to
// dir/home.pprof and dir/work.pprof: where a federated list's CPU goes, on both
// sides (`go tool pprof -top dir/home.pprof`).
func profileViaHome(ctx context.Context, w *world.World, dir string) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	home := w.Site("home")
	api := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 8}}
	url := home.Gateway.APIURL + "/api/v1/tasks?source=federated:work&limit=100"
	done := make(chan struct{})
	var load sync.WaitGroup
	for range 4 {
		load.Add(1)
		go func() {
			defer load.Done()
			for {
				select {
				case <-done:
					return
				default:
					_ = do(api, http.MethodGet, url, home.Users[0].Token, nil)
				}
			}
		}()
	}
	var wg sync.WaitGroup
	errs := make([]error, 2)
	for i, name := range []string{"home", "work"} {
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs[i] = fetchProfile(ctx, w.Site(name).Gateway.MetricsURL, filepath.Join(dir, name+".pprof"))
		}()
	}
	wg.Wait()
	close(done)
	load.Wait()
	for _, err := range errs {
		if err != nil {
			return err
		}
	}
	fmt.Fprintf(os.Stderr, "profiles of home's and work's gateways under the via-home list: %s/{home,work}.pprof\n", dir)
	return nil
}

func fetchProfile(ctx context.Context, metricsURL, file string) error {
	ctx, cancel := context.WithTimeout(ctx, (profileSeconds+20)*time.Second)
	defer cancel()
	u := fmt.Sprintf("%s/debug/pprof/profile?seconds=%d", metricsURL, profileSeconds)
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return fmt.Errorf("profile %s: %w", u, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("profile %s: %s", u, resp.Status)
	}
	f, err := os.Create(file)
	if err != nil {
		return err
	}
	if _, err := io.Copy(f, resp.Body); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}
