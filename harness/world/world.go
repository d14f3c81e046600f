// Package world boots and drives a complete multi-site federation world: per site a
// step-ca, a PostgreSQL cluster with pgvector, a Valkey server and a gateway. The
// harness command and the acceptance suite both use it.
package world

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"time"
)

// Options say what world to boot.
type Options struct {
	// Sites to boot; the first is the requesting site ("home"). Default: home, work.
	Sites []string
	// Backend starts the services (required): process.New from harness/world/process
	// today. The world imports no backend, so the caller picks one.
	Backend Backend
	// RunDir holds everything of the run; default a fresh directory under /tmp (which
	// an unprivileged PostgreSQL user can reach, unlike /root).
	RunDir string
	// GatewayBin is the built gateway binary (required).
	GatewayBin string
	// SeedDir holds <site>.json seed sets loaded at boot (default <module>/seed); a
	// site without one boots empty.
	SeedDir string
	// Progress receives one line per boot step (nil: discarded).
	Progress io.Writer
	// Log receives the spawn lines of every process (nil: discarded).
	Log *slog.Logger
	// KeepRunDir leaves the run directory in place after Down (for diagnostics).
	KeepRunDir bool
	// Replicas is how many gateways each serving site runs (default 1), sharing the
	// site's PostgreSQL, Valkey and CA.
	Replicas int
	// GatewayOverrides are deep-merged into every gateway's config, before a gateway's
	// own overrides: the acceptance world raises the rate limits so that no parallel
	// spec trips another's (specs of the limits use grants and gateways of their own).
	GatewayOverrides map[string]any
	// Links puts a Toxiproxy on the link from the requesting site to each serving site
	// (SPEC §6a; link.go), each with WANLatency each way.
	Links      bool
	WANLatency time.Duration
	// TestProvisioner gives every site's CA BrokenProvisioner, which issues client
	// certificates without the OIDs: for the acceptance specs that prove a gateway
	// refuses them, never for a world someone uses (`harness up`).
	TestProvisioner bool
}

// World is a booted set of sites.
type World struct {
	RunDir   string
	Sites    map[string]*Site
	Order    []string // site names in boot order; Order[0] is the requesting site
	BootTime time.Duration
	// Grants made at boot: the requesting site enrolled at every other site.
	Grants []Grant

	opts    Options
	backend Backend
	start   time.Time

	mu        sync.Mutex
	services  []tracked        // every service started, in start order, for Down
	links     map[string]*Link // by proxy name (Options.Links)
	toxiproxy *Toxiproxy
	downOnce  sync.Once
}

// tracked is a service with the kind the world started it as, which is all Down needs
// to know to stop it in order.
type tracked struct {
	svc  Service
	kind Kind
}

// Site returns the named site or panics: specs name sites they booted.
func (w *World) Site(name string) *Site {
	s, ok := w.Sites[name]
	if !ok {
		panic(fmt.Sprintf("world: no site %q (have %v)", name, w.Order))
	}
	return s
}

// Up boots every site in parallel and returns when all are ready. On any error it tears
// down whatever had started and returns the first error.
func Up(ctx context.Context, opts Options) (*World, error) {
	start := time.Now()
	if opts.GatewayBin == "" {
		return nil, errors.New("world: Options.GatewayBin is required (build ./gateway first)")
	}
	if opts.Backend == nil {
		return nil, errBackend
	}
	if err := opts.fill(); err != nil {
		return nil, err
	}
	kinds := []Kind{KindCA, KindPostgres, KindValkey, KindGateway}
	if opts.Links {
		kinds = append(kinds, KindToxiproxy)
	}
	if err := opts.Backend.Check(kinds...); err != nil {
		return nil, err
	}
	w := &World{RunDir: opts.RunDir, Sites: map[string]*Site{}, Order: opts.Sites,
		opts: opts, backend: opts.Backend, start: start, links: map[string]*Link{}}
	w.progress("run directory %s (backend %s)", opts.RunDir, w.backend.Name())
	if opts.Links {
		// Before the sites: a serving gateway's config names its link's address.
		if err := w.startLinks(ctx); err != nil {
			w.Down()
			return nil, err
		}
	}

	errs := make([]error, len(opts.Sites))
	var wg sync.WaitGroup
	for i, name := range opts.Sites {
		site := &Site{Name: name, Dir: filepath.Join(opts.RunDir, name), world: w}
		w.Sites[name] = site
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs[i] = site.boot(ctx)
		}()
	}
	wg.Wait()
	if err := errors.Join(errs...); err == nil {
		errs = []error{w.enroll(ctx)}
	}
	if err := errors.Join(errs...); err != nil {
		w.Down()
		return nil, err
	}
	w.BootTime = time.Since(start)
	w.progress("world ready in %.1fs", w.BootTime.Seconds())
	return w, nil
}

