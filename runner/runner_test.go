package runner

import (
	"bufio"
	"context"
	"errors"
	"io/fs"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/plugs-dev/plugs/instance"
	"github.com/plugs-dev/plugs/internal/clock"
	"github.com/plugs-dev/plugs/internal/clock/clocktest"
	"github.com/plugs-dev/plugs/internal/syncbuf"
	"github.com/plugs-dev/plugs/internal/testplugin"
	"github.com/plugs-dev/plugs/reconcile/reconciletest"
)

func TestConformance(t *testing.T) {
	reconciletest.TestExecutor(t, func(t *testing.T) instance.Executor {
		r, _ := newTestRunner(t, Options{})
		return r
	})
}

func running(st instance.Status) bool { return st.State == instance.StateRunning }

// newFakeClock is a manual clock: nothing fires until Advance, and every
// delay the runner asks for is announced on Requested.
func newFakeClock() *clocktest.Fake { return clocktest.New(time.Time{}) }

func TestBackoffWithFakeClock(t *testing.T) {
	clock := newFakeClock()
	var log syncbuf.Buffer
	r, sts := newTestRunner(t, Options{Clock: clock, Rand: func() float64 { return 0.75 }, Logger: slog.New(slog.NewTextHandler(&log, nil))})
	s := fakeSpec("crash", "default", "usr1")
	s.Restart = instance.RestartPolicy{InitialDelay: time.Second, MaxDelay: 4 * time.Second, ResetAfter: time.Minute, MaxRestarts: 4}
	s.Plugin = instance.PluginIdentity{UUID: "4b8e2f5c-1d3a-4c5e-9f7a-0b1c2d3e4f5a", Name: "crasher", Version: "2.1.0", Description: "crashes on SIGUSR1"}
	if err := r.Start(t.Context(), s); err != nil {
		t.Fatal(err)
	}
	pid := sts.await(t, s.ID, "running", running).PID
	started := 1
	crash := func(wantDelay time.Duration, wantReason string) {
		t.Helper()
		awaitReady(t, r, s.ID, started)
		logged := strings.Count(log.String(), wantReason)
		if err := syscall.Kill(pid, syscall.SIGUSR1); err != nil {
			t.Fatal(err)
		}
		old := pid
		if wantDelay > 0 {
			if d := <-clock.Requested(); d != wantDelay {
				t.Fatalf("backoff delay = %v, want %v", d, wantDelay)
			}
			st := sts.await(t, s.ID, "in backoff", func(st instance.Status) bool { return st.State == instance.StateBackoff })
			if st.Reason != wantReason || st.LastExit == nil || st.LastExit.Code != 1 {
				t.Fatalf("backoff status = %q %+v, want %q after exit 1", st.Reason, st.LastExit, wantReason)
			}
			clock.Advance(wantDelay)
		}
		st := sts.await(t, s.ID, "running again", func(st instance.Status) bool { return running(st) && st.PID != old })
		pid = st.PID
		started++
		if st.LastExit == nil || st.LastExit.Code != 1 || st.Restarts != started-1 {
			t.Fatalf("running again after %d restarts, last exit %+v; want %d, exit 1", st.Restarts, st.LastExit, started-1)
		}
		// The clock never moved: an immediate restart armed no timer. The
		// brief backoff state between the processes may be coalesced away
		// for the observer; its reason is in the log.
		if wantDelay == 0 {
			select {
			case d := <-clock.Requested():
				t.Fatalf("an immediate restart asked for a %v timer", d)
			default:
			}
		}
		if n := strings.Count(log.String(), wantReason); n != logged+1 {
			t.Fatalf("%q logged %d times, want %d", wantReason, n, logged+1)
		}
	}
	// The first crash restarts at once, the next ones back off.
	crash(0, "exited with code 1; restart 1 now")
	crash(1050*time.Millisecond, "exited with code 1; restart 2 in 1.05s")
	crash(2100*time.Millisecond, "exited with code 1; restart 3 in 2.1s")
	// A stable run resets the schedule.
	clock.Advance(time.Minute)
	crash(0, "exited with code 1; restart 1 now")
	if got := r.Observe()[0].Restarts; got != 4 {
		t.Errorf("restarts = %d, want 4", got)
	}
	crash(1050*time.Millisecond, "exited with code 1; restart 2 in 1.05s")
	crash(2100*time.Millisecond, "exited with code 1; restart 3 in 2.1s")
	// At max_delay the jitter only shortens: 4.2s would pass the 4s cap.
	crash(4*time.Second, "exited with code 1; restart 4 in 4s")

	// The fifth crash in a row gives up.
	awaitReady(t, r, s.ID, started)
	if err := syscall.Kill(pid, syscall.SIGUSR1); err != nil {
		t.Fatal(err)
	}
	st := sts.await(t, s.ID, "failed", func(st instance.Status) bool { return st.State == instance.StateFailed })
	if st.Reason != "exited with code 1; gave up after 4 restarts" || st.PID != 0 || !st.GaveUp {
		t.Errorf("failed status = %q pid %d gave up %v", st.Reason, st.PID, st.GaveUp)
	}
	f, err := ReadInstanceFile(filepath.Join(InstanceDir(r.opts.StateDir, s.ID), "instance.json"))
	if err != nil {
		t.Fatal(err)
	}
	if f.State != "failed" || f.Restarts != 7 || f.LastExit == nil || f.LastExit.Code != 1 || f.PID != 0 {
		t.Errorf("instance.json = %+v", f)
	}
	// The plugin's own identity, as the seed's instance file holds it.
	if f.PluginUUID != s.Plugin.UUID || f.PluginName != "crasher" || f.PluginVersion != "2.1.0" || f.Description != "crashes on SIGUSR1" {
		t.Errorf("instance.json plugin identity = %q %q %q %q", f.PluginUUID, f.PluginName, f.PluginVersion, f.Description)
	}
}

