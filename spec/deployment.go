package spec

import (
	"bytes"
	"errors"
	"fmt"
	"math"
	"math/big"
	"path/filepath"
	"strings"
	"time"

	"github.com/hashicorp/hcl/v2"
	"github.com/hashicorp/hcl/v2/ext/typeexpr"
	"github.com/hashicorp/hcl/v2/hclsyntax"
	"github.com/plugs-dev/plugs/internal/brokerurl"
	"github.com/plugs-dev/plugs/internal/names"
	"github.com/plugs-dev/plugs/internal/redact"
	"github.com/plugs-dev/plugs/internal/source"
	"github.com/zclconf/go-cty/cty"
	"github.com/zclconf/go-cty/cty/convert"
)

var deploymentSchema = &hcl.BodySchema{
	Attributes: []hcl.AttributeSchema{{Name: "host"}},
	Blocks: []hcl.BlockHeaderSchema{
		{Type: "variable", LabelNames: []string{"name"}},
		{Type: "broker"},
		{Type: "plug", LabelNames: []string{"name"}},
	},
}

var variableBlockSchema = &hcl.BodySchema{
	Attributes: []hcl.AttributeSchema{{Name: "default"}, {Name: "type"}, {Name: "description"}},
}

var brokerBlockSchema = &hcl.BodySchema{
	Attributes: []hcl.AttributeSchema{{Name: "url", Required: true}, {Name: "username"}, {Name: "password"}},
}

var plugBlockSchema = &hcl.BodySchema{
	Attributes: []hcl.AttributeSchema{
		{Name: "source", Required: true},
		{Name: "version"},
		{Name: "params"},
		{Name: "depends_on"},
		{Name: "env"},
		{Name: "stop_timeout"},
		{Name: "enabled"},
		{Name: "user"},
		{Name: "group"},
	},
	Blocks: []hcl.BlockHeaderSchema{
		{Type: "instance", LabelNames: []string{"name"}},
		{Type: "restart"},
		{Type: "plugin"},
		{Type: "limits"},
		{Type: "check", LabelNames: []string{"name"}}, {Type: "check_restart"}, {Type: "update"}, // spec/check.go
		{Type: "sandbox"},                  // spec/sandbox.go
		{Type: "task"}, {Type: "schedule"}, // spec/task.go
		{Type: "hooks"}, // over the manifest's (render/hooks.go)
	},
}

var instanceBlockSchema = &hcl.BodySchema{
	Attributes: []hcl.AttributeSchema{{Name: "params"}},
	Blocks:     []hcl.BlockHeaderSchema{{Type: "limits"}}, // spec/sandbox.go
}

var restartBlockSchema = &hcl.BodySchema{
	Attributes: []hcl.AttributeSchema{{Name: "initial_delay"}, {Name: "max_delay"}, {Name: "reset_after"}, {Name: "max_restarts"}},
}

var limitsBlockSchema = &hcl.BodySchema{
	Attributes: []hcl.AttributeSchema{{Name: "nofile"}, {Name: "address_space"}, {Name: "nproc"}, {Name: "no_new_privs"},
		{Name: "memory"}, {Name: "cpu"}, {Name: "pids"}}, // cgroup limits: spec/sandbox.go
}

// validName checks names like validNameChars, for the decoders that use
// it as a regexp (validName.MatchString).
var validName nameMatcher

type nameMatcher struct{}

func (nameMatcher) MatchString(s string) bool { return validNameChars(s) }

// validNameChars is what plug and instance names may look like
// (internal/names: they become directory names, MQTT topic levels and
// metric labels).
func validNameChars(s string) bool { return names.ValidChars(s) }

// MaxNameBytes is the longest plug or instance name: a name is a path
// element of the state directory and of files named after both names (such
// as "<plug>-<instance>-*.json"), which must stay within 255 bytes.
const MaxNameBytes = names.MaxBytes

// LoadDeployment reads and decodes a plugs.hcl. vars are the values given
// with -var and PLUGS_VAR_, as strings; each is converted to its variable's
// type. The Deployment is returned, possibly partial, even with errors.
// It does not look at plugin sources: see LoadManifests.
func (p *Parser) LoadDeployment(filename string, vars map[string]string) (*Deployment, hcl.Diagnostics) {
	src, diags := p.readFile(filename, "deployment file")
	if diags.HasErrors() {
		return nil, diags
	}
	return p.ParseDeployment(src, filename, vars)
}

// ParseDeployment decodes plugs.hcl source read from filename.
func (p *Parser) ParseDeployment(src []byte, filename string, vars map[string]string) (*Deployment, hcl.Diagnostics) {
	d, diags := p.parseDeployment(src, filename, vars)
	return d, p.secrets.finish(diags)
}

// parseDeployment is ParseDeployment before finish (see output.go).
func (p *Parser) parseDeployment(src []byte, filename string, vars map[string]string) (*Deployment, hcl.Diagnostics) {
	f, diags := p.parseHCL(src, filename)
	if diags.HasErrors() {
		// No syntax tree, no manifest: any argument that may hold a
		// secret is blank in snippets.
		for _, rng := range syntaxSecretRanges(src, filename) {
			p.secrets.add(rng)
		}
		return nil, diags
	}
	d, ddiags := p.decodeDeployment(f, filename, vars)
	return d, append(diags, ddiags...)
}

