package spec

import (
	"reflect"
	"testing"

	"github.com/hashicorp/hcl/v2"
	"github.com/hashicorp/hcl/v2/hclsyntax"
)

// TestVarNamesIsVariables checks varNames' shortcuts (literal strings, a
// bare var.NAME, a literal object item by item) against the names in
// expr.Variables(), in order.
func TestVarNamesIsVariables(t *testing.T) {
	for _, src := range []string{
		`"x"`, `var.a`, `var.a.b`, `"${var.a}-${var.b}"`, `{ a = "x", b = var.b, c = [var.c, var.a] }`,
		`{ (var.k) = 1, "s" = var.v, var = var.w, x = { y = var.y } }`, `{ var.k = 1 }`, `merge(var.a, { b = var.b })`,
		`{}`, `[var.a]`, `local.x`, `var`, `{ a = var["b"] }`,
	} {
		expr, diags := hclsyntax.ParseExpression([]byte(src), "x", hcl.InitialPos)
		if diags.HasErrors() {
			t.Fatal(src, diags)
		}
		dc := &decoder{src: []byte(src)}
		var want []string
		for _, tr := range expr.Variables() {
			if tr.RootName() != "var" || len(tr) < 2 {
				continue
			}
			if step, ok := tr[1].(hcl.TraverseAttr); ok {
				want = append(want, step.Name)
			}
		}
		if got := dc.varNames(expr); !reflect.DeepEqual(got, want) {
			t.Errorf("%s: %q, Variables says %q", src, got, want)
		}
	}
}
