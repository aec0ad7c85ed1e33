package spec

import (
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/hashicorp/hcl/v2"
	"github.com/hashicorp/hcl/v2/hclsyntax"
)

// splitSeeds are sources whose line starts are easy to take for places
// between items: braces, brackets and newlines in strings, heredocs,
// templates and comments; items that go on past their line; an argument
// set twice, far apart.
var splitSeeds = []string{
	"a = 1\nb = 2\nplug \"x\" {\n  source = \"./x\"\n}\nc = 3\n",
	"a = <<EOT\n}\nplug \"x\" {\n}\nEOT\nb = 2\n",
	"a = <<-EOT\n  ${x}\n  }\n  EOT\nb = 2\n",
	"/* }\nplug \"x\" {\n*/\nb = 2\nc = 3\n",
	"# }\n// {\nb = 2\n# x\nc = \"}\\n{\"\n",
	"a = \"${\n}\"\nb = 2\n",
	"a = [\n1,\n2,\n]\nb = {\nc = 1\n}\n",
	"a = 1 +\n2\nb = 3\n",
	"a = true ?\n1 : 2\nb = 3\n",
	"a = 1\nb = 2\na = 3\n",
	"plug \"x\" {\n}\nplug \"x\" {\n}\n",
	"\n\n\na = 1\n\n\n",
	"a = \"x\"\n/* unterminated\nb = 2\n",
	"a = <<EOT\nno end\nb = 2\n",
	"plug \"x\" {\n  source = \"./x\"\n",
	"a = 1\n}\nb = 2\n",
	"a = \"\u00e9\u0301\"\nb = \"\U0001F468\u200d\U0001F469\"\nc = 1\n",
	"a = 1 # c\nb = 2 // d\nc = 3 /* e */\nd = 4\n",
}

// TestParseSplitIsParseConfig parses the fixtures, the seeds above and a
// generated plugs.hcl cut at every place the scanner offers, and at fewer:
// the tree and the diagnostics must be ParseConfig's, and when the pieces
// are taken (parsePieces succeeds) ParseConfig must have found nothing
// wrong.
func TestParseSplitIsParseConfig(t *testing.T) {
	srcs := append(append([]string(nil), splitSeeds...), nestingSeeds...)
	files, _ := filepath.Glob("testdata/*/*.hcl")
	files2, _ := filepath.Glob("testdata/*/*/*.hcl")
	for _, name := range append(files, files2...) {
		b, err := os.ReadFile(name)
		if err != nil {
			t.Fatal(err)
		}
		srcs = append(srcs, string(b))
	}
	_, big := benchDeploymentSrc(30)
	srcs = append(srcs, string(big))
	pieces := 0
	for _, src := range srcs {
		pieces += checkParseSplit(t, []byte(src))
	}
	if pieces < 100 {
		t.Fatalf("only %d sources were parsed in pieces: the test tests nothing", pieces)
	}
}

// TestParseSplitTakesPlugsHCL checks that a large plugs.hcl is parsed in
// pieces by parseHCL, and that its tree is ParseConfig's.
func TestParseSplitTakesPlugsHCL(t *testing.T) {
	_, src := benchDeploymentSrc(200)
	diags, splits := checkNestingSplitHCL(src, "plugs.hcl", splitBytes)
	if diags != nil || len(splits) < len(src)/(2*splitBytes) {
		t.Fatalf("%d splits for %d bytes, %v", len(splits), len(src), diags)
	}
	f, ok := parsePieces(src, "plugs.hcl", splits)
	if !ok {
		t.Fatal("a valid plugs.hcl was not parsed in pieces")
	}
	whole, wdiags := hclsyntax.ParseConfig(src, "plugs.hcl", hcl.InitialPos)
	if len(wdiags) > 0 || !reflect.DeepEqual(f.Body, whole.Body) {
		t.Fatal("the pieces' tree is not ParseConfig's")
	}
}

