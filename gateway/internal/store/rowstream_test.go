package store

import (
	"errors"
	"testing"
)

// A row stream hands every row of every batch to the COPY, tells progress once per
// batch handed over, and ends with its source's failure, so a COPY of a source that
// failed half-way fails instead of committing a part.
func TestRowStreamEndsWithItsSourcesFailure(t *testing.T) {
	for _, fail := range []error{nil, errors.New("disk I/O error")} {
		var done []int
		rs := &rowStream{batches: make(chan []row, 2), d: &sqlStore{d: dialect{engine: "postgres"}},
			t: tableSpec{cols: []column{{name: "id", kind: kText}}}, progress: func(n int) { done = append(done, n) }}
		rs.batches <- []row{{"a"}, {"b"}}
		rs.batches <- []row{{"c"}}
		rs.readErr = fail
		close(rs.batches)
		var got []any
		for rs.Next() {
			v, err := rs.Values()
			if err != nil {
				t.Fatal(err)
			}
			got = append(got, v[0])
		}
		if len(got) != 3 || got[0] != "a" || got[2] != "c" || len(done) != 2 || done[0] != 2 || done[1] != 1 {
			t.Errorf("rows %v, progress %v; want a b c and [2 1]", got, done)
		}
		if err := rs.Err(); !errors.Is(err, fail) || (fail == nil) != (err == nil) {
			t.Errorf("Err() = %v, want %v", err, fail)
		}
	}
}
