package spec

import (
	"fmt"
	"slices"
	"strings"

	"github.com/hashicorp/hcl/v2"
	"github.com/hashicorp/hcl/v2/ext/typeexpr"
	"github.com/hashicorp/hcl/v2/hclsyntax"
	"github.com/zclconf/go-cty/cty"
	"github.com/zclconf/go-cty/cty/convert"
)

// The fields of the two legacy plugin.json shapes.
var (
	mhealthFields = []string{"uuid", "name", "version", "description", "instructions", "type",
		"cli command", "cli args", "config requirement", "config cli command", "config cli args",
		"mqtt data export type", "configParams", "checks", "task", "schedule"}
	mobileOpsFields = []string{"name", "version", "description", "type", "entry_point",
		"configuration", "hooks", "permissions", "author", "license", "dependencies",
		"compatibility", "installed_at", "setup_required", "checks", "task", "schedule"}
	// mobileOpsOnly are the fields that tell the MobileOps shape apart.
	mobileOpsOnly = []string{"entry_point", "configuration", "hooks", "permissions", "compatibility", "installed_at", "setup_required", "dependencies"}
	// mobileOpsHooks are the hooks of MobileOps "hooks".
	mobileOpsHooks = []string{"pre_start", "post_start", "pre_stop"}
	// compatibilityFields are the fields of MobileOps "compatibility".
	compatibilityFields = []string{"platform_version", "python_version"}
	// configParamFields are the fields of one mHealth configParams entry.
	configParamFields = []string{"name", "type", "required", "default", "description", "secret"}
)

// jsonManifest decodes the values of one plugin.json.
type jsonManifest struct {
	attrs hcl.Attributes
	diags hcl.Diagnostics
}

// parseManifestJSON decodes a plugin.json in the mHealth plugin-server shape
// or the MobileOps shape, told apart by their fields.
func (p *Parser) parseManifestJSON(src []byte, filename string) (*Manifest, hcl.Diagnostics) {
	f, diags := p.parseJSON(src, filename)
	if diags.HasErrors() {
		return nil, diags
	}
	attrs, adiags := f.Body.JustAttributes()
	if adiags.HasErrors() {
		return nil, append(diags, adiags...)
	}
	j := &jsonManifest{attrs: attrs}
	m := &Manifest{Filename: filename, Kind: KindScript, DeclRange: f.Body.MissingItemRange()}
	m.Format = FormatMHealth
	fields := mhealthFields
	for _, k := range mobileOpsOnly {
		if _, ok := attrs[k]; ok {
			m.Format, fields = FormatMobileOps, mobileOpsFields
			break
		}
	}
	for _, name := range sortedKeys(attrs) {
		if !slices.Contains(fields, name) {
			a := attrs[name]
			j.diags = append(j.diags, warnf(a.NameRange, "Unknown manifest field",
				"The field %q is not part of the %s shape and is ignored.%s", name, m.Format, didYouMean(name, fields)))
		}
	}
	m.Name = j.str("name")
	m.Version = j.str("version")
	m.Description = j.str("description")
	m.Kind = j.kind("type")
	if m.Format == FormatMHealth {
		m.UUID = j.str("uuid")
		m.Instructions = j.str("instructions")
		m.Command = append(j.words("cli command"), j.words("cli args")...)
		m.SetupRequired = j.boolean("config requirement")
		m.Setup = append(j.words("config cli command"), j.words("config cli args")...)
		m.Exports = j.str("mqtt data export type")
		m.Params = j.configParams("configParams")
		if len(m.Command) == 0 {
			j.diags = append(j.diags, errorf(m.DeclRange, "Missing plugin command",
				"The plugin.json has no \"cli command\": add the program that runs the plugin, like \"cli command\": \"python3\", \"cli args\": [\"main.py\"]."))
		}
	} else {
		m.Command = entryPoint(j.words("entry_point"))
		m.Params = j.configuration("configuration")
		m.Hooks = j.hooks("hooks")
		m.Permissions = j.words("permissions")
		m.Author = j.author("author")
		m.License = j.str("license")
		m.Dependencies = j.dependencies("dependencies")
		m.Compatibility = j.compatibility("compatibility")
		m.InstalledAt = j.str("installed_at")
		m.SetupRequired = j.boolean("setup_required")
		if len(m.Command) == 0 {
			j.diags = append(j.diags, errorf(m.DeclRange, "Missing plugin command",
				"The plugin.json has no \"entry_point\": add the command that runs the plugin, like \"entry_point\": \"python3 main.py\"."))
		}
	}
	for _, key := range []string{"cli command", "entry_point", "config cli command"} {
		if _, a := j.value(key); a != nil {
			word := ""
			if key == "config cli command" && len(m.Setup) > 0 {
				word = m.Setup[0]
			} else if key != "config cli command" && len(m.Command) > 0 {
				word = m.Command[0]
			}
			j.diags = append(j.diags, programInTree(word, key, a.Expr.Range())...)
		}
	}
	m.Health.Checks = j.checks("checks") // spec/check.go
	m.Task = j.task()                    // spec/task.go
	if m.Name == "" {
		j.diags = append(j.diags, errorf(m.DeclRange, "Missing plugin name", "The plugin.json has no \"name\": add the plugin's name."))
	}
	if a, ok := attrs["permissions"]; ok && len(m.Permissions) > 0 {
		j.diags = append(j.diags, checkPermissions(m.Permissions, a.Expr.Range())...)
	}
	return m, append(diags, j.diags...)
}

