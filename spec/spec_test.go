package spec

import (
	"bytes"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
	"github.com/hashicorp/hcl/v2"
	"github.com/zclconf/go-cty/cty"
)

// specCmp compares decoded values, ignoring source ranges.
var specCmp = []cmp.Option{
	cmpopts.IgnoreTypes(hcl.Range{}),
	cmpopts.IgnoreFields(Plug{}, "DependsOnRanges", "ParamRanges"),
	cmpopts.IgnoreFields(Instance{}, "ParamRanges"),
	cmp.Comparer(func(a, b cty.Value) bool { return a.RawEquals(b) }),
	cmp.Comparer(func(a, b cty.Type) bool { return a.Equals(b) }),
	cmpopts.EquateEmpty(),
	cmpopts.IgnoreUnexported(Deployment{}),
}

func TestLoadDeploymentFull(t *testing.T) {
	p := NewParser()
	p.Getenv = func(k string) string { return map[string]string{"PLUGS_MQTT_PASSWORD": "s3cret"}[k] }
	d, diags := p.LoadDeployment("testdata/valid/full.hcl", map[string]string{"site": "ward-9"})
	if len(diags) != 0 {
		t.Fatalf("diagnostics: %v", diags)
	}
	abs, _ := filepath.Abs("testdata/valid")
	inst := func(name string, params map[string]cty.Value) *Instance {
		return &Instance{Name: name, Params: params}
	}
	want := &Deployment{
		Filename: "testdata/valid/full.hcl",
		BaseDir:  abs,
		Host:     "edge-01",
		Broker:   &Broker{URL: "tcp://mqtt.example.org:1883", Username: "PLUGS", Password: "s3cret"},
		Variables: map[string]cty.Value{
			"site": cty.StringVal("ward-9"),
			"port": cty.NumberIntVal(1883),
		},
		Plugs: []*Plug{{
			Name:    "heart-rate",
			Source:  "git::https://git.example.org/acme/heart-rate.git",
			Version: "~> 1.2",
			Params:  map[string]cty.Value{"interval": cty.StringVal("5s"), "site": cty.StringVal("ward-9")},
			Instances: []*Instance{
				inst("patient-17", map[string]cty.Value{"device_id": cty.StringVal("A1:B2")}),
				inst("patient-22", map[string]cty.Value{"device_id": cty.StringVal("C3:D4")}),
			},
			DependsOn:   []string{"mqtt-bridge"},
			Env:         map[string]string{"LOG_LEVEL": "info"},
			StopTimeout: 20 * time.Second,
			Restart:     RestartPolicy{InitialDelay: 2 * time.Second, MaxDelay: 2 * time.Minute, ResetAfter: 10 * time.Minute, MaxRestarts: 5},
			Enabled:     true,
			User:        "nobody",
			Limits:      Limits{NoFile: 1024, NoNewPrivs: true},
		}, {
			Name:      "mqtt-bridge",
			Source:    "git::https://git.example.org/tools/bridge.git//cmd/bridge",
			Version:   "3f2c1a9e0b7d4c5a8e6f1b2d3c4a5e6f7a8b9c0d",
			Instances: []*Instance{inst(DefaultInstanceName, nil)},
			Plugin: &Manifest{
				Name:    "mqtt-bridge",
				Kind:    KindCompiled,
				Build:   []string{"go", "build", "-o", "bridge", "."},
				Command: []string{"./bridge", "-config-from-env"},
				Params: []*ParamSpec{{Name: "topics", Type: cty.List(cty.String),
					Default: cty.ListVal([]cty.Value{cty.StringVal("plugs/ward-9")})}},
				Format:   FormatInline,
				Filename: "testdata/valid/full.hcl",
			},
		}},
	}
	if diff := cmp.Diff(want, d, specCmp...); diff != "" {
		t.Errorf("deployment (-want +got):\n%s", diff)
	}
	if got := d.Plugs[0].ParamRanges["site"]; got.Start.Line != 18 {
		t.Errorf("param range of site starts on line %d, want 18", got.Start.Line)
	}
}