func TestRestartAfterSIGKILL(t *testing.T) {
	// A clock that never moves: only an immediate restart can happen.
	r, sts := newTestRunner(t, Options{Clock: newFakeClock()})
	s := fakeSpec("k", "default", "sleep")
	// The default policy: the first crash restarts at once.
	s.Restart = instance.RestartPolicy{}
	if err := r.Start(t.Context(), s); err != nil {
		t.Fatal(err)
	}
	old := sts.await(t, s.ID, "running", running).PID
	if err := syscall.Kill(old, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	st := sts.await(t, s.ID, "restarted", func(st instance.Status) bool { return running(st) && st.PID != old })
	if st.Restarts != 1 || st.LastExit == nil || st.LastExit.Signal != "SIGKILL" || st.LastExit.Code != -1 {
		t.Errorf("after SIGKILL: restarts %d, last exit %+v", st.Restarts, st.LastExit)
	}
	if !gone(old) {
		t.Errorf("old pid %d still alive", old)
	}
}

func TestStopEscalatesAndKillsGrandchild(t *testing.T) {
	r, sts := newTestRunner(t, Options{})
	pidFile := filepath.Join(t.TempDir(), "gc.pid")
	s := fakeSpec("gc", "default", "grandchild", pidFile)
	s.StopTimeout = 200 * time.Millisecond
	if err := r.Start(t.Context(), s); err != nil {
		t.Fatal(err)
	}
	pid := sts.await(t, s.ID, "running", running).PID
	var gcPID int
	eventually(t, "grandchild started", func() bool {
		b, err := os.ReadFile(pidFile)
		gcPID, _ = strconv.Atoi(string(b))
		return err == nil && gcPID > 0
	})
	if st, err := readProcStat(gcPID); err != nil || st.PGRP != pid {
		t.Fatalf("grandchild %d: pgrp %d err %v, want group %d", gcPID, st.PGRP, err, pid)
	}
	if err := r.Stop(t.Context(), s.ID); err != nil {
		t.Fatal(err)
	}
	if !gone(pid) {
		t.Errorf("child %d alive after stop", pid)
	}
	// The grandchild is reparented; whoever reaps it, it is dead.
	eventually(t, "grandchild gone", func() bool { return gone(gcPID) })
	st := sts.await(t, s.ID, "stopped", func(st instance.Status) bool { return st.State == instance.StateStopped })
	if st.LastExit == nil || st.LastExit.Signal != "SIGKILL" {
		t.Errorf("last exit %+v, want SIGKILL after the ignored SIGTERM", st.LastExit)
	}
	f, err := ReadInstanceFile(filepath.Join(InstanceDir(r.opts.StateDir, s.ID), "instance.json"))
	if err != nil || f.State != "stopped" || f.PID != 0 || f.LastExit.Signal != "SIGKILL" {
		t.Errorf("instance.json = %+v, %v", f, err)
	}
}

func TestStartFailures(t *testing.T) {
	r, _ := newTestRunner(t, Options{})
	missing := fakeSpec("m", "default", "sleep")
	missing.Command = []string{"./no-such-plugin"}
	err := r.Start(t.Context(), missing)
	if err == nil || !strings.Contains(err.Error(), "no-such-plugin: no such file or directory") {
		t.Errorf("missing executable: %v", err)
	}
	badDir := fakeSpec("d", "default", "sleep")
	badDir.Dir = filepath.Join(t.TempDir(), "nope")
	if err := r.Start(t.Context(), badDir); err == nil || !strings.Contains(err.Error(), "working directory") {
		t.Errorf("bad working directory: %v", err)
	}
	notFound := fakeSpec("p", "default", "sleep")
	notFound.Command = []string{"no-such-program-in-path"}
	if err := r.Start(t.Context(), notFound); err == nil || !strings.Contains(err.Error(), "executable file not found") {
		t.Errorf("not in PATH: %v", err)
	}
	obs := r.Observe()
	if len(obs) != 3 {
		t.Fatalf("observed %d instances, want 3 failed", len(obs))
	}
	for _, st := range obs {
		if st.State != instance.StateFailed || st.Reason == "" || st.PID != 0 {
			t.Errorf("%s: state %s reason %q", st.ID, st.State, st.Reason)
		}
	}
	if err := r.Start(t.Context(), fakeSpec("x", "..", "sleep")); err == nil {
		t.Error("instance name .. accepted")
	}
}

func TestEnvConfigAndOutput(t *testing.T) {
	r, sts := newTestRunner(t, Options{})
	s := fakeSpec("env", "p17", "env")
	s.Env["EXTRA"] = "yes"
	if err := r.Start(t.Context(), s); err != nil {
		t.Fatal(err)
	}
	sts.await(t, s.ID, "running", running)
	dir := InstanceDir(r.opts.StateDir, s.ID)
	fi, err := os.Stat(filepath.Join(dir, "config.json"))
	if err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("config.json: %v %v", fi, err)
	}
	var out string
	eventually(t, "output captured", func() bool {
		b, _ := os.ReadFile(filepath.Join(dir, "output.log"))
		out = string(b)
		return strings.Contains(out, "to stderr")
	})
	want := `plug=env instance=p17 extra=yes err=<nil> config={"plug":"env","instance":"p17","secret":"s3cret"}`
	if !strings.Contains(out, want) {
		t.Errorf("output.log = %q, want %q", out, want)
	}
	f, err := ReadInstanceFile(filepath.Join(dir, "instance.json"))
	if err != nil {
		t.Fatal(err)
	}
	st, _ := readProcStat(f.PID)
	if f.State != "running" || f.UUID != "uuid-env" || f.ConfigHash != "hash-p17" || f.PIDStartTime != st.StartTime || f.StartedAt.IsZero() {
		t.Errorf("instance.json = %+v", f)
	}
	b, _ := os.ReadFile(filepath.Join(dir, "instance.json"))
	if strings.Contains(string(b), "s3cret") {
		t.Error("instance.json holds a secret")
	}
}

