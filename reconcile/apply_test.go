package reconcile_test

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"
	"testing/synctest"

	"github.com/google/go-cmp/cmp"
	"github.com/plugs-dev/plugs/instance"
	"github.com/plugs-dev/plugs/reconcile"
	"github.com/plugs-dev/plugs/reconcile/reconciletest"
)

func TestFakeExecutorConformance(t *testing.T) {
	reconciletest.TestExecutor(t, func(t *testing.T) instance.Executor { return reconciletest.NewFakeExecutor() })
}

// callIndex maps "op plug/instance" to the position of its first call.
func callIndex(calls []reconciletest.Call) map[string]int {
	m := make(map[string]int)
	for i, c := range calls {
		if _, ok := m[c.String()]; !ok {
			m[c.String()] = i
		}
	}
	return m
}

func TestApplyOrdersByDependsOn(t *testing.T) {
	desired := []instance.Spec{
		testSpec("alerts", "default", "heart"),
		testSpec("heart", "p17", "bridge"),
		testSpec("heart", "p22", "bridge"),
		testSpec("bridge", "default"),
		testSpec("other", "default"),
	}
	ex := reconciletest.NewFakeExecutor()
	res := reconcile.Apply(t.Context(), ex, reconcile.NewPlan(desired, nil), reconcile.ApplyOptions{Parallelism: 4})
	if err := res.Err(); err != nil {
		t.Fatalf("apply: %v", err)
	}
	idx := callIndex(ex.Calls())
	for _, before := range [][2]string{
		{"start bridge/default", "start heart/p17"},
		{"start bridge/default", "start heart/p22"},
		{"start heart/p17", "start alerts/default"},
		{"start heart/p22", "start alerts/default"},
	} {
		if idx[before[0]] >= idx[before[1]] {
			t.Errorf("%q did not come before %q: calls %v", before[0], before[1], ex.Calls())
		}
	}

	// Removing everything stops dependents first.
	res = reconcile.Apply(t.Context(), ex, reconcile.NewPlan(nil, ex.Observe()), reconcile.ApplyOptions{})
	if err := res.Err(); err != nil {
		t.Fatalf("apply: %v", err)
	}
	idx = callIndex(ex.Calls())
	for _, before := range [][2]string{
		{"stop alerts/default", "stop heart/p17"},
		{"stop heart/p22", "stop bridge/default"},
		{"stop heart/p17", "stop bridge/default"},
	} {
		if idx[before[0]] >= idx[before[1]] {
			t.Errorf("%q did not come before %q: calls %v", before[0], before[1], ex.Calls())
		}
	}
	if obs := ex.Observe(); len(obs) != 0 {
		t.Errorf("observed %d instances after removing all", len(obs))
	}
}

func TestApplyParallelismBound(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		const n, parallelism = 10, 3
		entered := make(chan instance.ID, n)
		release := make(chan struct{})
		ex := reconciletest.NewFakeExecutor()
		ex.BeforeStart = func(ctx context.Context, s instance.Spec) error {
			entered <- s.ID
			<-release
			return nil
		}
		var desired []instance.Spec
		for i := range n {
			desired = append(desired, testSpec("p", string(rune('a'+i))))
		}
		done := make(chan *reconcile.ApplyResult)
		go func() {
			done <- reconcile.Apply(t.Context(), ex, reconcile.NewPlan(desired, nil), reconcile.ApplyOptions{Parallelism: parallelism})
		}()
		for started := 0; started < n; {
			synctest.Wait() // every goroutine of Apply is blocked: nothing more can enter
			inFlight := len(entered)
			if want := min(parallelism, n-started); inFlight != want {
				t.Fatalf("after %d starts, %d in flight, want %d", started, inFlight, want)
			}
			<-entered
			release <- struct{}{}
			started++
		}
		res := <-done
		if err := res.Err(); err != nil {
			t.Fatalf("apply: %v", err)
		}
		if peak := ex.PeakInFlight(); peak != parallelism {
			t.Errorf("peak in flight = %d, want %d", peak, parallelism)
		}
	})
}

func TestApplyRollsBackFailedReplace(t *testing.T) {
	old := testSpec("a", "default")
	next := reconciletest.Spec("/srv", "a", "default", "2")
	ex := reconciletest.NewFakeExecutor(running(old))
	ex.BeforeStart = func(ctx context.Context, s instance.Spec) error {
		if s.Version == "2" {
			return errors.New("boom")
		}
		return nil
	}
	res := reconcile.Apply(t.Context(), ex, reconcile.NewPlan([]instance.Spec{next}, ex.Observe()), reconcile.ApplyOptions{})
	if len(res.Outcomes) != 1 || !res.Outcomes[0].RolledBack {
		t.Fatalf("outcomes = %+v, want one rolled back", res.Outcomes)
	}
	if err := res.Err(); err == nil || !strings.Contains(err.Error(), "start new") || !strings.Contains(err.Error(), "boom") {
		t.Errorf("Err() = %v, want the failed start", err)
	}
	var calls []string
	for _, c := range ex.Calls() {
		calls = append(calls, c.String()+" v"+c.Spec.Version)
	}
	if diff := cmp.Diff([]string{"stop a/default v", "start a/default v2", "start a/default v1"}, calls); diff != "" {
		t.Errorf("calls (-want +got):\n%s", diff)
	}
	obs := ex.Observe()
	if len(obs) != 1 || obs[0].State != instance.StateRunning || obs[0].Spec.Version != "1" {
		t.Errorf("after rollback observed %+v, want the old spec running", obs)
	}

	// When the old spec cannot start either, both errors are reported.
	ex.BeforeStart = func(context.Context, instance.Spec) error { return errors.New("disk full") }
	res = reconcile.Apply(t.Context(), ex, reconcile.NewPlan([]instance.Spec{next}, ex.Observe()), reconcile.ApplyOptions{})
	if res.Outcomes[0].RolledBack || !strings.Contains(res.Err().Error(), "roll back") {
		t.Errorf("outcome = %+v, err %v; want a failed rollback", res.Outcomes[0], res.Err())
	}
}

