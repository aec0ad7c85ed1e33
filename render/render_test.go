package render_test

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/hashicorp/hcl/v2"
	"github.com/plugs-dev/plugs/instance"
	"github.com/plugs-dev/plugs/render"
	"github.com/plugs-dev/plugs/spec"
	"github.com/zclconf/go-cty/cty"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata")

func heartRateManifest() *spec.Manifest {
	return &spec.Manifest{
		Name: "heart-rate", Version: "1.2.0", UUID: "4b8e2f5c-1d3a-4c5e-9f7a-0b1c2d3e4f5a",
		Description: "Reads a BLE heart-rate strap", Kind: spec.KindScript,
		Command: []string{"python3", "main.py"}, StopSignal: "SIGINT",
		Params: []*spec.ParamSpec{
			{Name: "device_id", Type: cty.String, Required: true},
			{Name: "token", Type: cty.String, Secret: true},
			{Name: "interval", Type: cty.String, Default: cty.StringVal("10s")},
			{Name: "samples", Type: cty.Number, Default: cty.NumberIntVal(3)},
			{Name: "tags", Type: cty.List(cty.String), Default: cty.ListValEmpty(cty.String)},
		},
	}
}

// deployment is a hand-built plugs.hcl: heart-rate with two instances that
// depends on bridge (inline manifest, no uuid), and a disabled plug.
func deployment() *spec.Deployment {
	rng := func(line int) hcl.Range {
		return hcl.Range{Filename: "plugs.hcl", Start: hcl.Pos{Line: line, Column: 1}, End: hcl.Pos{Line: line, Column: 10}}
	}
	return &spec.Deployment{
		Filename: "plugs.hcl", Host: "edge-01",
		Plugs: []*spec.Plug{
			{
				Name: "heart-rate", Source: "./plugins/heart-rate", Enabled: true,
				Params:      map[string]cty.Value{"interval": cty.StringVal("5s"), "token": cty.StringVal("s3cret-token")},
				ParamRanges: map[string]hcl.Range{"interval": rng(3), "token": rng(3)},
				Instances: []*spec.Instance{
					{Name: "patient-17", Params: map[string]cty.Value{"device_id": cty.StringVal("A1:B2"), "tags": cty.ListVal([]cty.Value{cty.StringVal("ward-3")})},
						ParamRanges: map[string]hcl.Range{"device_id": rng(4), "tags": rng(4)}, DeclRange: rng(4)},
					{Name: "patient-22", Params: map[string]cty.Value{"device_id": cty.StringVal("C3:D4")},
						ParamRanges: map[string]hcl.Range{"device_id": rng(5)}, DeclRange: rng(5)},
				},
				DependsOn: []string{"bridge"},
				Env:       map[string]string{"LOG_LEVEL": "info"},
				Restart:   spec.RestartPolicy{InitialDelay: 2 * time.Second, MaxRestarts: 4},
				User:      "plugs", Limits: spec.Limits{NoFile: 1024},
				DeclRange: rng(2),
			},
			{
				Name: "bridge", Source: "git::https://git.example.org/tools/bridge.git", Version: "~> 3.0", Enabled: true,
				Instances:   []*spec.Instance{{Name: spec.DefaultInstanceName, DeclRange: rng(7)}},
				StopTimeout: 3 * time.Second,
				Plugin:      &spec.Manifest{Name: "bridge", Kind: spec.KindCompiled, Command: []string{"./bridge"}, Format: spec.FormatInline},
				DeclRange:   rng(7),
			},
			{
				Name: "off", Source: "./plugins/off", Enabled: false,
				Instances: []*spec.Instance{{Name: spec.DefaultInstanceName}},
				DeclRange: rng(9),
			},
		},
	}
}

func plugins() map[string]render.Plugin {
	return map[string]render.Plugin{
		"heart-rate": {Dir: "/state/plugins/heart-rate/abc", Source: "./plugins/heart-rate", Revision: "abc123", Manifest: heartRateManifest()},
		"bridge": {Dir: "/state/plugins/bridge/3f2c", Source: "git::https://git.example.org/tools/bridge.git",
			Version: "v3.1.0", Revision: "3f2c1a9e0b7d4c5a8e6f1b2d3c4a5e6f7a8b9c0d"},
	}
}

var broker = render.BrokerInfo{URL: "tcp://mqtt.example.org:1883", Host: "mqtt.example.org", Port: 1883, Username: "plugs", Password: "broker-pw"}