func TestLimitsAndNoNewPrivs(t *testing.T) {
	r, sts := newTestRunner(t, Options{})
	s := fakeSpec("lim", "default", "sleep")
	s.Limits = instance.Limits{NoFile: 123, NProc: 4567, NoNewPrivs: true}
	if err := r.Start(t.Context(), s); err != nil {
		t.Fatal(err)
	}
	pid := sts.await(t, s.ID, "running", running).PID
	limits, _ := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/limits")
	status, _ := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/status")
	for _, want := range []string{"Max open files            123                  123", "Max processes             4567                 4567"} {
		if !strings.Contains(string(limits), want) {
			t.Errorf("limits lack %q:\n%s", want, limits)
		}
	}
	if !strings.Contains(string(status), "NoNewPrivs:\t1") {
		t.Error("NoNewPrivs not set")
	}
	// Others are not affected by the no_new_privs thread.
	o := fakeSpec("plain", "default", "sleep")
	if err := r.Start(t.Context(), o); err != nil {
		t.Fatal(err)
	}
	status, _ = os.ReadFile("/proc/" + strconv.Itoa(sts.await(t, o.ID, "running", running).PID) + "/status")
	if !strings.Contains(string(status), "NoNewPrivs:\t0") {
		t.Error("NoNewPrivs set on an instance that did not ask")
	}
}

