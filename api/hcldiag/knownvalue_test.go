package hcldiag_test

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/plugs-dev/plugs/api/hcldiag"
	"github.com/plugs-dev/plugs/spec"
)

// TestSecretValueNotConverted: what the daemon's status, the dashboard and
// plugs validate -o json show of a deployment (Convert over the parser's
// files) holds no secret value, even where the value sits on a line that
// does not assign the secret param.
func TestSecretValueNotConverted(t *testing.T) {
	dir := t.TempDir()
	if err := os.MkdirAll(filepath.Join(dir, "sl"), 0o755); err != nil {
		t.Fatal(err)
	}
	manifest := "plugin \"sl\" {\n  command = [\"sleep\", \"1\"]\n  param \"token\" {\n    type   = string\n    secret = true\n  }\n}\n"
	src := "plug \"e\" {\n  source = \"./sl\"\n  params = { token = \"SEKRET_e_1234\" }\n  env    = { T = \"SEKRET_e_1234\", Y = nope }\n  stop_timeout = \"SEKRET_e_1234\"\n}\n"
	for name, content := range map[string]string{"sl/plugin.hcl": manifest, "plugs.hcl": src} {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	p := spec.NewParser()
	_, diags := p.Validate(filepath.Join(dir, "plugs.hcl"), nil, "")
	out, err := json.Marshal(hcldiag.Convert(p.Files(), spec.Sorted(diags)))
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(string(out), "SEKRET") || !strings.Contains(string(out), "(sensitive)") || !strings.Contains(string(out), "nope") {
		t.Errorf("a secret value is converted, or the diagnostics are missing:\n%s", out)
	}
}
