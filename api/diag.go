package api

import (
	"fmt"
	"io"
	"strings"

	wordwrap "github.com/mitchellh/go-wordwrap"
)

// Diagnostic is one error or warning about the input, in the shape plugs
// validate -o json prints (that of terraform validate -json). Package
// api/hcldiag makes them from hcl.Diagnostics.
type Diagnostic struct {
	Severity string   `json:"severity"` // "error" or "warning"
	Summary  string   `json:"summary"`
	Detail   string   `json:"detail,omitempty"`
	Range    *Range   `json:"range,omitempty"`
	Snippet  *Snippet `json:"snippet,omitempty"`
}

// The severities of a Diagnostic.
const (
	SeverityError   = "error"
	SeverityWarning = "warning"
)

// Range is where in a file a diagnostic points.
type Range struct {
	Filename string `json:"filename"`
	Start    Pos    `json:"start"`
	End      Pos    `json:"end"`
}

// Pos is a position in a file: 1-based line and column, 0-based byte.
type Pos struct {
	Line   int `json:"line"`
	Column int `json:"column"`
	Byte   int `json:"byte"`
}

// Snippet is the source lines a diagnostic's range covers, and where in
// them the range starts and ends (byte offsets into Code).
type Snippet struct {
	Context              *string `json:"context"`
	Code                 string  `json:"code"`
	StartLine            int     `json:"start_line"`
	HighlightStartOffset int     `json:"highlight_start_offset"`
	HighlightEndOffset   int     `json:"highlight_end_offset"`
	Values               []any   `json:"values"`
}

// HasErrors reports whether any of diags is an error.
func HasErrors(diags []Diagnostic) bool {
	for _, d := range diags {
		if d.Severity != SeverityWarning {
			return true
		}
	}
	return false
}

// Where is "file:line,col-col" (or "file:line,col-line,col"), as HCL names a
// range; "" without one.
func (d Diagnostic) Where() string {
	r := d.Range
	if r == nil {
		return ""
	}
	if r.Start.Line == r.End.Line {
		return fmt.Sprintf("%s:%d,%d-%d", r.Filename, r.Start.Line, r.Start.Column, r.End.Column)
	}
	return fmt.Sprintf("%s:%d,%d-%d,%d", r.Filename, r.Start.Line, r.Start.Column, r.End.Line, r.End.Column)
}

// OneLine is diags as one line, for logs and the MQTT reconcile topic:
// "file:line,col-col: summary; …", the errors first, at most three, then
// how many more. An error with no place ("Failed to read file") is followed
// by its detail, which names the file and the reason.
func OneLine(diags []Diagnostic) string {
	var parts []string
	n := 0
	for _, pass := range []bool{true, false} {
		for _, d := range diags {
			if (d.Severity != SeverityWarning) != pass {
				continue
			}
			n++
			if len(parts) == 3 {
				continue
			}
			p := d.Summary
			if w := d.Where(); w != "" {
				p = w + ": " + p
			} else if d.Detail != "" && d.Severity != SeverityWarning {
				// An error with no place to point at (a file that
				// cannot be read): its detail says which file and why.
				p += ": " + d.Detail
			}
			parts = append(parts, strings.Join(strings.Fields(p), " "))
		}
	}
	s := strings.Join(parts, "; ")
	if n > len(parts) {
		s += fmt.Sprintf(" (and %d more)", n-len(parts))
	}
	return s
}

// WriteDiagnostics renders diags the way HCL's text writer (and so
// Terraform) does: severity and summary, "on file line N", the source
// lines with the subject, then the detail wrapped at width (0: no wrap).
// It needs only the diagnostics, not the files, so a diagnostic made by a
// daemon is shown the same as one made here.
func WriteDiagnostics(w io.Writer, diags []Diagnostic, width uint) error {
	for _, d := range diags {
		if err := writeDiagnostic(w, d, width); err != nil {
			return err
		}
	}
	return nil
}

func writeDiagnostic(w io.Writer, d Diagnostic, width uint) error {
	sev := "Error"
	if d.Severity == SeverityWarning {
		sev = "Warning"
	}
	var b strings.Builder
	fmt.Fprintf(&b, "%s: %s\n\n", sev, d.Summary)
	if r := d.Range; r != nil {
		if s := d.Snippet; s == nil {
			fmt.Fprintf(&b, "  on %s line %d:\n  (source code not available)\n\n", r.Filename, r.Start.Line)
		} else {
			ctx := ""
			if s.Context != nil && *s.Context != "" {
				ctx = ", in " + *s.Context
			}
			fmt.Fprintf(&b, "  on %s line %d%s:\n", r.Filename, r.Start.Line, ctx)
			for i, line := range strings.Split(s.Code, "\n") {
				fmt.Fprintf(&b, "%4d: %s\n", s.StartLine+i, line)
			}
			b.WriteByte('\n')
		}
	}
	if d.Detail != "" {
		detail := d.Detail
		if width != 0 {
			detail = wordwrap.WrapString(detail, width)
		}
		fmt.Fprintf(&b, "%s\n\n", detail)
	}
	_, err := io.WriteString(w, b.String())
	return err
}
