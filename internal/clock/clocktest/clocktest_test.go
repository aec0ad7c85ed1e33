package clocktest_test

import (
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/plugs-dev/plugs/internal/clock/clocktest"
)

// TestManual: timers fire on Advance when due on the monotonic timeline,
// never on a wall step; each delay is announced once the timer is there;
// Stop and Reset behave as *time.Timer's.
func TestManual(t *testing.T) {
	start := time.Date(2030, 1, 1, 12, 0, 0, 0, time.UTC)
	c := clocktest.New(start)
	var fired []string
	c.AfterFunc(time.Second, func() { fired = append(fired, "a") })
	b := c.AfterFunc(2*time.Second, func() { fired = append(fired, "b") })
	tm := c.NewTimer(3 * time.Second)
	for _, want := range []time.Duration{time.Second, 2 * time.Second, 3 * time.Second} {
		if d := <-c.Requested(); d != want {
			t.Errorf("announced %s, want %s", d, want)
		}
	}
	c.StepWall(-time.Hour)
	if n := c.Advance(999 * time.Millisecond); n != 0 || len(fired) != 0 {
		t.Fatalf("%d fired before their time (after a wall step back)", n)
	}
	if got := c.Now(); !got.Equal(start.Add(-time.Hour + 999*time.Millisecond)) {
		t.Errorf("Now = %s", got)
	}
	if c.Mono() != 999*time.Millisecond {
		t.Errorf("Mono = %s", c.Mono())
	}
	if n := c.Advance(time.Millisecond); n != 1 || len(fired) != 1 || fired[0] != "a" {
		t.Fatalf("at 1s: %d fired, %v", n, fired)
	}
	if !b.Reset(5 * time.Second) {
		t.Error("Reset of an active timer reported it inactive")
	}
	if d := <-c.Requested(); d != 5*time.Second {
		t.Errorf("Reset announced %s", d)
	}
	if n := c.Advance(2 * time.Second); n != 1 || len(fired) != 1 {
		t.Fatalf("at 3s: %d fired (want the channel timer only), %v", n, fired)
	}
	select {
	case <-tm.C():
	default:
		t.Error("the channel timer did not send")
	}
	if tm.Stop() {
		t.Error("Stop of a fired timer reported it active")
	}
	if c.Timers() != 1 {
		t.Errorf("%d timers wait, want b", c.Timers())
	}
	if !b.Stop() || c.Advance(time.Hour) != 0 {
		t.Error("a stopped timer fired")
	}
}

// TestInBubble: inside a synctest bubble the clock is the bubble's, and a
// wall step moves Now alone.
func TestInBubble(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		c := clocktest.InBubble()
		t0 := c.Now()
		var fired atomic.Bool // set by the timer's goroutine
		c.AfterFunc(time.Minute, func() { fired.Store(true) })
		c.StepWall(3 * time.Hour)
		time.Sleep(59 * time.Second)
		synctest.Wait()
		if fired.Load() {
			t.Error("a wall step fired a timer")
		}
		c.Advance(time.Second)
		synctest.Wait()
		if !fired.Load() || c.Mono() != time.Minute {
			t.Errorf("after a minute: fired %v, Mono %s", fired.Load(), c.Mono())
		}
		if d := c.Now().Sub(t0); d != 3*time.Hour+time.Minute {
			t.Errorf("wall moved %s, want 3h1m", d)
		}
	})
}
