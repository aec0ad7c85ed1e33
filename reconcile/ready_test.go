package reconcile_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/plugs-dev/plugs/instance"
	"github.com/plugs-dev/plugs/reconcile"
	"github.com/plugs-dev/plugs/reconcile/reconciletest"
)

// readiness is a ReadyWaiter of the test's making: an instance is ready
// once the test calls markReady, or fails once it calls fail.
type readiness struct {
	mu     sync.Mutex
	ready  map[instance.ID]chan struct{}
	failed map[instance.ID]error
	asked  []instance.ID
}

func newReadiness() *readiness {
	return &readiness{ready: map[instance.ID]chan struct{}{}, failed: map[instance.ID]error{}}
}

func (r *readiness) ch(id instance.ID) chan struct{} {
	r.mu.Lock()
	defer r.mu.Unlock()
	c, ok := r.ready[id]
	if !ok {
		c = make(chan struct{})
		r.ready[id] = c
	}
	return c
}

func (r *readiness) markReady(plug, inst string) {
	close(r.ch(instance.ID{Plug: plug, Instance: inst}))
}

func (r *readiness) AwaitReady(ctx context.Context, id instance.ID) error {
	r.mu.Lock()
	r.asked = append(r.asked, id)
	err := r.failed[id]
	r.mu.Unlock()
	if err != nil {
		return err
	}
	select {
	case <-r.ch(id):
		return nil
	case <-ctx.Done():
		return fmt.Errorf("not ready yet: %w", ctx.Err())
	}
}

// started lists the instances ex started, in the order of the calls.
func started(ex *reconciletest.FakeExecutor) []string {
	var out []string
	for _, c := range ex.Calls() {
		if c.Op == "start" {
			out = append(out, c.ID.String())
		}
	}
	return out
}

func outcomeOf(res *reconcile.ApplyResult, plug, inst string) reconcile.Outcome {
	for _, o := range res.Outcomes {
		if o.ID == (instance.ID{Plug: plug, Instance: inst}) {
			return o
		}
	}
	return reconcile.Outcome{}
}

// TestApplyWaitsForReadyDependency: a dependent starts only once every
// instance of its dependency is ready, not when they are started.
func TestApplyWaitsForReadyDependency(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		desired := []instance.Spec{
			testSpec("bridge", "a"), testSpec("bridge", "b"),
			testSpec("heart", "default", "bridge"),
		}
		ex, rd := reconciletest.NewFakeExecutor(), newReadiness()
		done := make(chan *reconcile.ApplyResult)
		go func() {
			done <- reconcile.Apply(t.Context(), ex, reconcile.NewPlan(desired, nil), reconcile.ApplyOptions{Ready: rd})
		}()
		synctest.Wait()
		if got := strings.Join(slices.Sorted(slices.Values(started(ex))), " "); got != "bridge/a bridge/b" {
			t.Fatalf("started %q before bridge is ready, want only bridge's instances", got)
		}
		rd.markReady("bridge", "a")
		time.Sleep(10 * time.Second) // bridge/b still warming up
		synctest.Wait()
		if got := len(started(ex)); got != 2 {
			t.Fatalf("heart started with one instance of bridge ready, the other not")
		}
		rd.markReady("bridge", "b")
		res := <-done
		if err := res.Err(); err != nil {
			t.Fatal(err)
		}
		if got := started(ex); len(got) != 3 || got[2] != "heart/default" {
			t.Errorf("started %q, want heart last", got)
		}
		if o := outcomeOf(res, "heart", "default"); o.NotReady != "" {
			t.Errorf("NotReady = %q for a dependency that became ready", o.NotReady)
		}
	})
}

// TestApplyDependencyDeadline: a dependency that is not ready by its
// deadline (ReadyTimeout; its update block's healthy_deadline when it has
// one) does not keep its dependents from starting; they are started
// anyway, the outcome says why, and it is logged once although two
// levels depend on it.
func TestApplyDependencyDeadline(t *testing.T) {
	for _, tc := range []struct {
		name   string
		update *instance.Update
		want   time.Duration
	}{
		{"ReadyTimeout", nil, 30 * time.Second},
		{"healthy_deadline", &instance.Update{MaxParallel: 1, HealthyDeadline: 2 * time.Minute}, 2 * time.Minute},
	} {
		t.Run(tc.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				bridge := testSpec("bridge", "default")
				bridge.Update = tc.update
				desired := []instance.Spec{
					bridge,
					testSpec("heart", "default", "bridge"),
					testSpec("alerts", "default", "heart", "bridge"),
				}
				ex, rd := reconciletest.NewFakeExecutor(), newReadiness()
				rd.markReady("heart", "default")
				var log bytes.Buffer
				t0 := time.Now()
				res := reconcile.Apply(t.Context(), ex, reconcile.NewPlan(desired, nil), reconcile.ApplyOptions{
					Ready: rd, ReadyTimeout: 30 * time.Second, Logger: slog.New(slog.NewTextHandler(&log, nil)),
				})
				if waited := time.Since(t0); waited != tc.want {
					t.Errorf("apply took %v, want one deadline of %v", waited, tc.want)
				}
				if err := res.Err(); err != nil {
					t.Fatal(err)
				}
				if got := strings.Join(started(ex), " "); got != "bridge/default heart/default alerts/default" {
					t.Errorf("started %q, want all three in order", got)
				}
				want := "dependency bridge not ready after " + tc.want.String()
				for _, plug := range []string{"heart", "alerts"} {
					if o := outcomeOf(res, plug, "default"); o.NotReady != want {
						t.Errorf("%s: NotReady = %q, want %q", plug, o.NotReady, want)
					}
				}
				if n := strings.Count(log.String(), "dependency not ready"); n != 1 || !strings.Contains(log.String(), "dependency=bridge") {
					t.Errorf("logged %d times, want once:\n%s", n, log.String())
				}
			})
		})
	}
}

