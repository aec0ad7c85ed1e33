package spec

import (
	"fmt"
	"slices"
	"strings"
	"sync"
	"unicode"
	"unicode/utf8"

	"github.com/hashicorp/hcl/v2"
	"github.com/hashicorp/hcl/v2/hclsyntax"

	"github.com/plugs-dev/plugs/internal/redact"
)

// What leaves the process: diagnostics are printed to terminals, written to
// the daemon's log, shown by plugs status and published on MQTT. The rules
// of this file hold for every diagnostic a Parser or CheckPlugs returns and
// for every snippet rendered from Parser.Files:
//
//   - no raw control bytes: a control character of a message is written as
//     \xNN, one of a file's snippet as '?' (so byte offsets stay valid);
//   - a view shows at most MaxDiagnostics, then one "more diagnostics not
//     shown" (Capped: applied once, by the workspace, over everything a
//     view collects, not per call);
//   - a line of plugs.hcl that assigns a param its manifest marks secret
//     (one whose expression did not evaluate, or set twice, too), the
//     broker password, or the default of a variable a secret param takes
//     its value from is blank in Files; so is a params argument that did
//     not evaluate as a whole, when its plugin has a secret param;
//   - so is every params argument of a plug whose manifest is not known yet
//     (a git source before its first fetch: any param may be secret), and
//     of a file that does not parse every params, password and default
//     argument (there is no tree to tell a secret by);
//   - the userinfo of a URL (git::https://user:password@host/…) is shown
//     as '*'s (redact.MaskUserinfo).

// MaxDiagnostics is how many diagnostics a view shows at most (Capped); the
// rest are counted in a last diagnostic, "N more diagnostics not shown".
const MaxDiagnostics = 100

const moreSummary = "More diagnostics not shown"

// finish sanitizes diagnostics on their way out of the package. It does
// not cap them: a view collects those of several calls (plugs.hcl, the
// lock, every manifest) and caps them once (Capped).
func finish(diags hcl.Diagnostics) hcl.Diagnostics {
	for _, d := range diags {
		d.Summary = sanitizeText(d.Summary, false)
		d.Detail = sanitizeText(d.Detail, true)
	}
	return diags
}

// Capped keeps the first MaxDiagnostics diagnostics and replaces the rest
// (with the counts of earlier caps) by one summary diagnostic, an error
// when any of those left out is one: the one cap of what a view shows,
// applied by the workspace (workspace.ForView) after sorting.
func Capped(diags hcl.Diagnostics) hcl.Diagnostics {
	var kept hcl.Diagnostics
	hidden, hiddenErr := 0, false
	for _, d := range diags {
		if n, ok := moreCount(d); ok {
			hidden += n
			hiddenErr = hiddenErr || d.Severity == hcl.DiagError
			continue
		}
		if len(kept) < MaxDiagnostics {
			kept = append(kept, d)
			continue
		}
		hidden++
		hiddenErr = hiddenErr || d.Severity == hcl.DiagError
	}
	if hidden == 0 {
		return diags
	}
	sev := hcl.DiagWarning
	if hiddenErr {
		sev = hcl.DiagError
	}
	return append(kept, &hcl.Diagnostic{Severity: sev, Summary: moreSummary,
		Detail: fmt.Sprintf("%d more diagnostics were found and are not shown. Fix the ones above and run plugs validate again.", hidden)})
}

// moreCount tells the summary diagnostic of Capped and its count.
func moreCount(d *hcl.Diagnostic) (int, bool) {
	if d.Summary != moreSummary || d.Subject != nil {
		return 0, false
	}
	var n int
	if _, err := fmt.Sscanf(d.Detail, "%d more", &n); err != nil {
		return 0, false
	}
	return n, true
}

