package spec

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/hashicorp/hcl/v2"
)

// deep is n openers followed by n closers.
func deep(open, inner, close string, n int) string {
	return strings.Repeat(open, n) + inner + strings.Repeat(close, n)
}

// TestNestingTooDeep feeds every parser input nested far past maxNesting.
// Before the limit, 100,000 '(' in a manifest overflowed the stack (a fatal
// error, not a panic) and 100,000 unclosed '[' in a plugin.json took 30s.
func TestNestingTooDeep(t *testing.T) {
	n := 2 * maxNesting
	cases := []struct {
		name, filename, src string
	}{
		{"manifest parens", "plugin.hcl", `plugin "p" { command = ` + deep("(", `"x"`, ")", n) + " }"},
		{"manifest unclosed tuples", "plugin.hcl", `plugin "p" { command = ` + strings.Repeat("[", n)},
		{"manifest templates", "plugin.hcl", `plugin "p" { command = ["` + strings.Repeat("${", n) + `"] }`},
		{"manifest negations", "plugin.hcl", `plugin "p" { command = ` + strings.Repeat("!", n) + "true }"},
		{"manifest conditionals", "plugin.hcl", `plugin "p" { command = ` + strings.Repeat("true ? 1 : ", n) + "2 }"},
		{"manifest blocks", "plugin.hcl", strings.Repeat(`plugin "p" { `, n)},
		{"json arrays", "plugin.json", `{"name": "p", "cli command": ` + deep("[", "", "]", n) + `}`},
		{"json unclosed arrays", "plugin.json", strings.Repeat("[", n)},
		{"json objects", "plugin.json", `{"name": "p", "configuration": ` + deep(`{"a": `, "1", "}", n) + `}`},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			m, diags := NewParser().ParseManifest([]byte(c.src), c.filename)
			if m != nil || !hasSummary(diags, "Nesting too deep") {
				t.Fatalf("got manifest %v, diagnostics %v; want only a Nesting too deep error", m, diags)
			}
		})
	}

	t.Run("deployment", func(t *testing.T) {
		src := `plug "p" { source = "./p", params = { a = ` + deep("[", "1", "]", n) + " } }"
		d, diags := NewParser().ParseDeployment([]byte(src), "plugs.hcl", nil)
		if d != nil || !hasSummary(diags, "Nesting too deep") {
			t.Fatalf("got %v, %v", d, diags)
		}
	})
	t.Run("lock", func(t *testing.T) {
		src := `plug "p" { hash = ` + deep("(", `"h1:x"`, ")", n) + " }"
		_, diags := NewParser().ParseLock([]byte(src), LockFileName)
		if !hasSummary(diags, "Nesting too deep") {
			t.Fatalf("got %v", diags)
		}
	})
	t.Run("var value", func(t *testing.T) {
		src := "variable \"v\" {\n  type = list(any)\n}\n"
		_, diags := NewParser().ParseDeployment([]byte(src), "plugs.hcl", map[string]string{"v": deep("[", "", "]", n)})
		if !hasSummary(diags, "Invalid value for input variable") {
			t.Fatalf("got %v", diags)
		}
	})
	t.Run("json param type", func(t *testing.T) {
		src := `{"name": "p", "cli command": "x", "configParams": [{"name": "a", "type": "` + deep("list(", "string", ")", n) + `"}]}`
		_, diags := NewParser().ParseManifest([]byte(src), "plugin.json")
		if !hasSummary(diags, "Invalid param type") {
			t.Fatalf("got %v", diags)
		}
	})
}

// TestNestingShallowButLong checks that a long file with many brackets and
// operators, none nested deeply, is not mistaken for a deep one.
func TestNestingShallowButLong(t *testing.T) {
	var sb strings.Builder
	sb.WriteString("plugin \"p\" {\n  command = [\"x\"]\n")
	for i := range 2 * maxNesting {
		sb.WriteString("  param \"p")
		sb.WriteString(strings.Repeat("x", i%7+1))
		sb.WriteString(string(rune('a' + i%26)))
		sb.WriteString("\" { default = [-1, !true ? \"(\" : \"[{\"] }\n")
	}
	sb.WriteString("}\n")
	_, diags := NewParser().ParseManifest([]byte(sb.String()), "plugin.hcl")
	if hasSummary(diags, "Nesting too deep") {
		t.Fatalf("shallow file rejected: %v", diags)
	}
	json := `{"name": "p", "cli command": "x", "description": "` + strings.Repeat(`[{\"`, 3*maxNesting) + `"}`
	if _, diags := NewParser().ParseManifest([]byte(json), "plugin.json"); diags.HasErrors() {
		t.Fatalf("brackets in a JSON string counted as nesting: %v", diags)
	}
}

func hasSummary(diags hcl.Diagnostics, summary string) bool {
	for _, d := range diags {
		if d.Summary == summary {
			return true
		}
	}
	return false
}

// nestingSeeds are sources whose strings, heredocs, comments and template
// sequences hide or fake brackets.
var nestingSeeds = []string{
	"a = \"${\"}\"}\" ( [ {\n",
	"a = \"\\\"((\" [[ \"$${ ]]\" \"%%{\" \"${[ \"x\" ]}\"\n",
	"a = <<EOT\n((( ${ [ } ]\n  EOT\nb = [[\n",
	"a = <<-EOT\nEOT ((\n${x}EOT\nEOT\n[ [ [\n",
	"a = <<EOT\nEOT\n(((\n",
	"# ((( \n// [[[\n/* {{{ */ ( [ \n/* [[[",
	"a = \"${ { b = \"${ [1] }\" } }\" ~} }}} ((\n",
	"a = 1 ? 2 : 3 ? -4 : !5\nb = [ - - - ! ? ]\n",
	"a = <<EOT\n${\"\nEOT\n\"}\nEOT\n[[[",
	"a = \"x\n((( \" [ [",
	"a = <<E-1\n[[\nE-1\n[[",
}

// TestNestingScannerAgreesWithLexer checks that the byte scanner never finds
// a file shallower than the lexer does, at every limit, on the fixtures and
// on sources built to confuse it.
func TestNestingScannerAgreesWithLexer(t *testing.T) {
	srcs := append([]string(nil), nestingSeeds...)
	files, _ := filepath.Glob("testdata/*/*.hcl")
	files2, _ := filepath.Glob("testdata/manifests/*/*.hcl")
	for _, name := range append(files, files2...) {
		b, err := os.ReadFile(name)
		if err != nil {
			t.Fatal(err)
		}
		srcs = append(srcs, string(b))
	}
	for _, src := range srcs {
		checkScannerSound(t, []byte(src))
	}
}

func checkScannerSound(t *testing.T, src []byte) {
	t.Helper()
	for limit := range 24 {
		lexOff := lexNestingHCL(src, limit)
		scanOff, _, ok := scanNestingHCL(src, limit, 0)
		if ok && lexOff >= 0 && scanOff < 0 {
			t.Fatalf("limit %d: lexer finds depth past the limit at byte %d, scanner at %d, in %q", limit, lexOff, scanOff, src)
		}
	}
}

// FuzzNesting checks the byte scanner against the lexer on any source.
func FuzzNesting(f *testing.F) {
	for _, s := range nestingSeeds {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, src []byte) {
		checkScannerSound(t, src)
	})
}
