package rank

import (
	"math"
	"slices"
	"testing"
)

func keys(f []Fused[string]) []string {
	out := make([]string, len(f))
	for i, e := range f {
		out[i] = e.Value
	}
	return out
}

func id(s string) string { return s }

func TestRRF(t *testing.T) {
	tests := []struct {
		name  string
		lists [][]string
		want  []string
	}{
		{"nothing", nil, []string{}},
		{"one list keeps its order", [][]string{{"a", "b", "c"}}, []string{"a", "b", "c"}},
		{"no text hit: the vector ranking", [][]string{{}, {"v1", "v2", "v3"}}, []string{"v1", "v2", "v3"}},
		{"an entry in both lists wins", [][]string{{"a", "b", "c"}, {"c", "d", "e"}}, []string{"c", "a", "b", "d", "e"}},
		{"agreement at the top", [][]string{{"a", "b"}, {"a", "b"}}, []string{"a", "b"}},
		{"disjoint lists interleave by rank", [][]string{{"l1", "l2"}, {"p1", "p2", "p3"}, {"q1"}}, []string{"l1", "p1", "q1", "l2", "p2", "p3"}},
		{"a duplicate inside one list counts once", [][]string{{"a", "a", "b"}, {"b"}}, []string{"b", "a"}},
	}
	for _, tc := range tests {
		got := keys(RRF(id, tc.lists...))
		if !slices.Equal(got, tc.want) && (len(got) != 0 || len(tc.want) != 0) {
			t.Errorf("%s: got %v, want %v", tc.name, got, tc.want)
		}
	}
}

func TestRRFScores(t *testing.T) {
	f := RRF(id, []string{"a", "b", "c"}, []string{"c", "d", "e"})
	want := map[string]float64{"a": 1.0 / 61, "b": 1.0 / 62, "c": 1.0/63 + 1.0/61, "d": 1.0 / 62, "e": 1.0 / 63}
	for _, e := range f {
		if math.Abs(e.Score-want[e.Value]) > 1e-12 {
			t.Errorf("%s scored %v, want %v", e.Value, e.Score, want[e.Value])
		}
	}
	if K != 60 {
		t.Errorf("k = %d, SPEC §6b says 60", K)
	}
}
