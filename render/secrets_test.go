package render_test

import (
	"bytes"
	"testing"

	"github.com/hashicorp/hcl/v2"
	"github.com/zclconf/go-cty/cty"

	"github.com/plugs-dev/plugs/render"
)

// TestRestoreSecrets: a config kept in its redacted form is made whole
// again, byte for byte, from the current config; a changed secret comes
// from the current one; one current lacks cannot be restored.
func TestRestoreSecrets(t *testing.T) {
	specs, diags := render.Desired(deployment(), plugins(), broker)
	if diags.HasErrors() {
		t.Fatal(diags)
	}
	hr := specs[0]
	got, ok, err := render.RestoreSecrets(hr.Redacted, hr.Config)
	if err != nil || !ok || !bytes.Equal(got, hr.Config) {
		t.Fatalf("restored %v %v:\n%s\nwant:\n%s", ok, err, got, hr.Config)
	}

	d := deployment()
	d.Plugs[0].Params["token"] = cty.StringVal("next-token")
	d.Plugs[0].ParamRanges["token"] = hcl.Range{}
	next, _ := render.Desired(d, plugins(), render.BrokerInfo{URL: broker.URL, Host: broker.Host, Port: broker.Port, Username: "plugs", Password: "next-pw"})
	got, ok, err = render.RestoreSecrets(hr.Redacted, next[0].Config)
	if err != nil || !ok || !bytes.Contains(got, []byte(`"next-token"`)) || !bytes.Contains(got, []byte(`"next-pw"`)) || bytes.Contains(got, []byte(render.Sensitive)) {
		t.Errorf("restored from a newer config %v %v:\n%s", ok, err, got)
	}

	if _, ok, err := render.RestoreSecrets(hr.Redacted, nil); ok || err != nil {
		t.Errorf("restored without a current config: %v %v", ok, err)
	}
	bridge := specs[2] // no secret param; the broker password is one
	if _, ok, _ := render.RestoreSecrets(bridge.Redacted, nil); ok {
		t.Error("the broker password was restored from nothing")
	}
}
