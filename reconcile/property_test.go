package reconcile_test

import (
	"fmt"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/plugs-dev/plugs/instance"
	"github.com/plugs-dev/plugs/reconcile"
	"github.com/plugs-dev/plugs/reconcile/reconciletest"
)

// randomSpec is a spec of plug pi/instance with random variations of every
// field the planner compares. Plugs depend only on lower-numbered plugs, as
// spec guarantees no cycles.
func randomSpec(r *rand.Rand, pi int, instance string) instance.Spec {
	var deps []string
	if pi > 0 && r.IntN(3) == 0 {
		deps = []string{fmt.Sprintf("p%d", r.IntN(pi))}
	}
	s := reconciletest.Spec("/srv", fmt.Sprintf("p%d", pi), instance, fmt.Sprint(r.IntN(2)), deps...)
	if r.IntN(4) == 0 {
		s.Revision = "other"
	}
	if r.IntN(4) == 0 {
		s.Env = map[string]string{"K": fmt.Sprint(r.IntN(2))}
	}
	if r.IntN(4) == 0 {
		s.StopTimeout = time.Duration(r.IntN(3)) * time.Second
	}
	if r.IntN(6) == 0 {
		s.Command = []string{"sleep", "61"}
	}
	if r.IntN(6) == 0 {
		s.Restart.MaxRestarts = r.IntN(3)
	}
	if r.IntN(8) == 0 {
		s.User = "nobody"
	}
	return s
}

// randomState returns random desired and observed sets over a small pool of
// plugs and instances, so that they overlap often.
func randomState(r *rand.Rand) ([]instance.Spec, []instance.Status) {
	var desired []instance.Spec
	var observed []instance.Status
	states := []instance.State{instance.StateRunning, instance.StateRunning, instance.StateBackoff, instance.StateFailed, instance.StateStopped, instance.StateStarting}
	for pi := range 6 {
		for _, inst := range []string{"default", "i1", "i2"} {
			if r.IntN(2) == 0 {
				desired = append(desired, randomSpec(r, pi, inst))
			}
			if r.IntN(2) == 0 {
				observed = append(observed, instance.Status{
					ID:   instance.ID{Plug: fmt.Sprintf("p%d", pi), Instance: inst},
					Spec: randomSpec(r, pi, inst), State: states[r.IntN(len(states))], PID: 100 + pi,
				})
			}
		}
	}
	r.Shuffle(len(desired), func(i, j int) { desired[i], desired[j] = desired[j], desired[i] })
	r.Shuffle(len(observed), func(i, j int) { observed[i], observed[j] = observed[j], observed[i] })
	return desired, observed
}

func TestPlanProperties(t *testing.T) {
	const cases = 3000
	r := rand.New(rand.NewPCG(5, 1))
	for n := range cases {
		desired, observed := randomState(r)
		p := reconcile.NewPlan(desired, observed)
		checkPlanInvariants(t, n, desired, observed, p)

		// Deterministic whatever the input order.
		rd, ro := append([]instance.Spec(nil), desired...), append([]instance.Status(nil), observed...)
		r.Shuffle(len(rd), func(i, j int) { rd[i], rd[j] = rd[j], rd[i] })
		r.Shuffle(len(ro), func(i, j int) { ro[i], ro[j] = ro[j], ro[i] })
		if diff := cmp.Diff(summarize(p), summarize(reconcile.NewPlan(rd, ro))); diff != "" {
			t.Fatalf("case %d: plan depends on input order (-first +second):\n%s", n, diff)
		}

		// Unchanged inputs: what runs is what is desired.
		var same []instance.Status
		for _, s := range desired {
			same = append(same, running(s))
		}
		if q := reconcile.NewPlan(desired, same); !q.Empty() {
			t.Fatalf("case %d: plan of unchanged inputs is not empty: %v", n, summarize(q))
		}

		// Applying converges, and re-applying does nothing.
		ex := reconciletest.NewFakeExecutor(observed...)
		if err := reconcile.Apply(t.Context(), ex, p, reconcile.ApplyOptions{Parallelism: 3}).Err(); err != nil {
			t.Fatalf("case %d: apply: %v", n, err)
		}
		again := reconcile.NewPlan(desired, ex.Observe())
		if !again.Empty() {
			t.Fatalf("case %d: not converged, plan after apply: %v", n, summarize(again))
		}
		calls := len(ex.Calls())
		reconcile.Apply(t.Context(), ex, again, reconcile.ApplyOptions{})
		if len(ex.Calls()) != calls {
			t.Fatalf("case %d: re-applying made calls %v", n, ex.Calls()[calls:])
		}
	}
}

func checkPlanInvariants(t *testing.T, n int, desired []instance.Spec, observed []instance.Status, p *reconcile.Plan) {
	t.Helper()
	want := map[instance.ID]instance.Spec{}
	for _, s := range desired {
		want[s.ID] = s
	}
	have := map[instance.ID]instance.Status{}
	for _, st := range observed {
		have[st.ID] = st
	}
	seen := map[instance.ID]bool{}
	lastStart := map[string]int{} // plug → position of its last start
	for i, c := range p.Changes {
		if c.Action == reconcile.Create || c.Action == reconcile.Replace {
			lastStart[c.ID.Plug] = i
		}
	}
	for i, c := range p.Changes {
		if seen[c.ID] {
			t.Fatalf("case %d: %s appears in two changes (started and stopped?)", n, c.ID)
		}
		seen[c.ID] = true
		_, isDesired := want[c.ID]
		st, isObserved := have[c.ID]
		switch c.Action {
		case reconcile.Delete:
			if isDesired || !isObserved {
				t.Fatalf("case %d: delete of %s (desired %v, observed %v)", n, c.ID, isDesired, isObserved)
			}
		case reconcile.Create:
			if !isDesired || isObserved && st.State != instance.StateStopped {
				t.Fatalf("case %d: create of %s (desired %v, observed %v)", n, c.ID, isDesired, isObserved)
			}
		default:
			if !isDesired || !isObserved {
				t.Fatalf("case %d: %s of %s (desired %v, observed %v)", n, c.Action, c.ID, isDesired, isObserved)
			}
		}
		if len(c.Reasons) == 0 && c.Action != reconcile.NoOp {
			t.Fatalf("case %d: %s of %s without a reason", n, c.Action, c.ID)
		}
		if c.Action == reconcile.Create || c.Action == reconcile.Replace {
			for _, dep := range c.After.DependsOn {
				if at, ok := lastStart[dep]; ok && at > i {
					t.Fatalf("case %d: %s starts before its dependency %s", n, c.ID, dep)
				}
			}
		}
	}
	for id := range want {
		if !seen[id] {
			t.Fatalf("case %d: desired %s missing from the plan", n, id)
		}
	}
	for id := range have {
		if !seen[id] {
			t.Fatalf("case %d: observed %s missing from the plan", n, id)
		}
	}
}
