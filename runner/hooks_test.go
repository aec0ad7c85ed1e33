package runner

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/plugs-dev/plugs/instance"
)

// hookSpec is a shell instance that logs its start and its SIGTERM to the
// file $F, as do its hooks (with their name, directory and PLUGS_CONFIG).
func hookSpec(t *testing.T, plug string) (instance.Spec, string) {
	t.Helper()
	tree := t.TempDir()
	file := filepath.Join(t.TempDir(), "events")
	hook := func(name string) []string {
		return []string{"sh", "-c", `echo "` + name + ` $PLUGS_HOOK $(pwd) $(basename "$PLUGS_CONFIG")" >> "$F"; echo "` + name + ` output"`}
	}
	s := fakeSpec(plug, "default", "sleep")
	s.Dir = tree
	s.Env["F"] = file
	s.Command = []string{"sh", "-c", `echo main >> "$F"; trap 'echo term >> "$F"; exit 0' TERM; echo ready; sleep 3600 & wait`}
	s.Hooks = instance.Hooks{PreStart: hook("pre_start"), PostStart: hook("post_start"), PreStop: hook("pre_stop"), Timeout: 10 * time.Second}
	return s, file
}

func lines(t *testing.T, name string) []string {
	t.Helper()
	b, _ := os.ReadFile(name)
	return strings.Split(strings.TrimSpace(string(b)), "\n")
}

// TestHooksOrder: pre_start, the process, post_start once it is ready,
// then on stop pre_stop before the stop signal; each in the plugin's
// directory with PLUGS_CONFIG, output in the instance's log (issue 12).
func TestHooksOrder(t *testing.T) {
	var r *Runner
	ready := func(ctx context.Context, id instance.ID, pid int) error {
		// The readiness hook point: here, the process printed "ready".
		for range 1000 {
			b, _ := os.ReadFile(filepath.Join(InstanceDir(r.opts.StateDir, id), "output.log"))
			if strings.Contains(string(b), "ready\n") {
				return nil
			}
			select {
			case <-ctx.Done():
				return ctx.Err()
			case <-time.After(10 * time.Millisecond):
			}
		}
		return errors.New("never ready")
	}
	r, sts := newTestRunner(t, Options{AwaitReady: ready})
	s, file := hookSpec(t, "hooked")
	if err := r.Start(t.Context(), s); err != nil {
		t.Fatal(err)
	}
	sts.await(t, s.ID, "running", running)
	eventually(t, "post_start ran", func() bool { return len(lines(t, file)) >= 3 })
	if err := r.Stop(t.Context(), s.ID); err != nil {
		t.Fatal(err)
	}
	want := []string{
		"pre_start pre_start " + s.Dir + " config.json",
		"main",
		"post_start post_start " + s.Dir + " config.json",
		"pre_stop pre_stop " + s.Dir + " config.json",
		"term",
	}
	if diff := cmp.Diff(want, lines(t, file)); diff != "" {
		t.Errorf("order of events (-want +got):\n%s", diff)
	}
	b, _ := os.ReadFile(filepath.Join(InstanceDir(r.opts.StateDir, s.ID), "output.log"))
	for _, h := range []string{"pre_start output", "post_start output", "pre_stop output", "ready"} {
		if !strings.Contains(string(b), h+"\n") {
			t.Errorf("output.log lacks %q:\n%s", h, b)
		}
	}
}

