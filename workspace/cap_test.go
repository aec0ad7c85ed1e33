package workspace_test

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/hashicorp/hcl/v2"

	"github.com/plugs-dev/plugs/spec"
	"github.com/plugs-dev/plugs/workspace"
)

// TestDiagnosticsCappedOncePerView: 150 mistakes in plugs.hcl and 150 in
// a manifest are 300 for the view, which shows spec.MaxDiagnostics (100) of
// them and one "200 more", not 100 of each file plus a counter per call.
func TestDiagnosticsCappedOncePerView(t *testing.T) {
	dir := t.TempDir()
	var depl, man strings.Builder
	depl.WriteString("plug \"a\" {\n  source = \"./plugins/a\"\n")
	man.WriteString("plugin \"a\" {\n  command = [\"sh\", \"run.sh\"]\n")
	for i := range 150 {
		fmt.Fprintf(&depl, "  bogus%d = 1\n", i)
		fmt.Fprintf(&man, "  wrong%d = 1\n", i)
	}
	depl.WriteString("}\n")
	man.WriteString("}\n")
	write := func(name, content string) {
		p := filepath.Join(dir, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	write("plugs.hcl", depl.String())
	write("plugins/a/plugin.hcl", man.String())
	write("plugins/a/run.sh", "sleep 1\n")

	w, diags := workspace.Open(workspace.Options{File: filepath.Join(dir, "plugs.hcl")})
	diags = append(diags, w.CheckOffline()...)
	errs := 0
	for _, d := range diags {
		if d.Severity == hcl.DiagError {
			errs++
		}
	}
	if errs != 300 {
		t.Fatalf("collected %d errors, want 300 (150 per file, uncapped per call)", errs)
	}
	shown := workspace.ForView(diags)
	if len(shown) != spec.MaxDiagnostics+1 {
		t.Fatalf("the view shows %d diagnostics, want %d and a counter", len(shown), spec.MaxDiagnostics)
	}
	last := shown[len(shown)-1]
	if last.Subject != nil || last.Severity != hcl.DiagError || !strings.HasPrefix(last.Detail, "200 more diagnostics") {
		t.Errorf("last diagnostic = %q %q, want the count of the 200 not shown", last.Summary, last.Detail)
	}
	for _, d := range shown[:spec.MaxDiagnostics] {
		if d.Subject == nil || d.Summary != "Unsupported argument" {
			t.Errorf("shown: %q at %v, want only the mistakes themselves before the counter", d.Summary, d.Subject)
			break
		}
	}
}
