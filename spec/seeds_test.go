package spec

import (
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/hashicorp/hcl/v2"
	"github.com/zclconf/go-cty/cty"
)

// TestSeedMobileOps: a plugin.json as the MobileOps plugin manager writes
// it decodes without "unknown field" warnings; entry_point main.py runs
// through python3; author, license, dependencies, compatibility,
// installed_at and setup_required are kept; its permissions (serial,
// network) are ones plugs knows, so no warning.
func TestSeedMobileOps(t *testing.T) {
	p := NewParser()
	m, diags := p.LoadManifest("testdata/seeds/mobileops-weather")
	var summaries []string
	for _, d := range diags {
		summaries = append(summaries, d.Summary)
	}
	if len(summaries) != 0 {
		t.Fatalf("diagnostics: %v", diags)
	}
	if m.Format != FormatMobileOps {
		t.Fatalf("format %q", m.Format)
	}
	want := map[string]any{
		"command":      []string{"python3", "main.py"},
		"pre_start":    []string{"python3", "hooks.py", "pre_start"},
		"post_start":   []string{"python3", "hooks.py", "post_start"},
		"pre_stop":     []string{"python3", "hooks.py", "pre_stop"},
		"dependencies": []string{"pyserial>=3.5"},
		"author":       "MobileOps Team",
		"license":      "LGPL-2.1-or-later",
		"installed_at": "2025-06-01T09:30:00Z",
		"platform":     ">=0.1.0",
		"python":       ">=3.8",
		"permissions":  []string{"serial", "network"},
	}
	have := map[string]any{
		"command": m.Command, "pre_start": m.Hooks.PreStart, "post_start": m.Hooks.PostStart, "pre_stop": m.Hooks.PreStop,
		"dependencies": m.Dependencies, "author": m.Author, "license": m.License, "installed_at": m.InstalledAt,
		"platform": m.Compatibility.PlatformVersion, "python": m.Compatibility.PythonVersion, "permissions": m.Permissions,
	}
	if diff := cmp.Diff(want, have); diff != "" {
		t.Errorf("(-want +got):\n%s", diff)
	}
	if m.SetupRequired {
		t.Error("setup_required false read as true")
	}
}

func TestEntryPoint(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want []string
	}{
		{`"main.py"`, []string{"python3", "main.py"}},
		{`"run.sh"`, []string{"./run.sh"}},
		{`"door-sensor"`, []string{"./door-sensor"}},
		{`"./bin/x -v"`, []string{"./bin/x", "-v"}},
		{`"python3 main.py"`, []string{"python3", "main.py"}},
		{`["node", "index.js"]`, []string{"node", "index.js"}},
	} {
		m, diags := NewParser().ParseManifest([]byte(`{"name": "x", "entry_point": `+tc.in+`}`), "plugin.json")
		if diags.HasErrors() || !slices.Equal(m.Command, tc.want) {
			t.Errorf("entry_point %s: command %q, want %q (%v)", tc.in, m.Command, tc.want, diags)
		}
	}
}

// TestSeedMHealthParamNames: configParams as a list of names ("the
// parameter names to config") declares string params, required because
// "config requirement" is true; the object form still works beside it.
func TestSeedMHealthParamNames(t *testing.T) {
	m, diags := NewParser().LoadManifest("testdata/seeds/mhealth-spo2")
	if len(diags) != 0 {
		t.Fatal(diags)
	}
	if len(m.Params) != 2 || m.Params[0].Name != "token" || m.Params[1].Name != "device_id" {
		t.Fatalf("params %v", m.Params)
	}
	for _, ps := range m.Params {
		if !ps.Required || !ps.Type.Equals(cty.String) {
			t.Errorf("param %s: required %v type %#v", ps.Name, ps.Required, ps.Type)
		}
	}
	if !m.SetupRequired || m.UUID == "" || m.Instructions == "" || m.Exports != "omh:oxygen-saturation:2.0" {
		t.Errorf("manifest %+v", m)
	}
	// Optional when configuration is not required; mixed with objects.
	m, diags = NewParser().ParseManifest([]byte(`{"name": "x", "cli command": "x",
		"configParams": ["a", {"name": "b", "type": "number", "default": 2}]}`), "plugin.json")
	if len(diags) != 0 || len(m.Params) != 2 || m.Params[0].Required || !m.Params[1].Type.Equals(cty.Number) {
		t.Fatalf("mixed: %v %v", m.Params, diags)
	}
	// The effect: a missing name is a missing required param.
	d := &Deployment{Plugs: []*Plug{{Name: "spo2", Instances: []*Instance{{Name: "default"}}}}}
	mh, _ := NewParser().LoadManifest("testdata/seeds/mhealth-spo2")
	if diags := CheckPlugs(d, map[string]*Manifest{"spo2": mh}); len(diags) != 2 || diags[0].Summary != "Missing required param" {
		t.Errorf("check: %v", diags)
	}
}