// checkParseSplit compares parseSplit, at several cuts, with ParseConfig
// on src, and returns how many cuts parsePieces took.
func checkParseSplit(t *testing.T, src []byte) int {
	t.Helper()
	whole, wdiags := hclsyntax.ParseConfig(src, "plugs.hcl", hcl.InitialPos)
	taken := 0
	for _, every := range []int{1, 2, 7, 64} {
		off, splits, ok := scanNestingHCL(src, maxNesting, every)
		if !ok || off >= 0 {
			return taken
		}
		if f, ok := parsePieces(src, "plugs.hcl", splits); ok {
			taken++
			if len(wdiags) > 0 {
				t.Fatalf("every %d: the pieces parsed, the whole has %v, in %q", every, wdiags, src)
			}
			sameFile(t, f, whole, src)
		}
		f, diags := parseSplit(src, "plugs.hcl", splits)
		if !reflect.DeepEqual(diags, wdiags) {
			t.Fatalf("every %d: diagnostics %v, ParseConfig's %v, in %q", every, diags, wdiags, src)
		}
		if len(wdiags) == 0 {
			sameFile(t, f, whole, src)
		}
	}
	return taken
}

func sameFile(t *testing.T, f, whole *hcl.File, src []byte) {
	t.Helper()
	if !reflect.DeepEqual(f.Body, whole.Body) || string(f.Bytes) != string(whole.Bytes) {
		t.Fatalf("the tree differs from ParseConfig's, in %q", src)
	}
	// Nav finds the same block around each byte (diagnostics' "in plug").
	type contexter interface {
		ContextString(offset int) string
		ContextDefRange(offset int) hcl.Range
	}
	nav, ok := f.Nav.(contexter)
	wnav, wok := whole.Nav.(contexter)
	if !ok || !wok {
		t.Fatal("no Nav")
	}
	for off := 0; off < len(src); off += 1 + len(src)/64 {
		if got, want := nav.ContextString(off), wnav.ContextString(off); got != want {
			t.Fatalf("context at %d: %q, ParseConfig's %q", off, got, want)
		}
		if got, want := nav.ContextDefRange(off), wnav.ContextDefRange(off); got != want {
			t.Fatalf("context range at %d: %v, ParseConfig's %v", off, got, want)
		}
	}
}

// FuzzParseSplit holds parseSplit to ParseConfig on any source.
func FuzzParseSplit(f *testing.F) {
	for _, s := range append(append([]string(nil), splitSeeds...), nestingSeeds...) {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, src []byte) {
		if strings.Count(string(src), "\n") > 200 {
			return // cuts at every line start of a long input: slow, not useful
		}
		checkParseSplit(t, src)
	})
}

// TestParsePiecesInParallelFallsBack: a large file is parsed by several
// goroutines (parallelPieces); a piece that does not parse, wherever it
// is, or an argument set in two pieces sends the whole file to
// ParseConfig, whose diagnostics are the ones returned.
func TestParsePiecesInParallelFallsBack(t *testing.T) {
	_, big := benchDeploymentSrc(200)
	for name, src := range map[string]string{
		"broken first": "plug \"x\" {\n  source = \n}\n" + string(big),
		"broken last":  string(big) + "plug \"y\" {\n  source = [\n}\n",
		"twice":        "a = 1\n" + string(big) + "a = 2\n",
	} {
		t.Run(name, func(t *testing.T) {
			diags, splits := checkNestingSplitHCL([]byte(src), "plugs.hcl", splitBytes)
			if diags != nil || len(splits) < 4*parallelPieces {
				t.Fatalf("%d splits, %v: the pieces would not be parsed in parallel", len(splits), diags)
			}
			if _, ok := parsePieces([]byte(src), "plugs.hcl", splits); ok {
				t.Fatal("parsePieces took a file ParseConfig rejects")
			}
			_, got := parseSplit([]byte(src), "plugs.hcl", splits)
			_, want := hclsyntax.ParseConfig([]byte(src), "plugs.hcl", hcl.InitialPos)
			if len(want) == 0 || !reflect.DeepEqual(got, want) {
				t.Fatalf("diagnostics %v, ParseConfig's %v", got, want)
			}
		})
	}
}
