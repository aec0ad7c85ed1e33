package hcldiag_test

import (
	"bytes"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/hashicorp/hcl/v2"
	"github.com/hashicorp/hcl/v2/hclsyntax"

	"github.com/plugs-dev/plugs/api"
	"github.com/plugs-dev/plugs/api/hcldiag"
)

// TestRenderedLikeHCL: diagnostics that travel as JSON (over the local
// API) render as HCL's own text writer renders them locally, source line
// included, and their one-line form names each place.
func TestRenderedLikeHCL(t *testing.T) {
	src := []byte("plug \"a\" {\n  source = \"./x\"\n  bogus  = 1\n}\n")
	f, diags := hclsyntax.ParseConfig(src, "plugs.hcl", hcl.InitialPos)
	if diags.HasErrors() {
		t.Fatal(diags)
	}
	files := map[string]*hcl.File{"plugs.hcl": f}
	rng := hcl.Range{Filename: "plugs.hcl", Start: hcl.Pos{Line: 3, Column: 3, Byte: 30}, End: hcl.Pos{Line: 3, Column: 8, Byte: 35}}
	in := hcl.Diagnostics{
		{Severity: hcl.DiagError, Summary: "Unsupported argument", Detail: `An argument named "bogus" is not expected here.`, Subject: &rng},
		{Severity: hcl.DiagWarning, Summary: "No subject", Detail: "A warning without a place."},
	}
	var want bytes.Buffer
	_ = hcl.NewDiagnosticTextWriter(&want, files, 78, false).WriteDiagnostics(in)
	var got bytes.Buffer
	if err := api.WriteDiagnostics(&got, hcldiag.Convert(files, in), 78); err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(want.String(), got.String()); diff != "" {
		t.Errorf("rendered (-hcl +api):\n%s", diff)
	}
	if !strings.Contains(got.String(), "   3:   bogus  = 1") {
		t.Errorf("no source line in:\n%s", got.String())
	}
	if one := api.OneLine(hcldiag.Convert(files, in)); one != "plugs.hcl:3,3-8: Unsupported argument; No subject" {
		t.Errorf("OneLine = %q", one)
	}
}

// TestOneLineOfAnErrorWithoutPlace: an error no range locates (a file that
// cannot be read) keeps its detail in the one-line form of logs, status and
// MQTT, which would otherwise not say which file, nor why.
func TestOneLineOfAnErrorWithoutPlace(t *testing.T) {
	in := hcl.Diagnostics{{Severity: hcl.DiagError, Summary: "Failed to read file",
		Detail: "The deployment file \"/srv/plugs.hcl\" could not be read: not a regular\nfile (p---------)."}}
	want := `Failed to read file: The deployment file "/srv/plugs.hcl" could not be read: not a regular file (p---------).`
	if one := api.OneLine(hcldiag.Convert(nil, in)); one != want {
		t.Errorf("OneLine = %q, want %q", one, want)
	}
}