// TestPreStartFailureIsAFailedStart: a pre_start that exits 3 fails the
// start with that reason and the process never runs; the first start of a
// Start is not retried (the instance is failed, as a start whose command
// is missing: the caller decides), so that a Start over it works at once.
func TestPreStartFailureIsAFailedStart(t *testing.T) {
	clock := newFakeClock()
	r, sts := newTestRunner(t, Options{Clock: clock})
	s, file := hookSpec(t, "pre")
	s.Hooks.PreStart = []string{"sh", "-c", "echo failing; exit 3"}
	s.Restart = instance.RestartPolicy{InitialDelay: time.Second, MaxDelay: time.Minute, ResetAfter: time.Minute}
	err := r.Start(t.Context(), s)
	if err == nil || err.Error() != "start pre/default: pre_start exited 3" {
		t.Fatalf("Start = %v, want pre_start exited 3", err)
	}
	// Start returns after the state is set: no restart begins behind it.
	st := observed(t, r, s.ID)
	if st.State != instance.StateFailed || st.Reason != "pre_start exited 3" || st.PID != 0 || st.GaveUp {
		t.Errorf("after a failed pre_start: state %s, reason %q, pid %d, gave up %v; want failed, pre_start exited 3", st.State, st.Reason, st.PID, st.GaveUp)
	}
	select {
	case d := <-clock.Requested():
		t.Errorf("a failed first start asked for a backoff of %v: it is retried behind its caller", d)
	case <-time.After(200 * time.Millisecond):
	}
	if st := observed(t, r, s.ID); st.State != instance.StateFailed || st.Restarts != 0 {
		t.Errorf("200ms after a failed first start: state %s, %d restarts; want failed, none", st.State, st.Restarts)
	}
	if b, _ := os.ReadFile(file); strings.Contains(string(b), "main") {
		t.Errorf("the process ran after a failed pre_start: %s", b)
	}
	log, _ := os.ReadFile(filepath.Join(InstanceDir(r.opts.StateDir, s.ID), "output.log"))
	if !strings.Contains(string(log), "failing\nplugs: pre_start exited 3\n") {
		t.Errorf("output.log = %q", log)
	}
	// Fixed: a Start over the failed instance starts it.
	spec := s
	spec.Hooks.PreStart = nil
	if err := r.Start(t.Context(), spec); err != nil {
		t.Fatalf("Start over a failed pre_start: %v", err)
	}
	sts.await(t, s.ID, "running", running)
}

// TestPreStartFailureBeforeRestartBacksOff: before a restart after a
// crash, a failed pre_start is retried with the restart policy's backoff.
func TestPreStartFailureBeforeRestartBacksOff(t *testing.T) {
	clock := newFakeClock()
	r, sts := newTestRunner(t, Options{Clock: clock})
	s, file := hookSpec(t, "prerestart")
	// pre_start succeeds once, then fails; the process exits at once.
	s.Hooks = instance.Hooks{PreStart: []string{"sh", "-c", `if [ -e "$F.once" ]; then exit 4; fi; touch "$F.once"`}, Timeout: 10 * time.Second}
	s.Command = []string{"sh", "-c", `echo main >> "$F"; exit 1`}
	s.Restart = instance.RestartPolicy{InitialDelay: time.Second, MaxDelay: time.Minute, ResetAfter: time.Minute}
	if err := r.Start(t.Context(), s); err != nil {
		t.Fatal(err)
	}
	st := sts.await(t, s.ID, "in backoff after pre_start failed", func(st instance.Status) bool {
		return st.State == instance.StateBackoff && strings.HasPrefix(st.Reason, "pre_start exited 4; restart ")
	})
	if st.PID != 0 {
		t.Errorf("status %+v", st)
	}
	if got := lines(t, file); len(got) != 1 || got[0] != "main" {
		t.Errorf("events %v, want the process once", got)
	}
}

// observed is the runner's status of id.
func observed(t *testing.T, r *Runner, id instance.ID) instance.Status {
	t.Helper()
	for _, st := range r.Observe() {
		if st.ID == id {
			return st
		}
	}
	t.Fatalf("%s not observed", id)
	return instance.Status{}
}

