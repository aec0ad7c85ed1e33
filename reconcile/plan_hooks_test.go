package reconcile_test

import (
	"slices"
	"testing"

	"github.com/plugs-dev/plugs/instance"
	"github.com/plugs-dev/plugs/reconcile"
)

// TestPlanHooksChanged: a changed hook (or setup requirement) replaces the
// instance, and the plan says why.
func TestPlanHooksChanged(t *testing.T) {
	before := testSpec("a", "default")
	for name, change := range map[string]func(*instance.Spec){
		"pre_start added": func(s *instance.Spec) { s.Hooks.PreStart = []string{"./pre"} },
		"post_start":      func(s *instance.Spec) { s.Hooks.PostStart = []string{"./post"} },
		"pre_stop":        func(s *instance.Spec) { s.Hooks.PreStop = []string{"./stop"} },
		"setup required":  func(s *instance.Spec) { s.SetupRequired = true },
		"pre_start args":  func(s *instance.Spec) { s.Hooks.PreStart = []string{"./pre", "-v"} },
		"hook timeout":    func(s *instance.Spec) { s.Hooks.Timeout = instance.DefaultHookTimeout },
	} {
		after := before
		change(&after)
		p := reconcile.NewPlan([]instance.Spec{after}, []instance.Status{running(before)})
		if len(p.Changes) != 1 || p.Changes[0].Action != reconcile.Replace || !slices.Contains(p.Changes[0].Reasons, reconcile.ReasonHooksChanged) {
			t.Errorf("%s: %+v, want a replace because hooks changed", name, p.Changes)
		}
	}
	same := before
	same.Hooks.PreStop = []string{} // as none
	if p := reconcile.NewPlan([]instance.Spec{same}, []instance.Status{running(before)}); p.Changes[0].Action != reconcile.NoOp {
		t.Errorf("an empty hook list against none: %+v", p.Changes)
	}
}
