package proc

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

func shSpec(t *testing.T, script string, ready func(context.Context) error) Spec {
	return Spec{Name: "t/sh", Path: "/bin/sh", Args: []string{"-c", script}, Env: CleanEnv(),
		LogPath: filepath.Join(t.TempDir(), "sh.log"), Ready: ready}
}

func TestStartFailsFastWithTheLogTail(t *testing.T) {
	never := func(context.Context) error { return errors.New("not yet") }
	p := New(shSpec(t, "echo first; echo bind: Address already in use >&2; exit 3", never), nil)
	start := time.Now()
	err := p.Start(context.Background())
	var exit *ExitError
	if !errors.As(err, &exit) {
		t.Fatalf("got %v, want an ExitError", err)
	}
	if time.Since(start) > 5*time.Second {
		t.Errorf("took %v: readiness did not notice the exit", time.Since(start))
	}
	if !strings.Contains(exit.Tail, "first") || !exit.AddressInUse() {
		t.Errorf("tail %q, address in use %v", exit.Tail, exit.AddressInUse())
	}
}

func TestStartHonoursTheContext(t *testing.T) {
	never := func(context.Context) error { return errors.New("still warming up") }
	p := New(shSpec(t, "sleep 30", never), nil)
	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	err := p.Start(ctx)
	if err == nil || !strings.Contains(err.Error(), "still warming up") {
		t.Fatalf("got %v", err)
	}
	if p.Running() {
		t.Error("the child outlived a failed Start")
	}
}

func TestStopReachesTheWholeGroupAndRestartWorks(t *testing.T) {
	dir := t.TempDir()
	marker := filepath.Join(dir, "child.pid")
	// Ready once the pid is written whole: the file exists before echo fills it.
	ready := func(context.Context) error {
		b, err := os.ReadFile(marker)
		if err != nil {
			return err
		}
		if _, err := strconv.Atoi(strings.TrimSpace(string(b))); err != nil {
			return errors.New("pid not written yet")
		}
		return nil
	}
	// The shell starts a grandchild that ignores nothing: Stop must reach it via the group.
	p := New(shSpec(t, "sleep 60 & echo $! > "+marker+"; wait", ready), nil)
	if err := p.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	first := p.Pid()
	b, _ := os.ReadFile(marker)
	grandchild, _ := strconv.Atoi(strings.TrimSpace(string(b)))
	if err := p.Stop(context.Background()); err != nil {
		t.Fatal(err)
	}
	if p.Running() {
		t.Fatal("still running after Stop")
	}
	if grandchild == 0 || alive(grandchild) {
		t.Fatalf("grandchild %d outlived Stop", grandchild)
	}
	os.Remove(marker)
	if err := p.Restart(context.Background()); err != nil {
		t.Fatal(err)
	}
	if p.Pid() == first || !p.Running() {
		t.Fatalf("restart: pid %d (was %d)", p.Pid(), first)
	}
	if err := p.Kill(); err != nil || p.Running() {
		t.Fatalf("kill: %v, running %v", err, p.Running())
	}
}

func TestLogIsCapped(t *testing.T) {
	path := filepath.Join(t.TempDir(), "x.log")
	w, err := OpenLog(path)
	if err != nil {
		t.Fatal(err)
	}
	chunk := make([]byte, 1<<20)
	for range MaxLogBytes/len(chunk) + 3 {
		if _, err := w.Write(chunk); err != nil {
			t.Fatal(err)
		}
	}
	w.Close()
	st, _ := os.Stat(path)
	if st.Size() > MaxLogBytes+100 {
		t.Fatalf("log grew to %d bytes", st.Size())
	}
	if !strings.Contains(Tail(path, 1), "log truncated") {
		t.Error("no truncation marker")
	}
}

func TestTail(t *testing.T) {
	path := filepath.Join(t.TempDir(), "t.log")
	_ = os.WriteFile(path, []byte("a\nb\nc\nd\n"), 0o600)
	if got := Tail(path, 2); got != "c\nd" {
		t.Fatalf("got %q", got)
	}
	if Tail(filepath.Join(t.TempDir(), "none"), 3) != "" {
		t.Fatal("missing file should give an empty tail")
	}
}

func TestCleanEnvKeepsOnlyTheAllowlist(t *testing.T) {
	t.Setenv("MOSAIC_SECRET_THING", "x")
	env := CleanEnv("EXTRA=1")
	for _, kv := range env {
		if strings.HasPrefix(kv, "MOSAIC_SECRET_THING=") {
			t.Fatal("leaked a variable outside the allowlist")
		}
	}
	if env[len(env)-1] != "EXTRA=1" {
		t.Fatal("extra variable missing")
	}
}

func alive(pid int) bool { return syscall.Kill(pid, 0) == nil && !Zombie(pid) }

// CPU agrees with getrusage about this process's own work (to a few ticks).
func TestCPUCountsThisProcesssWork(t *testing.T) {
	rusage := func() time.Duration {
		var ru syscall.Rusage
		_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
		return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
	}
	before, _, err := CPU(os.Getpid())
	if err != nil {
		t.Fatal(err)
	}
	start := rusage()
	for x, deadline := 0, time.Now().Add(10*time.Second); rusage()-start < 200*time.Millisecond && time.Now().Before(deadline); x++ {
		_ = x * x
	}
	worked := rusage() - start
	after, _, err := CPU(os.Getpid())
	if got := after - before; err != nil || got < worked-50*time.Millisecond || got > worked+50*time.Millisecond {
		t.Errorf("CPU counted %v (%v) for %v of work by getrusage", got, err, worked)
	}
}
