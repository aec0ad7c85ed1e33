package render

import (
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/plugs-dev/plugs/instance"
	"github.com/plugs-dev/plugs/spec"
)

func TestHooksPlugOverManifest(t *testing.T) {
	m := &spec.Manifest{Hooks: spec.Hooks{PreStart: []string{"./pre"}, PostStart: []string{"./post"}, PreStop: []string{"./stop"}}}
	plug := &spec.Plug{Hooks: &spec.Hooks{PreStart: []string{"./mine", "x"}, PreStop: []string{}}}
	got := Hooks(plug, m)
	want := instance.Hooks{PreStart: []string{"./mine", "x"}, PostStart: []string{"./post"}, PreStop: []string{}, Timeout: instance.DefaultHookTimeout}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("hooks (-want +got):\n%s", diff)
	}
	if got := Hooks(&spec.Plug{}, &spec.Manifest{}); !got.Equal(instance.Hooks{}) {
		t.Errorf("no hooks: %+v", got)
	}
}
