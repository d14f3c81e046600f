package api

import (
	"encoding/json"
	"errors"
	"strings"
	"testing"
)

func TestSearchRequestValidate(t *testing.T) {
	tests := []struct {
		name string
		req  SearchRequest
		code string
	}{
		{"text", SearchRequest{Query: "backup", Mode: ModeText}, ""},
		{"vector with a limit", SearchRequest{Query: "backup", Mode: ModeVector, Limit: 5}, ""},
		{"FTS syntax is just text", SearchRequest{Query: `"a* NEAR( AND`, Mode: ModeHybrid}, ""},
		{"1000 characters of 2 bytes each", SearchRequest{Query: strings.Repeat("é", MaxQuery), Mode: ModeText}, ""},
		{"empty", SearchRequest{Mode: ModeText}, CodeEmptyQuery},
		{"blank", SearchRequest{Query: " \t\n", Mode: ModeText}, CodeEmptyQuery},
		{"1001 characters", SearchRequest{Query: strings.Repeat("a", MaxQuery+1), Mode: ModeText}, CodeQueryTooLong},
		{"not UTF-8", SearchRequest{Query: "a\xffb", Mode: ModeText}, CodeInvalidQuery},
		{"NUL", SearchRequest{Query: "a\x00b", Mode: ModeText}, CodeInvalidQuery},
		{"no mode", SearchRequest{Query: "x"}, CodeInvalidMode},
		{"unknown mode", SearchRequest{Query: "x", Mode: "fuzzy"}, CodeInvalidMode},
		{"mode in capitals", SearchRequest{Query: "x", Mode: "TEXT"}, CodeInvalidMode},
		{"negative limit", SearchRequest{Query: "x", Mode: ModeText, Limit: -1}, CodeInvalidLimit},
		{"the query is checked first", SearchRequest{Mode: "fuzzy", Limit: -1}, CodeEmptyQuery},
	}
	for _, tc := range tests {
		err := tc.req.Validate()
		var fe *FieldError
		switch {
		case tc.code == "" && err != nil:
			t.Errorf("%s: %v", tc.name, err)
		case tc.code != "" && (!errors.As(err, &fe) || fe.Code != tc.code):
			t.Errorf("%s: got %v, want code %s", tc.name, err, tc.code)
		}
	}
}

func TestSearchModeFor(t *testing.T) {
	for _, r := range Resources {
		if err := SearchModeFor(r, ModeText); err != nil {
			t.Errorf("text on %s: %v", r, err)
		}
		for _, m := range []string{ModeVector, ModeHybrid} {
			err := SearchModeFor(r, m)
			var fe *FieldError
			if r == ResourceMemories && err != nil {
				t.Errorf("%s on memories: %v", m, err)
			}
			if r != ResourceMemories && (!errors.As(err, &fe) || fe.Code != CodeModeNotSupported) {
				t.Errorf("%s on %s: got %v, want %s", m, r, err, CodeModeNotSupported)
			}
		}
	}
	if DefaultMode(ResourceMemories) != ModeHybrid || DefaultMode(ResourceTasks) != ModeText {
		t.Error("default modes")
	}
}

func TestScoreOnlyInSearchAnswers(t *testing.T) {
	b, _ := json.Marshal(Task{ID: "x"})
	if strings.Contains(string(b), "_score") {
		t.Errorf("a list item carries _score: %s", b)
	}
	b, _ = json.Marshal(WithScore(Memory{ID: "x"}, 0))
	if !strings.Contains(string(b), `"_score":0`) {
		t.Errorf("a zero score must still show: %s", b)
	}
}
