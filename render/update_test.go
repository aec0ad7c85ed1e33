package render_test

import (
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/plugs-dev/plugs/instance"
	"github.com/plugs-dev/plugs/render"
	"github.com/plugs-dev/plugs/spec"
)

// TestUpdatePolicyCarried: every instance of a plug with an update block
// carries its policy; a plug without one has none (all at once, as before).
func TestUpdatePolicyCarried(t *testing.T) {
	d := deployment()
	d.Plugs[0].Health.Update = &spec.Update{MaxParallel: 2, MinHealthyTime: 200 * time.Millisecond, HealthyDeadline: 2 * time.Second, AutoRevert: true}
	specs, diags := render.Desired(d, plugins(), render.BrokerInfo{URL: "tcp://127.0.0.1:1883", Host: "127.0.0.1", Port: 1883})
	if diags.HasErrors() {
		t.Fatal(diags)
	}
	want := &instance.Update{MaxParallel: 2, MinHealthyTime: 200 * time.Millisecond, HealthyDeadline: 2 * time.Second, AutoRevert: true}
	for _, s := range specs {
		switch s.ID.Plug {
		case "heart-rate":
			if diff := cmp.Diff(want, s.Update); diff != "" {
				t.Errorf("%s: update (-want +got):\n%s", s.ID, diff)
			}
		default:
			if s.Update != nil {
				t.Errorf("%s has an update policy without an update block: %+v", s.ID, s.Update)
			}
		}
	}
}
