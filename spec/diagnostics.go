package spec

import (
	"fmt"
	"sort"
	"strings"

	"github.com/agext/levenshtein"
	"github.com/hashicorp/hcl/v2"
)

// errorf builds an error diagnostic.
func errorf(subject hcl.Range, summary, detailFormat string, args ...any) *hcl.Diagnostic {
	return &hcl.Diagnostic{Severity: hcl.DiagError, Summary: summary, Detail: fmt.Sprintf(detailFormat, args...), Subject: subject.Ptr()}
}

// warnf builds a warning diagnostic.
func warnf(subject hcl.Range, summary, detailFormat string, args ...any) *hcl.Diagnostic {
	d := errorf(subject, summary, detailFormat, args...)
	d.Severity = hcl.DiagWarning
	return d
}

// didYouMean returns ` Did you mean "x"?` for the candidate nearest to
// given, or "" when none is near enough.
func didYouMean(given string, candidates []string) string {
	best, bestDist := "", 3
	sorted := append([]string(nil), candidates...)
	sort.Strings(sorted)
	for _, c := range sorted {
		if d := levenshtein.Distance(given, c, nil); d < bestDist {
			best, bestDist = c, d
		}
	}
	if best == "" {
		return ""
	}
	return fmt.Sprintf(" Did you mean %q?", best)
}

// scrub removes the expression and evaluation context that HCL attaches to
// evaluation errors: the diagnostic writer would print the values of the
// variables involved, which may be secrets. Function errors quote the
// argument they could not use, so their detail is cut before the reason.
func scrub(diags hcl.Diagnostics) hcl.Diagnostics {
	for _, d := range diags {
		d.Expression = nil
		d.EvalContext = nil
		if d.Summary == "Invalid function argument" || d.Summary == "Error in function call" {
			if i := strings.Index(d.Detail, ": "); i >= 0 {
				d.Detail = d.Detail[:i] + ". The value is not shown, as it may be secret: check the arguments given to this function."
			}
		}
	}
	return diags
}

// Sorted returns diags ordered by file, then position, errors before
// warnings at the same place, the count of those not shown (see
// MaxDiagnostics) last; the order in which they were found is kept
// otherwise. Callers use it for stable output.
func Sorted(diags hcl.Diagnostics) hcl.Diagnostics {
	out := append(hcl.Diagnostics(nil), diags...)
	sort.SliceStable(out, func(i, j int) bool {
		a, b := out[i].Subject, out[j].Subject
		_, mi := moreCount(out[i])
		_, mj := moreCount(out[j])
		switch {
		case mi || mj: // "N more diagnostics not shown" comes last
			return !mi && mj
		case a == nil || b == nil:
			return a == nil && b != nil
		case a.Filename != b.Filename:
			return a.Filename < b.Filename
		case a.Start.Byte != b.Start.Byte:
			return a.Start.Byte < b.Start.Byte
		}
		return out[i].Severity < out[j].Severity
	})
	return out
}
