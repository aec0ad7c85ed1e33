package spec

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/hashicorp/hcl/v2"
	"github.com/zclconf/go-cty/cty"
)

// render writes diags the way the CLI and the daemon do.
func render(t *testing.T, p *Parser, diags hcl.Diagnostics) string {
	t.Helper()
	var buf bytes.Buffer
	wr := hcl.NewDiagnosticTextWriter(&buf, p.Files(), 78, false)
	if err := wr.WriteDiagnostics(Sorted(diags)); err != nil {
		t.Fatal(err)
	}
	return buf.String()
}

const secretDeployment = `variable "tok" { default = "v4r-s3cret" }
broker {
  url      = "tcp://127.0.0.1:1883"
  password = "br0ker-s3cret"
}
plug "a" {
  source = "./a"
  params = { token = "l1teral-s3cret", bogus = 1 }
  instance "i" { params = { token = var.tok, bogus2 = 2 } }
  plugin {
    command = ["./a"]
    param "token" {
      type   = string
      secret = true
    }
  }
}
plug "b" {
  source = "./b"
  params = { key = "fetched-s3cret", nope = 3 }
}
`

// TestSecretLinesBlankInSnippets: a diagnostic on a line that assigns a
// secret param (inline manifest at decode time, a fetched one through
// CheckPlugs), the broker password and the default of a variable a secret
// param takes never show their values in a rendered snippet.
func TestSecretLinesBlankInSnippets(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "plugs.hcl")
	if err := os.WriteFile(file, []byte(secretDeployment), 0o644); err != nil {
		t.Fatal(err)
	}
	p := NewParser()
	d, diags := p.LoadDeployment(file, nil)
	if diags.HasErrors() {
		t.Fatal(diags)
	}
	fetched := &Manifest{Name: "b", Params: []*ParamSpec{{Name: "key", Type: cty.String, Secret: true}}}
	diags = CheckPlugs(d, map[string]*Manifest{"a": d.Plugs[0].Plugin, "b": fetched})
	if len(diags) != 3 {
		t.Fatalf("want 3 unsupported params, got %v", diags)
	}
	out := render(t, p, diags)
	for _, s := range []string{"l1teral-s3cret", "v4r-s3cret", "fetched-s3cret"} {
		if strings.Contains(out, s) {
			t.Errorf("rendered diagnostics show %q:\n%s", s, out)
		}
	}
	if !strings.Contains(out, `declares no param named "bogus"`) {
		t.Errorf("diagnostics lost:\n%s", out)
	}
	shown := string(p.Files()[file].Bytes)
	if strings.Contains(shown, "br0ker-s3cret") || len(shown) != len(secretDeployment) {
		t.Errorf("display bytes show the broker password or changed length:\n%s", shown)
	}
	if !strings.Contains(shown, `source = "./a"`) {
		t.Errorf("a line without a secret was blanked:\n%s", shown)
	}
}

// TestParamLinesBlankUntilManifestKnown: before a plug's manifest is known
// (a git source not fetched yet) any of its params may be secret, so a
// diagnostic on a params line shows it blank; once the manifest is known,
// only the secret ones stay blank. In a file that does not parse, every
// params, password and default argument is blank. URL credentials are
// masked everywhere.
func TestParamLinesBlankUntilManifestKnown(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "plugs.hcl")
	const src = `variable "k" { default = "var-s3cret" }
plug "g" {
  source = "git::https://alice:url-s3cret@git.example.org/g.git"
  params = { token = "lit-s3cret", n = upper(1, 2) }
  instance "i" {
    params = {
      key = var.k
    }
  }
}
`
	if err := os.WriteFile(file, []byte(src), 0o644); err != nil {
		t.Fatal(err)
	}
	p := NewParser()
	_, diags := p.LoadDeployment(file, nil)
	if !diags.HasErrors() {
		t.Fatal("want the upper() error")
	}
	out := render(t, p, diags)
	shown := string(p.Files()[file].Bytes)
	for _, s := range []string{"lit-s3cret", "var-s3cret", "url-s3cret"} {
		if strings.Contains(out, s) || strings.Contains(shown, s) {
			t.Errorf("%q shown before the manifest is known:\n%s\n%s", s, out, shown)
		}
	}
	if !strings.Contains(out, "Too many function arguments") || !strings.Contains(shown, `git.example.org/g.git"`) || !strings.Contains(shown, `instance "i" {`) {
		t.Errorf("more than the param lines blanked:\n%s", shown)
	}

	// The manifest says only key is secret: the token line shows again.
	fixed := strings.Replace(src, ", n = upper(1, 2)", "", 1)
	if err := os.WriteFile(file, []byte(fixed), 0o644); err != nil {
		t.Fatal(err)
	}
	p = NewParser()
	d, diags := p.LoadDeployment(file, nil)
	if diags.HasErrors() {
		t.Fatal(diags)
	}
	if s := string(p.Files()[file].Bytes); strings.Contains(s, "lit-s3cret") || strings.Contains(s, "var-s3cret") {
		t.Errorf("param lines shown before the manifest is known:\n%s", s)
	}
	m := &Manifest{Name: "g", Params: []*ParamSpec{{Name: "token", Type: cty.String}, {Name: "key", Type: cty.String, Secret: true}}}
	CheckPlugs(d, map[string]*Manifest{"g": m})
	shown = string(p.Files()[file].Bytes)
	if !strings.Contains(shown, "lit-s3cret") || strings.Contains(shown, "var-s3cret") {
		t.Errorf("with the manifest, want only the secret key blank:\n%s", shown)
	}

	// A file that does not parse: no tree to tell a secret by.
	broken := `variable "k" { default = "var-s3cret" }
broker {
  password = "br0ker-s3cret"
}
plug "a" {
  source = "./a"
  params = { token = "lit-s3cret" n = 1 }
  instance "i" { params = { t = "${var.k}-inst-s3cret" } }
  params = {
    multi = "multi-s3cret"
  }
}
`
	if err := os.WriteFile(file, []byte(broken), 0o644); err != nil {
		t.Fatal(err)
	}
	p = NewParser()
	if _, diags = p.LoadDeployment(file, nil); !diags.HasErrors() {
		t.Fatal("want a syntax error")
	}
	out, shown = render(t, p, diags), string(p.Files()[file].Bytes)
	for _, s := range []string{"lit-s3cret", "var-s3cret", "br0ker-s3cret", "inst-s3cret", "multi-s3cret"} {
		if strings.Contains(out, s) || strings.Contains(shown, s) {
			t.Errorf("%q shown in a file that does not parse:\n%s\n%s", s, out, shown)
		}
	}
	if !strings.Contains(out, "Missing attribute separator") || !strings.Contains(shown, `source = "./a"`) || len(shown) != len(broken) {
		t.Errorf("diagnostic lost, a line without a secret blanked, or the length changed:\n%s\n%s", out, shown)
	}
}

