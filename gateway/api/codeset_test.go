package api

import (
	"go/ast"
	"go/parser"
	"go/token"
	"slices"
	"strconv"
	"testing"
)

// TestReasonCodesListsEveryCode: a code added to codes.go but not to ReasonCodes
// would reach metrics only as "other".
func TestReasonCodesListsEveryCode(t *testing.T) {
	f, err := parser.ParseFile(token.NewFileSet(), "codes.go", nil, 0)
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	ast.Inspect(f, func(node ast.Node) bool {
		lit, ok := node.(*ast.BasicLit)
		if !ok || lit.Kind != token.STRING {
			return true
		}
		n++
		code, _ := strconv.Unquote(lit.Value)
		if !slices.Contains(ReasonCodes, code) {
			t.Errorf("ReasonCodes lacks %q", code)
		}
		return true
	})
	if n != len(ReasonCodes) {
		t.Errorf("codes.go has %d codes, ReasonCodes %d", n, len(ReasonCodes))
	}
}