func (o *Options) fill() error {
	if len(o.Sites) == 0 {
		o.Sites = []string{"home", "work"}
	}
	seen := map[string]bool{}
	for _, s := range o.Sites {
		if !validSiteName(s) {
			return fmt.Errorf("site name %q: use 1-32 lowercase letters, digits or '-'", s)
		}
		if seen[s] {
			return fmt.Errorf("site %q named twice", s)
		}
		seen[s] = true
	}
	if o.RunDir == "" {
		dir, err := os.MkdirTemp("/tmp", "mosaic-run-")
		if err != nil {
			return fmt.Errorf("create run directory: %w", err)
		}
		o.RunDir = dir
	} else if err := os.MkdirAll(o.RunDir, 0o700); err != nil {
		return fmt.Errorf("create run directory: %w", err)
	}
	// Traversable (not listable) so an unprivileged PostgreSQL can reach its own folder.
	if err := os.Chmod(o.RunDir, 0o711); err != nil {
		return err
	}
	if o.SeedDir == "" {
		if root, err := ModuleRoot(); err == nil {
			o.SeedDir = filepath.Join(root, "seed")
		}
	}
	if o.Log == nil {
		o.Log = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	if o.Progress == nil {
		o.Progress = io.Discard
	}
	return nil
}

var errBackend = errors.New("world: Options.Backend is required (for example process.New from harness/world/process)")

func validSiteName(s string) bool {
	if len(s) == 0 || len(s) > 32 {
		return false
	}
	for _, r := range s {
		lower, digit := r >= 'a' && r <= 'z', r >= '0' && r <= '9'
		if !lower && !digit && r != '-' {
			return false
		}
	}
	return true
}

// progress prints one boot step, stamped with the time since Up began.
func (w *World) progress(format string, args ...any) {
	w.mu.Lock()
	defer w.mu.Unlock()
	fmt.Fprintf(w.opts.Progress, "[%5.1fs] "+format+"\n", append([]any{time.Since(w.start).Seconds()}, args...)...)
}

// track records a service the backend made, even one whose start failed (it may have
// left something running), so that Down stops it.
func (w *World) track(s Service, kind Kind) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.services = append(w.services, tracked{s, kind})
}

// Services lists every service started so far, in start order.
func (w *World) Services() []Service {
	w.mu.Lock()
	defer w.mu.Unlock()
	svcs := make([]Service, len(w.services))
	for i, t := range w.services {
		svcs[i] = t.svc
	}
	return svcs
}

// stopFirst are the kinds Down stops before any other: gateways, so that none sees its
// database, cache or CA vanish while it shuts down.
var stopFirst = []Kind{KindGateway}

// Down stops every service — the stopFirst kinds, then everything else, in parallel
// within each stage — has the backend sweep what remains of the run, and removes the run directory unless KeepRunDir. It copes with a
// half-built world and is safe to call more than once.
func (w *World) Down() {
	w.downOnce.Do(func() {
		w.mu.Lock()
		var first, rest []Service
		for _, t := range w.services {
			if slices.Contains(stopFirst, t.kind) {
				first = append(first, t.svc)
			} else {
				rest = append(rest, t.svc)
			}
		}
		w.mu.Unlock()
		stopAll(first)
		stopAll(rest)
		// What a stopped service leaves that is not a process (a backend's stopped
		// containers, its networks) goes too; on the process backend nothing is left.
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		if _, err := w.backend.Sweep(ctx, w.RunDir); err != nil {
			w.opts.Log.Warn("sweep after down", "run", w.RunDir, "err", err)
		}
		cancel()
		if !w.opts.KeepRunDir {
			_ = os.RemoveAll(w.RunDir)
		}
	})
}

func stopAll(svcs []Service) {
	var wg sync.WaitGroup
	for _, s := range svcs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
			defer cancel()
			_ = s.Stop(ctx)
		}()
	}
	wg.Wait()
}

// StandalonePostgres boots a single PostgreSQL cluster with pgvector, and nothing else,
// for tests of the storage layer. Down() the returned world when done.
func StandalonePostgres(ctx context.Context, opts Options) (*World, *Postgres, error) {
	if opts.Backend == nil {
		return nil, nil, errBackend
	}
	opts.Sites = []string{"pg"}
	if err := opts.fill(); err != nil {
		return nil, nil, err
	}
	if err := opts.Backend.Check(KindPostgres); err != nil {
		return nil, nil, err
	}
	w := &World{RunDir: opts.RunDir, Sites: map[string]*Site{}, Order: opts.Sites, opts: opts, backend: opts.Backend, start: time.Now()}
	s := &Site{Name: "pg", Dir: filepath.Join(opts.RunDir, "pg"), world: w}
	w.Sites["pg"] = s
	if err := s.makeDirs(); err != nil {
		w.Down()
		return nil, nil, err
	}
	if err := s.startPostgres(ctx); err != nil {
		w.Down()
		return nil, nil, err
	}
	return w, s.Postgres, nil
}
