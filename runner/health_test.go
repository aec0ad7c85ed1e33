package runner

import (
	"testing"
	"time"

	"github.com/plugs-dev/plugs/instance"
)

// TestRestartUnhealthyGoesThroughBackoff: a restart for failing health
// checks is a crash to the restart policy: the first restarts at once, the
// next in a row waits initial_delay.
func TestRestartUnhealthyGoesThroughBackoff(t *testing.T) {
	clock := newFakeClock()
	r, sts := newTestRunner(t, Options{Clock: clock, Rand: func() float64 { return 0.5 }})
	s := fakeSpec("u", "default", "sleep")
	s.Restart = instance.RestartPolicy{InitialDelay: 3 * time.Second, MaxDelay: time.Minute, ResetAfter: time.Hour}
	if err := r.Start(t.Context(), s); err != nil {
		t.Fatal(err)
	}
	first := sts.await(t, s.ID, "running", running).PID
	if err := r.RestartUnhealthy(t.Context(), s.ID, "check fresh failed 3 times in a row"); err != nil {
		t.Fatal(err)
	}
	second := sts.await(t, s.ID, "restarted", func(st instance.Status) bool { return running(st) && st.PID != first })
	if second.Restarts != 1 || second.LastExit == nil || second.LastExit.Signal != "SIGTERM" || !gone(first) {
		t.Errorf("after the first unhealthy restart: %+v", second)
	}
	if err := r.RestartUnhealthy(t.Context(), s.ID, "check fresh failed 3 times in a row"); err != nil {
		t.Fatal(err)
	}
	st := sts.await(t, s.ID, "backoff", func(st instance.Status) bool { return st.State == instance.StateBackoff })
	if st.Reason != "check fresh failed 3 times in a row" {
		t.Errorf("backoff reason %q", st.Reason)
	}
	// The backoff timer is armed after the state is announced: move the
	// clock on until it has fired (bounded).
	restarted := func() bool {
		for _, o := range r.Observe() {
			if o.ID == s.ID && running(o) && o.PID != second.PID {
				return true
			}
		}
		return false
	}
	for i := 0; i < 200 && !restarted(); i++ {
		clock.Advance(100 * time.Millisecond)
		time.Sleep(10 * time.Millisecond)
	}
	third := sts.await(t, s.ID, "restarted again", func(st instance.Status) bool { return running(st) && st.PID != second.PID })
	if third.Restarts != 2 {
		t.Errorf("restarts %d", third.Restarts)
	}
}
