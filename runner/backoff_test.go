package runner

import (
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/plugs-dev/plugs/reconcile"
)

func TestBackoffSchedule(t *testing.T) {
	b := NewBackoff(reconcile.RestartPolicy{InitialDelay: time.Second, MaxDelay: 10 * time.Second, ResetAfter: time.Minute, MaxRestarts: 6})
	now := time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)
	exit := reconcile.Exit{Code: 2}
	half := func() float64 { return 0.5 } // no jitter
	var got []time.Duration
	for range 6 {
		d, _ := b.Next(now, now.Add(-time.Second), exit, half)
		got = append(got, d)
	}
	want := []time.Duration{1 * time.Second, 2 * time.Second, 4 * time.Second, 8 * time.Second, 10 * time.Second, 10 * time.Second}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("schedule (-want +got):\n%s", diff)
	}
	d, reason := b.Next(now, now.Add(-time.Second), exit, half)
	if d >= 0 || reason != "exited with code 2; gave up after 6 restarts" {
		t.Errorf("7th crash = %v %q, want give up", d, reason)
	}

	// A stable run forgets earlier crashes.
	b = NewBackoff(reconcile.RestartPolicy{InitialDelay: time.Second, ResetAfter: time.Minute})
	b.Next(now, now, exit, nil)
	b.Next(now, now, exit, nil)
	d, reason = b.Next(now, now.Add(-time.Minute), reconcile.Exit{Code: -1, Signal: "SIGKILL"}, nil)
	if d != time.Second || reason != "killed by SIGKILL; restart 1 in 1s" {
		t.Errorf("after a stable run = %v %q, want 1s, restart 1", d, reason)
	}

	// Jitter: +/-10%, exact for a given random value.
	b = NewBackoff(reconcile.RestartPolicy{InitialDelay: time.Second})
	if d, _ := b.Next(now, now, exit, func() float64 { return 0.75 }); d != 1050*time.Millisecond {
		t.Errorf("jittered delay = %v, want 1.05s", d)
	}
	if d, _ := b.Next(now, now, exit, func() float64 { return 0 }); d != 1800*time.Millisecond {
		t.Errorf("jittered delay = %v, want 1.8s", d)
	}
	// Defaults, as in DESIGN.md; never gives up.
	b = NewBackoff(reconcile.RestartPolicy{})
	for range 100 {
		d, _ = b.Next(now, now, exit, half)
	}
	if d != time.Minute {
		t.Errorf("default capped delay = %v, want 1m", d)
	}
}