// TestApplyDependencyThatCannotBeReady: a dependency whose start failed is
// not waited for, nor one its waiter says cannot become ready; both are
// said on the dependents.
func TestApplyDependencyThatCannotBeReady(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		desired := []instance.Spec{
			testSpec("broken", "default"), testSpec("setup", "default"),
			testSpec("a", "default", "broken"), testSpec("b", "default", "setup"),
		}
		ex, rd := reconciletest.NewFakeExecutor(), newReadiness()
		ex.BeforeStart = func(ctx context.Context, s instance.Spec) error {
			if s.ID.Plug == "broken" {
				return errors.New("exec format error")
			}
			return nil
		}
		rd.failed[instance.ID{Plug: "setup", Instance: "default"}] = errors.New("needs setup")
		t0 := time.Now()
		res := reconcile.Apply(t.Context(), ex, reconcile.NewPlan(desired, nil), reconcile.ApplyOptions{Ready: rd})
		if waited := time.Since(t0); waited != 0 {
			t.Errorf("waited %v for dependencies that cannot become ready", waited)
		}
		for plug, want := range map[string]string{
			"a": "dependency broken not ready: broken/default did not start",
			"b": "dependency setup not ready: setup/default: needs setup",
		} {
			if o := outcomeOf(res, plug, "default"); o.Err != nil || o.NotReady != want {
				t.Errorf("%s: outcome %+v, want started with NotReady %q", plug, o, want)
			}
		}
	})
}

// TestApplyWaitsForRunningDependency: a dependency the plan leaves running
// is waited for too (it may be restarting after a crash), and the
// executor's own AwaitReady is used when the options name none.
func TestApplyWaitsForRunningDependency(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		bridge := testSpec("bridge", "default")
		ex := &readyExecutor{FakeExecutor: reconciletest.NewFakeExecutor(running(bridge)), readiness: newReadiness()}
		desired := []instance.Spec{bridge, testSpec("heart", "default", "bridge")}
		done := make(chan *reconcile.ApplyResult)
		go func() {
			done <- reconcile.Apply(t.Context(), ex, reconcile.NewPlan(desired, ex.Observe()), reconcile.ApplyOptions{})
		}()
		synctest.Wait()
		if got := started(ex.FakeExecutor); len(got) != 0 {
			t.Fatalf("started %v before the running bridge is ready", got)
		}
		ex.markReady("bridge", "default")
		if res := <-done; res.Err() != nil || outcomeOf(res, "heart", "default").NotReady != "" {
			t.Errorf("outcomes %+v", res.Outcomes)
		}
		if got := started(ex.FakeExecutor); len(got) != 1 || got[0] != "heart/default" {
			t.Errorf("started %v", got)
		}
	})
}

type readyExecutor struct {
	*reconciletest.FakeExecutor
	*readiness
}

var _ instance.ReadyWaiter = (*readyExecutor)(nil)

// TestApplyCanceledWhileWaiting: a canceled apply does not wait out a
// dependency's deadline, and does not start its dependents.
func TestApplyCanceledWhileWaiting(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		ctx, cancel := context.WithCancel(t.Context())
		desired := []instance.Spec{testSpec("bridge", "default"), testSpec("heart", "default", "bridge")}
		ex, rd := reconciletest.NewFakeExecutor(), newReadiness()
		done := make(chan *reconcile.ApplyResult)
		go func() {
			done <- reconcile.Apply(ctx, ex, reconcile.NewPlan(desired, nil), reconcile.ApplyOptions{Ready: rd})
		}()
		time.Sleep(time.Second)
		cancel()
		res := <-done
		if o := outcomeOf(res, "heart", "default"); !errors.Is(o.Err, context.Canceled) {
			t.Errorf("heart: %+v, want canceled", o)
		}
		if got := started(ex); len(got) != 1 {
			t.Errorf("started %v, want only bridge", got)
		}
	})
}
