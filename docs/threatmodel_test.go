// Package docs holds the operator documents and the tests that keep them true.
package docs

import (
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// specID is a catalogue id as specs write it: M3-6, M2-L1, M1-LA-5, M1-10a, EDGE-6, H-3.
var specID = regexp.MustCompile(`^(?:M[0-9]+|EDGE|H|CHG|PEER|CTR)-(?:[A-Z]+-?)?[0-9]+[a-z]?$`)

// suiteIDs are the ids the acceptance suite names in brackets ("[M3-6] …").
func suiteIDs(t *testing.T, dir string) map[string]bool {
	t.Helper()
	files, err := filepath.Glob(filepath.Join(dir, "*.go"))
	if err != nil || len(files) == 0 {
		t.Fatalf("no acceptance files in %s: %v", dir, err)
	}
	bracketed := regexp.MustCompile(`\[([A-Z][A-Za-z0-9-]*)\]`)
	ids := map[string]bool{}
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		for _, m := range bracketed.FindAllStringSubmatch(string(b), -1) {
			if specID.MatchString(m[1]) {
				ids[m[1]] = true
			}
		}
	}
	return ids
}

// check returns every problem of a threat model: a boundary without one of the six
// STRIDE categories, a threat with neither a spec nor a gap, an id that is not one or
// that the suite does not have.
func check(doc string, exists map[string]bool) []string {
	var problems []string
	boundaries := 0
	for _, section := range strings.Split(doc, "\n## ")[1:] {
		title, body, _ := strings.Cut(section, "\n")
		name, ok := strings.CutPrefix(title, "Boundary: ")
		if !ok {
			continue
		}
		boundaries++
		seen := map[string]bool{}
		for _, row := range tableRows(body) {
			if len(row) != 5 {
				problems = append(problems, fmt.Sprintf("%s: a row with %d columns, want 5 (STRIDE, Threat, Mitigation, Proved by, Gap): %q", name, len(row), row))
				continue
			}
			stride, threat, proved, gap := row[0], row[1], row[3], row[4]
			if len(stride) != 1 || !strings.Contains("STRIDE", stride) {
				problems = append(problems, fmt.Sprintf("%s: %q is not a STRIDE category", name, stride))
			}
			seen[stride] = true
			if proved == "" && gap == "" {
				problems = append(problems, fmt.Sprintf("%s: %q names no spec and no gap", name, threat))
			}
			for _, id := range strings.Split(proved, ",") {
				id = strings.TrimSpace(id)
				switch {
				case id == "" && proved == "":
				case !specID.MatchString(id):
					problems = append(problems, fmt.Sprintf("%s: %q is not a spec id (in %q)", name, id, threat))
				case !exists[id]:
					problems = append(problems, fmt.Sprintf("%s: spec %s does not exist in acceptance/ (in %q): name an existing spec, or move it to the Gap column as planned", name, id, threat))
				}
			}
		}
		for _, c := range "STRIDE" {
			if !seen[string(c)] {
				problems = append(problems, fmt.Sprintf("%s: no threat of category %c", name, c))
			}
		}
	}
	if boundaries < 6 {
		problems = append(problems, fmt.Sprintf("%d boundaries, want the six of SPEC §7 M7-5", boundaries))
	}
	return problems
}

// tableRows are the cells of a section's table, header and separator left out.
func tableRows(body string) [][]string {
	var rows [][]string
	header := true
	for _, line := range strings.Split(body, "\n") {
		line = strings.TrimSpace(line)
		if !strings.HasPrefix(line, "|") {
			continue
		}
		if header || strings.HasPrefix(line, "| ---") {
			header = false
			continue
		}
		cells := strings.Split(strings.Trim(line, "|"), "|")
		for i := range cells {
			cells[i] = strings.TrimSpace(cells[i])
		}
		rows = append(rows, cells)
	}
	return rows
}

func TestThreatModelNamesOnlySpecsThatExist(t *testing.T) {
	doc, err := os.ReadFile("THREAT-MODEL.md")
	if err != nil {
		t.Fatal(err)
	}
	ids := suiteIDs(t, filepath.Join("..", "acceptance"))
	if len(ids) < 50 {
		t.Fatalf("only %d spec ids found in acceptance/: the id pattern no longer matches the suite", len(ids))
	}
	for _, p := range check(string(doc), ids) {
		t.Error(p)
	}
}

func TestCheckFindsEveryProblem(t *testing.T) {
	exists := map[string]bool{"M3-6": true}
	table := func(rows ...string) string {
		return "\n## Boundary: b\n\n| STRIDE | Threat | Mitigation | Proved by | Gap |\n| --- | --- | --- | --- | --- |\n" + strings.Join(rows, "\n") + "\n"
	}
	full := func(extra string) string {
		rows := []string{extra}
		for _, c := range "STRIDE" {
			rows = append(rows, fmt.Sprintf("| %c | t | m | M3-6 | |", c))
		}
		return strings.Repeat(table(rows...), 6)
	}
	for _, tc := range []struct{ name, doc, want string }{
		{"missing spec", full("| S | t | m | M3-6, M9-9 | |"), "spec M9-9 does not exist"},
		{"not an id", full("| S | t | m | M3 6 | |"), `"M3 6" is not a spec id`},
		{"neither spec nor gap", full("| S | t | m | | |"), "names no spec and no gap"},
		{"not STRIDE", full("| X | t | m | M3-6 | |"), "not a STRIDE category"},
		{"missing category", strings.Repeat(table("| S | t | m | M3-6 | |"), 6), "no threat of category T"},
		{"too few boundaries", table("| S | t | m | M3-6 | |"), "want the six"},
		{"wrong columns", full("| S | t | M3-6 |"), "want 5"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			problems := strings.Join(check(tc.doc, exists), "\n")
			if !strings.Contains(problems, tc.want) {
				t.Errorf("problems %q, want one containing %q", problems, tc.want)
			}
		})
	}
	if p := check(full("| S | t | m | | planned (M9-9) |"), exists); len(p) != 0 {
		t.Errorf("a gap naming a planned id is fine, got %q", p)
	}
}