// writeTree writes files (name -> content; a name ending in "*" is made
// executable) into a new folder.
func writeTree(t *testing.T, files map[string]string) string {
	t.Helper()
	dir := t.TempDir()
	for name, content := range files {
		mode := os.FileMode(0o644)
		if n, ok := strings.CutSuffix(name, "*"); ok {
			name, mode = n, 0o755
		}
		p := filepath.Join(dir, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(content), mode); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

// TestCommandFileChecked: validate sees a plugin program without its run
// bit or without an interpreter line in the plugin's folder.
func TestCommandFileChecked(t *testing.T) {
	const deployment = "plug \"a\" {\n  source = \"./a\"\n}\n"
	for _, tc := range []struct {
		name    string
		files   map[string]string
		summary string
	}{
		{"ok script", map[string]string{"a/plugin.hcl": `plugin "a" { command = ["./run.sh"] }`, "a/run.sh*": "#!/bin/sh\n"}, ""},
		{"bare word names a file", map[string]string{"a/plugin.hcl": `plugin "a" { command = ["run.sh"] }`, "a/run.sh": "#!/bin/sh\n"}, "Plugin program is not executable"},
		{"no run bit", map[string]string{"a/plugin.hcl": `plugin "a" { command = ["./run.sh"] }`, "a/run.sh": "#!/bin/sh\n"}, "Plugin program is not executable"},
		{"no shebang", map[string]string{"a/plugin.hcl": `plugin "a" { command = ["./run.sh"] }`, "a/run.sh*": "echo hi\n"}, "Plugin program has no interpreter line"},
		{"missing", map[string]string{"a/plugin.hcl": `plugin "a" { command = ["./run.sh"] }`}, "Plugin program not found"},
		{"built later", map[string]string{"a/plugin.hcl": `plugin "a" {
  kind = "compiled"
  build = ["go", "build", "-o", "a"]
  command = ["./a"]
}`}, ""},
		{"on PATH", map[string]string{"a/plugin.hcl": `plugin "a" { command = ["python3", "main.py"] }`}, ""},
		{"mobileops entry_point main.py", map[string]string{"a/plugin.json": `{"name": "a", "entry_point": "main.py"}`, "a/main.py": "print(1)\n"}, ""},
		{"mobileops entry_point run.sh", map[string]string{"a/plugin.json": `{"name": "a", "entry_point": "run.sh"}`, "a/run.sh": "echo\n"}, "Plugin program is not executable"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := writeTree(t, tc.files)
			file := filepath.Join(dir, "plugs.hcl")
			if err := os.WriteFile(file, []byte(deployment), 0o644); err != nil {
				t.Fatal(err)
			}
			_, diags := NewParser().Validate(file, nil, "")
			var errs []string
			for _, d := range diags {
				if d.Severity == hcl.DiagError {
					errs = append(errs, d.Summary)
				}
			}
			want := []string{}
			if tc.summary != "" {
				want = []string{tc.summary}
			}
			if !slices.Equal(errs, want) && !(len(errs) == 0 && len(want) == 0) {
				t.Errorf("errors %q, want %q (%v)", errs, want, diags)
			}
		})
	}
}

// TestCompatibilityChecked: compatibility.platform_version is checked
// against plugs' own version, python_version against the python3 that
// runs the plugin, at validate time.
func TestCompatibilityChecked(t *testing.T) {
	const deployment = "plug \"a\" {\n  source = \"./a\"\n}\n"
	manifest := `{"name": "a", "entry_point": "main.py", "compatibility": {"platform_version": ">=1.2.0", "python_version": ">=3.9"}}`
	dir := writeTree(t, map[string]string{"a/plugin.json": manifest, "a/main.py": "", "plugs.hcl": deployment})
	for _, tc := range []struct {
		plugs, python string
		pyErr         error
		want          []string
	}{
		{"v1.2.0", "3.11.2", nil, nil},
		{"v1.1.9", "3.11.2", nil, []string{"error:Incompatible plugin"}},
		{"1.3.0", "3.8.10", nil, []string{"error:Incompatible plugin"}},
		{"", "3.11.2", nil, []string{"warning:Compatibility not checked"}},
		{"1.3.0", "", errors.New("python3 not found"), []string{"warning:Compatibility not checked"}},
	} {
		p := NewParser()
		p.PlugsVersion = tc.plugs
		p.Python3Version = func() (string, error) { return tc.python, tc.pyErr }
		_, diags := p.Validate(filepath.Join(dir, "plugs.hcl"), nil, "")
		var have []string
		for _, d := range diags {
			sev := "error"
			if d.Severity == hcl.DiagWarning {
				sev = "warning"
			}
			if strings.Contains(d.Summary, "ompatib") {
				have = append(have, sev+":"+d.Summary)
			}
		}
		if !slices.Equal(have, tc.want) {
			t.Errorf("plugs %q python %q: %q, want %q", tc.plugs, tc.python, have, tc.want)
		}
	}
}

// TestSeedCareDeployment: Care's "@v1.0.0" and "@main" versions, an
// archive URL and a vendor .fp bundle validate (the lock resolves them).
func TestSeedCareDeployment(t *testing.T) {
	p := NewParser()
	p.Hostname = func() (string, error) { return "h", nil }
	d, diags := p.LoadDeployment("testdata/seeds/care/plugs.hcl", nil)
	if len(diags) != 0 {
		t.Fatal(diags)
	}
	if d.Plugs[0].Version != "@v1.0.0" || d.Plugs[1].Version != "@main" {
		t.Errorf("versions %q %q", d.Plugs[0].Version, d.Plugs[1].Version)
	}
	for _, bad := range []string{"@", "@~> 1.2 x", "@v1..0"} {
		src := "plug \"a\" {\n  source = \"git::https://h/a.git\"\n  version = \"" + bad + "\"\n}\n"
		if _, diags := p.ParseDeployment([]byte(src), "plugs.hcl", nil); !diags.HasErrors() {
			t.Errorf("version %q accepted", bad)
		}
	}
}