// sanitizeText writes every control character of s (but newlines and tabs
// when multiline) as \xNN or \uNNNN, and invalid UTF-8 as \xNN.
func sanitizeText(s string, multiline bool) string {
	clean := true
	for _, r := range s {
		if r == utf8.RuneError || unsafeRune(r, multiline) {
			clean = false
			break
		}
	}
	if clean {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); {
		r, n := utf8.DecodeRuneInString(s[i:])
		switch {
		case r == utf8.RuneError && n <= 1:
			fmt.Fprintf(&b, `\x%02x`, s[i])
		case unsafeRune(r, multiline):
			if r < 0x100 {
				fmt.Fprintf(&b, `\x%02x`, r)
			} else {
				fmt.Fprintf(&b, `\u%04x`, r)
			}
		default:
			b.WriteString(s[i : i+n])
		}
		i += n
	}
	return b.String()
}

func unsafeRune(r rune, multiline bool) bool {
	if r == '\t' || (multiline && r == '\n') {
		return false
	}
	// Cc (C0, DEL, C1), and the bidirectional controls that reorder text.
	return unicode.IsControl(r) || (r >= 0x202a && r <= 0x202e) || (r >= 0x2066 && r <= 0x2069)
}

// displayBytes is src as a snippet may show it: control bytes and invalid
// UTF-8 as '?', C1 controls and bidirectional controls as as many '?' as
// they have bytes, every line that overlaps one of blank as spaces. It has
// the length of src and the same newlines, so ranges into src stay right.
func displayBytes(src []byte, blank []hcl.Range) []byte {
	out := make([]byte, len(src))
	copy(out, src)
	for i := 0; i < len(out); {
		c := out[i]
		if c < utf8.RuneSelf {
			if c < 0x20 && c != '\t' && c != '\n' && c != '\r' || c == 0x7f {
				out[i] = '?'
			}
			i++
			continue
		}
		r, n := utf8.DecodeRune(out[i:])
		if r == utf8.RuneError || unsafeRune(r, false) {
			for j := range n {
				out[i+j] = '?'
			}
		}
		i += n
	}
	redact.MaskUserinfo(out)
	for _, rng := range blank {
		start, end := rng.Start.Byte, rng.End.Byte
		if start < 0 || end > len(out) || start > end {
			continue
		}
		for start > 0 && out[start-1] != '\n' {
			start--
		}
		for end < len(out) && out[end] != '\n' {
			end++
		}
		for i := start; i < end; i++ {
			if out[i] != '\n' && out[i] != '\r' {
				out[i] = ' '
			}
		}
	}
	return out
}

// secretRanges collects, per file, the ranges of plugs.hcl whose lines must
// not be shown, and those that must not be shown until the manifest of
// their plug is known (pending, by the plug block's range). It is safe for
// concurrent use.
type secretRanges struct {
	mu      sync.Mutex
	ranges  map[string][]hcl.Range
	pending map[hcl.Range][]hcl.Range
	// failedBy are the params of each plug block (by its range) that did
	// not evaluate: no value, no ParamRanges entry, but a diagnostic whose
	// snippet is their own line.
	failedBy map[hcl.Range][]failedParam
}

// failedParam is a param (or a whole params argument: name "") that did
// not evaluate or was set twice, and the variables its expression names.
type failedParam struct {
	name string
	rng  hcl.Range
	vars []string
}

// paramFailed records that the param name (""; a whole params argument or
// a key that did not evaluate) at rng, whose expression is expr, did not
// evaluate when diags has errors.
func (dc *decoder) paramFailed(name string, rng hcl.Range, expr hcl.Expression, diags hcl.Diagnostics) {
	if dc.dep == nil || !diags.HasErrors() {
		return
	}
	dc.failedParams = append(dc.failedParams, failedParam{name: name, rng: rng, vars: dc.varNames(expr)})
}

