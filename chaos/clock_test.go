package chaos

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/plugs-dev/plugs/instance"
	"github.com/plugs-dev/plugs/internal/clock/clocktest"
	"github.com/plugs-dev/plugs/runner"
)

// TestClockStepBackDuringBackoff crash-loops a real process under a runner
// whose wall clock is stepped back an hour during every backoff: the first
// crash restarts at once, each later delay is still the policy's (1s,
// doubling, no jitter), and each restart happens exactly when that delay
// has passed on the monotonic timeline.
func TestClockStepBackDuringBackoff(t *testing.T) {
	clock := clocktest.New(time.Date(2030, 1, 1, 12, 0, 0, 0, time.UTC))
	r, err := runner.New(runner.Options{StateDir: t.TempDir(), Clock: clock, Rand: func() float64 { return 0.5 }})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), waitBound)
		defer cancel()
		if err := r.Close(ctx); err != nil {
			t.Errorf("close runner: %v", err)
		}
	})
	policy := instance.RestartPolicy{InitialDelay: time.Second, MaxDelay: time.Hour, ResetAfter: 10 * time.Minute}
	id := instance.ID{Plug: "crash", Instance: "default"}
	spec := instance.Spec{
		ID: id, Dir: t.TempDir(), Command: []string{"sh", "-c", "exit 3"},
		Config: []byte("{}\n"), Restart: policy, StopTimeout: time.Second,
	}
	if err := r.Start(context.Background(), spec); err != nil {
		t.Fatalf("start: %v", err)
	}
	status := func() instance.Status {
		for _, s := range r.Observe() {
			if s.ID == id {
				return s
			}
		}
		t.Fatalf("instance %s unknown to the runner", id)
		return instance.Status{}
	}

	// The first crash restarts at once (no timer); the second asks for
	// the first backoff timer.
	var delays []time.Duration
	want := policy.InitialDelay
	for step := range size.ClockSteps {
		var d time.Duration
		select {
		case d = <-clock.Requested():
		case <-time.After(waitBound):
			t.Fatalf("step %d: no backoff timer within %s; status %+v", step, waitBound, status())
		}
		delays = append(delays, d)
		if d != want {
			t.Errorf("step %d: backoff of %s, the policy says %s", step, d, want)
		}
		waitFor(t, "backoff", func() (bool, string) {
			s := status()
			return s.State == instance.StateBackoff, fmt.Sprint(s.State)
		})
		clock.StepWall(-time.Hour)
		if n := clock.Advance(d - time.Millisecond); n != 0 {
			t.Fatalf("step %d: %d timers fired %s before the delay ended", step, n, time.Millisecond)
		}
		if s := status(); s.State != instance.StateBackoff || s.Restarts != step+1 {
			t.Errorf("step %d: %s with %d restarts just before the delay ends, want backoff with %d", step, s.State, s.Restarts, step+1)
		}
		if n := clock.Advance(time.Millisecond); n != 1 {
			t.Fatalf("step %d: %d timers fired when the delay ended, want the restart's", step, n)
		}
		want = min(2*want, policy.MaxDelay)
	}
	// The last restart happened: it crashed into the next backoff.
	select {
	case <-clock.Requested():
	case <-time.After(waitBound):
		t.Fatalf("no restart after the last step; status %+v", status())
	}
	s := status()
	if s.Restarts != size.ClockSteps+1 || s.LastExit == nil || s.LastExit.Code != 3 {
		t.Errorf("after %d steps: %d restarts, last exit %+v; want %d restarts of a process exiting 3 (the first immediate)", size.ClockSteps, s.Restarts, s.LastExit, size.ClockSteps+1)
	}
	figure(t, "clock-step", "%d backoffs, wall clock stepped back 1h in each: delays %v (policy: first restart at once, then 1s doubling), each restart exactly at its delay on the monotonic timeline",
		len(delays), delays)
}
