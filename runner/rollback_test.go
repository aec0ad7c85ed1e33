package runner

import (
	"context"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/plugs-dev/plugs/instance"
	"github.com/plugs-dev/plugs/reconcile"
	"github.com/plugs-dev/plugs/reconcile/reconciletest"
)

// replaceWithPreStart starts version 1 of e/default, then applies a
// replace by version 2 whose pre_start is preStart (with timeout), beside
// the creates of extra, through reconcile.Apply over ex (the runner, or a
// wrapper of it). It returns the apply's result and the old pid.
func replaceWithPreStart(t *testing.T, r *Runner, ex instance.Executor, preStart []string, timeout time.Duration, extra ...instance.Spec) (*reconcile.ApplyResult, int) {
	t.Helper()
	dir := t.TempDir()
	old := reconciletest.Spec(dir, "e", "default", "1")
	if err := r.Start(t.Context(), old); err != nil {
		t.Fatal(err)
	}
	oldPID := observed(t, r, old.ID).PID
	next := reconciletest.Spec(dir, "e", "default", "2")
	next.Hooks = instance.Hooks{PreStart: preStart, Timeout: timeout}
	plan := reconcile.NewPlan(append([]instance.Spec{next}, extra...), r.Observe())
	if c := plan.Changes[0]; c.ID != old.ID || c.Action != reconcile.Replace {
		t.Fatalf("plan %+v, want e/default replaced first", plan.Changes)
	}
	res := reconcile.Apply(t.Context(), ex, plan, reconcile.ApplyOptions{Parallelism: 2})
	return res, oldPID
}

// assertRolledBack checks that the apply reported e/default's replace as
// failed with why and rolled back, and that version 1 runs, in a live
// process, and stays so (nothing of version 2 restarts behind it).
func assertRolledBack(t *testing.T, r *Runner, res *reconcile.ApplyResult, why string) {
	t.Helper()
	id := instance.ID{Plug: "e", Instance: "default"}
	var o reconcile.Outcome
	for _, oc := range res.Outcomes {
		if oc.ID == id {
			o = oc
		}
	}
	if o.Err == nil || !o.RolledBack || !strings.Contains(o.Err.Error(), why) || strings.Contains(o.Err.Error(), "roll back") {
		t.Errorf("outcome %+v (err %v), want the new version failed with %q and rolled back", o, o.Err, why)
	}
	for range 3 { // now, and after what a restart of version 2 would take
		st := observed(t, r, id)
		if st.State != instance.StateRunning || st.Spec.Version != "1" || st.PID == 0 {
			t.Fatalf("after the failed replace: %s version %s pid %d (%s), want version 1 running", st.State, st.Spec.Version, st.PID, st.Reason)
		}
		if err := syscall.Kill(st.PID, 0); err != nil {
			t.Fatalf("version 1's pid %d: %v", st.PID, err)
		}
		time.Sleep(150 * time.Millisecond)
	}
}

// TestReplaceWithFailingPreStartRollsBack: a new version whose pre_start
// exits 1 fails its replace, and the previous version runs again (issue:
// "roll back: start e/default: already starting" left no process).
func TestReplaceWithFailingPreStartRollsBack(t *testing.T) {
	r, _ := newTestRunner(t, Options{})
	res, oldPID := replaceWithPreStart(t, r, r, []string{"sh", "-c", "exit 1"}, 10*time.Second)
	assertRolledBack(t, r, res, "start new: start e/default: pre_start exited 1")
	if !gone(oldPID) {
		t.Errorf("the old process %d still runs beside its rollback", oldPID)
	}
}

// startTimes wraps a Runner and records when the first Start of each
// instance returned.
type startTimes struct {
	*Runner
	mu   sync.Mutex
	done map[instance.ID]time.Time
}

func (s *startTimes) Start(ctx context.Context, spec instance.Spec) error {
	err := s.Runner.Start(ctx, spec)
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, ok := s.done[spec.ID]; !ok {
		s.done[spec.ID] = time.Now()
	}
	return err
}

// TestReplaceWithHangingPreStart: a new version whose pre_start hangs past
// its timeout fails its replace and the previous version runs again; with
// Parallelism 2, another plug's create in the same Apply completes while
// the hook still hangs.
func TestReplaceWithHangingPreStart(t *testing.T) {
	r, _ := newTestRunner(t, Options{})
	ex := &startTimes{Runner: r, done: map[instance.ID]time.Time{}}
	f := reconciletest.Spec(t.TempDir(), "f", "default", "1")
	const timeout = 1500 * time.Millisecond
	t0 := time.Now()
	res, _ := replaceWithPreStart(t, r, ex, []string{"sleep", "3600"}, timeout, f)
	if took := time.Since(t0); took < timeout {
		t.Errorf("apply took %v, less than the hook's timeout", took)
	}
	assertRolledBack(t, r, res, "pre_start timed out after")
	if err := res.Outcomes[1].Err; res.Outcomes[1].ID != f.ID || err != nil {
		t.Errorf("outcome %+v, want f/default created", res.Outcomes[1])
	}
	if st := observed(t, r, f.ID); st.State != instance.StateRunning {
		t.Errorf("f/default %s, want running", st.State)
	}
	ex.mu.Lock()
	defer ex.mu.Unlock()
	fDone, eDone := ex.done[f.ID], ex.done[instance.ID{Plug: "e", Instance: "default"}]
	if !fDone.Before(eDone) || fDone.Sub(t0) >= timeout {
		t.Errorf("f/default's create returned %v after the apply began, e/default's replace %v: want f's first, before the hook's timeout", fDone.Sub(t0), eDone.Sub(t0))
	}
}

// TestStartCanceledDuringPreStart: the ctx of Start ends a hanging
// pre_start of its first process (a daemon that stops does not wait out
// the hook's timeout); the start fails and nothing of it is left running.
func TestStartCanceledDuringPreStart(t *testing.T) {
	r, _ := newTestRunner(t, Options{})
	s := reconciletest.Spec(t.TempDir(), "cancel", "default", "1")
	s.Hooks = instance.Hooks{PreStart: []string{"sleep", "3600"}, Timeout: 20 * time.Second}
	ctx, cancel := context.WithTimeout(t.Context(), 300*time.Millisecond)
	defer cancel()
	t0 := time.Now()
	err := r.Start(ctx, s)
	if took := time.Since(t0); took > 10*time.Second {
		t.Errorf("Start returned %v after its ctx ended", took-300*time.Millisecond)
	}
	if err == nil || !strings.Contains(err.Error(), "pre_start canceled") {
		t.Errorf("Start = %v, want pre_start canceled", err)
	}
	if st := observed(t, r, s.ID); st.State != instance.StateFailed || st.PID != 0 {
		t.Errorf("after a canceled start: %s pid %d, want failed without a process", st.State, st.PID)
	}
}