// TestPostStartFailureStopsTheProcess: a post_start that fails stops the
// process, and the start counts as failed, with backoff.
func TestPostStartFailureStopsTheProcess(t *testing.T) {
	clock := newFakeClock()
	r, sts := newTestRunner(t, Options{Clock: clock})
	s, file := hookSpec(t, "post")
	s.Hooks.PostStart = []string{"sh", "-c", "exit 2"}
	s.Hooks.PreStop = []string{"sh", "-c", `echo pre_stop >> "$F"`}
	s.StopTimeout = 5 * time.Second
	s.Restart = instance.RestartPolicy{InitialDelay: time.Hour, MaxDelay: time.Hour, ResetAfter: time.Minute}
	if err := r.Start(t.Context(), s); err != nil {
		t.Fatal(err)
	}
	st := sts.await(t, s.ID, "in backoff after post_start failed", func(st instance.Status) bool {
		return st.State == instance.StateBackoff && strings.HasPrefix(st.Reason, "post_start exited 2; restart")
	})
	if st.PID != 0 || st.LastExit == nil {
		t.Errorf("status %+v", st)
	}
	if got := lines(t, file); slicesContains(got, "pre_stop") {
		t.Errorf("pre_stop ran for a failed post_start: %v", got)
	}
}

func slicesContains(s []string, v string) bool {
	for _, x := range s {
		if x == v {
			return true
		}
	}
	return false
}

// TestHookTimeouts: pre_start past its timeout fails the start with that
// reason; pre_stop is bounded by stop_timeout, and the stop goes on.
func TestHookTimeouts(t *testing.T) {
	r, sts := newTestRunner(t, Options{})
	s, _ := hookSpec(t, "slow")
	s.Hooks.PreStart = []string{"sleep", "3600"}
	s.Hooks.Timeout = 200 * time.Millisecond
	s.StopTimeout = 200 * time.Millisecond
	err := r.Start(t.Context(), s)
	if err == nil || !strings.Contains(err.Error(), "pre_start timed out after") {
		t.Fatalf("Start = %v, want a pre_start timeout", err)
	}
	if err := r.Stop(t.Context(), s.ID); err != nil {
		t.Fatal(err)
	}

	stop, file := hookSpec(t, "slowstop")
	stop.Hooks = instance.Hooks{PreStop: []string{"sh", "-c", `echo pre_stop >> "$F"; exec sleep 3600`}}
	stop.StopTimeout = 300 * time.Millisecond
	if err := r.Start(t.Context(), stop); err != nil {
		t.Fatal(err)
	}
	sts.await(t, stop.ID, "running", running)
	awaitReady(t, r, stop.ID, 1)
	if err := r.Stop(t.Context(), stop.ID); err != nil {
		t.Fatal(err)
	}
	if got := lines(t, file); !slicesContains(got, "pre_stop") || !slicesContains(got, "term") {
		t.Errorf("events %v: want pre_stop, then the stop signal", got)
	}
}

// TestNeedsSetup: an instance whose plugin requires setup waits in
// needs-setup, without a process, until plugs setup marks it done; then a
// restart starts it, with PLUGS_SETUP_DIR (issue 12).
func TestNeedsSetup(t *testing.T) {
	r, sts := newTestRunner(t, Options{})
	s := fakeSpec("setup-me", "default", "printenv")
	s.SetupRequired = true
	if err := r.Start(t.Context(), s); err != nil {
		t.Fatalf("Start of an instance that needs setup: %v", err)
	}
	st := sts.await(t, s.ID, "needs-setup", func(st instance.Status) bool { return st.State == instance.StateNeedsSetup })
	if st.PID != 0 || st.Reason != "its plugin must be set up first: run plugs setup setup-me" {
		t.Errorf("status %+v", st)
	}
	f, err := ReadInstanceFile(filepath.Join(InstanceDir(r.opts.StateDir, s.ID), "instance.json"))
	if err != nil || f.State != "needs-setup" {
		t.Errorf("instance.json %+v %v", f, err)
	}
	if SetupDone(r.opts.StateDir, "setup-me") {
		t.Fatal("setup done before it ran")
	}
	if err := MarkSetupDone(r.opts.StateDir, "setup-me"); err != nil {
		t.Fatal(err)
	}
	if err := r.Restart(t.Context(), s.ID); err != nil {
		t.Fatal(err)
	}
	sts.await(t, s.ID, "running after setup", running)
	awaitReady(t, r, s.ID, 1)
	b, _ := os.ReadFile(filepath.Join(InstanceDir(r.opts.StateDir, s.ID), "output.log"))
	dir := SetupDir(r.opts.StateDir, "setup-me")
	if !strings.Contains(string(b), "PLUGS_SETUP_DIR="+dir+"\n") {
		t.Errorf("no PLUGS_SETUP_DIR in the environment:\n%s", b)
	}
	if fi, err := os.Stat(dir); err != nil || !fi.IsDir() || fi.Mode().Perm() != 0o700 {
		t.Errorf("setup folder %v %v", fi, err)
	}
}