// TestDiagnosticsHaveNoControlBytes: control bytes of the source reach
// neither a snippet nor a message.
func TestDiagnosticsHaveNoControlBytes(t *testing.T) {
	src := "host = \"a/\x1b[2J\x1b]0;pwned\x07\u009b31m\"\nplug \"\x1b[31mx\" {\n  source = \"./x\"\n}\n"
	p := NewParser()
	p.Hostname = func() (string, error) { return "h", nil }
	_, diags := p.ParseDeployment([]byte(src), "plugs.hcl", nil)
	if !diags.HasErrors() {
		t.Fatal("want errors")
	}
	out := render(t, p, diags)
	for i, r := range out {
		if r != '\n' && (r < 0x20 || r == 0x7f || (r >= 0x80 && r < 0xa0)) {
			t.Fatalf("control character %U at %d in:\n%q", r, i, out)
		}
	}
}

// TestDiagnosticsCapped: a call returns every mistake (a view caps what it
// collects once, see workspace.ForView); Capped keeps MaxDiagnostics of
// them and one that counts the rest.
func TestDiagnosticsCapped(t *testing.T) {
	var sb strings.Builder
	sb.WriteString("plug \"a\" {\n  source = \"./a\"\n")
	for i := range 3 * MaxDiagnostics {
		fmt.Fprintf(&sb, "  instance \"-bad%d\" { params = { x = 1 } }\n", i)
	}
	sb.WriteString("}\n")
	p := NewParser()
	p.Hostname = func() (string, error) { return "h", nil }
	_, all := p.ParseDeployment([]byte(sb.String()), "plugs.hcl", nil)
	if len(all) < 3*MaxDiagnostics {
		t.Fatalf("got %d diagnostics, want every one of at least %d", len(all), 3*MaxDiagnostics)
	}
	diags := Capped(all)
	if len(diags) != MaxDiagnostics+1 {
		t.Fatalf("capped: %d diagnostics", len(diags))
	}
	last := Sorted(diags)[len(diags)-1]
	hidden, ok := moreCount(last)
	if !ok || hidden < 2*MaxDiagnostics || last.Severity != hcl.DiagError {
		t.Fatalf("last diagnostic: %v", last)
	}
	// Capping again (Validate joins several calls) keeps one counter.
	again := Capped(append(diags, diags...))
	if n, _ := moreCount(again[len(again)-1]); len(again) != MaxDiagnostics+1 || n != 2*hidden+MaxDiagnostics {
		t.Fatalf("recapped: %d diagnostics, last %v", len(again), again[len(again)-1])
	}
}

