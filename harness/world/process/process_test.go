package process

import (
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/mosaic-federation/mosaic/harness/world"
	"github.com/mosaic-federation/mosaic/harness/world/process/internal/proc"
)

// pairs reads an argv of "--flag value" pairs.
func pairs(argv []string) map[string]string {
	m := map[string]string{}
	for i := 0; i+1 < len(argv); i += 2 {
		m[argv[i]] = argv[i+1]
	}
	return m
}

func TestArgvBuilders(t *testing.T) {
	pg := postgresArgs("/run/work/postgres/data", "/run/work/postgres", 5433)
	for _, want := range [][]string{{"-D", "/run/work/postgres/data"}, {"-p", "5433"}, {"-c", "listen_addresses=127.0.0.1"}} {
		if i := slices.Index(pg, want[0]); i < 0 || !slices.Contains(pg, want[1]) {
			t.Errorf("postgres argv %v lacks %v", pg, want)
		}
	}
	initdb := initdbArgs("/run/work/postgres/data", "/run/work/postgres/pwfile")
	for _, want := range []string{"-U", world.PostgresSuperuser, "--pwfile=/run/work/postgres/pwfile", "--auth=scram-sha-256"} {
		if !slices.Contains(initdb, want) {
			t.Errorf("initdb argv %v lacks %s", initdb, want)
		}
	}
	vk := pairs(valkeyArgs("/run/work/valkey", 6380))
	want := map[string]string{"--bind": "127.0.0.1", "--port": "6380", "--save": "", "--appendonly": "no"}
	for k, v := range want {
		if vk[k] != v {
			t.Errorf("valkey %s = %q, want %q (argv %v)", k, vk[k], v, vk)
		}
	}
	if tp := pairs(toxiproxyArgs(8474)); tp["-host"] != "127.0.0.1" || tp["-port"] != "8474" {
		t.Errorf("toxiproxy argv %v: its API on loopback only", tp)
	}
}

func TestChildrenGetACleanEnvironmentTaggedWithTheRun(t *testing.T) {
	t.Setenv("MOSAIC_SECRET_THING", "x")
	env := childEnv("/tmp/mosaic-run-1", "STEPPATH=/s")
	if !slices.Contains(env, RunEnv+"=/tmp/mosaic-run-1") || !slices.Contains(env, "STEPPATH=/s") {
		t.Errorf("env %v", env)
	}
	if slices.ContainsFunc(env, func(kv string) bool { return strings.HasPrefix(kv, "MOSAIC_SECRET_THING=") }) {
		t.Error("a variable outside the allowlist leaked")
	}
	argv, cliEnv := cliCommand("/run/work/gateway.json", "/tmp/mosaic-run-1", []string{"seed", "load"})
	if !slices.Equal(argv, []string{"--config", "/run/work/gateway.json", "seed", "load"}) {
		t.Errorf("cli argv %v", argv)
	}
	if !slices.Contains(cliEnv, RunEnv+"=/tmp/mosaic-run-1") {
		t.Errorf("the CLI is not tagged with the run: %v", cliEnv)
	}
}

func TestRunTagMatchesWholeEntriesOnly(t *testing.T) {
	tag := runTag("/tmp/mosaic-run-1")
	for environ, want := range map[string]bool{
		"MOSAIC_RUN=/tmp/mosaic-run-1\x00PATH=/bin\x00":  true,
		"PATH=/bin\x00MOSAIC_RUN=/tmp/mosaic-run-1\x00":  true,
		"PATH=/bin\x00MOSAIC_RUN=/tmp/mosaic-run-12\x00": false,
		"XMOSAIC_RUN=/tmp/mosaic-run-1\x00":              false,
		"":                                               false,
	} {
		if got := hasTag([]byte(environ), tag); got != want {
			t.Errorf("hasTag(%q) = %v", environ, got)
		}
	}
}

func TestNewestPostgresPicksTheHighestMajorWithAServer(t *testing.T) {
	dirs := []string{"/usr/lib/postgresql/9/bin", "/usr/lib/postgresql/17/bin", "/usr/lib/postgresql/15/bin"}
	if got := newestPostgres(dirs, func(string) bool { return true }); got != "/usr/lib/postgresql/17/bin" {
		t.Errorf("got %s", got)
	}
	noServer17 := func(d string) bool { return !strings.Contains(d, "/17/") }
	if got := newestPostgres(dirs, noServer17); got != "/usr/lib/postgresql/15/bin" {
		t.Errorf("got %s", got)
	}
	if got := newestPostgres(nil, noServer17); got != "" {
		t.Errorf("got %q with no installation", got)
	}
}

