package reconcile_test

import (
	"context"
	"slices"
	"testing"

	"github.com/plugs-dev/plugs/instance"
	"github.com/plugs-dev/plugs/reconcile"
	"github.com/plugs-dev/plugs/reconcile/reconciletest"
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

// removingExecutor records Remove calls on top of the fake.
type removingExecutor struct {
	*reconciletest.FakeExecutor
	removed []instance.ID
}

func (r *removingExecutor) Remove(ctx context.Context, id instance.ID) error {
	r.removed = append(r.removed, id)
	return r.Stop(ctx, id)
}

// TestApplyRemovesDeletedInstances: a delete goes to Remove when the
// executor has it (its files, config.json with secrets, go too); a
// replace only stops (issue 11).
func TestApplyRemovesDeletedInstances(t *testing.T) {
	a, b := testSpec("a", "default"), testSpec("b", "default")
	ex := &removingExecutor{FakeExecutor: reconciletest.NewFakeExecutor(running(a), running(b))}
	changed := withConfig(a, `{"x":2}`, `{"x":2}`)
	p := reconcile.NewPlan([]instance.Spec{changed}, ex.Observe())
	res := reconcile.Apply(t.Context(), ex, p, reconcile.ApplyOptions{})
	for _, o := range res.Outcomes {
		if o.Err != nil {
			t.Fatalf("%s: %v", o.ID, o.Err)
		}
	}
	if len(ex.removed) != 1 || ex.removed[0] != b.ID {
		t.Errorf("removed %v, want only %s", ex.removed, b.ID)
	}
}
