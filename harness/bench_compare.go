package main

import (
	"encoding/json"
	"fmt"
	"io"
	"os"
	"text/tabwriter"
)

// comparison is one line of `harness bench --compare`: the same line's figures in an
// earlier run and in this one, as new ÷ old (below 1 is better for latency and CPU,
// above 1 is better for throughput). A ratio is 0 when either side lacks the figure.
type comparison struct {
	Name       string  `json:"name"`
	P50        float64 `json:"p50_ratio,omitempty"`
	P99        float64 `json:"p99_ratio,omitempty"`
	Throughput float64 `json:"throughput_ratio,omitempty"`
	CPU        float64 `json:"cpu_ratio,omitempty"`
	// Only says the line is in one run and not the other ("old" or "new").
	Only string `json:"only,omitempty"`
}

// readResults loads the lines an earlier `harness bench --json` printed.
func readResults(path string) ([]result, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("reading bench results: %w (write them with `harness bench --json > %s`)", err, path)
	}
	var rs []result
	if err := json.Unmarshal(b, &rs); err != nil {
		return nil, fmt.Errorf("%s is not the output of `harness bench --json`: %w", path, err)
	}
	return rs, nil
}

// compare matches lines by name, in the new run's order, then lists the old run's lines
// the new one no longer has.
func compare(old, cur []result) []comparison {
	byName := make(map[string]result, len(old))
	for _, r := range old {
		byName[r.Name] = r
	}
	seen := make(map[string]bool, len(cur))
	var out []comparison
	for _, r := range cur {
		seen[r.Name] = true
		o, ok := byName[r.Name]
		if !ok {
			out = append(out, comparison{Name: r.Name, Only: "new"})
			continue
		}
		out = append(out, comparison{Name: r.Name, P50: ratio(r.P50ms, o.P50ms), P99: ratio(r.P99ms, o.P99ms),
			Throughput: ratio(r.Throughput, o.Throughput), CPU: ratio(r.CPUms, o.CPUms)})
	}
	for _, r := range old {
		if !seen[r.Name] {
			out = append(out, comparison{Name: r.Name, Only: "old"})
		}
	}
	return out
}

func ratio(cur, old float64) float64 {
	if cur <= 0 || old <= 0 {
		return 0
	}
	return cur / old
}

func printComparison(w io.Writer, cs []comparison) error {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "WHAT\tP50 new/old\tP99 new/old\tREQ/S new/old\tCPU new/old")
	cell := func(r float64) string {
		if r == 0 {
			return "-"
		}
		return fmt.Sprintf("%.2f×", r)
	}
	for _, c := range cs {
		if c.Only != "" {
			fmt.Fprintf(tw, "%s\tonly in the %s run\t\t\t\n", c.Name, c.Only)
			continue
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", c.Name, cell(c.P50), cell(c.P99), cell(c.Throughput), cell(c.CPU))
	}
	return tw.Flush()
}
