package spec

import (
	"fmt"
	"slices"
	"strconv"
	"strings"
	"sync"
	"unicode"
	"unicode/utf8"

	"github.com/hashicorp/hcl/v2"
	"github.com/hashicorp/hcl/v2/hclsyntax"
	"github.com/zclconf/go-cty/cty"

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
//     as '*'s (redact.MaskUserinfo);
//   - the known-value rule: once a secret's value is known (a secret
//     param's, the broker password; every param's of a plug whose manifest
//     is not known yet), every line of Files that holds it is blank, and
//     every diagnostic the Parser and its Deployments returned shows it as
//     redact.Sensitive, those returned before it was known too: the same
//     value pasted on another line (an env value, the wrong argument) is no
//     less secret. A value shorter than minKnownValue is not searched for:
//     it cannot be told from other text (its own line stays blank).

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
// they have bytes, every line that overlaps one of blank or holds one of
// values as spaces. It has
// the length of src and the same newlines, so ranges into src stay right.
func displayBytes(src []byte, blank []hcl.Range, values []string) []byte {
	out := make([]byte, len(src))
	copy(out, src)
	redact.BlankValueLines(out, values...)
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

	// values are the known secret values (the known-value rule), and
	// pendingValues the plug blocks whose manifest is not known yet (by
	// their range), whose every param's value is secret until it is: in
	// the forms it may be written in (secretForms), found only once a
	// diagnostic or a file is to be shown (at 1,000 plugs, formatting
	// every param at each parse cost a sixth of the parse).
	values        map[string]bool
	pendingValues map[hcl.Range]*pendingPlug
	// issued are the diagnostics returned so far, with the text each had
	// before the known-value rule and the text the rule made of it: a
	// change of the values redacts those it concerns again from the former
	// (a value of a pending plug that proves not secret shows again),
	// unless their holder changed them meanwhile.
	issued map[*hcl.Diagnostic]*issuedText
}

// issuedText is the summary and detail of an issued diagnostic before the
// known-value rule (orig) and after it (shown).
type issuedText struct{ orig, shown [2]string }

// minKnownValue is the shortest value the known-value rule searches for.
const minKnownValue = 4

// secretForms are the forms a secret value may be written in within a
// source or a message: as it is, and escaped as a quoted string (HCL,
// JSON, a detail's %q) and an HCL template ("$${", "%%{") write it.
func secretForms(v string) []string {
	if len(v) < minKnownValue || strings.TrimSpace(v) == "" {
		return nil
	}
	out := []string{v}
	if q := strconv.Quote(v); q[1:len(q)-1] != v {
		out = append(out, q[1:len(q)-1])
	}
	if t := strings.NewReplacer("${", "$${", "%{", "%%{").Replace(v); t != v {
		out = append(out, t)
	}
	return out
}

// secretStrings are the strings of v a text may quote: its strings and its
// numbers (a PIN), in collections too; not its bools.
func secretStrings(v cty.Value) []string {
	if v == cty.NilVal {
		return nil
	}
	var out []string
	_ = cty.Walk(v, func(_ cty.Path, e cty.Value) (bool, error) {
		switch {
		case !e.IsKnown() || e.IsNull() || e.IsMarked():
			return false, nil
		case e.Type() == cty.String:
			out = append(out, secretForms(e.AsString())...)
		case e.Type() == cty.Number && numberValueOK(e):
			out = append(out, secretForms(e.AsBigFloat().Text('f', -1))...)
		}
		return true, nil
	})
	return out
}

// learn adds known secret values (the known-value rule).
func (s *secretRanges) learn(values []string) {
	if s == nil || len(values) == 0 {
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	var fresh []string
	for _, v := range values {
		if !s.values[v] {
			if s.values == nil {
				s.values = map[string]bool{}
			}
			s.values[v] = true
			fresh = append(fresh, v)
		}
	}
	s.redactHolding(fresh)
}

// pendingPlug is a plug block whose param values are secret until its
// manifest is known; its values are found when first asked for.
type pendingPlug struct {
	plug   *Plug
	values []string
	found  bool
}

// valuesOf are p's param values (pendingParamValues), found once.
func (p *pendingPlug) valuesOf() []string {
	if !p.found {
		p.values, p.found = pendingParamValues(p.plug), true
	}
	return p.values
}

// pendValues records that the param values of plug (its block decl) are
// secret until resolve(decl).
func (s *secretRanges) pendValues(decl hcl.Range, plug *Plug) {
	if s == nil || plug == nil || (len(plug.Params) == 0 && !slices.ContainsFunc(plug.Instances, func(i *Instance) bool { return len(i.Params) > 0 })) {
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.pendingValues == nil {
		s.pendingValues = map[hcl.Range]*pendingPlug{}
	}
	p := &pendingPlug{plug: plug}
	s.pendingValues[decl] = p
	if len(s.issued) > 0 {
		s.redactHolding(p.valuesOf())
	}
}

// known returns the values the known-value rule hides now, longest first
// (so that a value that holds another is replaced whole). s.mu is held.
func (s *secretRanges) known() []string {
	out := make([]string, 0, len(s.values))
	for v := range s.values {
		out = append(out, v)
	}
	for _, p := range s.pendingValues {
		out = append(out, p.valuesOf()...)
	}
	slices.SortFunc(out, func(a, b string) int {
		if len(a) != len(b) {
			return len(b) - len(a)
		}
		return strings.Compare(a, b)
	})
	return slices.Compact(out)
}

// secretSet is d's secrets, nil for a nil d.
func (d *Deployment) secretSet() *secretRanges {
	if d == nil {
		return nil
	}
	return d.secrets
}

// valuesNow is known for Files.
func (s *secretRanges) valuesNow() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.known()
}

// pendingParamValues are the values every param of plug (and of its
// instances) may show: secret until its manifest is known.
func pendingParamValues(plug *Plug) []string {
	var out []string
	for _, v := range plug.Params {
		out = append(out, secretStrings(v)...)
	}
	for _, inst := range plug.Instances {
		for _, v := range inst.Params {
			out = append(out, secretStrings(v)...)
		}
	}
	return out
}

// finish is the package's finish for diagnostics returned by a Parser or
// a Deployment of s: sanitized, and under the known-value rule from now
// on. A nil s (a Deployment made by hand) only sanitizes.
func (s *secretRanges) finish(diags hcl.Diagnostics) hcl.Diagnostics {
	diags = finish(diags)
	if s == nil || len(diags) == 0 {
		return diags
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.issued == nil {
		s.issued = map[*hcl.Diagnostic]*issuedText{}
	}
	r := redact.ValuesReplacer(s.known()...)
	for _, d := range diags {
		t := s.issued[d]
		if t == nil || [2]string{d.Summary, d.Detail} != t.shown {
			t = &issuedText{orig: [2]string{d.Summary, d.Detail}}
			s.issued[d] = t
		}
		t.redact(d, r)
	}
	return diags
}

// redactHolding applies the known-value rule again to the issued
// diagnostics that hold one of the values just added; s.mu is held. What
// a learn costs is the few values of one plug against what was issued,
// not every value.
func (s *secretRanges) redactHolding(added []string) {
	var r *strings.Replacer
	for d, t := range s.issued {
		for _, v := range added {
			if strings.Contains(d.Summary, v) || strings.Contains(d.Detail, v) {
				if r == nil {
					r = redact.ValuesReplacer(s.known()...)
				}
				t.redact(d, r)
				break
			}
		}
	}
}

// unredact applies the known-value rule again to the issued diagnostics
// it changed, after values were dropped (a pending plug's that proved not
// secret); s.mu is held.
func (s *secretRanges) unredact() {
	var r *strings.Replacer
	for d, t := range s.issued {
		if t.shown != t.orig {
			if r == nil {
				r = redact.ValuesReplacer(s.known()...)
			}
			t.redact(d, r)
		}
	}
}

// redact sets d's summary and detail to t.orig through r, taking d's
// text as the original when its holder changed it since.
func (t *issuedText) redact(d *hcl.Diagnostic, r *strings.Replacer) {
	if now := [2]string{d.Summary, d.Detail}; now != t.shown {
		t.orig = now
	}
	d.Summary, d.Detail = r.Replace(t.orig[0]), r.Replace(t.orig[1])
	t.shown = [2]string{d.Summary, d.Detail}
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
	if _, ok := s.pendingValues[decl]; ok {
		delete(s.pendingValues, decl)
		s.unredact()
	}
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
	var values []string
	for _, ps := range m.Params {
		if ps.Secret && ps.Default != cty.NilVal {
			values = append(values, secretStrings(ps.Default)...)
		}
	}
	for name := range secret {
		values = append(values, secretStrings(plug.Params[name])...)
		for _, inst := range plug.Instances {
			values = append(values, secretStrings(inst.Params[name])...)
		}
	}
	d.secrets.learn(values)
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