// decodeDeployment decodes the parsed plugs.hcl f, read from filename.
func (p *Parser) decodeDeployment(f *hcl.File, filename string, vars map[string]string) (*Deployment, hcl.Diagnostics) {
	var diags hcl.Diagnostics
	abs, err := filepath.Abs(filename)
	if err != nil {
		abs = filename
	}
	d := &Deployment{Filename: filename, BaseDir: filepath.Dir(abs), secrets: &p.secrets,
		variableRanges: map[string]hcl.Range{}, paramVars: map[hcl.Range][]string{}}
	content, cdiags := bodyContent(f.Body, deploymentSchema)
	diags = append(diags, cdiags...)

	var blocks = map[string]hcl.Blocks{}
	for _, b := range content.Blocks {
		blocks[b.Type] = append(blocks[b.Type], b)
	}
	dc := &decoder{p: p, baseDir: d.BaseDir, src: f.Bytes, dep: d}
	d.Variables, cdiags = dc.decodeVariables(blocks["variable"], vars)
	diags = append(diags, cdiags...)
	dc.ctx, dc.vars = p.evalContext(d.BaseDir, d.Variables), d.Variables

	if attr, ok := content.Attributes["host"]; ok {
		d.Host, _, cdiags = dc.evalString(attr)
		diags = append(diags, cdiags...)
	} else if p.Hostname != nil {
		h, err := p.Hostname()
		if err != nil {
			diags = append(diags, errorf(f.Body.MissingItemRange(), "Cannot find the host name", "The machine's host name is unknown (%s). Set host = \"NAME\" in plugs.hcl.", err))
		}
		d.Host = h
	}
	if d.Host != "" && strings.ContainsAny(d.Host, "/+#") {
		diags = append(diags, errorf(content.Attributes["host"].Expr.Range(), "Invalid host", "The host name becomes an MQTT topic level and cannot contain '/', '+' or '#'."))
	}

	for i, b := range blocks["broker"] {
		if i > 0 {
			diags = append(diags, duplicateBlock(b, blocks["broker"][0], "broker"))
			continue
		}
		d.Broker, cdiags = dc.decodeBroker(b)
		diags = append(diags, cdiags...)
	}

	seen := map[string]*Plug{}
	for _, b := range blocks["plug"] {
		dc.paramLines, dc.failedParams = nil, nil
		plug, pdiags := dc.decodePlug(b)
		diags = append(diags, pdiags...)
		// Which of its params are secret is known once its manifest is
		// (markSecrets): until then every one may be.
		d.secrets.pend(plug.DeclRange, dc.paramLines)
		d.secrets.pendValues(plug.DeclRange, plug)
		d.secrets.failed(plug.DeclRange, dc.failedParams)
		if prev, dup := seen[plug.Name]; dup {
			diags = append(diags, errorf(b.LabelRanges[0], "Duplicate plug block",
				"A plug named %q was already declared at %s. Plug names must be unique: rename or remove one of them.", plug.Name, prev.DeclRange))
			continue
		}
		seen[plug.Name] = plug
		d.Plugs = append(d.Plugs, plug)
		d.markSecrets(plug, plug.Plugin)
	}
	diags = append(diags, checkDependencies(d)...)
	return d, diags
}

// decoder evaluates the expressions of one file.
type decoder struct {
	p        *Parser
	versions map[string]hcl.Diagnostics // checkVersion's answers, by version
	baseDir  string
	ctx      *hcl.EvalContext
	vars     map[string]cty.Value // the values of var.*, for checking references
	src      []byte               // the file's source, when known
	dep      *Deployment          // the deployment being decoded, if any
	// instanceLimits holds instance limits blocks until their plug's
	// limits are known (spec/sandbox.go).
	instanceLimits map[*Instance]*hcl.Block
	// freeContent are the contents of decoded bodies, for reuse, and
	// alloc the chunks their attributes and blocks come from (content).
	freeContent []*hcl.BodyContent
	alloc       contentAlloc
	// paramLines are the params arguments of the plug being decoded (its
	// own and its instances') and the defaults of the variables they refer
	// to: blank in snippets until the plug's manifest is known.
	paramLines []hcl.Range
	// failedParams are its params that did not evaluate (markSecrets
	// keeps the secret ones blank).
	failedParams []failedParam
}

func duplicateBlock(b, first *hcl.Block, what string) *hcl.Diagnostic {
	return errorf(b.DefRange, fmt.Sprintf("Duplicate %s block", what),
		"Only one %s block is allowed here; another was declared at %s. Merge them into one.", what, first.DefRange)
}

