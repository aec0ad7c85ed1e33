package main

import (
	"encoding/json"
	"io"

	"github.com/hashicorp/hcl/v2"

	"github.com/plugs-dev/plugs/api"
	"github.com/plugs-dev/plugs/api/hcldiag"
)

// validateJSON is the -o json output of plugs validate, shaped like
// terraform validate -json.
type validateJSON struct {
	FormatVersion string           `json:"format_version"`
	Valid         bool             `json:"valid"`
	ErrorCount    int              `json:"error_count"`
	WarningCount  int              `json:"warning_count"`
	Diagnostics   []api.Diagnostic `json:"diagnostics"`
}

// writeValidateJSON writes diags as validateJSON.
func writeValidateJSON(w io.Writer, files map[string]*hcl.File, diags hcl.Diagnostics) error {
	out := validateJSON{FormatVersion: "1.0", Diagnostics: hcldiag.Convert(files, diags)}
	for _, d := range out.Diagnostics {
		if d.Severity == api.SeverityWarning {
			out.WarningCount++
		} else {
			out.ErrorCount++
		}
	}
	out.Valid = out.ErrorCount == 0
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(out)
}
