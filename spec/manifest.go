package spec

import (
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/hashicorp/hcl/v2"
	"github.com/hashicorp/hcl/v2/ext/typeexpr"
	"github.com/hashicorp/hcl/v2/hclsyntax"
	"github.com/plugs-dev/plugs/internal/signame"
	"github.com/zclconf/go-cty/cty"
	"github.com/zclconf/go-cty/cty/convert"
)

// Manifest file names, in the order LoadManifest looks for them.
const (
	ManifestHCL  = "plugin.hcl"
	ManifestJSON = "plugin.json"
)

var manifestFileSchema = &hcl.BodySchema{
	Blocks: []hcl.BlockHeaderSchema{{Type: "plugin", LabelNames: []string{"name"}}},
}

// pluginBlockSchema is the body of plugin "NAME" {} in plugin.hcl and of the
// inline plugin {} block of a plug.
var pluginBlockSchema = &hcl.BodySchema{
	Attributes: []hcl.AttributeSchema{
		{Name: "version"}, {Name: "uuid"}, {Name: "description"}, {Name: "instructions"},
		{Name: "kind"}, {Name: "command", Required: true}, {Name: "build"}, {Name: "setup"},
		{Name: "setup_required"}, {Name: "exports"}, {Name: "stop_signal"}, {Name: "permissions"},
		{Name: "author"}, {Name: "license"},
	},
	Blocks: []hcl.BlockHeaderSchema{{Type: "param", LabelNames: []string{"name"}}, {Type: "hooks"},
		{Type: "check", LabelNames: []string{"name"}}, {Type: "check_restart"},
		{Type: "task"}, {Type: "schedule"}}, // spec/task.go
}

var paramBlockSchema = &hcl.BodySchema{
	Attributes: []hcl.AttributeSchema{{Name: "type"}, {Name: "required"}, {Name: "default"}, {Name: "secret"}, {Name: "description"}},
}

var hooksBlockSchema = &hcl.BodySchema{
	Attributes: []hcl.AttributeSchema{{Name: "pre_start"}, {Name: "post_start"}, {Name: "pre_stop"}},
}

// stopSignals are the signals a plugin may ask to be stopped with
// (internal/signame's list).
var stopSignals = signame.Stop

// LoadManifest reads the manifest of the plugin rooted at dir: plugin.hcl,
// else plugin.json in either legacy shape.
func (p *Parser) LoadManifest(dir string) (*Manifest, hcl.Diagnostics) {
	for _, name := range []string{ManifestHCL, ManifestJSON} {
		filename := filepath.Join(dir, name)
		if _, err := os.Stat(filename); err != nil {
			continue
		}
		src, diags := p.readFile(filename, "plugin manifest")
		if diags.HasErrors() {
			return nil, diags
		}
		return p.ParseManifest(src, filename)
	}
	return nil, hcl.Diagnostics{{Severity: hcl.DiagError, Summary: "Missing plugin manifest",
		Detail: fmt.Sprintf("The folder %s has neither a plugin.hcl nor a plugin.json. Add a plugin.hcl (plugs new writes one), or give the plug an inline plugin {} block.", dir)}}
}

// ParseManifest decodes manifest source read from filename: JSON when the
// name ends in .json, native HCL otherwise.
func (p *Parser) ParseManifest(src []byte, filename string) (*Manifest, hcl.Diagnostics) {
	m, diags := p.parseManifest(src, filename)
	return m, finish(diags)
}

// parseManifest is ParseManifest before finish (see output.go).
func (p *Parser) parseManifest(src []byte, filename string) (*Manifest, hcl.Diagnostics) {
	if strings.HasSuffix(filename, ".json") {
		return p.parseManifestJSON(src, filename)
	}
	f, diags := p.parseHCL(src, filename)
	if diags.HasErrors() {
		return nil, diags
	}
	content, cdiags := bodyContent(f.Body, manifestFileSchema)
	diags = append(diags, cdiags...)
	if len(content.Blocks) == 0 {
		return nil, append(diags, errorf(f.Body.MissingItemRange(), "Missing plugin block",
			"A plugin.hcl must hold one plugin \"NAME\" {} block describing the plugin."))
	}
	for _, b := range content.Blocks[1:] {
		diags = append(diags, duplicateBlock(b, content.Blocks[0], "plugin"))
	}
	b := content.Blocks[0]
	m, mdiags := decodeManifestBody(b.Body, b.Labels[0], &decoder{p: p, baseDir: filepath.Dir(filename), src: f.Bytes})
	m.Format, m.Filename, m.DeclRange = FormatHCL, filename, b.DefRange
	return m, append(diags, mdiags...)
}