// decodeVariables decodes the variable blocks and sets their values from
// given (strings from -var and PLUGS_VAR_), then from their defaults.
func (dc *decoder) decodeVariables(blocks hcl.Blocks, given map[string]string) (map[string]cty.Value, hcl.Diagnostics) {
	var diags hcl.Diagnostics
	vals := map[string]cty.Value{}
	declared := map[string]*hcl.Block{}
	fctx := &hcl.EvalContext{Functions: dc.p.functions(dc.baseDir)}
	for _, b := range blocks {
		name := b.Labels[0]
		if prev, dup := declared[name]; dup {
			diags = append(diags, errorf(b.LabelRanges[0], "Duplicate variable block",
				"A variable named %q was already declared at %s. Variable names must be unique.", name, prev.DefRange))
			continue
		}
		declared[name] = b
		if !hclsyntax.ValidIdentifier(name) {
			diags = append(diags, errorf(b.LabelRanges[0], "Invalid variable name",
				"A variable name must start with a letter and contain only letters, digits, underscores and dashes."))
		}
		content, cdiags := bodyContent(b.Body, variableBlockSchema)
		diags = append(diags, cdiags...)
		ty := cty.DynamicPseudoType
		if attr, ok := content.Attributes["type"]; ok {
			t, tdiags := typeexpr.TypeConstraint(attr.Expr)
			diags = append(diags, tdiags...)
			if !tdiags.HasErrors() {
				ty = t
			}
		}
		if attr, ok := content.Attributes["description"]; ok {
			_, ddiags := attr.Expr.Value(fctx)
			diags = append(diags, scrub(ddiags)...)
		}
		if raw, ok := given[name]; ok {
			v, err := parseVariableValue(raw, ty)
			if err != nil {
				diags = append(diags, errorf(b.LabelRanges[0], "Invalid value for input variable",
					"The value given for variable %q with -var or PLUGS_VAR_%s is not valid: %s. Give a value of type %s.", name, name, err, typeexpr.TypeString(ty)))
				v = cty.DynamicVal
			}
			vals[name] = v
			continue
		}
		attr, ok := content.Attributes["default"]
		if ok && dc.dep != nil {
			dc.dep.variableRanges[name] = attr.Range
		}
		if !ok {
			diags = append(diags, errorf(b.DefRange, "No value for required variable",
				"The variable %q has no default. Set it with -var %s=VALUE or the environment variable PLUGS_VAR_%s, or give it a default.", name, name, name))
			vals[name] = cty.DynamicVal
			continue
		}
		v, vdiags := attr.Expr.Value(fctx)
		diags = append(diags, scrub(vdiags)...)
		if cv, err := convert.Convert(v, ty); err != nil {
			diags = append(diags, errorf(attr.Expr.Range(), "Invalid default value for variable",
				"The default of variable %q is not of type %s: %s.", name, typeexpr.TypeString(ty), err))
			v = cty.DynamicVal
		} else {
			v = cv
		}
		vals[name] = v
	}
	for _, name := range sortedKeys(given) {
		if _, ok := declared[name]; !ok {
			diags = append(diags, &hcl.Diagnostic{Severity: hcl.DiagWarning, Summary: "Value for undeclared variable",
				Detail: fmt.Sprintf("A value was given for the variable %q (with -var or PLUGS_VAR_%s), but plugs.hcl declares no such variable. Declare it with a variable %q {} block, or remove the value.", name, name, name)})
		}
	}
	return vals, diags
}

// parseVariableValue converts a -var string to ty: strings are taken as
// written, any other type is parsed as an HCL literal expression.
func parseVariableValue(raw string, ty cty.Type) (cty.Value, error) {
	if ty == cty.String || ty == cty.DynamicPseudoType {
		return cty.StringVal(raw), nil
	}
	if checkNestingHCL([]byte(raw), "<value>").HasErrors() {
		return cty.NilVal, fmt.Errorf("nested too deeply")
	}
	if checkNumbersHCL([]byte(raw), "<value>").HasErrors() {
		return cty.NilVal, fmt.Errorf("a number out of the range of a 64-bit float")
	}
	expr, diags := hclsyntax.ParseExpression([]byte(raw), "<value>", hcl.InitialPos)
	if diags.HasErrors() {
		return cty.NilVal, fmt.Errorf("not a valid literal")
	}
	v, diags := expr.Value(nil)
	if diags.HasErrors() {
		return cty.NilVal, fmt.Errorf("not a literal value")
	}
	return convert.Convert(v, ty)
}

// eval evaluates expr after checking its var.* references, so that a typo
// gets a clear message instead of an "unsupported attribute" error.
func (dc *decoder) eval(expr hcl.Expression) (cty.Value, hcl.Diagnostics) {
	if v, ok := literalString(expr); ok {
		return v, nil
	}
	if name, ok := varRef(expr); ok && dc.ctx != nil && dc.ctx.Parent() == nil {
		if v, ok := dc.vars[name]; ok && dc.ctx.Variables["var"].Type().HasAttribute(name) {
			// What expr.Value(dc.ctx) gives: the attribute of the var object.
			return v, nil
		}
	}
	var diags hcl.Diagnostics
	vars := dc.vars
	for _, tr := range dc.variables(expr) {
		if tr.RootName() != "var" || len(tr) < 2 {
			continue
		}
		step, ok := tr[1].(hcl.TraverseAttr)
		if !ok {
			continue
		}
		if _, ok := vars[step.Name]; !ok {
			diags = append(diags, errorf(tr.SourceRange(), "Reference to undeclared input variable",
				"There is no variable named %q.%s Declare it with a variable %q {} block at the top of plugs.hcl.", step.Name, didYouMean(step.Name, sortedKeys(vars)), step.Name))
		}
	}
	if diags.HasErrors() {
		return cty.DynamicVal, diags
	}
	v, vdiags := expr.Value(dc.ctx)
	return v, scrub(vdiags)
}

