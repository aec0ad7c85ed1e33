package spec

import (
	"path/filepath"
	"strings"
	"testing"
)

// TestReservedEnvRefused: a plug's env that names a variable plugs sets
// (PLUGS_CONFIG, which the runner's value overrode without a word) or a
// name no process can receive is an error at its key.
func TestReservedEnvRefused(t *testing.T) {
	src := "plug \"a\" {\n  source = \"./a\"\n" +
		"  env = { PLUGS_CONFIG = \"/etc/passwd\", PLUGS_PLUG = \"zzz\", \"PLUGS_SANDBOX_POLICY\" = \"{}\", NOTIFY_SOCKET = \"/x\", WATCHDOG_USEC = \"1\", PLUGS_ANYTHING = \"1\", \"A=B\" = \"c\", LOG_LEVEL = \"info\", plugs_lower = \"1\" }\n}\n"
	file := filepath.Join(t.TempDir(), "plugs.hcl")
	writeFile(t, file, src)
	p := NewParser()
	_, diags := p.LoadDeployment(file, nil)
	var got []string
	for _, d := range Sorted(diags) {
		got = append(got, d.Summary+" @"+d.Subject.String()[len(file):])
	}
	want := []string{
		"Reserved environment variable @:3,11-23",
		"Reserved environment variable @:3,41-51",
		"Reserved environment variable @:3,61-83",
		"Reserved environment variable @:3,92-105",
		"Reserved environment variable @:3,114-127",
		"Reserved environment variable @:3,135-149",
		"Invalid environment variable name @:3,157-162",
	}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("got\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	out := render(t, p, diags)
	if !strings.Contains(out, "The name PLUGS_CONFIG is reserved") {
		t.Errorf("the diagnostic does not name the variable:\n%s", out)
	}
	for _, name := range []string{"PLUGS_CONFIG", "PLUGS_INSTANCE", "PLUGS_SETUP_DIR", "PLUGS_RUN_ID", "PLUGS_HOOK", "PLUGS_INPUT", "PLUGS_TRIGGER", "PLUGS_SANDBOX_POLICY", "NOTIFY_SOCKET", "WATCHDOG_USEC"} {
		if !IsReservedEnv(name) {
			t.Errorf("%s, which plugs sets, is not reserved", name)
		}
	}
	for _, name := range []string{"LOG_LEVEL", "PATH", "PYTHONPATH", "plugs_config"} {
		if IsReservedEnv(name) {
			t.Errorf("%s is reserved", name)
		}
	}
}