// entryPoint turns a MobileOps entry_point into a command. MobileOps runs
// `cd <plugin dir>; ./<entry_point>`: a single word naming a file is run
// from the plugin's folder; a Python script through python3 (what MobileOps
// users expect, so a main.py without its run bit or a shebang still runs).
// Longer commands ("python3 main.py --v") are taken as written.
func entryPoint(words []string) []string {
	if len(words) != 1 || strings.ContainsAny(words[0], "/\\") {
		return words
	}
	if strings.HasSuffix(words[0], ".py") {
		return []string{"python3", words[0]}
	}
	return []string{"./" + words[0]}
}

// author decodes "author": a string, or an object with name and email.
func (j *jsonManifest) author(name string) string {
	v, a := j.value(name)
	if a == nil {
		return ""
	}
	if v.Type() == cty.String {
		return v.AsString()
	}
	if v.Type().IsObjectType() {
		var parts []string
		for _, k := range []string{"name", "email"} {
			if v.Type().HasAttribute(k) {
				if e := v.GetAttr(k); !e.IsNull() && e.Type() == cty.String && e.AsString() != "" {
					if k == "email" {
						parts = append(parts, "<"+e.AsString()+">")
					} else {
						parts = append(parts, e.AsString())
					}
				}
			}
		}
		return strings.Join(parts, " ")
	}
	j.wrongType(a, "a string, or an object with name and email")
	return ""
}

// dependencies decodes MobileOps "dependencies": a list of pip requirement
// specifiers (["requests>=2.31", "paho-mqtt"]), or an object of package
// names and version specifiers ({"requests": ">=2.31", "paho-mqtt": "*"}).
func (j *jsonManifest) dependencies(name string) []string {
	a, ok := j.attrs[name]
	if !ok {
		return nil
	}
	if pairs, ok := stringPairs(a.Expr); ok {
		var out []string
		for _, pair := range pairs {
			v, vdiags := pair.value.Value(nil)
			j.diags = append(j.diags, vdiags...)
			if vdiags.HasErrors() {
				continue
			}
			if v.IsNull() || v.Type() != cty.String {
				j.diags = append(j.diags, errorf(pair.value.Range(), "Incorrect field type", "The version of dependency %q must be a string such as \">=2.31\" or \"*\".", pair.key))
				continue
			}
			spec := strings.TrimSpace(v.AsString())
			if spec == "*" || spec == "" {
				spec = ""
			} else if spec[0] >= '0' && spec[0] <= '9' {
				spec = "==" + spec
			}
			out = append(out, pair.key+spec)
		}
		return out
	}
	return j.words(name)
}