// keyword is hcl.ExprAsKeyword without its allocations for the common case,
// a bare name as an object key (interval = "5s").
func keyword(e hcl.Expression) string {
	if k, ok := e.(*hclsyntax.ObjectConsKeyExpr); ok && !k.ForceNonLiteral {
		if st, ok := k.Wrapped.(*hclsyntax.ScopeTraversalExpr); ok && len(st.Traversal) == 1 {
			return st.Traversal.RootName()
		}
	}
	return hcl.ExprAsKeyword(e)
}

// literalString is the value of a quoted string without interpolations
// ("5s"), the commonest expression of plugs.hcl, without evaluating it:
// evaluation renders the template through a buffer and refines the result.
func literalString(expr hcl.Expression) (cty.Value, bool) {
	te, ok := expr.(*hclsyntax.TemplateExpr)
	if !ok || len(te.Parts) != 1 {
		return cty.NilVal, false
	}
	lit, ok := te.Parts[0].(*hclsyntax.LiteralValueExpr)
	if !ok || lit.Val.Type() != cty.String || lit.Val.IsMarked() {
		return cty.NilVal, false
	}
	return lit.Val, true
}

// varRef is the name of the variable a bare var.NAME refers to, the
// commonest expression with a variable (site = var.site).
func varRef(expr hcl.Expression) (string, bool) {
	st, ok := expr.(*hclsyntax.ScopeTraversalExpr)
	if !ok || len(st.Traversal) != 2 || st.Traversal.RootName() != "var" {
		return "", false
	}
	step, ok := st.Traversal[1].(hcl.TraverseAttr)
	return step.Name, ok
}

// variables returns the traversals in expr. Walking an expression for them
// allocates, and most expressions name no variable: an expression whose
// source does not spell "var" cannot refer to var.*, so it is not walked.
func (dc *decoder) variables(expr hcl.Expression) []hcl.Traversal {
	rng := expr.Range()
	if rng.Start.Byte <= rng.End.Byte && rng.End.Byte <= len(dc.src) &&
		!bytes.Contains(dc.src[rng.Start.Byte:rng.End.Byte], []byte("var")) {
		return nil
	}
	return expr.Variables()
}

// varNames returns the names of the variables expr refers to.
func (dc *decoder) varNames(expr hcl.Expression) []string {
	return dc.appendVarNames(nil, expr)
}

// appendVarNames appends the names of the variables expr refers to, in
// the order of expr.Variables(), walking a literal object item by item so
// that literal strings and bare var.NAME values cost no walk.
func (dc *decoder) appendVarNames(out []string, expr hcl.Expression) []string {
	if _, ok := literalString(expr); ok {
		return out
	}
	if name, ok := varRef(expr); ok {
		return append(out, name)
	}
	if oc, ok := expr.(*hclsyntax.ObjectConsExpr); ok {
		for _, item := range oc.Items {
			if k, ok := item.KeyExpr.(*hclsyntax.ObjectConsKeyExpr); !ok || k.ForceNonLiteral || keyword(k) == "" {
				out = dc.appendVarNames(out, item.KeyExpr)
			}
			out = dc.appendVarNames(out, item.ValueExpr)
		}
		return out
	}
	for _, tr := range dc.variables(expr) {
		if tr.RootName() != "var" || len(tr) < 2 {
			continue
		}
		if step, ok := tr[1].(hcl.TraverseAttr); ok {
			out = append(out, step.Name)
		}
	}
	return out
}

// evalAs evaluates attr and converts it to ty. ok is false when the value
// is null, unknown or invalid (then diagnosed).
func (dc *decoder) evalAs(attr *hcl.Attribute, ty cty.Type, what string) (cty.Value, bool, hcl.Diagnostics) {
	v, diags := dc.eval(attr.Expr)
	if diags.HasErrors() || v.IsNull() || !v.IsWhollyKnown() {
		return cty.NilVal, false, diags
	}
	cv, err := convert.Convert(v, ty)
	if err != nil {
		return cty.NilVal, false, append(diags, errorf(attr.Expr.Range(), "Incorrect attribute value type",
			"The argument %q must be %s: %s.", attr.Name, what, err))
	}
	if cv.IsNull() {
		return cty.NilVal, false, diags
	}
	return cv, true, diags
}

func (dc *decoder) evalString(attr *hcl.Attribute) (string, bool, hcl.Diagnostics) {
	v, ok, diags := dc.evalAs(attr, cty.String, "a string")
	if !ok {
		return "", false, diags
	}
	return v.AsString(), true, diags
}

func (dc *decoder) evalBool(attr *hcl.Attribute) (bool, bool, hcl.Diagnostics) {
	v, ok, diags := dc.evalAs(attr, cty.Bool, "true or false")
	if !ok {
		return false, false, diags
	}
	return v.True(), true, diags
}

