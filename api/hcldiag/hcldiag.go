// Package hcldiag turns hcl.Diagnostics into the API's diagnostics (the
// shape of plugs validate -o json), with the source lines each points at.
// It is the one place that conversion happens: plugs validate, the
// daemon's errors and its status all use it. It does not render them
// (api.WriteDiagnostics does) and reads no file: the parser's files are
// given.
package hcldiag

import (
	"bytes"

	"github.com/hashicorp/hcl/v2"
	"github.com/hashicorp/hcl/v2/hcled"

	"github.com/plugs-dev/plugs/api"
)

// Convert returns diags as api diagnostics; files are the parsed files by
// name (a spec.Parser's Files()), whose bytes give each snippet.
func Convert(files map[string]*hcl.File, diags hcl.Diagnostics) []api.Diagnostic {
	out := make([]api.Diagnostic, 0, len(diags))
	for _, d := range diags {
		dj := api.Diagnostic{Severity: api.SeverityError, Summary: d.Summary, Detail: d.Detail}
		if d.Severity == hcl.DiagWarning {
			dj.Severity = api.SeverityWarning
		}
		if r := d.Subject; r != nil {
			dj.Range = &api.Range{Filename: r.Filename,
				Start: api.Pos{Line: r.Start.Line, Column: r.Start.Column, Byte: r.Start.Byte},
				End:   api.Pos{Line: r.End.Line, Column: r.End.Column, Byte: r.End.Byte}}
			dj.Snippet = snippet(files[r.Filename], *r)
		}
		out = append(out, dj)
	}
	return out
}

// snippet is the source lines of r, with the offsets of r within them.
func snippet(f *hcl.File, r hcl.Range) *api.Snippet {
	if f == nil || r.Start.Byte < 0 || r.End.Byte > len(f.Bytes) || r.Start.Byte > r.End.Byte {
		return nil
	}
	src := f.Bytes
	start := bytes.LastIndexByte(src[:r.Start.Byte], '\n') + 1
	end := len(src)
	if i := bytes.IndexByte(src[r.End.Byte:], '\n'); i >= 0 {
		end = r.End.Byte + i
	}
	s := &api.Snippet{
		Code:                 string(src[start:end]),
		StartLine:            r.Start.Line,
		HighlightStartOffset: r.Start.Byte - start,
		HighlightEndOffset:   r.End.Byte - start,
		Values:               []any{},
	}
	if ctx := hcled.ContextString(f, r.Start.Byte); ctx != "" {
		s.Context = &ctx
	}
	return s
}
