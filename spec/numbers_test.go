package spec

import (
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/zclconf/go-cty/cty"
)

// TestBigNumbersRefused: a number a float64 does not hold (1e9999999, nine
// bytes, a valid HCL and JSON number) is refused at its place, quickly:
// it was written out in full, ten million digits, in config.json and in
// every string it became (30 s inside a reconcile).
func TestBigNumbersRefused(t *testing.T) {
	const plugin = "plugin {\n    command = [\"./a\"]\n    param \"n\" { type = any }\n    param \"s\" { type = string }\n  }\n"
	for _, tc := range []struct {
		name, file, src string
		where           string // file:line of the diagnostic
	}{
		{"plugin.json configuration", "plugin.json", `{"name":"big","version":"1.0.0","entry_point":"sleep 1","configuration":{"n":1e9999999}}`, "plugin.json:1,83-92"},
		{"plugin.json negative", "plugin.json", `{"name":"big","entry_point":"sleep 1","configuration":{"n":-1e400}}`, "plugin.json:1,"},
		{"plugin.json underflow", "plugin.json", `{"name":"big","entry_point":"sleep 1","configuration":{"n":1e-9999999}}`, "plugin.json:1,"},
		{"plugin.json long digits", "plugin.json", `{"name":"big","entry_point":"sleep 1","configuration":{"n":1` + strings.Repeat("0", 400) + `}}`, "plugin.json:1,"},
		{"plugin.hcl default", "plugin.hcl", "plugin \"big\" {\n  command = [\"./a\"]\n  param \"n\" {\n    type    = number\n    default = 1e9999999\n  }\n}\n", "plugin.hcl:5,15-24"},
		{"plugin.hcl in a string", "plugin.hcl", "plugin \"big\" {\n  command = [\"./a\"]\n  description = \"${1e9999999}\"\n}\n", "plugin.hcl:3,"},
		{"plugs.hcl param", "plugs.hcl", "plug \"a\" {\n  source = \"./a\"\n  params = { n = 1e9999999 }\n  " + plugin + "}\n", "plugs.hcl:3,18-27"},
		{"plugs.hcl string param", "plugs.hcl", "plug \"a\" {\n  source = \"./a\"\n  params = { s = 1E+400 }\n  " + plugin + "}\n", "plugs.hcl:3,"},
		{"plugs.hcl env", "plugs.hcl", "plug \"a\" {\n  source = \"./a\"\n  env = { N = 1e9999999 }\n}\n", "plugs.hcl:3,"},
		{"plugs.hcl computed", "plugs.hcl", "plug \"a\" {\n  source = \"./a\"\n  params = { n = [1e300 * 1e300] }\n  " + plugin + "}\n", "plugs.hcl:3,"},
		{"plugs.hcl from a string", "plugs.hcl", "plug \"a\" {\n  source = \"./a\"\n  params = { n = tonumber(\"1e9999999\") }\n  " + plugin + "}\n", "plugs.hcl:3,"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			file := filepath.Join(dir, tc.file)
			writeFile(t, file, tc.src)
			p := NewParser()
			start := time.Now()
			var out string
			if tc.file == "plugs.hcl" {
				d, diags := p.LoadDeployment(file, nil)
				if d != nil && !diags.HasErrors() {
					diags = append(diags, CheckPlugs(d, map[string]*Manifest{"a": d.Plugs[0].Plugin})...)
				}
				out = render(t, p, diags)
			} else {
				_, diags := p.LoadManifest(dir)
				out = render(t, p, diags)
			}
			if took := time.Since(start); took > 2*time.Second {
				t.Errorf("took %s", took)
			}
			if !strings.Contains(out, "Number out of range") || !strings.Contains(out, filepath.Base(tc.file)) {
				t.Fatalf("want a Number out of range diagnostic, got:\n%s", out)
			}
			if !strings.Contains(out, "line "+strings.Split(strings.SplitN(tc.where, ":", 2)[1], ",")[0]) {
				t.Errorf("want it at %s:\n%s", tc.where, out)
			}
			if len(out) > 10000 {
				t.Errorf("the diagnostic is %d bytes", len(out))
			}
		})
	}
}

// TestNumbersThatFit: the numbers real files hold pass the number rule.
func TestNumbersThatFit(t *testing.T) {
	for _, s := range []string{"0", "-0", "0.0", "1e308", "-1.7976931348623157e308", "4.9e-324", "1e-300", "3.14159265358979323846264338327950288", "0e99999", "5000000000", "1e+3"} {
		if !numberLiteralOK([]byte(s)) {
			t.Errorf("%s refused", s)
		}
	}
	for _, s := range []string{"1e309", "2e308", "1e-400", "-1e9999999", "0.1e-999"} {
		if numberLiteralOK([]byte(s)) {
			t.Errorf("%s accepted", s)
		}
	}
	v := cty.NumberFloatVal(1e308)
	if !numberValueOK(v) || numberValueOK(cty.PositiveInfinity) {
		t.Error("numberValueOK")
	}
	// A hash or a name with digits does not make the lexer run.
	if mayHoldBigNumber([]byte(`hash = "h2:ab3e57cd9e99" x1e999 = 1.5e10`)) {
		t.Error("mayHoldBigNumber flags a hash")
	}
}
