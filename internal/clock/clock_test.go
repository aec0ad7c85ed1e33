package clock_test

import (
	"testing"
	"time"

	"github.com/plugs-dev/plugs/internal/clock"
)

// TestReal: the host's clock's timers fire, Stop and Reset report as
// *time.Timer's do, and Mono counts from New.
func TestReal(t *testing.T) {
	c := clock.New()
	if m := c.Mono(); m < 0 || m > time.Second {
		t.Errorf("Mono right after New = %s", m)
	}
	if d := time.Since(c.Now()); d < 0 || d > time.Second {
		t.Errorf("Now is %s off", d)
	}
	tm := c.NewTimer(time.Millisecond)
	select {
	case <-tm.C():
	case <-time.After(10 * time.Second):
		t.Fatal("NewTimer did not fire")
	}
	if tm.Stop() {
		t.Error("Stop of a fired timer reported it active")
	}
	fired := make(chan struct{}, 2)
	af := c.AfterFunc(time.Hour, func() { fired <- struct{}{} })
	if af.C() != nil {
		t.Error("an AfterFunc timer has a channel")
	}
	if !af.Reset(time.Millisecond) {
		t.Error("Reset of an active timer reported it inactive")
	}
	select {
	case <-fired:
	case <-time.After(10 * time.Second):
		t.Fatal("AfterFunc did not fire after Reset")
	}
}