func TestOutputFloodIsCapped(t *testing.T) {
	const maxSize, backups = 64 << 10, 2
	r, _ := newTestRunner(t, Options{LogMaxSize: maxSize, LogBackups: backups})
	s := fakeSpec("flood", "default", "flood")
	if err := r.Start(t.Context(), s); err != nil {
		t.Fatal(err)
	}
	dir := InstanceDir(r.opts.StateDir, s.ID)
	eventually(t, "rotated twice", func() bool {
		_, err := os.Stat(filepath.Join(dir, "output.log.2"))
		return err == nil
	})
	if err := r.Stop(t.Context(), s.ID); err != nil {
		t.Fatal(err)
	}
	logs, _ := filepath.Glob(filepath.Join(dir, "output.log*"))
	var total int64
	for _, l := range logs {
		fi, err := os.Stat(l)
		if err != nil {
			t.Fatal(err)
		}
		if fi.Size() > maxSize {
			t.Errorf("%s: %d bytes, cap %d", l, fi.Size(), maxSize)
		}
		total += fi.Size()
	}
	if len(logs) != backups+1 || total > maxSize*(backups+1) {
		t.Errorf("logs %v hold %d bytes, want %d files and <= %d", logs, total, backups+1, maxSize*(backups+1))
	}
}

func TestClosedStdoutAndLateOutput(t *testing.T) {
	r, sts := newTestRunner(t, Options{})
	c := fakeSpec("closed", "default", "closeout")
	l := fakeSpec("late", "default", "late")
	for _, s := range []instance.Spec{c, l} {
		if err := r.Start(t.Context(), s); err != nil {
			t.Fatal(err)
		}
	}
	pid := sts.await(t, c.ID, "running", running).PID
	eventually(t, "late output", func() bool {
		b, _ := os.ReadFile(filepath.Join(InstanceDir(r.opts.StateDir, l.ID), "output.log"))
		return string(b) == "ready\n"
	})
	// A closed stdout is EOF for the pump, which then exits: the
	// instance keeps running, and no goroutine spins (CPU stays idle).
	var ru1, ru2 syscall.Rusage
	syscall.Getrusage(syscall.RUSAGE_SELF, &ru1)
	time.Sleep(200 * time.Millisecond)
	syscall.Getrusage(syscall.RUSAGE_SELF, &ru2)
	cpu := time.Duration(ru2.Utime.Nano() + ru2.Stime.Nano() - ru1.Utime.Nano() - ru1.Stime.Nano())
	if cpu > 100*time.Millisecond {
		t.Errorf("supervisor used %v CPU in 200ms with a closed-stdout child", cpu)
	}
	if st := r.Observe()[0]; st.PID != pid || st.State != instance.StateRunning {
		t.Errorf("closed-stdout instance: %+v", st)
	}
}

func TestCloseStopsInReverseDependencyOrder(t *testing.T) {
	r, err := New(Options{StateDir: t.TempDir(), Clock: clock.New()})
	if err != nil {
		t.Fatal(err)
	}
	logFile := filepath.Join(t.TempDir(), "order")
	// app depends on bridge, bridge on broker: stop app, then bridge, then broker.
	specs := []instance.Spec{
		fakeSpec("broker", "default", "termlog", logFile, "broker"),
		fakeSpec("bridge", "default", "termlog", logFile, "bridge"),
		fakeSpec("app", "a", "termlog", logFile, "app"),
		fakeSpec("app", "b", "termlog", logFile, "app"),
	}
	specs[1].DependsOn = []string{"broker"}
	specs[2].DependsOn = []string{"bridge"}
	specs[3].DependsOn = []string{"bridge"}
	for _, s := range specs {
		if err := r.Start(t.Context(), s); err != nil {
			t.Fatal(err)
		}
		awaitReady(t, r, s.ID, 1)
	}
	if err := r.Close(t.Context()); err != nil {
		t.Fatal(err)
	}
	b, _ := os.ReadFile(logFile)
	if got := string(b); got != "app\napp\nbridge\nbroker\n" {
		t.Errorf("stop order:\n%s", got)
	}
	if obs := r.Observe(); len(obs) != 0 {
		t.Errorf("observed after close: %v", obs)
	}
	if err := r.Start(t.Context(), specs[0]); err == nil {
		t.Error("start after close succeeded")
	}
}

