package render_test

import (
	"fmt"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/hashicorp/hcl/v2"
	"github.com/plugs-dev/plugs/instance"
	"github.com/plugs-dev/plugs/render"
	"github.com/plugs-dev/plugs/spec"
	"github.com/zclconf/go-cty/cty"
)

// manyPlugs is a deployment of n heart-rate plugs (plug i has 1 + i%3
// instances) with their plugins. Every 7th plug is not fetched and every
// 11th has an instance whose param is of the wrong type, so that its
// diagnostics fall between rendered instances.
func manyPlugs(n int) (*spec.Deployment, map[string]render.Plugin) {
	d := &spec.Deployment{Filename: "plugs.hcl", Host: "edge-01"}
	ps := map[string]render.Plugin{}
	for i := range n {
		name := fmt.Sprintf("p%04d", i)
		rng := hcl.Range{Filename: "plugs.hcl", Start: hcl.Pos{Line: 10 * i, Column: 1}, End: hcl.Pos{Line: 10 * i, Column: 5}}
		p := &spec.Plug{Name: name, Source: "./plugins/heart-rate", Enabled: true, DeclRange: rng,
			Params: map[string]cty.Value{"token": cty.StringVal("s3cret-" + name)}, ParamRanges: map[string]hcl.Range{"token": rng}}
		for k := range 1 + i%3 {
			in := &spec.Instance{Name: fmt.Sprintf("i%d", k), DeclRange: rng,
				Params: map[string]cty.Value{"device_id": cty.StringVal(name)}, ParamRanges: map[string]hcl.Range{"device_id": rng}}
			if i%11 == 0 && k == 0 {
				in.Params["samples"] = cty.StringVal("many")
				in.ParamRanges["samples"] = rng
			}
			p.Instances = append(p.Instances, in)
		}
		d.Plugs = append(d.Plugs, p)
		if i%7 != 0 {
			ps[name] = render.Plugin{Dir: "/state/plugins/" + name, Source: p.Source, Revision: "abc123", Manifest: heartRateManifest()}
		}
	}
	return d, ps
}

// TestDesiredInDeclarationOrder: with more instances than one goroutine
// renders (they are rendered in parallel), the specs and the diagnostics
// come in declaration order, and each spec is the one its plug renders to
// on its own.
func TestDesiredInDeclarationOrder(t *testing.T) {
	d, ps := manyPlugs(400)
	specs, diags := render.Desired(d, ps, broker)

	var wantIDs, gotIDs []string
	var wantDiags, gotDiags []string
	byID := map[instance.ID]instance.Spec{}
	for _, s := range specs {
		gotIDs = append(gotIDs, s.ID.String())
		byID[s.ID] = s
	}
	for _, diag := range diags {
		gotDiags = append(gotDiags, fmt.Sprintf("line %d: %s", diag.Subject.Start.Line, diag.Summary))
	}
	for _, p := range d.Plugs {
		alone := &spec.Deployment{Filename: d.Filename, Host: d.Host, Plugs: []*spec.Plug{p}}
		one, odiags := render.Desired(alone, ps, broker)
		for _, diag := range odiags {
			wantDiags = append(wantDiags, fmt.Sprintf("line %d: %s", diag.Subject.Start.Line, diag.Summary))
		}
		for _, s := range one {
			wantIDs = append(wantIDs, s.ID.String())
			if diff := cmp.Diff(s, byID[s.ID]); diff != "" {
				t.Fatalf("%s rendered with the others differs from its plug rendered alone (-alone +together):\n%s", s.ID, diff)
			}
		}
	}
	if len(wantIDs) < 500 || len(wantDiags) < 80 {
		t.Fatalf("the deployment renders %d instances and %d diagnostics: too few to test the order", len(wantIDs), len(wantDiags))
	}
	if diff := cmp.Diff(wantIDs, gotIDs); diff != "" {
		t.Errorf("instances not in declaration order (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff(wantDiags, gotDiags); diff != "" {
		t.Errorf("diagnostics not in declaration order (-want +got):\n%s", diff)
	}
}

// BenchmarkDesired renders 1,000 plugs of one instance each (the side by
// side's size): PlugParams in order, then the configs in parallel.
func BenchmarkDesired(b *testing.B) {
	d, ps := manyPlugs(0)
	for i := range 1000 {
		name := fmt.Sprintf("p%04d", i)
		d.Plugs = append(d.Plugs, &spec.Plug{Name: name, Source: "./plugins/heart-rate", Enabled: true,
			Params:    map[string]cty.Value{"token": cty.StringVal("s3cret")},
			Instances: []*spec.Instance{{Name: "default", Params: map[string]cty.Value{"device_id": cty.StringVal(name)}}}})
		ps[name] = render.Plugin{Dir: "/state/plugins/" + name, Source: "./plugins/heart-rate", Revision: "abc123", Manifest: heartRateManifest()}
	}
	for b.Loop() {
		specs, diags := render.Desired(d, ps, broker)
		if diags.HasErrors() || len(specs) != 1000 {
			b.Fatalf("%d specs, %v", len(specs), diags)
		}
	}
}
