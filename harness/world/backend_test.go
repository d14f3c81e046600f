package world

import (
	"context"
	"errors"
	"go/build"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
)

// fakeBackend starts fake services and records every call, so the world's own logic
// (order, tracking, teardown, the CLI's route) is tested without spawning anything.
type fakeBackend struct {
	mu     sync.Mutex
	calls  []string
	failOn Kind  // a Start of this kind returns its handle with an error
	check  error // what Check answers
	cli    func(s *Site, stdin io.Reader, args []string) ([]byte, error)
}

func (f *fakeBackend) record(format string, args ...string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls = append(f.calls, format+" "+strings.Join(args, " "))
}

func (f *fakeBackend) recorded(prefix string) []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []string
	for _, c := range f.calls {
		if strings.HasPrefix(c, prefix) {
			out = append(out, strings.TrimSpace(strings.TrimPrefix(c, prefix)))
		}
	}
	return out
}

func (f *fakeBackend) service(s *Site, kind Kind, name string) (*fakeService, error) {
	svc := &fakeService{name: s.Name + "/" + name, b: f, running: true}
	f.record("start", svc.name)
	if kind == f.failOn {
		return svc, errors.New("boom")
	}
	return svc, nil
}

func (f *fakeBackend) Name() string { return "fake" }
func (f *fakeBackend) Check(kinds ...Kind) error {
	ks := make([]string, len(kinds))
	for i, k := range kinds {
		ks[i] = string(k)
	}
	f.record("check", ks...)
	return f.check
}
func (f *fakeBackend) StartCA(_ context.Context, s *Site) (*CA, error) {
	svc, err := f.service(s, KindCA, "step-ca")
	return &CA{Service: svc, URL: "https://ca"}, err
}
func (f *fakeBackend) StartPostgres(_ context.Context, s *Site) (*Postgres, error) {
	svc, err := f.service(s, KindPostgres, "postgres")
	return &Postgres{Service: svc, URL: "postgres://pg"}, err
}
func (f *fakeBackend) StartValkey(_ context.Context, s *Site) (*Valkey, error) {
	svc, err := f.service(s, KindValkey, "valkey")
	return &Valkey{Service: svc, URL: "redis://v"}, err
}
func (f *fakeBackend) StartGateway(_ context.Context, s *Site, name string, _ map[string]any) (*Gateway, error) {
	svc, err := f.service(s, KindGateway, name)
	return &Gateway{Service: svc, APIURL: "http://" + name, ConfigPath: s.Path(name + ".json")}, err
}
func (f *fakeBackend) StartToxiproxy(_ context.Context, run Run, _ string) (*Toxiproxy, error) {
	svc := &fakeService{name: "toxiproxy", b: f, running: true}
	f.record("start", svc.name)
	// No Toxiproxy API behind a fake: a world with links fails right after it.
	return &Toxiproxy{Service: svc, URL: "http://127.0.0.1:1"}, errors.New("no toxiproxy in the fake")
}
func (f *fakeBackend) GatewayCLI(_ context.Context, s *Site, stdin io.Reader, args ...string) ([]byte, error) {
	f.record("cli", append([]string{s.Name}, args...)...)
	if f.cli == nil {
		return nil, errors.New("no CLI in this test")
	}
	return f.cli(s, stdin, args)
}
func (f *fakeBackend) Leftovers(context.Context, string) ([]string, error) { return nil, nil }
func (f *fakeBackend) Sweep(context.Context, string) (int, error)          { return 0, nil }

type fakeService struct {
	name    string
	b       *fakeBackend
	running bool
}

func (s *fakeService) Name() string { return s.name }
func (s *fakeService) Start(context.Context) error {
	s.running = true
	return nil
}
func (s *fakeService) Stop(context.Context) error {
	s.b.record("stop", s.name)
	s.running = false
	return nil
}
func (s *fakeService) Kill() error                       { return s.Stop(context.Background()) }
func (s *fakeService) Restart(ctx context.Context) error { return s.Start(ctx) }
func (s *fakeService) Running() bool                     { return s.running }
func (s *fakeService) Pid() int                          { return 0 }
func (s *fakeService) LogPath() string                   { return "" }

func fakeOptions(t *testing.T, b *fakeBackend, sites ...string) Options {
	return Options{Sites: sites, Backend: b, GatewayBin: "/nonexistent/gateway",
		RunDir: filepath.Join(t.TempDir(), "run"), SeedDir: t.TempDir()}
}

func TestUpChecksFirstAndDownStopsGatewaysBeforeTheRest(t *testing.T) {
	b := &fakeBackend{}
	w, err := Up(context.Background(), fakeOptions(t, b, "home", "work"))
	if err != nil {
		t.Fatal(err)
	}
	if got := b.calls[0]; got != "check step-ca postgres valkey gateway" {
		t.Errorf("first call %q: Check must come before anything starts", got)
	}
	if n := len(w.Services()); n != 8 {
		t.Fatalf("%d services tracked, want 8", n)
	}
	extra, err := w.Site("work").StartGateway(context.Background(), "extra", nil)
	if err != nil || extra.ConfigPath != w.Site("work").Path("extra.json") {
		t.Fatalf("extra gateway %+v, %v", extra, err)
	}
	w.Down()
	w.Down() // safe twice
	stops := b.recorded("stop")
	if len(stops) != 9 {
		t.Fatalf("stops %v, want every service once", stops)
	}
	isGateway := func(s string) bool { return strings.HasSuffix(s, "/gateway") || strings.HasSuffix(s, "/extra") }
	firstOther := slices.IndexFunc(stops, func(s string) bool { return !isGateway(s) })
	if firstOther != 3 || slices.ContainsFunc(stops[firstOther:], isGateway) {
		t.Errorf("stop order %v: the three gateways must all stop before the rest", stops)
	}
	if _, err := os.Stat(w.RunDir); !os.IsNotExist(err) {
		t.Errorf("run directory left after Down: %v", err)
	}
}