func TestStartStopCyclesLeaveNoResidue(t *testing.T) {
	cycles := 1000
	if testing.Short() {
		cycles = 100
	}
	countFDs := func() int {
		ents, _ := os.ReadDir("/proc/self/fd")
		return len(ents)
	}
	fds := countFDs()
	r, err := New(Options{StateDir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	goroutines := runtime.NumGoroutine()
	s := reconciletest.Spec(t.TempDir(), "cycle", "default", "1")
	for i := range cycles {
		s.ID.Instance = "i" + strconv.Itoa(i%10)
		if err := r.Start(t.Context(), s); err != nil {
			t.Fatal(err)
		}
		if err := r.Stop(t.Context(), s.ID); err != nil {
			t.Fatal(err)
		}
	}
	eventually(t, "goroutines back to where they began", func() bool { return runtime.NumGoroutine() <= goroutines })
	if err := r.Close(t.Context()); err != nil {
		t.Fatal(err)
	}
	goleak.VerifyNone(t, goleak.IgnoreCurrent())
	if got := countFDs(); got > fds {
		t.Errorf("open fds: %d before, %d after %d cycles", fds, got, cycles)
	}
}

// startSupervisor runs the test binary as a supervisor on dir and waits
// until it has started its instances.
func startSupervisor(t *testing.T, mode, dir string, args ...string) *exec.Cmd {
	t.Helper()
	cmd := exec.Command(os.Args[0], append([]string{dir}, args...)...)
	cmd.Env = append(os.Environ(), testplugin.Env+"="+mode, "GORACE=atexit_sleep_ms=0")
	cmd.Stderr = os.Stderr
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		cmd.Process.Kill()
		cmd.Wait()
	})
	line, _ := bufio.NewReader(out).ReadString('\n')
	if line != "ready\n" {
		t.Fatalf("supervisor: %q", line)
	}
	return cmd
}

func instanceFiles(t *testing.T, dir string) []*InstanceFile {
	t.Helper()
	names, _ := filepath.Glob(filepath.Join(dir, "instances", "*", "*", "instance.json"))
	var files []*InstanceFile
	for _, n := range names {
		f, err := ReadInstanceFile(n)
		if err != nil {
			t.Fatalf("state file does not parse: %v", err)
		}
		files = append(files, f)
	}
	return files
}

func TestSupervisorKilledLeavesNoChildren(t *testing.T) {
	dir := t.TempDir()
	pidFile := filepath.Join(t.TempDir(), "gc.pid")
	sup := startSupervisor(t, "supervisor", dir, "5", pidFile)
	var pids []int
	var gcPID int
	eventually(t, "grandchild started", func() bool {
		b, _ := os.ReadFile(pidFile)
		gcPID, _ = strconv.Atoi(string(b))
		return gcPID > 0
	})
	for _, f := range instanceFiles(t, dir) {
		if f.State != "running" || f.PID == 0 {
			t.Fatalf("before kill: %+v", f)
		}
		pids = append(pids, f.PID)
	}
	if len(pids) != 6 {
		t.Fatalf("%d instances running, want 6", len(pids))
	}
	sup.Process.Kill()
	sup.Wait()
	for _, pid := range pids {
		eventually(t, "child "+strconv.Itoa(pid)+" gone", func() bool { return gone(pid) })
	}
	if gone(gcPID) {
		t.Fatal("the grandchild died with the supervisor; the cleanup test below proves nothing")
	}
	// A new supervisor cleans up: files marked stopped, the orphaned
	// grandchild of the group killed.
	if err := CleanupStale(dir, nil); err != nil {
		t.Fatal(err)
	}
	for _, f := range instanceFiles(t, dir) {
		if f.State != "stopped" || f.PID != 0 {
			t.Errorf("after cleanup: %+v", f)
		}
	}
	eventually(t, "orphaned grandchild gone", func() bool { return gone(gcPID) })
}