func golden(t *testing.T, name string, got []byte) {
	t.Helper()
	path := filepath.Join("testdata", name)
	if *update {
		if err := os.MkdirAll("testdata", 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, got, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("read golden (go test -update writes it): %v", err)
	}
	if diff := cmp.Diff(string(want), string(got)); diff != "" {
		t.Errorf("%s (-want +got):\n%s", name, diff)
	}
}

func TestDesiredGolden(t *testing.T) {
	specs, diags := render.Desired(deployment(), plugins(), broker)
	if diags.HasErrors() {
		t.Fatalf("diagnostics: %v", diags)
	}
	var ids []string
	for _, s := range specs {
		ids = append(ids, s.ID.String())
	}
	if diff := cmp.Diff([]string{"heart-rate/patient-17", "heart-rate/patient-22", "bridge/default"}, ids); diff != "" {
		t.Fatalf("instances (-want +got):\n%s", diff)
	}
	for _, s := range specs {
		name := s.ID.Plug + "." + s.ID.Instance
		golden(t, name+".config.json", s.Config)
		golden(t, name+".redacted.json", s.Redacted)
		sum := sha256.Sum256(s.Config)
		if s.ConfigHash != hex.EncodeToString(sum[:]) {
			t.Errorf("%s: ConfigHash is not the sha256 of Config", s.ID)
		}
		for _, secret := range []string{"s3cret-token", "broker-pw"} {
			if bytes.Contains(s.Redacted, []byte(secret)) {
				t.Errorf("%s: redacted config holds the secret %q", s.ID, secret)
			}
		}
	}

	hr, bridge := specs[0], specs[2]
	want := instance.Spec{
		ID: hr.ID, UUID: hr.UUID, Version: "1.2.0", Revision: "abc123", Source: "./plugins/heart-rate",
		Plugin: instance.PluginIdentity{UUID: "4b8e2f5c-1d3a-4c5e-9f7a-0b1c2d3e4f5a", Name: "heart-rate", Version: "1.2.0", Description: "Reads a BLE heart-rate strap"},
		Dir:    "/state/plugins/heart-rate/abc", Command: []string{"python3", "main.py"},
		Env: map[string]string{"LOG_LEVEL": "info"}, Config: hr.Config, ConfigHash: hr.ConfigHash, Redacted: hr.Redacted,
		DependsOn: []string{"bridge"}, StopSignal: "SIGINT", StopTimeout: spec.DefaultStopTimeout,
		Restart: instance.RestartPolicy{InitialDelay: 2 * time.Second, MaxDelay: time.Minute, ResetAfter: 5 * time.Minute, MaxRestarts: 4},
		User:    "plugs", Limits: instance.Limits{NoFile: 1024}, BrokerPort: 1883,
	}
	if diff := cmp.Diff(want, hr); diff != "" {
		t.Errorf("heart-rate/patient-17 spec (-want +got):\n%s", diff)
	}
	if bridge.Version != "v3.1.0" || bridge.StopTimeout != 3*time.Second || bridge.Command[0] != "./bridge" {
		t.Errorf("bridge spec = %+v", bridge)
	}
	if hr.UUID == specs[1].UUID {
		t.Error("two instances share a uuid")
	}

	// Same inputs, same bytes: nothing is replaced on a reload.
	again, _ := render.Desired(deployment(), plugins(), broker)
	if diff := cmp.Diff(specs, again); diff != "" {
		t.Errorf("rendering twice gives other specs (-first +second):\n%s", diff)
	}
}

func TestDesiredDiagnostics(t *testing.T) {
	d := deployment()
	d.Plugs[0].Instances[1].Params = map[string]cty.Value{"device_id": cty.StringVal("C3:D4"), "nope": cty.True}
	d.Plugs[0].Instances[1].ParamRanges = map[string]hcl.Range{"nope": d.Plugs[0].Instances[1].DeclRange}
	d.Plugs = append(d.Plugs,
		&spec.Plug{Name: "unfetched", Enabled: true, Instances: []*spec.Instance{{Name: "default"}}},
		&spec.Plug{Name: "no-command", Enabled: true, Instances: []*spec.Instance{{Name: "default"}}},
	)
	ps := plugins()
	ps["no-command"] = render.Plugin{Dir: "/x", Manifest: &spec.Manifest{Name: "no-command"}}
	ps["off"] = render.Plugin{Dir: "/x"} // disabled: never looked at

	specs, diags := render.Desired(d, ps, broker)
	var ids []string
	for _, s := range specs {
		ids = append(ids, s.ID.String())
	}
	if diff := cmp.Diff([]string{"heart-rate/patient-17", "bridge/default"}, ids); diff != "" {
		t.Errorf("rendered (-want +got):\n%s", diff)
	}
	var got []string
	for _, diag := range diags {
		got = append(got, diag.Summary)
		if strings.Contains(diag.Detail, "s3cret") {
			t.Errorf("diagnostic shows a secret: %s", diag.Detail)
		}
	}
	want := []string{"Unsupported param", "Plugin not available", "Plugin has no command"}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("diagnostics (-want +got):\n%s", diff)
	}
	if !strings.Contains(diags[1].Detail, `"unfetched"`) {
		t.Errorf("missing plugin diagnostic does not name the plug: %s", diags[1].Detail)
	}
}

// TestDefaults: a plug that sets no stop timeout and no restart block gets
// the documented defaults (DESIGN.md: 10s; 1s doubling to 1m, reset after
// 5m, never give up); what a plug sets is kept as it is.
func TestDefaults(t *testing.T) {
	if got := render.StopTimeout(0); got != 10*time.Second {
		t.Errorf("unset stop timeout = %v, want 10s", got)
	}
	if got := render.StopTimeout(250 * time.Millisecond); got != 250*time.Millisecond {
		t.Errorf("stop timeout 250ms = %v", got)
	}
	want := instance.RestartPolicy{InitialDelay: time.Second, MaxDelay: time.Minute, ResetAfter: 5 * time.Minute}
	if diff := cmp.Diff(want, render.RestartPolicy(spec.RestartPolicy{})); diff != "" {
		t.Errorf("unset restart policy (-want +got):\n%s", diff)
	}
	set := spec.RestartPolicy{InitialDelay: 100 * time.Millisecond, MaxDelay: 2 * time.Second, ResetAfter: time.Hour, MaxRestarts: 3}
	if diff := cmp.Diff(instance.RestartPolicy(set), render.RestartPolicy(set)); diff != "" {
		t.Errorf("a set restart policy is changed (-want +got):\n%s", diff)
	}
	partial := render.RestartPolicy(spec.RestartPolicy{MaxDelay: 5 * time.Second})
	if partial.InitialDelay != time.Second || partial.MaxDelay != 5*time.Second || partial.ResetAfter != 5*time.Minute {
		t.Errorf("restart block with only max_delay = %+v", partial)
	}
}
