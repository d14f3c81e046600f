package process

import (
	"context"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/mosaic-federation/mosaic/harness/world"
)

// cliOnly is the process backend with its services faked: only GatewayCLI is real, so
// a world boots without spawning anything but the CLI under test.
type cliOnly struct{ *Backend }

func (cliOnly) Check(...world.Kind) error { return nil }
func (cliOnly) StartCA(context.Context, *world.Site) (*world.CA, error) {
	return &world.CA{Service: idle{}}, nil
}
func (cliOnly) StartPostgres(context.Context, *world.Site) (*world.Postgres, error) {
	return &world.Postgres{Service: idle{}, URL: "postgres://x"}, nil
}
func (cliOnly) StartValkey(context.Context, *world.Site) (*world.Valkey, error) {
	return &world.Valkey{Service: idle{}}, nil
}
func (cliOnly) StartGateway(_ context.Context, s *world.Site, name string, _ map[string]any) (*world.Gateway, error) {
	return &world.Gateway{Service: idle{}, ConfigPath: s.Path(name + ".json")}, nil
}

type idle struct{}

func (idle) Name() string                  { return "idle" }
func (idle) Start(context.Context) error   { return nil }
func (idle) Stop(context.Context) error    { return nil }
func (idle) Kill() error                   { return nil }
func (idle) Restart(context.Context) error { return nil }
func (idle) Running() bool                 { return false }
func (idle) Pid() int                      { return 0 }
func (idle) LogPath() string               { return "" }

func TestGatewayCLIRunsTheHostBinaryWithTheSitesConfig(t *testing.T) {
	// The fake gateway records its argv and environment in the run directory, which
	// it can only find through the run tag, and echoes stdin.
	bin := filepath.Join(t.TempDir(), "gateway")
	script := "#!/bin/sh\nprintf '%s\\n' \"$@\" > \"$MOSAIC_RUN/cli.args\"\nenv > \"$MOSAIC_RUN/cli.env\"\n" +
		"if [ \"$4\" = fail ]; then echo 'boom on stderr' >&2; exit 3; fi\ncat\n"
	if err := os.WriteFile(bin, []byte(script), 0o755); err != nil {
		t.Fatal(err)
	}
	t.Setenv("MOSAIC_SECRET_THING", "x")
	b := cliOnly{New(Config{})}
	w, err := world.Up(context.Background(), world.Options{Sites: []string{"solo"}, Backend: b, GatewayBin: bin,
		RunDir: filepath.Join(t.TempDir(), "run"), SeedDir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	defer w.Down()
	s := w.Site("solo")

	out, err := b.GatewayCLI(context.Background(), s, strings.NewReader("the enrollment URL"), "federation", "peer", "add", "-")
	if err != nil || string(out) != "the enrollment URL" {
		t.Fatalf("out %q, err %v", out, err)
	}
	args, _ := os.ReadFile(filepath.Join(w.RunDir, "cli.args"))
	if want := "--config\n" + s.Path("gateway.json") + "\nfederation\npeer\nadd\n-\n"; string(args) != want {
		t.Errorf("argv %q, want %q", args, want)
	}
	env, _ := os.ReadFile(filepath.Join(w.RunDir, "cli.env"))
	if lines := strings.Split(string(env), "\n"); slices.ContainsFunc(lines, func(l string) bool { return strings.HasPrefix(l, "MOSAIC_SECRET_THING=") }) {
		t.Error("the CLI inherited a variable outside the allowlist")
	}

	if _, err := s.GatewayCLI(context.Background(), "seed", "fail"); err == nil ||
		!strings.Contains(err.Error(), "gateway seed fail") || !strings.Contains(err.Error(), "boom on stderr") {
		t.Errorf("a failing CLI: %v", err)
	}
}