func TestCleanupStaleNeverSignalsARecycledPID(t *testing.T) {
	dir := t.TempDir()
	trapFile := filepath.Join(t.TempDir(), "signals")
	// A live process, leader of its group, that records every signal.
	other := exec.Command(os.Args[0], trapFile)
	other.Env = append(os.Environ(), testplugin.Env+"=trap")
	other.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := other.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		other.Process.Kill()
		other.Wait()
	})
	eventually(t, "trap ready", func() bool { _, err := os.Stat(trapFile); return err == nil })
	st, err := readProcStat(other.Process.Pid)
	if err != nil {
		t.Fatal(err)
	}
	// A stale file that records its pid with another start time.
	id := instance.ID{Plug: "old", Instance: "default"}
	if err := os.MkdirAll(InstanceDir(dir, id), 0o700); err != nil {
		t.Fatal(err)
	}
	name := filepath.Join(InstanceDir(dir, id), "instance.json")
	err = writeInstanceFile(name, &InstanceFile{Plug: "old", Instance: "default", State: "running", PID: other.Process.Pid, PIDStartTime: st.StartTime - 1}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := CleanupStale(dir, nil); err != nil {
		t.Fatal(err)
	}
	if gone(other.Process.Pid) {
		t.Fatal("the process that took over the pid died")
	}
	// Prove the trap works, then that it caught nothing from cleanup.
	syscall.Kill(other.Process.Pid, syscall.SIGUSR2)
	eventually(t, "trap records", func() bool { b, _ := os.ReadFile(trapFile); return len(b) > 0 })
	if b, _ := os.ReadFile(trapFile); string(b) != "user defined signal 2\n" {
		t.Errorf("signals received: %q, want only the test's SIGUSR2", b)
	}
	f, err := ReadInstanceFile(name)
	if err != nil || f.State != "stopped" || f.PID != 0 {
		t.Errorf("stale file after cleanup: %+v %v", f, err)
	}
}

func TestStateFilesParseAfterKillAtRandomMoments(t *testing.T) {
	dir := t.TempDir()
	for i := range 5 {
		sup := startSupervisor(t, "churn", dir, "6")
		// instance.json is first written after Start returns.
		eventually(t, "six state files", func() bool {
			names, _ := filepath.Glob(filepath.Join(dir, "instances", "*", "*", "instance.json"))
			return len(names) == 6
		})
		// Let it churn through a varying number of state writes.
		time.Sleep(time.Duration(20+i*37) * time.Millisecond)
		sup.Process.Kill()
		sup.Wait()
		files := instanceFiles(t, dir)
		if len(files) != 6 {
			t.Fatalf("round %d: %d state files, want 6", i, len(files))
		}
		if err := CleanupStale(dir, nil); err != nil {
			t.Fatal(err)
		}
		tmps, _ := filepath.Glob(filepath.Join(dir, "instances", "*", "*", ".*.tmp*"))
		if len(tmps) != 0 {
			t.Errorf("round %d: temp files left after cleanup: %v", i, tmps)
		}
	}
}

func TestConfigFileRewrittenOnlyWhenItDiffers(t *testing.T) {
	name := filepath.Join(t.TempDir(), "config.json")
	data := []byte(`{"a":1}`)
	inode := func() uint64 {
		t.Helper()
		fi, err := os.Stat(name)
		if err != nil {
			t.Fatal(err)
		}
		return fi.Sys().(*syscall.Stat_t).Ino
	}
	if err := writeConfigFile(name, data, 0o600); err != nil {
		t.Fatal(err)
	}
	first := inode()
	if err := writeConfigFile(name, data, 0o600); err != nil {
		t.Fatal(err)
	}
	if inode() != first {
		t.Error("identical config.json rewritten")
	}
	// A torn file (a crash of the machine before the data reached the
	// disk), a longer one and a wrong mode are all rewritten.
	for _, spoil := range []func() error{
		func() error { return os.Truncate(name, 3) },
		func() error { return os.WriteFile(name, append(slices.Clone(data), ' '), 0o600) },
		func() error { return os.Chmod(name, 0o644) },
	} {
		if err := spoil(); err != nil {
			t.Fatal(err)
		}
		if err := writeConfigFile(name, data, 0o600); err != nil {
			t.Fatal(err)
		}
		b, err := os.ReadFile(name)
		fi, _ := os.Stat(name)
		if err != nil || string(b) != string(data) || fi.Mode().Perm() != 0o600 {
			t.Errorf("config.json = %q, mode %v, %v", b, fi.Mode(), err)
		}
	}
}

// openFdsOf counts the descriptors of this process open on file name.
func openFdsOf(t *testing.T, name string) int {
	t.Helper()
	ents, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, e := range ents {
		if l, err := os.Readlink("/proc/self/fd/" + e.Name()); err == nil && l == name {
			n++
		}
	}
	return n
}

