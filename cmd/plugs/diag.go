package main

import (
	"io"

	"github.com/hashicorp/hcl/v2"
)

// writeDiags renders diagnostics the way Terraform does: severity and
// summary, file:line:col, the source line with the subject underlined, and
// the detail. files maps filenames to parsed files (a spec.Parser's Files()).
func writeDiags(w io.Writer, files map[string]*hcl.File, diags hcl.Diagnostics) {
	if len(diags) == 0 {
		return
	}
	wr := hcl.NewDiagnosticTextWriter(w, files, 78, false)
	_ = wr.WriteDiagnostics(diags)
}