func TestDefaultHostAndInstance(t *testing.T) {
	p := NewParser()
	p.Hostname = func() (string, error) { return "box", nil }
	d, diags := p.ParseDeployment([]byte("plug \"a\" {\n  source = \"./a\"\n}\n"), "plugs.hcl", nil)
	if diags.HasErrors() {
		t.Fatal(diags)
	}
	if d.Host != "box" || d.Broker != nil || len(d.Plugs[0].Instances) != 1 || d.Plugs[0].Instances[0].Name != DefaultInstanceName {
		t.Errorf("got host %q broker %v instances %v", d.Host, d.Broker, d.Plugs[0].Instances)
	}
	// Unset durations stay zero (plugs.hcl refuses 0s): the render fills them.
	if !d.Plugs[0].Enabled || d.Plugs[0].Restart != (RestartPolicy{}) || d.Plugs[0].StopTimeout != 0 {
		t.Errorf("unset fields not left unset: %+v", d.Plugs[0])
	}
	if got := d.Plugs[0].Restart.WithDefaults(); got != DefaultRestartPolicy {
		t.Errorf("WithDefaults = %+v", got)
	}
}

func TestVariableTypes(t *testing.T) {
	src := []byte(`
variable "n" { type = number }
variable "l" { type = list(string) }
variable "s" {}
plug "a" {
  source = "./a"
  params = { n = var.n + 1, l = join(",", var.l), s = var.s }
}
`)
	d, diags := NewParser().ParseDeployment(src, "plugs.hcl", map[string]string{"n": "41", "l": `["x", "y"]`, "s": "[not parsed]"})
	if diags.HasErrors() {
		t.Fatal(diags)
	}
	want := map[string]cty.Value{"n": cty.NumberIntVal(42), "l": cty.StringVal("x,y"), "s": cty.StringVal("[not parsed]")}
	if diff := cmp.Diff(want, d.Plugs[0].Params, specCmp...); diff != "" {
		t.Errorf("params (-want +got):\n%s", diff)
	}
}

func TestManifestTwins(t *testing.T) {
	for _, dir := range []string{"testdata/manifests/mhealth", "testdata/manifests/mobileops", "testdata/manifests/mhealth-task", "testdata/manifests/mobileops-task"} {
		t.Run(filepath.Base(dir), func(t *testing.T) {
			p := NewParser()
			fromJSON, diags := p.ParseManifest(mustRead(t, filepath.Join(dir, "plugin.json")), filepath.Join(dir, "plugin.json"))
			if diags = withoutPermissionWarnings(diags); len(diags) != 0 {
				t.Fatalf("plugin.json: %v", diags)
			}
			fromHCL, diags := p.LoadManifest(dir) // plugin.hcl wins over plugin.json
			if diags = withoutPermissionWarnings(diags); len(diags) != 0 {
				t.Fatalf("plugin.hcl: %v", diags)
			}
			if fromHCL.Format != FormatHCL || !strings.HasPrefix(fromJSON.Format, "plugin.json") {
				t.Errorf("formats %q and %q", fromHCL.Format, fromJSON.Format)
			}
			if len(fromHCL.Params) == 0 {
				t.Fatal("twin declares no params")
			}
			if strings.HasSuffix(dir, "-task") && (fromJSON.Task == nil || len(fromJSON.Task.Schedules) == 0) {
				t.Fatal("the task twin's plugin.json declares no task with a schedule")
			}
			opts := append(slices.Clone(specCmp), cmpopts.IgnoreFields(Manifest{}, "Format", "Filename"))
			if diff := cmp.Diff(fromHCL, fromJSON, opts...); diff != "" {
				t.Errorf("plugin.hcl (-) and plugin.json (+) differ:\n%s", diff)
			}
		})
	}
}

// withoutPermissionWarnings drops the warnings about permissions plugs
// does not know (see TestSeedManifests).
func withoutPermissionWarnings(diags hcl.Diagnostics) hcl.Diagnostics {
	var out hcl.Diagnostics
	for _, d := range diags {
		if d.Summary != "Unknown permission" {
			out = append(out, d)
		}
	}
	return out
}