func TestAFailedStartIsStillTornDown(t *testing.T) {
	b := &fakeBackend{failOn: KindPostgres}
	_, err := Up(context.Background(), fakeOptions(t, b, "solo"))
	if err == nil || !strings.Contains(err.Error(), "site solo: postgres: boom") {
		t.Fatalf("got %v", err)
	}
	if starts := b.recorded("start"); slices.Contains(starts, "solo/gateway") {
		t.Errorf("a gateway started on a half-built site: %v", starts)
	}
	stops := b.recorded("stop")
	slices.Sort(stops)
	if !slices.Equal(stops, []string{"solo/postgres", "solo/step-ca", "solo/valkey"}) {
		t.Errorf("stopped %v: the failed PostgreSQL's handle must be stopped too", stops)
	}
}

func TestUpRefusesBeforeStartingAnything(t *testing.T) {
	if _, err := Up(context.Background(), Options{GatewayBin: "/x"}); !errors.Is(err, errBackend) {
		t.Errorf("no backend: %v", err)
	}
	b := &fakeBackend{check: errors.New("step-ca not found")}
	if _, err := Up(context.Background(), fakeOptions(t, b, "solo")); !errors.Is(err, b.check) {
		t.Errorf("check failure: %v", err)
	}
	if starts := b.recorded("start"); len(starts) != 0 {
		t.Errorf("started %v after a failed check", starts)
	}
	if _, _, err := StandalonePostgres(context.Background(), Options{Backend: b, RunDir: filepath.Join(t.TempDir(), "pg")}); !errors.Is(err, b.check) {
		t.Errorf("standalone check failure: %v", err)
	}
	if got := b.recorded("check"); got[len(got)-1] != "postgres" {
		t.Errorf("StandalonePostgres checked %q, want postgres only", got[len(got)-1])
	}
}

func TestSeedGoesThroughTheBackendsCLI(t *testing.T) {
	b := &fakeBackend{cli: func(s *Site, stdin io.Reader, args []string) ([]byte, error) {
		return []byte(`{"users":[{"email":"ada@` + s.Name + `","token":"t"}]}`), nil
	}}
	opts := fakeOptions(t, b, "solo")
	seed := filepath.Join(opts.SeedDir, "solo.json")
	if err := os.WriteFile(seed, []byte(`{}`), 0o600); err != nil {
		t.Fatal(err)
	}
	w, err := Up(context.Background(), opts)
	if err != nil {
		t.Fatal(err)
	}
	defer w.Down()
	if got := b.recorded("cli"); !slices.Equal(got, []string{"solo seed load --json " + seed}) {
		t.Errorf("CLI calls %v", got)
	}
	if u := w.Site("solo").Users; len(u) != 1 || u[0].Email != "ada@solo" {
		t.Errorf("users %v", u)
	}
	pgURL, _ := os.ReadFile(w.Site("solo").Path(PostgresURLFile))
	if string(pgURL) != "postgres://pg\n" {
		t.Errorf("%s holds %q", PostgresURLFile, pgURL)
	}
	if run := w.Site("solo").Run(); run.Dir != w.RunDir || run.GatewayBin != "/nonexistent/gateway" || run.Log == nil {
		t.Errorf("run %+v", run)
	}
}

func TestExtraGatewayNames(t *testing.T) {
	b := &fakeBackend{}
	w, err := Up(context.Background(), fakeOptions(t, b, "solo"))
	if err != nil {
		t.Fatal(err)
	}
	defer w.Down()
	for _, name := range []string{"", "gateway", "Extra", "../x"} {
		if _, err := w.Site("solo").StartGateway(context.Background(), name, nil); err == nil {
			t.Errorf("extra gateway %q accepted", name)
		}
	}
	if starts := b.recorded("start"); len(starts) != 4 {
		t.Errorf("the backend was asked for a refused gateway: %v", starts)
	}
}

// TestWorldImportsNoProcessCode keeps the seam where issue 11 put it: pids, signals
// and child processes belong to a backend, never to the world.
func TestWorldImportsNoProcessCode(t *testing.T) {
	pkg, err := build.ImportDir(".", 0)
	if err != nil {
		t.Fatal(err)
	}
	for _, imp := range pkg.Imports {
		if imp == "syscall" || imp == "os/exec" || strings.Contains(imp, "/internal/proc") || strings.Contains(imp, "/world/process") {
			t.Errorf("harness/world imports %s", imp)
		}
	}
}

func TestLinksStartToxiproxyBeforeAnySiteAndFailCleanly(t *testing.T) {
	b := &fakeBackend{}
	opts := fakeOptions(t, b, "home", "work")
	opts.Links = true
	if _, err := Up(context.Background(), opts); err == nil || !strings.Contains(err.Error(), "toxiproxy") {
		t.Fatalf("Up = %v, want the fake's toxiproxy failure", err)
	}
	if got := b.calls[0]; got != "check step-ca postgres valkey gateway toxiproxy" {
		t.Errorf("first call %q: Check must ask for Toxiproxy too", got)
	}
	if starts := b.recorded("start"); !slices.Equal(starts, []string{"toxiproxy"}) {
		t.Errorf("started %v: the links come up before any site (a serving gateway's config names its link)", starts)
	}
	if stops := b.recorded("stop"); !slices.Equal(stops, []string{"toxiproxy"}) {
		t.Errorf("stopped %v: a failed Toxiproxy start is torn down", stops)
	}
}
