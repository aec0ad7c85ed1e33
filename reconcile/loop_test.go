package reconcile_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/plugs-dev/plugs/reconcile"
)

// recorder is a Reconcile func that records the reasons it was called with.
type recorder struct {
	mu      sync.Mutex
	reasons []string
	err     error // returned by the next call, then cleared
	block   chan struct{}
}

func (r *recorder) reconcile(ctx context.Context, reason string) error {
	r.mu.Lock()
	r.reasons = append(r.reasons, reason)
	err, block := r.err, r.block
	r.err = nil
	r.mu.Unlock()
	if block != nil {
		<-block
	}
	return err
}

func (r *recorder) calls() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]string(nil), r.reasons...)
}

// startLoop runs l until the test ends, and checks that Run returns the
// context's error.
func startLoop(t *testing.T, l *reconcile.Loop) {
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error)
	go func() { done <- l.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; !errors.Is(err, context.Canceled) {
			t.Errorf("Run returned %v, want context.Canceled", err)
		}
	})
}

func TestLoopDebouncesBursts(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		rec := &recorder{}
		l := reconcile.NewLoop(reconcile.LoopOptions{Reconcile: rec.reconcile, Debounce: 100 * time.Millisecond})
		startLoop(t, l)

		// An editor saving 100 times a second for 3 seconds.
		for i := range 300 {
			l.Trigger(fmt.Sprintf("save %d", i))
			time.Sleep(10 * time.Millisecond)
		}
		time.Sleep(time.Second)
		synctest.Wait()

		calls := rec.calls()
		// At most one reconcile per 10 debounces of a continuous burst, plus the last.
		if len(calls) < 2 || len(calls) > 4 {
			t.Fatalf("%d reconciles for a 3s burst: %q", len(calls), calls)
		}
		if last := calls[len(calls)-1]; !strings.HasSuffix(last, "save 299") {
			t.Errorf("the last trigger was not served last: last reconcile's reason %q", last)
		}
		served := 0
		for _, c := range calls {
			served += strings.Count(c, "save ")
		}
		if served != 300 {
			t.Errorf("reconciles served %d triggers, want all 300", served)
		}
		if got := l.Last(); got.Runs != len(calls) || got.Err != nil || got.Reason != calls[len(calls)-1] {
			t.Errorf("Last() = %+v", got)
		}
	})
}

func TestLoopSingleTriggerWaitsForDebounce(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		rec := &recorder{}
		l := reconcile.NewLoop(reconcile.LoopOptions{Reconcile: rec.reconcile, Debounce: time.Second})
		startLoop(t, l)
		start := time.Now()
		l.Trigger("SIGHUP")
		l.Trigger("SIGHUP")
		time.Sleep(999 * time.Millisecond)
		synctest.Wait()
		if n := len(rec.calls()); n != 0 {
			t.Fatalf("reconciled %d times before the debounce elapsed", n)
		}
		time.Sleep(2 * time.Millisecond)
		synctest.Wait()
		if got := rec.calls(); len(got) != 1 || got[0] != "SIGHUP" {
			t.Fatalf("calls = %q, want one SIGHUP", got)
		}
		if last := l.Last(); !last.At.Equal(start.Add(time.Second)) {
			t.Errorf("Last().At = %v, want debounce after the trigger (%v)", last.At, start.Add(time.Second))
		}
	})
}

func TestLoopTriggerDuringReconcileRunsAgain(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		rec := &recorder{block: make(chan struct{})}
		l := reconcile.NewLoop(reconcile.LoopOptions{Reconcile: rec.reconcile, Debounce: 10 * time.Millisecond})
		startLoop(t, l)
		l.Trigger("first")
		time.Sleep(20 * time.Millisecond)
		synctest.Wait() // the first reconcile is blocked
		l.Trigger("during")
		l.Trigger("during")
		rec.mu.Lock()
		block := rec.block
		rec.block = nil
		rec.mu.Unlock()
		close(block)
		time.Sleep(time.Second)
		synctest.Wait()
		if got := rec.calls(); len(got) != 2 || got[0] != "first" || got[1] != "during" {
			t.Errorf("calls = %q, want first then during", got)
		}
	})
}

func TestLoopRetriesAtInterval(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		rec := &recorder{err: errors.New("plugs.hcl:3,1: bad")}
		l := reconcile.NewLoop(reconcile.LoopOptions{Reconcile: rec.reconcile, Debounce: 10 * time.Millisecond, Interval: time.Minute})
		startLoop(t, l)
		l.Trigger("start")
		time.Sleep(time.Second)
		synctest.Wait()
		if last := l.Last(); last.Err == nil || last.Runs != 1 || last.Reason != "start" {
			t.Fatalf("Last() = %+v, want the failed start", last)
		}
		time.Sleep(time.Minute)
		synctest.Wait()
		last := l.Last()
		if last.Err != nil || last.Runs != 2 || last.Reason != "interval" {
			t.Errorf("Last() = %+v, want a successful retry at the interval", last)
		}
		if got := rec.calls(); len(got) != 2 {
			t.Errorf("calls = %q, want start then interval", got)
		}
	})
}

func TestLoopIdleWithoutTriggers(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		rec := &recorder{}
		l := reconcile.NewLoop(reconcile.LoopOptions{Reconcile: rec.reconcile})
		startLoop(t, l)
		time.Sleep(time.Hour)
		synctest.Wait()
		if got := rec.calls(); len(got) != 0 {
			t.Errorf("reconciled %q without a trigger or interval", got)
		}
		if last := l.Last(); last.Runs != 0 || !last.At.IsZero() {
			t.Errorf("Last() = %+v before any reconcile", last)
		}
	})
}