func TestQuietInstanceGetsAnEmptyLog(t *testing.T) {
	r, sts := newTestRunner(t, Options{})
	s := fakeSpec("quiet", "default", "sleep")
	if err := r.Start(t.Context(), s); err != nil {
		t.Fatal(err)
	}
	sts.await(t, s.ID, "running", running)
	name := filepath.Join(InstanceDir(r.opts.StateDir, s.ID), "output.log")
	// Created after Start returns, so that plugs logs finds a log for an
	// instance that never printed, and not held open: every fork copies
	// each descriptor the supervisor holds.
	eventually(t, "output.log exists", func() bool { _, err := os.Stat(name); return err == nil })
	if fds := openFdsOf(t, name); fds != 0 {
		t.Errorf("the supervisor holds %d descriptors of a quiet instance's output.log", fds)
	}
	if err := r.Stop(t.Context(), s.ID); err != nil {
		t.Fatal(err)
	}
	if b, err := os.ReadFile(name); err != nil || len(b) != 0 {
		t.Errorf("output.log = %q, %v", b, err)
	}
}

// TestCleanupStaleFindsUnrecordedSpawns plays a supervisor killed between
// a fork and the instance.json write: plugins gone, their grandchildren
// alive in groups no file names. CleanupStale finds them by PLUGS_CONFIG
// (also when the plugin saw the state dir through a symlink), kills the one
// that ignores SIGTERM, and leaves alone a process of another state dir and
// a matching child of its caller (a live supervisor's).
func TestCleanupStaleFindsUnrecordedSpawns(t *testing.T) {
	dir := t.TempDir()
	link := filepath.Join(t.TempDir(), "state")
	if err := os.Symlink(dir, link); err != nil {
		t.Fatal(err)
	}
	pids := t.TempDir()
	config := func(stateDir, plug string) string {
		name := filepath.Join(stateDir, "instances", plug, "default", "config.json")
		if err := os.MkdirAll(filepath.Dir(name), 0o700); err != nil {
			t.Fatal(err)
		}
		return name
	}
	// orphan runs a plugin that starts a grandchild in mode and exits.
	orphan := func(stateDir, plug, mode string) int {
		t.Helper()
		pidFile := filepath.Join(pids, plug)
		cmd := exec.Command(os.Args[0], pidFile, mode)
		cmd.Env = append(os.Environ(), testplugin.Env+"=orphaner", "GORACE=atexit_sleep_ms=0", "PLUGS_CONFIG="+config(stateDir, plug))
		cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("orphaner %s: %v %s", plug, err, out)
		}
		b, _ := os.ReadFile(pidFile)
		pid, _ := strconv.Atoi(string(b))
		st, err := readProcStat(pid)
		if err != nil || st.PGRP != cmd.Process.Pid || st.PPID == os.Getpid() {
			t.Fatalf("grandchild %d of %s: %+v %v, want an orphan in group %d", pid, plug, st, err, cmd.Process.Pid)
		}
		t.Cleanup(func() {
			if now, err := readProcStat(pid); err == nil && now.StartTime == st.StartTime {
				syscall.Kill(pid, syscall.SIGKILL)
			}
		})
		return pid
	}
	sleeper := orphan(dir, "sleeper", "sleep")
	stubborn := orphan(dir, "stubborn", "ignoreterm")
	linked := orphan(link, "linked", "sleep")
	other := orphan(t.TempDir(), "other", "sleep")
	eventually(t, "the stubborn grandchild ignores SIGTERM", func() bool { return ignoresTERM(stubborn) })

	trapFile := filepath.Join(t.TempDir(), "signals")
	own := exec.Command(os.Args[0], trapFile)
	own.Env = append(os.Environ(), testplugin.Env+"=trap", "PLUGS_CONFIG="+config(dir, "own"))
	if err := own.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		own.Process.Kill()
		own.Wait()
	})
	eventually(t, "trap ready", func() bool { _, err := os.Stat(trapFile); return err == nil })

	var log syncbuf.Buffer
	if err := CleanupStale(dir, slog.New(slog.NewTextHandler(&log, nil))); err != nil {
		t.Fatal(err)
	}
	for name, pid := range map[string]int{"sleeper": sleeper, "stubborn": stubborn, "linked": linked} {
		eventually(t, name+" grandchild gone", func() bool { return gone(pid) })
	}
	if !strings.Contains(log.String(), "msg=\"killing process of a stale instance\" instance=stubborn/default pid="+strconv.Itoa(stubborn)) {
		t.Errorf("no SIGKILL of the stubborn grandchild logged:\n%s", log.String())
	}
	if gone(other) {
		t.Error("the process of another state dir was killed")
	}
	if gone(own.Process.Pid) {
		t.Fatal("the caller's own child was killed")
	}
	syscall.Kill(own.Process.Pid, syscall.SIGUSR2)
	eventually(t, "trap records", func() bool { b, _ := os.ReadFile(trapFile); return len(b) > 0 })
	if b, _ := os.ReadFile(trapFile); string(b) != "user defined signal 2\n" {
		t.Errorf("the caller's child received %q, want only the test's SIGUSR2", b)
	}
	m, err := newConfigMatcher(dir)
	if err != nil {
		t.Fatal(err)
	}
	if left := findStrays(m, os.Getpid()); len(left) != 0 {
		t.Errorf("strays left after cleanup: %+v", left)
	}
}