func TestCheckNamesWhatIsMissingPerKind(t *testing.T) {
	empty := t.TempDir()
	t.Setenv("PATH", empty)
	b := New(Config{BinDir: empty, PostgresBinDir: empty})
	for kind, want := range map[world.Kind]string{world.KindPostgres: "postgres not found", world.KindCA: "step-ca not found",
		world.KindValkey: "neither valkey-server nor redis-server", world.KindToxiproxy: "toxiproxy-server not found"} {
		if err := b.Check(kind); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("Check(%s) = %v, want %q", kind, err, want)
		}
	}
	if err := b.Check(world.KindCA, world.KindPostgres); err == nil || !strings.Contains(err.Error(), "postgres") {
		t.Errorf("PostgreSQL is reported first whatever the order asked: %v", err)
	}
	if err := b.Check(world.KindGateway); err != nil {
		t.Errorf("the gateway binary comes from the world's options: %v", err)
	}

	// With every program present, nothing is missing.
	bins, path := t.TempDir(), t.TempDir()
	for dir, names := range map[string][]string{bins: {"postgres", "initdb", "step-ca", "step", "toxiproxy-server"}, path: {"redis-server"}} {
		for _, n := range names {
			if err := os.WriteFile(filepath.Join(dir, n), []byte("#!/bin/sh\n"), 0o755); err != nil {
				t.Fatal(err)
			}
		}
	}
	t.Setenv("PATH", path)
	b = New(Config{BinDir: bins, PostgresBinDir: bins})
	if err := b.Check(world.KindCA, world.KindPostgres, world.KindValkey, world.KindGateway, world.KindToxiproxy); err != nil {
		t.Fatalf("Check with every program present: %v", err)
	}
	if p := b.programs(); p.valkey != filepath.Join(path, "redis-server") || p.step != filepath.Join(bins, "step") ||
		p.toxiproxy != filepath.Join(bins, "toxiproxy-server") {
		t.Errorf("programs %+v", p)
	}
}

func TestLeftoversFindsAndSweepsATaggedProcess(t *testing.T) {
	ctx := context.Background()
	b := New(Config{})
	runDir := filepath.Join(t.TempDir(), "mosaic-run-test")
	if got, err := b.Leftovers(ctx, runDir); len(got) != 0 || err != nil {
		t.Fatalf("a run that never ran has leftovers %v (%v)", got, err)
	}
	cmd := exec.Command("sleep", "30")
	cmd.Env = childEnv(runDir)
	cmd.SysProcAttr = sysProcAttr(nil)
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	reaped := make(chan struct{})
	go func() { _ = cmd.Wait(); close(reaped) }()
	t.Cleanup(func() { _ = cmd.Process.Kill() })

	// Until the child has exec'd, /proc/<pid>/environ is still this test's
	// environment (no tag), so wait for the exec rather than read it once.
	want := []string{"pid " + strconv.Itoa(cmd.Process.Pid)}
	var got []string
	var err error
	for deadline := time.Now().Add(5 * time.Second); time.Now().Before(deadline); time.Sleep(10 * time.Millisecond) {
		if got, err = b.Leftovers(ctx, runDir); err != nil || slices.Equal(got, want) {
			break
		}
	}
	if err != nil || !slices.Equal(got, want) {
		t.Fatalf("leftovers %v (%v), want the sleep's pid %d", got, err, cmd.Process.Pid)
	}
	if n, err := b.Sweep(ctx, runDir); n != 1 || err != nil {
		t.Fatalf("swept %d (%v)", n, err)
	}
	select {
	case <-reaped:
	case <-time.After(5 * time.Second):
		t.Fatal("the swept process did not exit")
	}
	if pids := Pids(runDir); len(pids) != 0 {
		t.Errorf("pids %v after the sweep", pids)
	}
}

func TestAliveAndStartTime(t *testing.T) {
	if !Alive(os.Getpid()) || Alive(0) || Alive(-1) {
		t.Error("Alive")
	}
	if StartTime(os.Getpid()) == 0 {
		t.Error("no start time for this process")
	}
}

func TestStartOnFreePortsRetriesWhenTheAddressIsTaken(t *testing.T) {
	dir := t.TempDir()
	attempt := 0
	p := proc.New(proc.Spec{Name: "t/sh", Path: "/bin/sh", Env: proc.CleanEnv(), LogPath: filepath.Join(dir, "sh.log"),
		Ready: func(context.Context) error {
			if attempt < 2 {
				return errors.New("not yet")
			}
			return nil
		}}, nil)
	var seen [][]int
	ports, err := startOnFreePorts(context.Background(), p, 2, func(ports []int) error {
		attempt++
		seen = append(seen, ports)
		if attempt == 1 {
			p.SetArgs([]string{"-c", "echo 'bind: Address already in use' >&2; exit 1"})
		} else {
			p.SetArgs([]string{"-c", "sleep 30"})
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = p.Kill() })
	if attempt != 2 || len(ports) != 2 || !slices.Equal(ports, seen[1]) {
		t.Errorf("attempts %d, ports %v of %v", attempt, ports, seen)
	}
	for _, port := range ports {
		if port <= 0 || port > 65535 {
			t.Errorf("port %d", port)
		}
	}

	// Any other failure is not retried.
	q := proc.New(proc.Spec{Name: "t/sh", Path: "/bin/sh", Args: []string{"-c", "exit 2"}, Env: proc.CleanEnv(),
		LogPath: filepath.Join(dir, "q.log"), Ready: func(context.Context) error { return errors.New("never") }}, nil)
	tries := 0
	_, err = startOnFreePorts(context.Background(), q, 1, func([]int) error { tries++; return nil })
	var exit *proc.ExitError
	if !errors.As(err, &exit) || tries != 1 {
		t.Errorf("tries %d, err %v", tries, err)
	}
}
