// Package rank fuses rankings by reciprocal rank (Cormack, Clarke and Büttcher, SIGIR
// 2009): how a search combines its text and vector rankings, and how the requesting
// side combines the answers of several sites, whose scores are not comparable. Only
// ranks count, never the scores of the lists fused.
package rank

import (
	"cmp"
	"slices"
)

// K is the fusion's constant: a list's first entry counts 1/(K+1), its tenth
// 1/(K+10), so no single list's top dominates.
const K = 60

// Fused is one entry of a fused ranking: the value first seen under its key and its
// fused score, Σ 1/(K + rank) over the lists that hold it.
type Fused[T any] struct {
	Value T
	Score float64
}

// RRF fuses lists, each best first, into one ranking, best first. Entries are the
// same entry when key says so; one list counts an entry once, at its best rank. Ties
// keep the order in which entries first appear when the lists are read rank by rank
// (each list's first, then each list's second, …), so disjoint lists interleave and
// a single list keeps its own order.
func RRF[T any](key func(T) string, lists ...[]T) []Fused[T] {
	longest := 0
	for _, l := range lists {
		longest = max(longest, len(l))
	}
	at := map[string]int{}
	counted := make([]map[string]bool, len(lists))
	for i := range lists {
		counted[i] = map[string]bool{}
	}
	var out []Fused[T]
	for r := range longest {
		for i, l := range lists {
			if r >= len(l) {
				continue
			}
			k := key(l[r])
			if counted[i][k] {
				continue
			}
			counted[i][k] = true
			j, ok := at[k]
			if !ok {
				j = len(out)
				at[k] = j
				out = append(out, Fused[T]{Value: l[r]})
			}
			out[j].Score += 1 / float64(K+r+1)
		}
	}
	slices.SortStableFunc(out, func(a, b Fused[T]) int { return cmp.Compare(b.Score, a.Score) })
	return out
}