func TestManifestJSONErrors(t *testing.T) {
	for _, tc := range []struct{ src, summary string }{
		{`{"name": "x", "cli command": "python3", "cli args": [1, {}]}`, "Incorrect field type"},
		{`{"name": "x", "cli comand": "python3"}`, "Missing plugin command"},
		{`{"name": "x", "entry_point": "run", "configuration": 3}`, "Incorrect field type"},
		{`{"name": "x", "cli command": "x", "configParams": [{"name": "a", "type": "strng"}]}`, "Invalid param type"},
		{"{\"name\": \"x\",\n \"cli command\": }", "Missing JSON value"},
	} {
		_, diags := NewParser().ParseManifest([]byte(tc.src), "plugin.json")
		var summaries []string
		for _, d := range diags {
			summaries = append(summaries, d.Summary)
			if d.Subject == nil && d.Summary != "Missing plugin command" {
				t.Errorf("%s: %q has no source range", tc.src, d.Summary)
			}
		}
		if !slices.Contains(summaries, tc.summary) {
			t.Errorf("%s: got %q, want %q", tc.src, summaries, tc.summary)
		}
	}
	_, diags := NewParser().LoadManifest(t.TempDir())
	if len(diags) != 1 || diags[0].Summary != "Missing plugin manifest" {
		t.Errorf("empty folder: %v", diags)
	}
}

func TestLock(t *testing.T) {
	p := NewParser()
	l, diags := p.LoadLock("testdata/lock/plugs.lock.hcl")
	if len(diags) != 0 {
		t.Fatal(diags)
	}
	want := &LockedPlug{Name: "heart-rate", Source: "git::https://git.example.org/acme/heart-rate.git", Constraint: "~> 1.2",
		Version: "v1.2.3", Revision: "3f2c1a9e0b7d4c5a8e6f1b2d3c4a5e6f7a8b9c0d", Hash: "h1:47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU="}
	if diff := cmp.Diff(want, l.Plugs["heart-rate"], specCmp...); diff != "" {
		t.Errorf("lock entry (-want +got):\n%s", diff)
	}

	wantDiags, _ := fixtureExpectations(t, "testdata/lock/plugs.hcl")
	wantDiags = append(wantDiags, expectation("warning", 12, "Lock entry for an undeclared plug"),
		expectation("warning", 2, "Manifest not fetched yet"), expectation("warning", 6, "Manifest not fetched yet"))
	_, v, diags := validateFile("testdata/lock/plugs.hcl", nil)
	if v.Lock == nil {
		t.Fatal("lock not loaded")
	}
	have := got(diags)
	slices.Sort(wantDiags)
	slices.Sort(have)
	if diff := cmp.Diff(wantDiags, have); diff != "" {
		t.Errorf("diagnostics (-want +got):\n%s", diff)
	}

	_, diags = p.ParseLock([]byte("plug \"a\" {\n  source = \"./a\"\n  revision = \"../x\"\n  hash = \"sha256:x\"\n  extra = 1\n}\n"), "bad.lock.hcl")
	var summaries []string
	for _, d := range diags {
		summaries = append(summaries, d.Summary)
	}
	slices.Sort(summaries)
	if diff := cmp.Diff([]string{"Invalid lock hash", "Invalid lock revision", "Unsupported argument"}, summaries); diff != "" {
		t.Errorf("bad lock (-want +got):\n%s", diff)
	}
}

// TestManifestFromStateDir checks that validate reads a fetched tree's
// manifest from <state>/plugins/<plug>/<revision>/ and checks params.
func TestManifestFromStateDir(t *testing.T) {
	dir := t.TempDir()
	rev := "3f2c1a9e0b7d4c5a8e6f1b2d3c4a5e6f7a8b9c0d"
	writeFile(t, filepath.Join(dir, "plugs.hcl"), "plug \"hr\" {\n  source  = \"git::https://example.org/hr.git\"\n  version = \"main\"\n  params  = { devce_id = \"x\" }\n}\n")
	writeFile(t, filepath.Join(dir, LockFileName), "plug \"hr\" {\n  source = \"git::https://example.org/hr.git\"\n  constraint = \"main\"\n  version = \"main\"\n  revision = \""+rev+"\"\n  hash = \"h1:x\"\n}\n")
	writeFile(t, filepath.Join(dir, ".plugs", "plugins", "hr", rev, "plugin.json"), string(mustRead(t, "testdata/manifests/mhealth/plugin.json")))
	p := NewParser()
	v, diags := p.Validate(filepath.Join(dir, "plugs.hcl"), nil, filepath.Join(dir, ".plugs"))
	if v.Manifests["hr"] == nil {
		t.Fatalf("manifest not loaded: %v", diags)
	}
	var summaries []string
	for _, d := range diags {
		summaries = append(summaries, d.Summary)
	}
	slices.Sort(summaries)
	if diff := cmp.Diff([]string{"Missing required param", "Unsupported param"}, summaries); diff != "" {
		t.Errorf("diagnostics (-want +got):\n%s", diff)
	}
}