// evalCount evaluates a non-negative whole number.
func (dc *decoder) evalCount(attr *hcl.Attribute) (uint64, bool, hcl.Diagnostics) {
	v, ok, diags := dc.evalAs(attr, cty.Number, "a number")
	if !ok {
		return 0, false, diags
	}
	bf := v.AsBigFloat()
	n, _ := bf.Uint64()
	if bf.Sign() < 0 || !bf.IsInt() || bf.Cmp(new(big.Float).SetUint64(math.MaxUint64)) > 0 {
		return 0, false, append(diags, errorf(attr.Expr.Range(), "Invalid number",
			"The argument %q must be a whole number, zero or more.", attr.Name))
	}
	return n, true, diags
}

// evalStrings evaluates a list of strings, returning the range of each
// element when the expression is a literal list.
func (dc *decoder) evalStrings(attr *hcl.Attribute) ([]string, []hcl.Range, hcl.Diagnostics) {
	if tc, ok := attr.Expr.(*hclsyntax.TupleConsExpr); ok {
		out, ranges := make([]string, len(tc.Exprs)), make([]hcl.Range, len(tc.Exprs))
		literal := true
		for i, e := range tc.Exprs {
			v, ok := literalString(e)
			if !ok {
				literal = false
				break
			}
			out[i], ranges[i] = v.AsString(), e.Range()
		}
		if literal {
			return out, ranges, nil
		}
	}
	v, ok, diags := dc.evalAs(attr, cty.List(cty.String), "a list of strings")
	if !ok {
		return nil, nil, diags
	}
	out := make([]string, 0, v.LengthInt())
	for it := v.ElementIterator(); it.Next(); {
		_, e := it.Element()
		if e.IsNull() {
			return nil, nil, append(diags, errorf(attr.Expr.Range(), "Invalid list element", "The list %q cannot contain null.", attr.Name))
		}
		out = append(out, e.AsString())
	}
	ranges := make([]hcl.Range, len(out))
	exprs, ldiags := hcl.ExprList(attr.Expr)
	for i := range ranges {
		ranges[i] = attr.Expr.Range()
		if !ldiags.HasErrors() && len(exprs) == len(out) {
			ranges[i] = exprs[i].Range()
		}
	}
	return out, ranges, diags
}

func (dc *decoder) evalStringMap(attr *hcl.Attribute) (map[string]string, hcl.Diagnostics) {
	v, ok, diags := dc.evalAs(attr, cty.Map(cty.String), "a map of strings")
	if !ok {
		return nil, diags
	}
	out := map[string]string{}
	for k, e := range v.AsValueMap() {
		if e.IsNull() {
			return nil, append(diags, errorf(attr.Expr.Range(), "Invalid map element", "The value of %q in %q cannot be null.", k, attr.Name))
		}
		out[k] = e.AsString()
	}
	return out, diags
}

// evalPositiveDuration evaluates a duration that must be more than zero:
// zero is refused (why says why), so that a zero Duration in the decoded
// types always means "not set" and the render fills the default.
func (dc *decoder) evalPositiveDuration(attr *hcl.Attribute, why string) (time.Duration, bool, hcl.Diagnostics) {
	d, ok, diags := dc.evalDuration(attr)
	if ok && d == 0 {
		return 0, false, append(diags, errorf(attr.Expr.Range(), "Invalid duration",
			"The argument %q must be more than 0s: %s. Remove it to take the default, or give a positive duration such as \"100ms\".", attr.Name, why))
	}
	return d, ok, diags
}

// evalDuration evaluates a duration string like "10s".
func (dc *decoder) evalDuration(attr *hcl.Attribute) (time.Duration, bool, hcl.Diagnostics) {
	s, ok, diags := dc.evalString(attr)
	if !ok {
		return 0, false, diags
	}
	dur, err := time.ParseDuration(s)
	if err != nil || dur < 0 {
		return 0, false, append(diags, errorf(attr.Expr.Range(), "Invalid duration",
			"The argument %q must be a duration of zero or more, a number with a unit such as \"500ms\", \"10s\", \"1m30s\" or \"2h\"; %q is not.", attr.Name, s))
	}
	return dur, true, diags
}

// pendParamLines records a params argument, and the defaults of the
// variables it refers to, as lines that may hold a secret.
func (dc *decoder) pendParamLines(attr *hcl.Attribute) {
	if dc.dep == nil {
		return
	}
	dc.paramLines = append(dc.paramLines, attr.Range)
	for _, v := range dc.varNames(attr.Expr) {
		if vr, ok := dc.dep.variableRanges[v]; ok {
			dc.paramLines = append(dc.paramLines, vr)
		}
	}
}