// TestFileTooLargeOrNotRegular: a plugs.hcl over MaxFileBytes is refused
// before it is read whole, and a FIFO is refused without blocking.
func TestFileTooLargeOrNotRegular(t *testing.T) {
	dir := t.TempDir()
	big := filepath.Join(dir, "big.hcl")
	f, err := os.Create(big)
	if err != nil {
		t.Fatal(err)
	}
	if err := f.Truncate(MaxFileBytes + 1); err != nil {
		t.Fatal(err)
	}
	f.Close()
	_, diags := NewParser().LoadDeployment(big, nil)
	if len(diags) != 1 || diags[0].Summary != "File too large" {
		t.Fatalf("big file: %v", diags)
	}
	if _, diags := NewParser().ParseDeployment(make([]byte, MaxFileBytes+1), "x.hcl", nil); len(diags) != 1 || diags[0].Summary != "File too large" {
		t.Fatalf("big source: %v", diags)
	}

	fifo := filepath.Join(dir, "fifo.hcl")
	if err := syscall.Mkfifo(fifo, 0o644); err != nil {
		t.Skip("mkfifo:", err)
	}
	_, diags = NewParser().LoadDeployment(fifo, nil)
	if len(diags) != 1 || !strings.Contains(diags[0].Detail, "not a regular file") {
		t.Fatalf("fifo: %v", diags)
	}
	_, diags = NewParser().LoadDeployment(dir, nil)
	if len(diags) != 1 || !strings.Contains(diags[0].Detail, "not a regular file") {
		t.Fatalf("folder: %v", diags)
	}
}

// TestFailedSecretLinesBlank: a secret param whose own expression does not
// evaluate (or that is set twice) has no value, but its diagnostic's
// snippet is its own line: that line is blank, as is the default of a
// variable it names; so is a whole params argument that does not
// evaluate, when the plugin has a secret param. Inline manifests (known at
// decode time) and fetched ones (CheckPlugs) alike; lines without a secret
// still show.
func TestFailedSecretLinesBlank(t *testing.T) {
	const inline = "  plugin {\n    command = [\"./a\"]\n    param \"token\" {\n      type   = string\n      secret = true\n    }\n    param \"n\" { type = number }\n  }\n"
	for _, tc := range []struct {
		name, params string
		want         string // a diagnostic summary
	}{
		{"undeclared variable", `params = { token = "hunter2-${var.missing}", n = 1 }`, "Reference to undeclared input variable"},
		{"function error", `params = { token = upper("hunter2", 2), n = 1 }`, "Too many function arguments"},
		{"operator error", `params = { token = "hunter2" + 1, n = 1 }`, "Invalid operand"},
		{"set twice", "params = {\n    token = \"first\"\n    token = \"hunter2\"\n  }", "Duplicate param"},
		{"multiline value", "params = {\n    token = join(\"\", [\n      \"hunter2\",\n      var.missing,\n    ])\n  }", "Reference to undeclared input variable"},
		{"key that does not evaluate", `params = { (var.missing) = "hunter2" }`, "Reference to undeclared input variable"},
		{"whole argument", `params = merge({ token = "hunter2" }, var.missing)`, "Reference to undeclared input variable"},
		{"not an object", `params = "hunter2"`, "Incorrect attribute value type"},
		{"variable default", "params = { token = \"${var.tok}\" + 1 }", "Invalid operand"},
		{"instance", "instance \"i\" {\n    params = { token = \"hunter2-${var.nope}\" }\n  }", "Reference to undeclared input variable"},
	} {
		for _, fetched := range []bool{false, true} {
			name := tc.name + map[bool]string{false: ", inline manifest", true: ", fetched manifest"}[fetched]
			t.Run(name, func(t *testing.T) {
				manifest := inline
				if fetched {
					manifest = ""
				}
				def := "not-secret"
				if strings.Contains(tc.params, "var.tok") {
					def = "hunter2"
				}
				src := "variable \"tok\" { default = \"" + def + "\" }\nplug \"a\" {\n  source = \"./a\"\n  " + tc.params + "\n" + manifest + "}\nplug \"shown\" {\n  source = \"./b\"\n}\n"
				file := filepath.Join(t.TempDir(), "plugs.hcl")
				if err := os.WriteFile(file, []byte(src), 0o644); err != nil {
					t.Fatal(err)
				}
				p := NewParser()
				d, diags := p.LoadDeployment(file, nil)
				if fetched {
					m := &Manifest{Name: "a", Params: []*ParamSpec{{Name: "token", Type: cty.String, Secret: true}, {Name: "n", Type: cty.Number}}}
					diags = append(diags, CheckPlugs(d, map[string]*Manifest{"a": m})...)
				}
				out := render(t, p, diags)
				shown := string(p.Files()[file].Bytes)
				if !strings.Contains(out, tc.want) {
					t.Fatalf("want %q in:\n%s", tc.want, out)
				}
				if strings.Contains(out, "hunter2") || strings.Contains(shown, "hunter2") {
					t.Errorf("the secret is shown:\n%s\n%s", out, shown)
				}
				if !strings.Contains(shown, `plug "shown" {`) || !strings.Contains(shown, `source = "./a"`) || len(shown) != len(src) {
					t.Errorf("a line without a secret blanked, or the length changed:\n%s", shown)
				}
			})
		}
	}
}