// ignoresTERM reports whether pid ignores SIGTERM (/proc/<pid>/status SigIgn).
func ignoresTERM(pid int) bool {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/status")
	if err != nil {
		return false
	}
	for line := range strings.Lines(string(b)) {
		if hex, ok := strings.CutPrefix(line, "SigIgn:"); ok {
			mask, err := strconv.ParseUint(strings.TrimSpace(hex), 16, 64)
			return err == nil && mask&(1<<(syscall.SIGTERM-1)) != 0
		}
	}
	return false
}

// TestStartAfterHoldsStartsAndRemoves: with Options.StartAfter open, Start
// and Remove wait, writing and removing nothing (the daemon's CleanupStale
// runs meanwhile); a Start whose ctx ends returns its error; once it is
// closed they proceed.
func TestStartAfterHoldsStartsAndRemoves(t *testing.T) {
	gate := make(chan struct{})
	dir := t.TempDir()
	r, sts := newTestRunner(t, Options{StateDir: dir, StartAfter: gate})
	spec := fakeSpec("gated", "default", "sleep")
	old := InstanceDir(dir, instance.ID{Plug: "old", Instance: "default"})
	if err := os.MkdirAll(old, 0o700); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	if err := r.Start(ctx, spec); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Start before the gate opened: %v, want the deadline's error", err)
	}
	started, removed := make(chan error, 1), make(chan error, 1)
	go func() { started <- r.Start(context.Background(), spec) }()
	go func() { removed <- r.Remove(context.Background(), instance.ID{Plug: "old", Instance: "default"}) }()
	time.Sleep(50 * time.Millisecond)
	if _, err := os.Stat(InstanceDir(dir, spec.ID)); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("the instance's folder exists before the gate opened (%v)", err)
	}
	if _, err := os.Stat(old); err != nil {
		t.Errorf("Remove did not wait for the gate: %v", err)
	}
	if len(r.Observe()) != 0 {
		t.Errorf("instances known before the gate opened: %v", r.Observe())
	}
	close(gate)
	if err := <-started; err != nil {
		t.Fatal(err)
	}
	if err := <-removed; err != nil {
		t.Fatal(err)
	}
	sts.await(t, spec.ID, "running", running)
	if _, err := os.Stat(old); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("removed instance's folder still there: %v", err)
	}
}

// TestFailedExecsLeaveNoDescriptor: a command that forks but cannot exec
// (a script whose interpreter is missing) fails its start every time, and
// the fork's pidfd, output pipe and log leave no descriptor behind.
func TestFailedExecsLeaveNoDescriptor(t *testing.T) {
	r, _ := newTestRunner(t, Options{})
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "run"), []byte("#!/nonexistent/interpreter\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	countFDs := func() int {
		ents, _ := os.ReadDir("/proc/self/fd")
		return len(ents)
	}
	s := reconciletest.Spec(dir, "badexec", "default", "1")
	s.Command = []string{"./run"}
	// The first start makes what lives as long as the runner (the poller).
	if err := r.Start(t.Context(), s); err == nil || !strings.Contains(err.Error(), "fork/exec") {
		t.Fatalf("a start of a script without its interpreter: %v, want the exec's failure", err)
	}
	_ = r.Remove(t.Context(), s.ID)
	before := countFDs()
	for range 20 {
		if err := r.Start(t.Context(), s); err == nil {
			t.Fatal("a start of a script without its interpreter succeeded")
		}
		if err := r.Remove(t.Context(), s.ID); err != nil {
			t.Fatal(err)
		}
	}
	if after := countFDs(); after > before {
		t.Errorf("%d descriptors after 20 failed execs, %d before", after, before)
	}
}