// decodeParams decodes a params = {...} argument, keeping the range of
// each param when the expression is a literal object.
func (dc *decoder) decodeParams(attr *hcl.Attribute) (map[string]cty.Value, map[string]hcl.Range, hcl.Diagnostics) {
	var buf [8]hcl.KeyValuePair
	pairs, mdiags := exprMap(attr.Expr, buf[:0])
	params, ranges := make(map[string]cty.Value, len(pairs)), make(map[string]hcl.Range, len(pairs))
	if mdiags.HasErrors() {
		// Not a literal object: merge(...), a variable. Evaluate it whole.
		v, diags := dc.eval(attr.Expr)
		if diags.HasErrors() || v.IsNull() {
			dc.paramFailed("", attr.Range, attr.Expr, diags)
			return params, ranges, diags
		}
		if !v.Type().IsObjectType() && !v.Type().IsMapType() || !v.IsWhollyKnown() {
			dc.paramFailed("", attr.Range, attr.Expr, hcl.Diagnostics{{Severity: hcl.DiagError}})
			return params, ranges, append(diags, errorf(attr.Expr.Range(), "Incorrect attribute value type",
				"The argument %q must be an object, like { name = \"value\" }.", attr.Name))
		}
		refs := dc.varNames(attr.Expr)
		for k, e := range v.AsValueMap() {
			params[k], ranges[k] = e, attr.Range
		}
		if dc.dep != nil && len(refs) > 0 {
			dc.dep.paramVars[attr.Range] = refs
		}
		return params, ranges, diags
	}
	var diags hcl.Diagnostics
	for _, pair := range pairs {
		key := keyword(pair.Key)
		if key == "" {
			kv, kdiags := dc.eval(pair.Key)
			diags = append(diags, kdiags...)
			if kdiags.HasErrors() {
				dc.paramFailed("", hcl.RangeBetween(pair.Key.Range(), pair.Value.Range()), pair.Value, kdiags)
				continue
			}
			kv, err := convert.Convert(kv, cty.String)
			if err != nil || kv.IsNull() || !kv.IsKnown() {
				dc.paramFailed("", hcl.RangeBetween(pair.Key.Range(), pair.Value.Range()), pair.Value, hcl.Diagnostics{{Severity: hcl.DiagError}})
				diags = append(diags, errorf(pair.Key.Range(), "Invalid param name", "A param name must be a string."))
				continue
			}
			key = kv.AsString()
		}
		rng := hcl.RangeBetween(pair.Key.Range(), pair.Value.Range())
		if prev, dup := ranges[key]; dup {
			dc.paramFailed(key, rng, pair.Value, hcl.Diagnostics{{Severity: hcl.DiagError}})
			diags = append(diags, errorf(pair.Key.Range(), "Duplicate param",
				"The param %q is already set at %s. Remove one of the two.", key, prev))
			continue
		}
		v, vdiags := dc.eval(pair.Value)
		diags = append(diags, vdiags...)
		if vdiags.HasErrors() {
			dc.paramFailed(key, rng, pair.Value, vdiags)
			continue
		}
		params[key], ranges[key] = v, rng
		if dc.dep != nil {
			if refs := dc.varNames(pair.Value); len(refs) > 0 {
				dc.dep.paramVars[rng] = refs
			}
		}
	}
	return params, ranges, diags
}

// exprMap is hcl.ExprMap appending to pairs, without its allocation for
// the common case, a literal object.
func exprMap(expr hcl.Expression, pairs []hcl.KeyValuePair) ([]hcl.KeyValuePair, hcl.Diagnostics) {
	oc, ok := expr.(*hclsyntax.ObjectConsExpr)
	if !ok {
		return hcl.ExprMap(expr)
	}
	for _, item := range oc.Items {
		pairs = append(pairs, hcl.KeyValuePair{Key: item.KeyExpr, Value: item.ValueExpr})
	}
	return pairs, nil
}

func (dc *decoder) decodeBroker(b *hcl.Block) (*Broker, hcl.Diagnostics) {
	br := &Broker{DeclRange: b.DefRange}
	content, diags := bodyContent(b.Body, brokerBlockSchema)
	if attr, ok := content.Attributes["url"]; ok {
		s, ok, sdiags := dc.evalString(attr)
		diags = append(diags, sdiags...)
		if ok {
			br.URL = s
			if _, err := brokerurl.Parse(s); err != nil { // what mqtt connects to
				diags = append(diags, errorf(attr.Expr.Range(), "Invalid broker URL",
					"The broker url must look like tcp://host:1883, ssl://host:8883 or ws://host:80/mqtt."))
			}
		}
	}
	if attr, ok := content.Attributes["username"]; ok {
		s, _, sdiags := dc.evalString(attr)
		br.Username, diags = s, append(diags, sdiags...)
	}
	if attr, ok := content.Attributes["password"]; ok {
		if dc.dep != nil {
			dc.dep.secrets.add(attr.Range)
		}
		s, _, sdiags := dc.evalString(attr)
		br.Password, diags = s, append(diags, sdiags...)
		if dc.dep != nil {
			dc.dep.secrets.learn(secretForms(s))
		}
	}
	return br, diags
}