func TestApplyFailedStopKeepsOldRunning(t *testing.T) {
	old := testSpec("a", "default")
	ex := reconciletest.NewFakeExecutor(running(old))
	ex.BeforeStop = func(context.Context, instance.ID) error { return errors.New("stuck") }
	next := reconciletest.Spec("/srv", "a", "default", "2")
	res := reconcile.Apply(t.Context(), ex, reconcile.NewPlan([]instance.Spec{next}, ex.Observe()), reconcile.ApplyOptions{})
	if err := res.Err(); err == nil || !strings.Contains(err.Error(), "stop old") {
		t.Errorf("Err() = %v, want the failed stop", err)
	}
	for _, c := range ex.Calls() {
		if c.Op == "start" {
			t.Errorf("started %s although the old process could not be stopped", c.ID)
		}
	}
}

func TestApplyOneFailureDoesNotBlockOthers(t *testing.T) {
	desired := []instance.Spec{
		testSpec("a", "default"),
		testSpec("broken", "default"),
		testSpec("c", "default"),
		testSpec("needs-broken", "default", "broken"),
	}
	ex := reconciletest.NewFakeExecutor()
	ex.BeforeStart = func(ctx context.Context, s instance.Spec) error {
		if s.ID.Plug == "broken" {
			return errors.New("exec format error")
		}
		return nil
	}
	res := reconcile.Apply(t.Context(), ex, reconcile.NewPlan(desired, nil), reconcile.ApplyOptions{Parallelism: 1})
	err := res.Err()
	if err == nil || !strings.Contains(err.Error(), "create broken/default") {
		t.Fatalf("Err() = %v, want the broken instance named", err)
	}
	states := map[string]instance.State{}
	for _, st := range ex.Observe() {
		states[st.ID.String()] = st.State
	}
	want := map[string]instance.State{
		"a/default": instance.StateRunning, "broken/default": instance.StateFailed,
		"c/default": instance.StateRunning, "needs-broken/default": instance.StateRunning,
	}
	if diff := cmp.Diff(want, states); diff != "" {
		t.Errorf("states (-want +got):\n%s", diff)
	}
	// Planning again retries the instance that could not start, and only
	// it, saying why (issue 11: it was never tried again); a crash loop
	// that gave up is left alone.
	p := reconcile.NewPlan(desired, ex.Observe())
	var retried []string
	for _, c := range p.Changes {
		if c.Action != reconcile.NoOp {
			retried = append(retried, fmt.Sprintf("%s %s %v", c.Action, c.ID, c.Reasons))
		}
	}
	if want := []string{"create broken/default [failed: exec format error]"}; !slices.Equal(retried, want) {
		t.Errorf("plan after a failed start = %q, want %q", retried, want)
	}
	obs := ex.Observe()
	for i := range obs {
		if obs[i].ID.Plug == "broken" {
			obs[i].GaveUp = true
		}
	}
	if p := reconcile.NewPlan(desired, obs); !p.Empty() {
		t.Errorf("plan with a failed instance that gave up is not empty: %v", summarize(p))
	}
}

func TestApplySkipsUpdateWithoutUpdater(t *testing.T) {
	a := testSpec("a", "default")
	b := a
	b.StopTimeout *= 2
	ex := struct{ instance.Executor }{reconciletest.NewFakeExecutor(running(a))}
	res := reconcile.Apply(t.Context(), ex, reconcile.NewPlan([]instance.Spec{b}, ex.Observe()), reconcile.ApplyOptions{})
	if len(res.Outcomes) != 1 || !res.Outcomes[0].Skipped || res.Err() != nil {
		t.Errorf("outcomes = %+v, want one skipped update", res.Outcomes)
	}
}

func TestApplyCanceled(t *testing.T) {
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	ex := reconciletest.NewFakeExecutor()
	res := reconcile.Apply(ctx, ex, reconcile.NewPlan([]instance.Spec{testSpec("a", "default"), testSpec("b", "default")}, nil), reconcile.ApplyOptions{})
	if !errors.Is(res.Err(), context.Canceled) || len(ex.Calls()) != 0 {
		t.Errorf("Err() = %v with calls %v; want canceled and no calls", res.Err(), ex.Calls())
	}
}