// failed records the params of the plug block decl that did not evaluate.
func (s *secretRanges) failed(decl hcl.Range, params []failedParam) {
	if len(params) == 0 {
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.failedBy == nil {
		s.failedBy = map[hcl.Range][]failedParam{}
	}
	s.failedBy[decl] = params
}

func (s *secretRanges) failedOf(decl hcl.Range) []failedParam {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.failedBy[decl]
}

// pend records the param lines of the plug block decl, blank until
// resolve(decl).
func (s *secretRanges) pend(decl hcl.Range, lines []hcl.Range) {
	if len(lines) == 0 {
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.pending == nil {
		s.pending = map[hcl.Range][]hcl.Range{}
	}
	s.pending[decl] = lines
}

// resolve ends the pending state of the plug block decl: its manifest is
// known, and markSecrets has added the lines that stay blank.
func (s *secretRanges) resolve(decl hcl.Range) {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.pending, decl)
}

func (s *secretRanges) add(rng hcl.Range) {
	if rng.Filename == "" {
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.ranges == nil {
		s.ranges = map[string][]hcl.Range{}
	}
	for _, r := range s.ranges[rng.Filename] {
		if r == rng {
			return
		}
	}
	s.ranges[rng.Filename] = append(s.ranges[rng.Filename], rng)
}

func (s *secretRanges) of(filename string) []hcl.Range {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := append([]hcl.Range(nil), s.ranges[filename]...)
	for _, lines := range s.pending {
		for _, r := range lines {
			if r.Filename == filename {
				out = append(out, r)
			}
		}
	}
	return out
}

// syntaxSecretRanges are the arguments of a file that does not parse that
// may hold a secret: every params, password and default argument, from its
// name to the end of its value (the newline after the brackets it opens
// are closed, or the end of the file).
func syntaxSecretRanges(src []byte, filename string) []hcl.Range {
	toks, _ := hclsyntax.LexConfig(src, filename, hcl.InitialPos)
	var out []hcl.Range
	for i := 0; i+1 < len(toks); i++ {
		t := toks[i]
		if t.Type != hclsyntax.TokenIdent || (toks[i+1].Type != hclsyntax.TokenEqual && toks[i+1].Type != hclsyntax.TokenColon) {
			continue
		}
		if name := string(t.Bytes); name != "params" && name != "password" && name != "default" {
			continue
		}
		depth, j := 0, i+2
	value:
		for ; j < len(toks)-1; j++ {
			switch toks[j].Type {
			case hclsyntax.TokenOBrace, hclsyntax.TokenOBrack, hclsyntax.TokenOParen,
				hclsyntax.TokenTemplateInterp, hclsyntax.TokenTemplateControl, hclsyntax.TokenOHeredoc:
				depth++
			case hclsyntax.TokenCBrace, hclsyntax.TokenCBrack, hclsyntax.TokenCParen,
				hclsyntax.TokenTemplateSeqEnd, hclsyntax.TokenCHeredoc:
				if depth--; depth < 0 {
					break value
				}
			case hclsyntax.TokenNewline:
				if depth == 0 {
					break value
				}
			}
		}
		out = append(out, hcl.RangeBetween(t.Range, toks[j].Range))
		i = j
	}
	return out
}

// markSecrets records the lines of d that assign a param m marks secret
// (and the defaults of the variables such a param refers to), so that
// Files never shows them.
func (d *Deployment) markSecrets(plug *Plug, m *Manifest) {
	if d != nil && d.secrets != nil && m != nil {
		defer d.secrets.resolve(plug.DeclRange)
	}
	if d == nil || d.secrets == nil || m == nil || !slices.ContainsFunc(m.Params, func(p *ParamSpec) bool { return p.Secret }) {
		return
	}
	secret := SecretParams(m)
	mark := func(ranges map[string]hcl.Range) {
		for name := range secret {
			rng, ok := ranges[name]
			if !ok {
				continue
			}
			d.secrets.add(rng)
			for _, v := range d.paramVars[rng] {
				if vr, ok := d.variableRanges[v]; ok {
					d.secrets.add(vr)
				}
			}
		}
	}
	mark(plug.ParamRanges)
	for _, inst := range plug.Instances {
		mark(inst.ParamRanges)
	}
	// A param that did not evaluate has no range above, but its own
	// diagnostic points at its line: blank when it is secret, or when the
	// whole argument failed (any of its params may be the secret one).
	for _, f := range d.secrets.failedOf(plug.DeclRange) {
		if _, ok := secret[f.name]; !ok && f.name != "" {
			continue
		}
		d.secrets.add(f.rng)
		for _, v := range f.vars {
			if vr, ok := d.variableRanges[v]; ok {
				d.secrets.add(vr)
			}
		}
	}
}