func (dc *decoder) decodePlug(b *hcl.Block) (*Plug, hcl.Diagnostics) {
	plug := &Plug{
		Name: b.Labels[0], Enabled: true,
		DeclRange: b.DefRange, SourceRange: b.DefRange, VersionRange: b.DefRange,
	}
	var diags hcl.Diagnostics
	if !validNameChars(plug.Name) {
		diags = append(diags, errorf(b.LabelRanges[0], "Invalid plug name",
			"A plug name must start with a letter or digit and contain only letters, digits, '_', '.' and '-': it becomes a directory name and an MQTT topic level."))
	} else if len(plug.Name) > MaxNameBytes {
		diags = append(diags, errorf(b.LabelRanges[0], "Plug name too long",
			"A plug name may have at most %d bytes (this one has %d): it becomes a directory and file name. Shorten it.", MaxNameBytes, len(plug.Name)))
	}
	content, cdiags := dc.content(b.Body, plugBlockSchema)
	defer dc.release(content)
	diags = append(diags, cdiags...)
	attrs := content.Attributes

	if attr, ok := attrs["source"]; ok {
		plug.SourceRange = attr.Expr.Range()
		s, ok, sdiags := dc.evalString(attr)
		diags = append(diags, sdiags...)
		if ok {
			plug.Source = s
			diags = append(diags, checkSource(s, attr.Expr.Range())...)
		}
	}
	if attr, ok := attrs["version"]; ok {
		plug.VersionRange = attr.Expr.Range()
		s, ok, sdiags := dc.evalString(attr)
		diags = append(diags, sdiags...)
		if ok {
			plug.Version = s
			diags = append(diags, dc.checkVersion(s, attr.Expr.Range())...)
			if IsLocalSource(plug.Source) {
				diags = append(diags, warnf(attr.Expr.Range(), "Version of a local source is ignored",
					"The source %q is a local path: its content is taken as it is, and the version is ignored. Remove the version argument.", redact.Source(plug.Source)))
			}
		}
	}
	if attr, ok := attrs["params"]; ok {
		var pdiags hcl.Diagnostics
		plug.Params, plug.ParamRanges, pdiags = dc.decodeParams(attr)
		diags = append(diags, pdiags...)
		dc.pendParamLines(attr)
	}
	if attr, ok := attrs["depends_on"]; ok {
		var ddiags hcl.Diagnostics
		plug.DependsOn, plug.DependsOnRanges, ddiags = dc.evalStrings(attr)
		diags = append(diags, ddiags...)
	}
	if attr, ok := attrs["env"]; ok {
		var ediags hcl.Diagnostics
		plug.Env, ediags = dc.evalStringMap(attr)
		diags = append(diags, ediags...)
		diags = append(diags, checkEnv(attr, plug.Env)...)
	}
	if attr, ok := attrs["stop_timeout"]; ok {
		d, ok, ddiags := dc.evalPositiveDuration(attr, "a stop always gives the process time to exit: 0s would SIGKILL it at once, and systemd's meaning (wait forever) would hang every stop")
		diags = append(diags, ddiags...)
		if ok {
			plug.StopTimeout = d
		}
	}
	if attr, ok := attrs["enabled"]; ok {
		v, ok, bdiags := dc.evalBool(attr)
		diags = append(diags, bdiags...)
		if ok {
			plug.Enabled = v
		}
	}
	for _, name := range []string{"user", "group"} {
		if attr, ok := attrs[name]; ok {
			s, _, sdiags := dc.evalString(attr)
			diags = append(diags, sdiags...)
			if name == "user" {
				plug.User = s
			} else {
				plug.Group = s
			}
		}
	}

	if plug.Params == nil {
		plug.Params, plug.ParamRanges = map[string]cty.Value{}, map[string]hcl.Range{}
	}

	first := map[string]*hcl.Block{}
	instances := map[string]*Instance{}
	if n := countBlocks(content.Blocks, "instance"); n > 0 {
		plug.Instances = make([]*Instance, 0, n)
	}
	for _, blk := range content.Blocks {
		if blk.Type != "instance" && blk.Type != "check" && blk.Type != "task" && blk.Type != "schedule" {
			if prev, dup := first[blk.Type]; dup {
				diags = append(diags, duplicateBlock(blk, prev, blk.Type))
				continue
			}
			first[blk.Type] = blk
		}
		switch blk.Type {
		case "instance":
			inst, idiags := dc.decodeInstance(blk)
			diags = append(diags, idiags...)
			if prev, dup := instances[inst.Name]; dup {
				diags = append(diags, errorf(blk.LabelRanges[0], "Duplicate instance block",
					"The plug %q already has an instance named %q, declared at %s. Instance names must be unique within a plug.", plug.Name, inst.Name, prev.DeclRange))
				continue
			}
			instances[inst.Name] = inst
			plug.Instances = append(plug.Instances, inst)
		case "restart":
			rdiags := dc.decodeRestart(blk, &plug.Restart)
			diags = append(diags, rdiags...)
		case "limits":
			ldiags := dc.decodeLimits(blk, &plug.Limits)
			diags = append(diags, ldiags...)
		case "check", "check_restart", "update":
			diags = append(diags, dc.decodeHealthBlock(blk, &plug.Health, true)...)
		case "sandbox":
			diags = append(diags, dc.decodeSandbox(blk, &plug.Sandbox)...)
		case "task", "schedule":
			diags = append(diags, dc.decodeTaskBlock(blk, &plug.Task)...)
		case "hooks":
			plug.Hooks = &Hooks{}
			diags = append(diags, dc.decodeHooks(blk, plug.Hooks)...)
		case "plugin":
			m, mdiags := decodeManifestBody(blk.Body, plug.Name, dc)
			m.Format, m.Filename, m.DeclRange = FormatInline, blk.DefRange.Filename, blk.DefRange
			plug.Plugin = m
			diags = append(diags, mdiags...)
		}
	}
	diags = append(diags, dc.decodeInstanceLimits(plug)...)
	if len(plug.Instances) == 0 {
		plug.Instances = []*Instance{{Name: DefaultInstanceName, Params: map[string]cty.Value{}, ParamRanges: map[string]hcl.Range{}, DeclRange: plug.DeclRange}}
	}
	return plug, diags
}

