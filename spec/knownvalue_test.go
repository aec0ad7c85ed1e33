package spec

import (
	"path/filepath"
	"strings"
	"testing"

	"github.com/hashicorp/hcl/v2"
	"github.com/zclconf/go-cty/cty"
)

// TestKnownSecretValueHidden: the value of a secret param pasted on
// another line (an env value on a line with an error, the wrong argument)
// is shown in no snippet and no detail, once the plug's manifest is known
// and before (any param may be secret then), whichever call returned the
// diagnostic; a value that proves not secret shows again.
func TestKnownSecretValueHidden(t *testing.T) {
	const inline = "  plugin {\n    command = [\"./a\"]\n    param \"token\" {\n      type   = string\n      secret = true\n    }\n    param \"mode\" { type = string }\n  }\n"
	manifest := &Manifest{Name: "a", Command: []string{"./a"}, Params: []*ParamSpec{{Name: "token", Type: cty.String, Secret: true}, {Name: "mode", Type: cty.String}}}
	for _, how := range []string{"inline manifest", "CheckPlugs", "PlugParams", "manifest not known"} {
		t.Run(how, func(t *testing.T) {
			plugin := ""
			if how == "inline manifest" {
				plugin = inline
			}
			src := "broker {\n  url      = \"tcp://127.0.0.1:1883\"\n  password = \"br0ker-pw-77\"\n}\n" +
				"plug \"a\" {\n  source = \"./a\"\n  params = { token = \"SEKRET_e_1234\", mode = \"fast-mode\" }\n" +
				"  env    = { T = \"SEKRET_e_1234\", B = \"br0ker-pw-77\", Y = nope }\n" +
				"  stop_timeout = \"SEKRET_e_1234\"\n" +
				"  restart { initial_delay = \"fast-mode\" }\n" + plugin + "}\n"
			file := filepath.Join(t.TempDir(), "plugs.hcl")
			writeFile(t, file, src)
			p := NewParser()
			d, diags := p.LoadDeployment(file, nil)
			if d == nil {
				t.Fatal(diags)
			}
			switch how {
			case "CheckPlugs":
				diags = append(diags, CheckPlugs(d, map[string]*Manifest{"a": manifest})...)
			case "PlugParams":
				_, pdiags := d.PlugParams(d.Plugs[0], manifest)
				diags = append(diags, pdiags...)
			}
			out := render(t, p, diags)
			shown := string(p.Files()[file].Bytes)
			for _, want := range []string{"Unknown variable", `"stop_timeout" must be a duration`, `; "(sensitive)" is not.`} {
				if !strings.Contains(out, want) {
					t.Errorf("want %q in:\n%s", want, out)
				}
			}
			for _, secret := range []string{"SEKRET_e_1234", "br0ker-pw-77"} {
				if strings.Contains(out, secret) || strings.Contains(shown, secret) {
					t.Errorf("%s is shown:\n%s\n%s", secret, out, shown)
				}
			}
			// mode is not secret: its value shows once the manifest says so.
			if how != "manifest not known" && !strings.Contains(out, `"fast-mode" is not.`) {
				t.Errorf("a value that is not secret is hidden:\n%s", out)
			}
			if how == "manifest not known" && strings.Contains(out, "fast-mode") {
				t.Errorf("a param value of a plug whose manifest is not known is shown:\n%s", out)
			}
			if !strings.Contains(shown, `source = "./a"`) || len(shown) != len(src) {
				t.Errorf("a line without a secret blanked, or the length changed:\n%s", shown)
			}
		})
	}
}

// TestKnownValueForms: a secret is found as written in a quoted string, and
// a value too short to tell from other text is not searched for.
func TestKnownValueForms(t *testing.T) {
	got := secretForms("a\"b${c}")
	want := []string{"a\"b${c}", `a\"b${c}`, "a\"b$${c}"}
	if strings.Join(got, "|") != strings.Join(want, "|") {
		t.Errorf("secretForms = %q, want %q", got, want)
	}
	if secretForms("abc") != nil || secretForms("    ") != nil {
		t.Error("a short or blank value is searched for")
	}
	s := &secretRanges{}
	d := &hcl.Diagnostic{Summary: "x", Detail: `"pw-9999" is not.`}
	s.finish(hcl.Diagnostics{d})
	s.learn(secretForms("pw-9999"))
	if d.Detail != `"(sensitive)" is not.` {
		t.Errorf("an issued diagnostic is not redacted when its value is learnt: %q", d.Detail)
	}
}