// TestSecretsNeverInDiagnostics renders every diagnostic of a deployment
// whose secret values are wrong in every way, and looks for the secrets.
func TestSecretsNeverInDiagnostics(t *testing.T) {
	const secret = "hunter2-very-secret"
	src := `
variable "token" { default = "` + secret + `" }
broker {
  url      = "tcp://127.0.0.1:1883"
  password = var.token
}
plug "a" {
  source = "./a"
  params = { token = [var.token], tokn = var.token }
  instance "x" { params = { token = { v = var.token } } }
  instance "y" { params = { token = tonumber(var.token) } }
  plugin {
    command = ["x"]
    param "token" {
      type   = string
      secret = true
    }
    param "needed" { required = true }
  }
}
`
	p := NewParser()
	d, diags := p.ParseDeployment([]byte(src), "plugs.hcl", map[string]string{"token": secret})
	diags = append(diags, CheckPlugs(d, map[string]*Manifest{"a": d.Plugs[0].Plugin})...)
	if !diags.HasErrors() || len(diags) < 4 {
		t.Fatalf("want several errors, got %v", diags)
	}
	if !SecretParams(d.Plugs[0].Plugin)["token"] || SecretParams(d.Plugs[0].Plugin)["needed"] {
		t.Errorf("SecretParams = %v", SecretParams(d.Plugs[0].Plugin))
	}
	for _, diag := range diags {
		var buf bytes.Buffer
		// Render as the CLI does, without the source snippet: the file's
		// own text is shown there by design.
		if err := hcl.NewDiagnosticTextWriter(&buf, nil, 0, false).WriteDiagnostic(diag); err != nil {
			t.Fatal(err)
		}
		if strings.Contains(buf.String(), secret) || strings.Contains(diag.Summary+diag.Detail, secret) {
			t.Errorf("secret in diagnostic: %s", buf.String())
		}
		if diag.Expression != nil || diag.EvalContext != nil {
			t.Errorf("diagnostic %q carries an evaluation context that could print values", diag.Summary)
		}
	}
}

func mustRead(t *testing.T, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(name)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func writeFile(t *testing.T, name, content string) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(name), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(name, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
}

// TestProgramOutsideTheTreeRefused: a command word that climbs out of the
// plugin's folder ("../../bin/sh", MobileOps entry_point, mHealth cli
// command, setup) is refused where it is written, since what runs must be
// what was fetched and verified; a program on $PATH, an absolute path and
// a file of the tree are not.
func TestProgramOutsideTheTreeRefused(t *testing.T) {
	for _, tc := range []struct {
		name, src string
		refused   bool
	}{
		{"plugin.hcl", "plugin \"x\" {\n  command = [\"../../usr/bin/sleep\", \"1\"]\n}\n", true},
		{"plugin.hcl", "plugin \"x\" {\n  command = [\"sh\"]\n  setup = [\"./a/../../x\"]\n}\n", true},
		{"plugin.json", `{"name": "x", "entry_point": "../../bin/sh -c true"}`, true},
		{"plugin.json", `{"name": "x", "cli command": "../x"}`, true},
		{"plugin.hcl", "plugin \"x\" {\n  command = [\"./bin/../main.py\"]\n}\n", false},
		{"plugin.hcl", "plugin \"x\" {\n  command = [\"/usr/bin/python3\", \"main.py\"]\n}\n", false},
		{"plugin.json", `{"name": "x", "entry_point": "python3 ../main.py"}`, false}, // an argument is the program's business
	} {
		_, diags := NewParser().ParseManifest([]byte(tc.src), tc.name)
		var found *hcl.Diagnostic
		for _, d := range diags {
			if d.Summary == "Plugin program outside its folder" {
				found = d
			}
		}
		switch {
		case tc.refused && (found == nil || found.Subject == nil || found.Subject.Start.Line < 1):
			t.Errorf("%s %s: %v, want refused at its line", tc.name, tc.src, diags)
		case !tc.refused && found != nil:
			t.Errorf("%s %s: refused: %s", tc.name, tc.src, found.Detail)
		}
	}
}