// countBlocks is the number of blocks of type typ.
func countBlocks(blocks hcl.Blocks, typ string) int {
	n := 0
	for _, b := range blocks {
		if b.Type == typ {
			n++
		}
	}
	return n
}

func (dc *decoder) decodeInstance(b *hcl.Block) (*Instance, hcl.Diagnostics) {
	inst := &Instance{Name: b.Labels[0], DeclRange: b.DefRange}
	var diags hcl.Diagnostics
	if !validNameChars(inst.Name) {
		diags = append(diags, errorf(b.LabelRanges[0], "Invalid instance name",
			"An instance name must start with a letter or digit and contain only letters, digits, '_', '.' and '-': it becomes a directory name and an MQTT topic level."))
	} else if len(inst.Name) > MaxNameBytes {
		diags = append(diags, errorf(b.LabelRanges[0], "Instance name too long",
			"An instance name may have at most %d bytes (this one has %d): it becomes a directory and file name. Shorten it.", MaxNameBytes, len(inst.Name)))
	}
	content, cdiags := dc.content(b.Body, instanceBlockSchema)
	defer dc.release(content)
	diags = append(diags, cdiags...)
	if attr, ok := content.Attributes["params"]; ok {
		var pdiags hcl.Diagnostics
		inst.Params, inst.ParamRanges, pdiags = dc.decodeParams(attr)
		diags = append(diags, pdiags...)
		dc.pendParamLines(attr)
	}
	diags = append(diags, dc.keepInstanceLimits(inst, content.Blocks)...)
	if inst.Params == nil {
		inst.Params, inst.ParamRanges = map[string]cty.Value{}, map[string]hcl.Range{}
	}
	return inst, diags
}

func (dc *decoder) decodeRestart(b *hcl.Block, r *RestartPolicy) hcl.Diagnostics {
	content, diags := dc.content(b.Body, restartBlockSchema)
	defer dc.release(content)
	for name, dst := range map[string]*time.Duration{"initial_delay": &r.InitialDelay, "max_delay": &r.MaxDelay, "reset_after": &r.ResetAfter} {
		if attr, ok := content.Attributes[name]; ok {
			d, ok, ddiags := dc.evalPositiveDuration(attr, "a crash loop restarted without any delay would keep a core busy")
			diags = append(diags, ddiags...)
			if ok {
				*dst = d
			}
		}
	}
	if attr, ok := content.Attributes["max_restarts"]; ok {
		n, ok, ndiags := dc.evalCount(attr)
		diags = append(diags, ndiags...)
		if ok {
			r.MaxRestarts = int(min(n, 1<<31-1))
		}
	}
	if eff := r.WithDefaults(); eff.InitialDelay > eff.MaxDelay {
		diags = append(diags, errorf(b.DefRange, "Invalid restart policy",
			"The initial_delay (%s) is longer than max_delay (%s). Make max_delay at least as long as initial_delay.", eff.InitialDelay, eff.MaxDelay))
	}
	return diags
}

func (dc *decoder) decodeLimits(b *hcl.Block, l *Limits) hcl.Diagnostics {
	content, diags := dc.content(b.Body, limitsBlockSchema)
	defer dc.release(content)
	for name, dst := range map[string]*uint64{"nofile": &l.NoFile, "address_space": &l.AddrSpace, "nproc": &l.NProc} {
		if attr, ok := content.Attributes[name]; ok {
			n, _, ndiags := dc.evalCount(attr)
			diags = append(diags, ndiags...)
			*dst = n
		}
	}
	if attr, ok := content.Attributes["no_new_privs"]; ok {
		v, _, bdiags := dc.evalBool(attr)
		diags = append(diags, bdiags...)
		l.NoNewPrivs = v
	}
	diags = append(diags, dc.decodeCgroupLimits(content, l)...)
	return diags
}

// checkSource accepts git::URL[//subdir], local paths and http(s) archives.
func checkSource(s string, rng hcl.Range) hcl.Diagnostics {
	// One rule for what a source is (internal/source): what validate
	// accepts, fetch fetches.
	_, err := source.Parse(s, "/")
	if err == nil {
		return nil
	}
	// The source is quoted through the one redaction: a typo such as
	// git:https://user:token@host keeps its credentials otherwise. The
	// reason is internal/source's, written without them.
	why := ""
	var se *source.Error
	if errors.As(err, &se) {
		why = ": " + se.Reason
	}
	return hcl.Diagnostics{errorf(rng, "Invalid plug source",
		"The source %q is not one plugs can fetch%s. Use a git repository (\"git::https://host/repo.git\", optionally with \"//subdir\"), a local folder or archive (\"./plugins/name\", \"./uploads/name.zip\"), or an archive URL (\"https://host/name.tar.gz\").", redact.Source(s), why)}
}

// ValidName reports whether s can name a plug, an instance or a plugin:
// a letter or digit, then letters, digits, '_', '.' and '-', at most
// MaxNameBytes long.
func ValidName(s string) bool { return names.Valid(s) }