// decodeManifestBody decodes the body of a plugin block.
func decodeManifestBody(body hcl.Body, name string, dc *decoder) (*Manifest, hcl.Diagnostics) {
	m := &Manifest{Name: name, Kind: KindScript}
	content, diags := dc.content(body, pluginBlockSchema)
	defer dc.release(content)
	attrs := content.Attributes
	for _, f := range [...]struct {
		name string
		dst  *string
	}{{"version", &m.Version}, {"uuid", &m.UUID}, {"description", &m.Description},
		{"instructions", &m.Instructions}, {"kind", &m.Kind}, {"exports", &m.Exports}, {"stop_signal", &m.StopSignal},
		{"author", &m.Author}, {"license", &m.License}} {
		attrName, dst := f.name, f.dst
		if attr, ok := attrs[attrName]; ok {
			s, ok, sdiags := dc.evalString(attr)
			diags = append(diags, sdiags...)
			if ok {
				*dst = s
			}
		}
	}
	if attr, ok := attrs["kind"]; ok && m.Kind != KindScript && m.Kind != KindCompiled {
		diags = append(diags, errorf(attr.Expr.Range(), "Invalid plugin kind",
			"The kind must be \"script\" (run as written) or \"compiled\" (built first by its build command); %q is neither.", m.Kind))
	}
	if attr, ok := attrs["stop_signal"]; ok {
		m.StopSignal = normalizeSignal(m.StopSignal)
		if !slices.Contains(stopSignals, m.StopSignal) {
			diags = append(diags, errorf(attr.Expr.Range(), "Invalid stop signal",
				"The stop_signal must be one of %s.", strings.Join(stopSignals, ", ")))
		}
	}
	for _, f := range [...]struct {
		name string
		dst  *[]string
	}{{"command", &m.Command}, {"build", &m.Build}, {"setup", &m.Setup}, {"permissions", &m.Permissions}} {
		attrName, dst := f.name, f.dst
		if attr, ok := attrs[attrName]; ok {
			list, _, ldiags := dc.evalStrings(attr)
			diags = append(diags, ldiags...)
			*dst = list
			if attrName != "permissions" && !ldiags.HasErrors() && (len(list) == 0 || list[0] == "") {
				diags = append(diags, errorf(attr.Expr.Range(), "Empty command",
					"The %s argument must list a program and its arguments, like [\"python3\", \"main.py\"].", attrName))
			} else if (attrName == "command" || attrName == "setup") && len(list) > 0 {
				diags = append(diags, programInTree(list[0], attrName, attr.Expr.Range())...)
			}
		}
	}
	if attr, ok := attrs["permissions"]; ok && len(m.Permissions) > 0 {
		diags = append(diags, checkPermissions(m.Permissions, attr.Expr.Range())...)
	}
	if attr, ok := attrs["setup_required"]; ok {
		v, _, bdiags := dc.evalBool(attr)
		m.SetupRequired, diags = v, append(diags, bdiags...)
	}
	seen := map[string]*ParamSpec{}
	var hooks *hcl.Block
	if n := countBlocks(content.Blocks, "param"); n > 0 {
		m.Params = make([]*ParamSpec, 0, n)
	}
	for _, b := range content.Blocks {
		if b.Type == "task" || b.Type == "schedule" {
			diags = append(diags, dc.decodeTaskBlock(b, &m.Task)...)
			continue
		}
		if b.Type == "check" || b.Type == "check_restart" {
			diags = append(diags, dc.decodeHealthBlock(b, &m.Health, false)...)
			continue
		}
		if b.Type == "hooks" {
			if hooks != nil {
				diags = append(diags, duplicateBlock(b, hooks, "hooks"))
				continue
			}
			hooks = b
			hdiags := dc.decodeHooks(b, &m.Hooks)
			diags = append(diags, hdiags...)
			continue
		}
		ps, pdiags := dc.decodeParamBlock(b)
		diags = append(diags, pdiags...)
		if prev, dup := seen[ps.Name]; dup {
			diags = append(diags, errorf(b.LabelRanges[0], "Duplicate param block",
				"A param named %q was already declared at %s. Param names must be unique.", ps.Name, prev.DeclRange))
			continue
		}
		seen[ps.Name] = ps
		m.Params = append(m.Params, ps)
	}
	return m, diags
}

