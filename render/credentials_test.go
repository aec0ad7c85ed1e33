package render_test

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/plugs-dev/plugs/instance"
	"github.com/plugs-dev/plugs/render"
)

// TestInstanceCredentials: with InstanceCredentials each instance's
// config.json carries its own broker account, and the redacted config
// never its password.
func TestInstanceCredentials(t *testing.T) {
	b := broker
	b.InstanceCredentials = func(id instance.ID) (string, string) {
		return id.Plug + "/" + id.Instance, "pw-of-" + id.Instance
	}
	specs, diags := render.Desired(deployment(), plugins(), b)
	if diags.HasErrors() {
		t.Fatal(diags)
	}
	for _, s := range specs {
		var doc struct {
			Broker struct{ Username, Password string } `json:"broker"`
		}
		if err := json.Unmarshal(s.Config, &doc); err != nil {
			t.Fatal(err)
		}
		if doc.Broker.Username != s.ID.Plug+"/"+s.ID.Instance || doc.Broker.Password != "pw-of-"+s.ID.Instance {
			t.Errorf("%s: broker account %q/%q, want its own", s.ID, doc.Broker.Username, doc.Broker.Password)
		}
		if strings.Contains(string(s.Redacted), "pw-of-") {
			t.Errorf("%s: the redacted config holds the instance's password", s.ID)
		}
	}
}
