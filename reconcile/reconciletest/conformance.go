package reconciletest

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/plugs-dev/plugs/instance"
	"github.com/plugs-dev/plugs/reconcile"
)

// Spec returns a runnable spec for tests: `sleep 60` in dir, with a small
// config that names the instance and carries version.
func Spec(dir, plug, inst, version string, dependsOn ...string) instance.Spec {
	config := fmt.Appendf(nil, "{\n  \"plug\": %q,\n  \"instance\": %q,\n  \"version\": %q\n}\n", plug, inst, version)
	sum := sha256.Sum256(config)
	return instance.Spec{
		ID:          instance.ID{Plug: plug, Instance: inst},
		Version:     version,
		Revision:    "rev-" + version,
		Dir:         dir,
		Command:     []string{"sleep", "60"},
		Env:         map[string]string{"PLUGS_TEST": "1"},
		Config:      config,
		ConfigHash:  hex.EncodeToString(sum[:]),
		Redacted:    config,
		DependsOn:   dependsOn,
		StopSignal:  "SIGTERM",
		StopTimeout: 5 * time.Second,
		Restart:     instance.RestartPolicy{InitialDelay: time.Second, MaxDelay: time.Minute, ResetAfter: 5 * time.Minute},
	}
}

// TestExecutor is the conformance suite of instance.Executor. newExecutor
// returns a fresh executor for each subtest and registers its own cleanup;
// the suite stops every instance it started. The fake and the real runner
// both pass it:
//
//	reconciletest.TestExecutor(t, func(t *testing.T) instance.Executor { ... })
func TestExecutor(t *testing.T, newExecutor func(t *testing.T) instance.Executor) {
	run := func(name string, f func(t *testing.T, ex instance.Executor, dir string)) {
		t.Run(name, func(t *testing.T) {
			ex := newExecutor(t)
			t.Cleanup(func() {
				for _, st := range ex.Observe() {
					if err := ex.Stop(context.Background(), st.ID); err != nil {
						t.Errorf("cleanup: stop %s: %v", st.ID, err)
					}
				}
			})
			f(t, ex, t.TempDir())
		})
	}

	run("StartObserveStop", func(t *testing.T, ex instance.Executor, dir string) {
		ctx := t.Context()
		s := Spec(dir, "a", "default", "1")
		if err := ex.Start(ctx, s); err != nil {
			t.Fatalf("start: %v", err)
		}
		st, ok := find(ex.Observe(), s.ID)
		if !ok {
			t.Fatalf("started %s is not observed", s.ID)
		}
		assertLive(t, st)
		if st.Spec.ConfigHash != s.ConfigHash || !slices.Equal(st.Spec.Command, s.Command) {
			t.Errorf("observed spec = %+v, want the started one %+v", st.Spec, s)
		}
		if err := ex.Stop(ctx, s.ID); err != nil {
			t.Fatalf("stop: %v", err)
		}
		if _, ok := find(ex.Observe(), s.ID); ok {
			t.Errorf("stopped %s is still observed", s.ID)
		}
		if err := ex.Stop(ctx, s.ID); err != nil {
			t.Errorf("stop of a stopped instance: %v, want nil", err)
		}
	})

	run("StopUnknown", func(t *testing.T, ex instance.Executor, dir string) {
		if err := ex.Stop(t.Context(), instance.ID{Plug: "nope", Instance: "default"}); err != nil {
			t.Errorf("stop unknown: %v, want nil", err)
		}
	})

	run("StartFailureThenStart", func(t *testing.T, ex instance.Executor, dir string) {
		ctx := t.Context()
		bad := Spec(dir, "a", "default", "2")
		bad.Command = []string{"./no-such-program"}
		if err := ex.Start(ctx, bad); err == nil {
			t.Fatal("start of a missing program: nil error, want one")
		}
		if st, ok := find(ex.Observe(), bad.ID); ok && st.State != instance.StateFailed {
			t.Errorf("after a failed start, state = %s, want failed (or not observed)", st.State)
		}
		// What Apply does to roll back a failed replace.
		good := Spec(dir, "a", "default", "1")
		if err := ex.Start(ctx, good); err != nil {
			t.Fatalf("start after a failed start: %v", err)
		}
		st, ok := find(ex.Observe(), good.ID)
		if !ok {
			t.Fatal("instance not observed after start")
		}
		assertLive(t, st)
		if st.Spec.ConfigHash != good.ConfigHash {
			t.Errorf("observed config hash %s, want the good spec's %s", st.Spec.ConfigHash, good.ConfigHash)
		}
	})

	run("Restart", func(t *testing.T, ex instance.Executor, dir string) {
		ctx := t.Context()
		s := Spec(dir, "a", "default", "1")
		if err := ex.Start(ctx, s); err != nil {
			t.Fatalf("start: %v", err)
		}
		if err := ex.Restart(ctx, s.ID); err != nil {
			t.Fatalf("restart: %v", err)
		}
		st, ok := find(ex.Observe(), s.ID)
		if !ok {
			t.Fatal("restarted instance not observed")
		}
		if st.Spec.ConfigHash != s.ConfigHash {
			t.Errorf("restart changed the spec: config hash %s, want %s", st.Spec.ConfigHash, s.ConfigHash)
		}
		if err := ex.Restart(ctx, instance.ID{Plug: "nope", Instance: "x"}); err == nil {
			t.Error("restart of an unknown instance: nil error, want one")
		}
	})

	run("ApplyConverges", func(t *testing.T, ex instance.Executor, dir string) {
		desired := []instance.Spec{
			Spec(dir, "bridge", "default", "1"),
			Spec(dir, "heart", "p17", "1", "bridge"),
			Spec(dir, "heart", "p22", "1", "bridge"),
			Spec(dir, "alerts", "default", "1", "heart"),
		}
		apply(t, ex, desired)
		before := pids(ex.Observe())
		if len(before) != len(desired) {
			t.Fatalf("observed %d instances, want %d", len(before), len(desired))
		}

		// One config change replaces exactly that instance.
		desired[1] = Spec(dir, "heart", "p17", "2", "bridge")
		p := reconcile.NewPlan(desired, ex.Observe())
		if start, replace, stop := p.Summary(); start != 0 || replace != 1 || stop != 0 {
			t.Fatalf("plan after one change: %d to start, %d to replace, %d to stop; want 0, 1, 0", start, replace, stop)
		}
		apply(t, ex, desired)
		after := pids(ex.Observe())
		for id, pid := range before {
			if id == desired[1].ID {
				if after[id] == pid && pid != 0 {
					t.Errorf("%s was replaced but kept pid %d", id, pid)
				}
			} else if after[id] != pid {
				t.Errorf("%s changed pid %d → %d without a change", id, pid, after[id])
			}
		}

		// Removing a plug stops it and nothing else.
		apply(t, ex, desired[:3])
		if _, ok := find(ex.Observe(), desired[3].ID); ok {
			t.Errorf("removed %s still observed", desired[3].ID)
		}
		apply(t, ex, nil)
		if obs := ex.Observe(); len(obs) != 0 {
			t.Errorf("after removing everything, observed %d instances", len(obs))
		}
	})

	run("UpdateInPlace", func(t *testing.T, ex instance.Executor, dir string) {
		if _, ok := ex.(instance.Updater); !ok {
			t.Skip("executor does not implement instance.Updater")
		}
		s := Spec(dir, "a", "default", "1")
		apply(t, ex, []instance.Spec{s})
		before := pids(ex.Observe())
		s.StopTimeout = 7 * time.Second
		s.Restart.MaxRestarts = 3
		p := reconcile.NewPlan([]instance.Spec{s}, ex.Observe())
		if len(p.Changes) != 1 || p.Changes[0].Action != reconcile.Update {
			t.Fatalf("plan for a stop_timeout change = %+v, want one update", p.Changes)
		}
		apply(t, ex, []instance.Spec{s})
		if after := pids(ex.Observe()); after[s.ID] != before[s.ID] {
			t.Errorf("update in place changed pid %d → %d", before[s.ID], after[s.ID])
		}
	})
}