// TestVerifyBeforeEveryStart: the injected verifier runs before the first
// start and before each restart after a crash; its failure is a failed
// start with the reason (issue 11: a tree modified in the store must not
// be run by a restart).
func TestVerifyBeforeEveryStart(t *testing.T) {
	var calls atomic.Int32
	var tampered atomic.Bool
	verify := func(s instance.Spec) error {
		calls.Add(1)
		if tampered.Load() {
			return errors.New("tree was modified: h1:abc, want h1:def")
		}
		return nil
	}
	r, sts := newTestRunner(t, Options{Verify: verify})
	s := fakeSpec("v", "default", "usr1")
	if err := r.Start(t.Context(), s); err != nil {
		t.Fatal(err)
	}
	pid := sts.await(t, s.ID, "running", running).PID
	if calls.Load() != 1 {
		t.Fatalf("verify called %d times before the first start", calls.Load())
	}
	awaitReady(t, r, s.ID, 1)
	tampered.Store(true)
	if err := syscallSignal(pid, "USR1"); err != nil {
		t.Fatal(err)
	}
	st := sts.await(t, s.ID, "failed", func(st instance.Status) bool { return st.State == instance.StateFailed })
	if !strings.Contains(st.Reason, "tree was modified: h1:abc, want h1:def") || st.PID != 0 {
		t.Errorf("status %q pid %d", st.Reason, st.PID)
	}
}

// TestStopSignalReachesTheProcess: a manifest's stop_signal is what the
// process receives on stop.
func TestStopSignalReachesTheProcess(t *testing.T) {
	r, sts := newTestRunner(t, Options{})
	trap := filepath.Join(t.TempDir(), "signals")
	s := fakeSpec("sig", "default", "trap", trap)
	s.StopSignal = "SIGINT"
	s.StopTimeout = 300 * time.Millisecond
	if err := r.Start(t.Context(), s); err != nil {
		t.Fatal(err)
	}
	sts.await(t, s.ID, "running", running)
	eventually(t, "signal handlers installed", func() bool { _, err := os.Stat(trap); return err == nil })
	if err := r.Stop(t.Context(), s.ID); err != nil {
		t.Fatal(err)
	}
	if got := lines(t, trap); len(got) == 0 || got[0] != "interrupt" {
		t.Errorf("signals received %q, want interrupt (SIGINT) first", got)
	}
}

// TestRemoveDeletesTheInstanceFiles: a deleted instance leaves no
// config.json with secrets behind; a stop keeps the files (issue 11).
func TestRemoveDeletesTheInstanceFiles(t *testing.T) {
	r, sts := newTestRunner(t, Options{})
	kept := fakeSpec("keep", "default", "sleep")
	gone := fakeSpec("gone", "default", "sleep")
	for _, s := range []instance.Spec{kept, gone} {
		if err := r.Start(t.Context(), s); err != nil {
			t.Fatal(err)
		}
		sts.await(t, s.ID, "running", running)
	}
	if err := r.Stop(t.Context(), kept.ID); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(InstanceDir(r.opts.StateDir, kept.ID), "config.json")); err != nil {
		t.Errorf("a stop removed config.json: %v", err)
	}
	if err := r.Remove(t.Context(), gone.ID); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(InstanceDir(r.opts.StateDir, gone.ID)); !os.IsNotExist(err) {
		t.Errorf("instance directory after Remove: %v", err)
	}
	if _, err := os.Stat(filepath.Dir(InstanceDir(r.opts.StateDir, gone.ID))); !os.IsNotExist(err) {
		t.Errorf("empty plug directory after Remove: %v", err)
	}
	if len(r.Observe()) != 0 {
		t.Errorf("observed after stop and remove: %+v", r.Observe())
	}
}