// compatibility decodes MobileOps "compatibility": the plugs (platform) and
// python3 versions the plugin needs, as version constraints.
func (j *jsonManifest) compatibility(name string) Compatibility {
	var c Compatibility
	a, ok := j.attrs[name]
	if !ok {
		return c
	}
	pairs, ok := stringPairs(a.Expr)
	if !ok {
		j.wrongType(a, "an object with platform_version and python_version")
		return c
	}
	for _, pair := range pairs {
		v, vdiags := pair.value.Value(nil)
		j.diags = append(j.diags, vdiags...)
		if vdiags.HasErrors() || v.IsNull() {
			continue
		}
		var dst *string
		var rng *hcl.Range
		switch pair.key {
		case "platform_version":
			dst, rng = &c.PlatformVersion, &c.PlatformVersionRange
		case "python_version":
			dst, rng = &c.PythonVersion, &c.PythonVersionRange
		default:
			j.diags = append(j.diags, warnf(pair.keyRange, "Unknown compatibility field", "The field %q of compatibility is not one of %s and is ignored.%s",
				pair.key, strings.Join(compatibilityFields, ", "), didYouMean(pair.key, compatibilityFields)))
			continue
		}
		if v.Type() != cty.String {
			j.diags = append(j.diags, errorf(pair.value.Range(), "Incorrect field type", "The field %q must be a version constraint string such as \">=3.9\".", pair.key))
			continue
		}
		*dst, *rng = v.AsString(), pair.value.Range()
		if _, err := parseLooseConstraint(*dst); err != nil {
			j.diags = append(j.diags, errorf(pair.value.Range(), "Invalid version constraint",
				"The %s %q is not a version constraint: write one such as \">=3.9\", \">= 1.0, < 2.0\" or \"3.11\".", pair.key, *dst))
		}
	}
	return c
}

// value evaluates an attribute as a JSON literal.
func (j *jsonManifest) value(name string) (cty.Value, *hcl.Attribute) {
	a, ok := j.attrs[name]
	if !ok {
		return cty.NilVal, nil
	}
	v, diags := a.Expr.Value(nil)
	j.diags = append(j.diags, diags...)
	if diags.HasErrors() || v.IsNull() {
		return cty.NilVal, nil
	}
	return v, a
}

func (j *jsonManifest) wrongType(a *hcl.Attribute, want string) {
	j.diags = append(j.diags, errorf(a.Expr.Range(), "Incorrect field type", "The field %q must be %s.", a.Name, want))
}

func (j *jsonManifest) str(name string) string {
	v, a := j.value(name)
	if a == nil {
		return ""
	}
	if v.Type() != cty.String {
		j.wrongType(a, "a string")
		return ""
	}
	return v.AsString()
}

func (j *jsonManifest) boolean(name string) bool {
	v, a := j.value(name)
	if a == nil {
		return false
	}
	if v.Type() != cty.Bool {
		j.wrongType(a, "true or false")
		return false
	}
	return v.True()
}

// kind maps a legacy "type" to a plugin kind: compiled for binaries,
// script for everything run by an interpreter.
func (j *jsonManifest) kind(name string) string {
	switch strings.ToLower(j.str(name)) {
	case "compiled", "binary", "executable", "native":
		return KindCompiled
	}
	return KindScript
}

// words decodes a command: a string split at spaces, or a list of strings.
func (j *jsonManifest) words(name string) []string {
	v, a := j.value(name)
	if a == nil {
		return nil
	}
	return j.wordsOf(v, a)
}

func (j *jsonManifest) wordsOf(v cty.Value, a *hcl.Attribute) []string {
	if v.Type() == cty.String {
		return strings.Fields(v.AsString())
	}
	lv, err := convert.Convert(v, cty.List(cty.String))
	if err != nil || !lv.IsWhollyKnown() {
		j.wrongType(a, "a string or a list of strings")
		return nil
	}
	var out []string
	for _, e := range lv.AsValueSlice() {
		if e.IsNull() {
			j.wrongType(a, "a list of strings without null")
			return nil
		}
		out = append(out, e.AsString())
	}
	return out
}

func (j *jsonManifest) hooks(name string) Hooks {
	var h Hooks
	a, ok := j.attrs[name]
	if !ok {
		return h
	}
	pairs, ok := stringPairs(a.Expr)
	if !ok {
		j.wrongType(a, "an object with pre_start, post_start and pre_stop")
		return h
	}
	for _, pair := range pairs {
		sub := &hcl.Attribute{Name: pair.key, Expr: pair.value, NameRange: pair.keyRange, Range: pair.value.Range()}
		v, vdiags := pair.value.Value(nil)
		j.diags = append(j.diags, vdiags...)
		if vdiags.HasErrors() || v.IsNull() {
			continue
		}
		switch sub.Name {
		case "pre_start":
			h.PreStart = j.wordsOf(v, sub)
		case "post_start":
			h.PostStart = j.wordsOf(v, sub)
		case "pre_stop":
			h.PreStop = j.wordsOf(v, sub)
		default:
			j.diags = append(j.diags, warnf(pair.keyRange, "Unknown hook", "The hook %q is not one of pre_start, post_start, pre_stop and is ignored.%s",
				sub.Name, didYouMean(sub.Name, mobileOpsHooks)))
		}
	}
	return h
}