func (dc *decoder) decodeHooks(b *hcl.Block, h *Hooks) hcl.Diagnostics {
	content, diags := dc.content(b.Body, hooksBlockSchema)
	defer dc.release(content)
	for _, f := range [...]struct {
		name string
		dst  *[]string
	}{{"pre_start", &h.PreStart}, {"post_start", &h.PostStart}, {"pre_stop", &h.PreStop}} {
		if attr, ok := content.Attributes[f.name]; ok {
			dst := f.dst
			list, _, ldiags := dc.evalStrings(attr)
			*dst, diags = list, append(diags, ldiags...)
		}
	}
	return diags
}

func (dc *decoder) decodeParamBlock(b *hcl.Block) (*ParamSpec, hcl.Diagnostics) {
	ps := &ParamSpec{Name: b.Labels[0], Type: cty.DynamicPseudoType, DeclRange: b.DefRange}
	content, diags := dc.content(b.Body, paramBlockSchema)
	defer dc.release(content)
	attrs := content.Attributes
	if attr, ok := attrs["type"]; ok {
		ty, tdiags := typeConstraint(attr.Expr)
		diags = append(diags, tdiags...)
		if !tdiags.HasErrors() {
			ps.Type = ty
		}
	}
	for _, f := range [...]struct {
		name string
		dst  *bool
	}{{"required", &ps.Required}, {"secret", &ps.Secret}} {
		if attr, ok := attrs[f.name]; ok {
			v, _, bdiags := dc.evalBool(attr)
			*f.dst, diags = v, append(diags, bdiags...)
		}
	}
	if attr, ok := attrs["description"]; ok {
		s, _, sdiags := dc.evalString(attr)
		ps.Description, diags = s, append(diags, sdiags...)
	}
	if attr, ok := attrs["default"]; ok {
		v, vdiags := dc.eval(attr.Expr)
		diags = append(diags, vdiags...)
		if !vdiags.HasErrors() && !v.IsNull() {
			d, err := convertParamDefault(v, ps.Type)
			if err != nil {
				diags = append(diags, errorf(attr.Expr.Range(), "Invalid default value for param",
					"The default of param %q is not of its type %s: %s.", ps.Name, typeexpr.TypeString(ps.Type), err))
			} else {
				ps.Default = d
			}
		}
		if ps.Required {
			diags = append(diags, warnf(attr.Expr.Range(), "Required param has a default",
				"The param %q is required, so its default is never used. Remove the default, or make the param optional.", ps.Name))
		}
	}
	return ps, diags
}

// typeConstraint is typeexpr.TypeConstraint, without its walk for a bare
// primitive type keyword (type = string), what nearly every param says.
func typeConstraint(expr hcl.Expression) (cty.Type, hcl.Diagnostics) {
	if st, ok := expr.(*hclsyntax.ScopeTraversalExpr); ok && len(st.Traversal) == 1 {
		switch st.Traversal.RootName() {
		case "string":
			return cty.String, nil
		case "number":
			return cty.Number, nil
		case "bool":
			return cty.Bool, nil
		case "any":
			return cty.DynamicPseudoType, nil
		}
	}
	return typeexpr.TypeConstraint(expr)
}

// convertParamDefault converts a default to the param's type; for "any"
// it keeps the value as it is.
func convertParamDefault(v cty.Value, ty cty.Type) (cty.Value, error) {
	if ty == cty.DynamicPseudoType {
		return v, nil
	}
	return convert.Convert(v, ty)
}

// normalizeSignal turns "term" or "TERM" into "SIGTERM" (internal/signame).
func normalizeSignal(s string) string { return signame.Normalize(s) }
