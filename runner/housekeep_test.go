package runner

import (
	"os"
	"path/filepath"
	"sync/atomic"
	"testing"
	"time"

	"github.com/plugs-dev/plugs/instance"
	"go.uber.org/goleak"
)

// TestHousekeeperWaitsForThePause: jobs added in a burst run only once no
// job has come for housekeepQuiet, all of them; the goroutine is gone
// once they have run; close runs what waits at once, and a job added
// after close runs in add.
func TestHousekeeperWaitsForThePause(t *testing.T) {
	defer goleak.VerifyNone(t, goleak.IgnoreCurrent())
	var h housekeeper
	var ran atomic.Int32
	start := time.Now()
	var lastAdd time.Time
	for range 5 { // a burst longer than the pause, jobs closer than it
		h.add(func() { ran.Add(1) })
		lastAdd = time.Now()
		time.Sleep(housekeepQuiet / 3)
		if n := ran.Load(); n != 0 {
			t.Fatalf("%d jobs ran %v into a burst", n, time.Since(start))
		}
	}
	eventually(t, "the burst's jobs run", func() bool { return ran.Load() == 5 })
	if d := time.Since(lastAdd); d < housekeepQuiet {
		t.Errorf("the jobs ran %v after the last came, before the pause of %v", d, housekeepQuiet)
	}
	eventually(t, "the goroutine gone", func() bool {
		h.mu.Lock()
		defer h.mu.Unlock()
		return !h.running
	})

	h.add(func() { ran.Add(1) })
	h.close() // does not wait for the pause
	if n := ran.Load(); n != 6 {
		t.Fatalf("after close: %d jobs ran, want 6", n)
	}
	h.add(func() { ran.Add(1) })
	if n := ran.Load(); n != 7 {
		t.Fatalf("a job added after close: %d ran, want 7", n)
	}
}

// TestStartLeavesTwinAndLogForLater: a first start creates instance.json
// and config.json, not the twin of instance.json nor an empty output.log,
// which come once the starts pause; a stop before then writes its states
// all the same, and an instance removed before then leaves no folder.
func TestStartLeavesTwinAndLogForLater(t *testing.T) {
	r, sts := newTestRunner(t, Options{})
	a := fakeSpec("later", "a", "sleep")
	b := fakeSpec("later", "b", "sleep")
	c := fakeSpec("later", "c", "sleep")
	for _, s := range []instance.Spec{a, b, c} {
		if err := r.Start(t.Context(), s); err != nil {
			t.Fatal(err)
		}
	}
	started := time.Now()
	sts.await(t, a.ID, "running", running)
	dirA := InstanceDir(r.opts.StateDir, a.ID)
	twin := filepath.Join(dirA, ".instance.json"+twinSuffix)
	log := filepath.Join(dirA, "output.log")
	for _, f := range []string{"instance.json", "config.json"} {
		if _, err := os.Stat(filepath.Join(dirA, f)); err != nil {
			t.Errorf("after the start: %v", err)
		}
	}
	// Each start of the three added work: the pause has not come yet,
	// unless this machine stalled the test for most of it.
	if _, err := os.Stat(twin); err == nil && time.Since(started) < housekeepQuiet/2 {
		t.Errorf("the twin was created by the start")
	}
	// b stops, c is removed, both before the pause.
	if err := r.Stop(t.Context(), b.ID); err != nil {
		t.Fatal(err)
	}
	f, err := ReadInstanceFile(filepath.Join(InstanceDir(r.opts.StateDir, b.ID), "instance.json"))
	if err != nil || f.State != "stopped" {
		t.Fatalf("b after its stop: %+v, %v", f, err)
	}
	if err := r.Remove(t.Context(), c.ID); err != nil {
		t.Fatal(err)
	}
	eventually(t, "a's twin and empty log, after the pause", func() bool {
		_, e1 := os.Stat(twin)
		_, e2 := os.Stat(log)
		return e1 == nil && e2 == nil
	})
	if _, err := os.Stat(InstanceDir(r.opts.StateDir, c.ID)); !os.IsNotExist(err) {
		t.Errorf("the removed instance's folder: %v, want it gone", err)
	}
}
