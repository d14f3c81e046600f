package main

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestCompare(t *testing.T) {
	old := []result{
		{Name: "local", P50ms: 1, P99ms: 4, Throughput: 1000, CPUms: 0.5},
		{Name: "gone", P50ms: 2},
		{Name: "boot", P50ms: 4000, P99ms: 4000},
	}
	cur := []result{
		{Name: "boot", P50ms: 3000, P99ms: 3000},
		{Name: "local", P50ms: 0.5, P99ms: 2, Throughput: 2000, CPUms: 0.25},
		{Name: "added", P50ms: 1},
	}
	got := compare(old, cur)
	want := []comparison{
		{Name: "boot", P50: 0.75, P99: 0.75},
		{Name: "local", P50: 0.5, P99: 0.5, Throughput: 2, CPU: 0.5},
		{Name: "added", Only: "new"},
		{Name: "gone", Only: "old"},
	}
	if len(got) != len(want) {
		t.Fatalf("compare gave %d lines, want %d: %+v", len(got), len(want), got)
	}
	for i := range want {
		if got[i] != want[i] {
			t.Errorf("line %d: got %+v, want %+v", i, got[i], want[i])
		}
	}
	var b bytes.Buffer
	if err := printComparison(&b, got); err != nil {
		t.Fatal(err)
	}
	for _, s := range []string{"0.50×", "2.00×", "only in the old run", "only in the new run"} {
		if !strings.Contains(b.String(), s) {
			t.Errorf("printed comparison lacks %q:\n%s", s, b.String())
		}
	}
}

func TestReadResultsSaysWhatToDo(t *testing.T) {
	dir := t.TempDir()
	for _, tc := range []struct {
		name, content, want string
	}{
		{"missing", "", "harness bench --json"},
		{"not json", "WHAT P50", "is not the output of"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := filepath.Join(dir, tc.name)
			if tc.content != "" {
				if err := os.WriteFile(p, []byte(tc.content), 0o600); err != nil {
					t.Fatal(err)
				}
			}
			_, err := readResults(p)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("readResults(%s) = %v, want an error containing %q", tc.name, err, tc.want)
			}
		})
	}
}
