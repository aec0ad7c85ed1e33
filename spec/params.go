package spec

import (
	"slices"

	"github.com/hashicorp/hcl/v2"
	"github.com/hashicorp/hcl/v2/ext/typeexpr"
	"github.com/zclconf/go-cty/cty"
)

// InstanceParams merges the params of one instance: the manifest's
// defaults, then the plug's params, then the instance's. Each value is
// checked against the manifest and converted to its declared type.
// Diagnostics point at plugs.hcl and never contain a param's value.
func InstanceParams(plug *Plug, inst *Instance, m *Manifest) (map[string]cty.Value, hcl.Diagnostics) {
	params, diags := instanceParams(plug, inst, m)
	return params, finish(diags)
}

// instanceParams is InstanceParams before finish (see output.go).
func instanceParams(plug *Plug, inst *Instance, m *Manifest) (map[string]cty.Value, hcl.Diagnostics) {
	return instanceParamsInto(map[string]cty.Value{}, plug, inst, m)
}

// instanceParamsInto is instanceParams filling out, which must be empty.
func instanceParamsInto(out map[string]cty.Value, plug *Plug, inst *Instance, m *Manifest) (map[string]cty.Value, hcl.Diagnostics) {
	var diags hcl.Diagnostics
	for _, ps := range m.Params {
		if ps.Default != cty.NilVal {
			if d := checkParamNumbers(ps.Default, ps.Name, m, ps.DeclRange); d != nil {
				diags = append(diags, d)
				continue
			}
			out[ps.Name] = ps.Default
		}
	}
	diags = append(diags, mergeParams(out, plug.Params, plug.ParamRanges, m)...)
	diags = append(diags, mergeParams(out, inst.Params, inst.ParamRanges, m)...)
	for _, ps := range m.Params {
		if _, ok := out[ps.Name]; ps.Required && !ok {
			where := "the instance " + quote(inst.Name) + " of plug " + quote(plug.Name)
			if inst.Name == DefaultInstanceName && inst.DeclRange == plug.DeclRange {
				where = "the plug " + quote(plug.Name)
			}
			diags = append(diags, errorf(inst.DeclRange, "Missing required param",
				"The plugin %q requires the param %q (%s), but %s does not set it. Add %s = ... to the plug's or the instance's params.",
				m.Name, ps.Name, typeexpr.TypeString(ps.Type), where, ps.Name))
		}
	}
	return out, diags
}

func quote(s string) string { return `"` + s + `"` }

// mergeParams converts params to their declared types and sets them in out.
func mergeParams(out, params map[string]cty.Value, ranges map[string]hcl.Range, m *Manifest) hcl.Diagnostics {
	var diags hcl.Diagnostics
	var buf [16]string // in the sorted order of the names, for the order of the diagnostics
	keys := buf[:0]
	for name := range params {
		keys = append(keys, name)
	}
	slices.Sort(keys)
	for _, name := range keys {
		v, rng := params[name], ranges[name]
		ps := m.Param(name)
		if ps == nil {
			names := make([]string, len(m.Params))
			for i, p := range m.Params {
				names[i] = p.Name
			}
			diags = append(diags, errorf(rng, "Unsupported param",
				"The plugin %q declares no param named %q.%s Remove it, or check the plugin's manifest for the params it takes.",
				m.Name, name, didYouMean(name, names)))
			continue
		}
		if v.IsNull() {
			continue // null leaves the default in place
		}
		// Before the conversion: a number converted to a string is written
		// out in full (the number rule, numbers.go).
		if d := checkParamNumbers(v, name, m, rng); d != nil {
			diags = append(diags, d)
			continue
		}
		cv, err := convertParamDefault(v, ps.Type)
		if err != nil {
			diags = append(diags, errorf(rng, "Invalid param value",
				"The param %q of plugin %q must be of type %s: %s. Give it a value of that type.",
				name, m.Name, typeexpr.TypeString(ps.Type), err))
			continue
		}
		out[name] = cv
	}
	return diags
}

// CheckPlugs checks the params of every instance of every plug whose
// manifest is in manifests (keyed by plug name). A plug-level mistake is
// reported once, not once per instance.
func CheckPlugs(d *Deployment, manifests map[string]*Manifest) hcl.Diagnostics {
	return d.secrets.finish(checkPlugs(d, manifests))
}

// checkPlugs is CheckPlugs before finish (see output.go).
func checkPlugs(d *Deployment, manifests map[string]*Manifest) hcl.Diagnostics {
	var diags hcl.Diagnostics
	for _, plug := range d.Plugs {
		if m := manifests[plug.Name]; m != nil {
			diags = append(diags, d.checkPlugParams(plug, m)...)
		}
	}
	return diags
}

// PlugParams merges and checks the params of every instance of plug
// against m (see InstanceParams), in plug.Instances order; an instance
// whose params are wrong has nil params. It marks the plug's secret lines
// for Parser.Files, and reports a plug-level mistake once, not once per
// instance. It is what the render step calls.
func (d *Deployment) PlugParams(plug *Plug, m *Manifest) ([]map[string]cty.Value, hcl.Diagnostics) {
	params, diags := d.plugParams(plug, m)
	return params, d.secrets.finish(diags)
}

// plugParams is PlugParams before finish.
func (d *Deployment) plugParams(plug *Plug, m *Manifest) ([]map[string]cty.Value, hcl.Diagnostics) {
	out := make([]map[string]cty.Value, len(plug.Instances))
	return out, d.eachInstanceParams(plug, m, func(i int, params map[string]cty.Value) { out[i] = params })
}

// checkPlugParams is plugParams for its diagnostics only: one map serves
// every instance.
func (d *Deployment) checkPlugParams(plug *Plug, m *Manifest) hcl.Diagnostics {
	return d.eachInstanceParams(plug, m, nil)
}

// eachInstanceParams merges the params of each instance of plug and hands
// them to keep, when not nil, if they are right (the map is keep's); with
// keep nil the map is cleared and reused for the next instance.
func (d *Deployment) eachInstanceParams(plug *Plug, m *Manifest, keep func(int, map[string]cty.Value)) hcl.Diagnostics {
	d.markSecrets(plug, m)
	var diags hcl.Diagnostics
	seen := map[string]bool{}
	var scratch map[string]cty.Value
	for i, inst := range plug.Instances {
		out := scratch
		if keep != nil || out == nil {
			out = map[string]cty.Value{}
		}
		params, idiags := instanceParamsInto(out, plug, inst, m)
		if keep == nil {
			clear(params)
			scratch = params
		}
		for _, diag := range idiags {
			key := diag.Summary + "\x00" + diag.Detail
			if diag.Subject != nil {
				key += "\x00" + diag.Subject.String()
			}
			if !seen[key] {
				seen[key] = true
				diags = append(diags, diag)
			}
		}
		if keep != nil && !idiags.HasErrors() {
			keep(i, params)
		}
	}
	return diags
}

// SecretParams returns the names of m's secret params.
func SecretParams(m *Manifest) map[string]bool {
	out := map[string]bool{}
	if m == nil {
		return out
	}
	for _, p := range m.Params {
		if p.Secret {
			out[p.Name] = true
		}
	}
	return out
}