// apply plans desired against ex, applies it, and checks that it converged.
func apply(t *testing.T, ex instance.Executor, desired []instance.Spec) {
	t.Helper()
	res := reconcile.Apply(t.Context(), ex, reconcile.NewPlan(desired, ex.Observe()), reconcile.ApplyOptions{Parallelism: 2})
	if err := res.Err(); err != nil {
		t.Fatalf("apply: %v", err)
	}
	if p := reconcile.NewPlan(desired, ex.Observe()); !p.Empty() {
		t.Fatalf("not converged after apply: %+v", p.Changes)
	}
}

func find(obs []instance.Status, id instance.ID) (instance.Status, bool) {
	for _, st := range obs {
		if st.ID == id {
			return st, true
		}
	}
	return instance.Status{}, false
}

func pids(obs []instance.Status) map[instance.ID]int {
	m := make(map[instance.ID]int, len(obs))
	for _, st := range obs {
		m[st.ID] = st.PID
	}
	return m
}

func assertLive(t *testing.T, st instance.Status) {
	t.Helper()
	if st.State != instance.StateStarting && st.State != instance.StateRunning {
		t.Errorf("%s state = %s (%s), want starting or running", st.ID, st.State, st.Reason)
	}
	if st.State == instance.StateRunning && st.PID <= 0 {
		t.Errorf("%s is running with pid %d", st.ID, st.PID)
	}
}
