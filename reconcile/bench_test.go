package reconcile_test

import (
	"fmt"
	"testing"

	"github.com/hashicorp/hcl/v2"
	"github.com/plugs-dev/plugs/instance"
	"github.com/plugs-dev/plugs/reconcile"
	"github.com/plugs-dev/plugs/render"
	"github.com/plugs-dev/plugs/spec"
	"github.com/zclconf/go-cty/cty"
)

// broker is the broker every rendered instance is told about.
var broker = render.BrokerInfo{URL: "tcp://mqtt.example.org:1883", Host: "mqtt.example.org", Port: 1883}

// benchManifest is a plugin with a required, a secret and a defaulted param.
func benchManifest() *spec.Manifest {
	return &spec.Manifest{
		Name: "heart-rate", Version: "1.2.0", Kind: spec.KindScript, Command: []string{"python3", "main.py"},
		Params: []*spec.ParamSpec{
			{Name: "device_id", Type: cty.String, Required: true},
			{Name: "token", Type: cty.String, Secret: true},
			{Name: "interval", Type: cty.String, Default: cty.StringVal("10s")},
		},
	}
}

// bigDeployment is 1,000 plugs of 3 instances each, sharing one manifest.
func bigDeployment() (*spec.Deployment, map[string]render.Plugin) {
	d := &spec.Deployment{Host: "edge-01"}
	plugins := make(map[string]render.Plugin, 1000)
	m := benchManifest()
	for i := range 1000 {
		name := fmt.Sprintf("plug-%04d", i)
		p := &spec.Plug{
			Name: name, Source: "./plugins/" + name, Enabled: true,
			Params:      map[string]cty.Value{"interval": cty.StringVal("5s"), "token": cty.StringVal("t")},
			ParamRanges: map[string]hcl.Range{},
			Env:         map[string]string{"LOG_LEVEL": "info"},
		}
		if i > 0 && i%10 == 0 {
			p.DependsOn = []string{fmt.Sprintf("plug-%04d", i-1)}
		}
		for j := range 3 {
			p.Instances = append(p.Instances, &spec.Instance{
				Name:   fmt.Sprintf("i%d", j),
				Params: map[string]cty.Value{"device_id": cty.StringVal(fmt.Sprintf("dev-%d-%d", i, j))},
			})
		}
		d.Plugs = append(d.Plugs, p)
		plugins[name] = render.Plugin{Dir: "/state/plugins/" + name + "/r1", Source: p.Source, Revision: "r1", Manifest: m}
	}
	return d, plugins
}

func BenchmarkDesired1000x3(b *testing.B) {
	d, plugins := bigDeployment()
	for b.Loop() {
		specs, diags := render.Desired(d, plugins, broker)
		if diags.HasErrors() || len(specs) != 3000 {
			b.Fatalf("%d specs, diagnostics %v", len(specs), diags)
		}
	}
}

// BenchmarkPlan1000x3 plans 3,000 running instances against a deployment in
// which 10% of them changed a param.
func BenchmarkPlan1000x3(b *testing.B) {
	d, plugins := bigDeployment()
	before, _ := render.Desired(d, plugins, broker)
	observed := make([]instance.Status, len(before))
	for i, s := range before {
		observed[i] = running(s)
	}
	for i, p := range d.Plugs {
		if i%10 == 0 {
			for _, inst := range p.Instances {
				inst.Params["interval"] = cty.StringVal("1s")
			}
		}
	}
	desired, _ := render.Desired(d, plugins, broker)
	for b.Loop() {
		p := reconcile.NewPlan(desired, observed)
		if _, replace, _ := p.Summary(); replace != 300 {
			b.Fatalf("%d to replace, want 300", replace)
		}
	}
}