// configuration decodes MobileOps "configuration": param defaults, each
// param typed after its default.
func (j *jsonManifest) configuration(name string) []*ParamSpec {
	a, ok := j.attrs[name]
	if !ok {
		return nil
	}
	pairs, ok := stringPairs(a.Expr)
	if !ok {
		j.wrongType(a, "an object of param defaults")
		return nil
	}
	var out []*ParamSpec
	for _, pair := range pairs {
		v, vdiags := pair.value.Value(nil)
		j.diags = append(j.diags, vdiags...)
		if vdiags.HasErrors() {
			continue
		}
		ps := &ParamSpec{Name: pair.key, Type: cty.DynamicPseudoType, DeclRange: hcl.RangeBetween(pair.keyRange, pair.value.Range())}
		if !v.IsNull() {
			ps.Type = inferParamType(v)
			ps.Default, _ = convertParamDefault(v, ps.Type)
		}
		out = append(out, ps)
	}
	return out
}

// inferParamType is the param type a JSON default implies: string, number,
// bool, list(string), map(string), or any.
func inferParamType(v cty.Value) cty.Type {
	ty := v.Type()
	switch {
	case ty == cty.String || ty == cty.Number || ty == cty.Bool:
		return ty
	case ty.IsTupleType() || ty.IsListType():
		if _, err := convert.Convert(v, cty.List(cty.String)); err == nil && allOfType(v, cty.String) {
			return cty.List(cty.String)
		}
	case ty.IsObjectType() || ty.IsMapType():
		if allOfType(v, cty.String) {
			return cty.Map(cty.String)
		}
	}
	return cty.DynamicPseudoType
}

func allOfType(v cty.Value, ty cty.Type) bool {
	for it := v.ElementIterator(); it.Next(); {
		_, e := it.Element()
		if e.Type() != ty {
			return false
		}
	}
	return true
}

// configParams decodes mHealth "configParams": a list of
// {name, type, required, default, description, secret} objects, or an object
// of such objects keyed by name.
func (j *jsonManifest) configParams(name string) []*ParamSpec {
	a, ok := j.attrs[name]
	if !ok {
		return nil
	}
	var out []*ParamSpec
	seen := map[string]bool{}
	add := func(ps *ParamSpec) {
		if ps == nil {
			return
		}
		if seen[ps.Name] {
			j.diags = append(j.diags, errorf(ps.DeclRange, "Duplicate param", "The param %q is declared twice. Param names must be unique.", ps.Name))
			return
		}
		seen[ps.Name] = true
		out = append(out, ps)
	}
	if elems, diags := hcl.ExprList(a.Expr); !diags.HasErrors() {
		for _, e := range elems {
			if v, vdiags := e.Value(nil); !vdiags.HasErrors() && v.Type() == cty.String && !v.IsNull() {
				// A name alone ("the parameter names to config"): a string,
				// required when the plugin requires configuration.
				ps := &ParamSpec{Name: v.AsString(), Type: cty.String, Required: j.boolean("config requirement"), DeclRange: e.Range()}
				if ps.Name == "" {
					j.diags = append(j.diags, errorf(e.Range(), "Missing param name", "A configParams name cannot be empty."))
					continue
				}
				add(ps)
				continue
			}
			add(j.configParam(e, ""))
		}
		return out
	}
	pairs, ok := stringPairs(a.Expr)
	if !ok {
		j.wrongType(a, "a list of {\"name\", \"type\", ...} objects")
		return nil
	}
	for _, pair := range pairs {
		add(j.configParam(pair.value, pair.key))
	}
	return out
}

