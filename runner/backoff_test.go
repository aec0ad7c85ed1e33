package runner

import (
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/plugs-dev/plugs/instance"
)

func TestBackoffSchedule(t *testing.T) {
	b := NewBackoff(instance.RestartPolicy{InitialDelay: time.Second, MaxDelay: 10 * time.Second, ResetAfter: time.Minute, MaxRestarts: 6})
	now := time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)
	exit := instance.Exit{Code: 2}
	half := func() float64 { return 0.5 } // no jitter
	var got []time.Duration
	var reasons []string
	for range 6 {
		d, reason := b.Next(now, now.Add(-time.Second), exit, half)
		got = append(got, d)
		reasons = append(reasons, reason)
	}
	// The first crash restarts at once; the next ones back off, doubling.
	want := []time.Duration{0, 1 * time.Second, 2 * time.Second, 4 * time.Second, 8 * time.Second, 10 * time.Second}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("schedule (-want +got):\n%s", diff)
	}
	wantReasons := []string{
		"exited with code 2; restart 1 now",
		"exited with code 2; restart 2 in 1s",
		"exited with code 2; restart 3 in 2s",
		"exited with code 2; restart 4 in 4s",
		"exited with code 2; restart 5 in 8s",
		"exited with code 2; restart 6 in 10s",
	}
	if diff := cmp.Diff(wantReasons, reasons); diff != "" {
		t.Errorf("reasons (-want +got):\n%s", diff)
	}
	d, reason := b.Next(now, now.Add(-time.Second), exit, half)
	if d >= 0 || reason != "exited with code 2; gave up after 6 restarts" {
		t.Errorf("7th crash = %v %q, want give up", d, reason)
	}

	// A stable run forgets earlier crashes.
	b = NewBackoff(instance.RestartPolicy{InitialDelay: time.Second, ResetAfter: time.Minute})
	b.Next(now, now, exit, nil)
	b.Next(now, now, exit, nil)
	d, reason = b.Next(now, now.Add(-time.Minute), instance.Exit{Code: -1, Signal: "SIGKILL"}, nil)
	if d != 0 || reason != "killed by SIGKILL; restart 1 now" {
		t.Errorf("after a stable run = %v %q, want 0, restart 1 now", d, reason)
	}
	if d, reason = b.Next(now, now, exit, nil); d != time.Second || reason != "exited with code 2; restart 2 in 1s" {
		t.Errorf("second crash after a stable run = %v %q, want 1s", d, reason)
	}

	// Jitter: +/-10%, exact for a given random value; none on an
	// immediate restart.
	b = NewBackoff(documentedDefaults)
	if d, _ := b.Next(now, now, exit, func() float64 { return 0 }); d != 0 {
		t.Errorf("first delay with jitter = %v, want 0", d)
	}
	if d, _ := b.Next(now, now, exit, func() float64 { return 0.75 }); d != 1050*time.Millisecond {
		t.Errorf("jittered delay = %v, want 1.05s", d)
	}
	if d, _ := b.Next(now, now, exit, func() float64 { return 0 }); d != 1800*time.Millisecond {
		t.Errorf("jittered delay = %v, want 1.8s", d)
	}
}

// documentedDefaults is the restart policy the render fills for a plug
// without a restart block (render.TestDefaults checks it is).
var documentedDefaults = instance.RestartPolicy{InitialDelay: time.Second, MaxDelay: time.Minute, ResetAfter: 5 * time.Minute}

// TestBackoffDefaultsContainAnInstantCrashLoop feeds the default policy a
// process that fails the moment it starts, forever: one immediate restart,
// then 1s doubling to the 1m cap, never giving up, and never two
// immediate restarts in a row (no busy loop).
func TestBackoffDefaultsContainAnInstantCrashLoop(t *testing.T) {
	b := NewBackoff(documentedDefaults)
	now := time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)
	var got []time.Duration
	for range 100 {
		d, _ := b.Next(now, now, instance.Exit{Code: 1}, nil)
		if d < 0 {
			t.Fatalf("gave up after %d crashes; the default never gives up", len(got))
		}
		got = append(got, d)
		now = now.Add(d) // it crashes again the moment it is restarted
	}
	want := []time.Duration{0, time.Second, 2 * time.Second, 4 * time.Second, 8 * time.Second, 16 * time.Second, 32 * time.Second, time.Minute, time.Minute}
	if diff := cmp.Diff(want, got[:len(want)]); diff != "" {
		t.Errorf("schedule (-want +got):\n%s", diff)
	}
	for i, d := range got[len(want):] {
		if d != time.Minute {
			t.Fatalf("crash %d: delay %v, want the 1m cap", len(want)+i+1, d)
		}
	}
	// A run as long as reset_after forgets the loop: one immediate
	// restart again, then 1s.
	if d, _ := b.Next(now.Add(5*time.Minute), now, instance.Exit{Code: 1}, nil); d != 0 {
		t.Errorf("after a stable run: %v, want 0", d)
	}
	if d, _ := b.Next(now, now, instance.Exit{Code: 1}, nil); d != time.Second {
		t.Errorf("then: %v, want 1s", d)
	}
}

// TestBackoffJitterNeverExceedsMaxDelay: at the cap, the jitter only
// shortens the delay (issue 11: the jittered backoff exceeded max_delay).
func TestBackoffJitterNeverExceedsMaxDelay(t *testing.T) {
	b := NewBackoff(instance.RestartPolicy{InitialDelay: time.Second, MaxDelay: 4 * time.Second, ResetAfter: time.Minute})
	now := time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)
	for i := range 20 {
		// 0.999... is the largest jitter the random source can give.
		d, reason := b.Next(now, now, instance.Exit{Code: 1}, func() float64 { return 0.9999 })
		if d > 4*time.Second {
			t.Fatalf("crash %d: delay %v (%s) exceeds max_delay 4s", i+1, d, reason)
		}
	}
	if d, _ := b.Next(now, now, instance.Exit{Code: 1}, func() float64 { return 0 }); d != 3600*time.Millisecond {
		t.Errorf("at the cap with the lowest jitter: %v, want 3.6s", d)
	}
}

// TestBackoffTaskHint: a service that exits 0 within seconds, twice in a
// row, is told it looks like a task; a crash or a long run resets it.
func TestBackoffTaskHint(t *testing.T) {
	b := NewBackoff(instance.RestartPolicy{InitialDelay: time.Second, MaxDelay: time.Minute, ResetAfter: 5 * time.Minute})
	now := time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)
	ok := instance.Exit{Code: 0}
	_, r1 := b.Next(now, now.Add(-time.Second), ok, nil)
	if strings.Contains(r1, TaskHint) {
		t.Errorf("hint after one quick exit: %q", r1)
	}
	_, r2 := b.Next(now, now.Add(-time.Second), ok, nil)
	if want := "exited with code 0; restart 2 in 1s (" + TaskHint + ")"; r2 != want {
		t.Errorf("second quick exit 0: %q, want %q", r2, want)
	}
	_, r3 := b.Next(now, now.Add(-time.Second), instance.Exit{Code: 1}, nil)
	if strings.Contains(r3, TaskHint) {
		t.Errorf("hint after a crash: %q", r3)
	}
	b.Next(now, now.Add(-time.Second), ok, nil)
	_, r5 := b.Next(now, now.Add(-time.Minute), ok, nil)
	if strings.Contains(r5, TaskHint) {
		t.Errorf("hint after a one-minute run: %q", r5)
	}
}