// configParam decodes one configParams entry; name is its key when the
// params are an object.
func (j *jsonManifest) configParam(expr hcl.Expression, name string) *ParamSpec {
	pairs, ok := stringPairs(expr)
	if !ok {
		j.diags = append(j.diags, errorf(expr.Range(), "Invalid param", "Each configParams entry must be a name (\"device_id\") or an object like {\"name\": \"device_id\", \"type\": \"string\", \"required\": true}."))
		return nil
	}
	fields := map[string]cty.Value{}
	ranges := map[string]hcl.Range{}
	for _, pair := range pairs {
		v, vdiags := pair.value.Value(nil)
		j.diags = append(j.diags, vdiags...)
		if vdiags.HasErrors() {
			continue
		}
		k := pair.key
		if !slices.Contains(configParamFields, k) {
			j.diags = append(j.diags, warnf(pair.keyRange, "Unknown param field", "The field %q of a configParams entry is ignored.%s", k, didYouMean(k, configParamFields)))
			continue
		}
		fields[k], ranges[k] = v, pair.value.Range()
	}
	ps := &ParamSpec{Name: name, Type: cty.DynamicPseudoType, DeclRange: expr.Range()}
	get := func(k string, ty cty.Type, what string) (cty.Value, bool) {
		v, ok := fields[k]
		if !ok || v.IsNull() {
			return cty.NilVal, false
		}
		if v.Type() != ty {
			j.diags = append(j.diags, errorf(ranges[k], "Incorrect field type", "The field %q of a param must be %s.", k, what))
			return cty.NilVal, false
		}
		return v, true
	}
	if v, ok := get("name", cty.String, "a string"); ok {
		ps.Name = v.AsString()
	}
	if ps.Name == "" {
		j.diags = append(j.diags, errorf(expr.Range(), "Missing param name", "Each configParams entry needs a \"name\"."))
		return nil
	}
	if v, ok := get("type", cty.String, "a type name like \"string\""); ok {
		ty, err := parseTypeName(v.AsString())
		if err != nil {
			j.diags = append(j.diags, errorf(ranges["type"], "Invalid param type",
				"The type of param %q must be string, number, bool, list(string), map(string) or any: %s.", ps.Name, err))
		} else {
			ps.Type = ty
		}
	}
	if v, ok := get("required", cty.Bool, "true or false"); ok {
		ps.Required = v.True()
	}
	if v, ok := get("secret", cty.Bool, "true or false"); ok {
		ps.Secret = v.True()
	}
	if v, ok := get("description", cty.String, "a string"); ok {
		ps.Description = v.AsString()
	}
	if v, ok := fields["default"]; ok && !v.IsNull() {
		d, err := convertParamDefault(v, ps.Type)
		if err != nil {
			j.diags = append(j.diags, errorf(ranges["default"], "Invalid default value for param",
				"The default of param %q is not of its type %s: %s.", ps.Name, typeexpr.TypeString(ps.Type), err))
		} else {
			ps.Default = d
		}
	}
	return ps
}

// typeAliases are the type names legacy manifests use for cty types.
var typeAliases = map[string]string{"boolean": "bool", "integer": "number", "int": "number", "float": "number", "array": "list(string)", "object": "map(string)", "str": "string"}

// parseTypeName parses a type written as a string: "string",
// "list(string)", "any", or a legacy alias such as "boolean".
func parseTypeName(s string) (cty.Type, error) {
	s = strings.TrimSpace(s)
	if alias, ok := typeAliases[strings.ToLower(s)]; ok {
		s = alias
	}
	if checkNestingHCL([]byte(s), "<type>").HasErrors() {
		return cty.NilType, fmt.Errorf("%q is nested too deeply", s)
	}
	expr, diags := hclsyntax.ParseExpression([]byte(s), "<type>", hcl.InitialPos)
	if diags.HasErrors() {
		return cty.NilType, fmt.Errorf("%q is not a type", s)
	}
	ty, diags := typeexpr.TypeConstraint(expr)
	if diags.HasErrors() {
		return cty.NilType, fmt.Errorf("%q is not a type", s)
	}
	return ty, nil
}

// keyedExpr is one string-keyed member of a JSON object.
type keyedExpr struct {
	key      string
	keyRange hcl.Range
	value    hcl.Expression
}

// stringPairs returns the string-keyed members of an object expression, in
// order; ok is false when expr is not an object. (JSON keys are always
// strings; a key that does not evaluate to one is skipped.)
func stringPairs(expr hcl.Expression) (pairs []keyedExpr, ok bool) {
	items, diags := hcl.ExprMap(expr)
	if diags.HasErrors() {
		return nil, false
	}
	for _, item := range items {
		key, kdiags := item.Key.Value(nil)
		if kdiags.HasErrors() || key.Type() != cty.String || key.IsNull() {
			continue
		}
		pairs = append(pairs, keyedExpr{key: key.AsString(), keyRange: item.Key.Range(), value: item.Value})
	}
	return pairs, true
}
