package runner

import (
	"context"
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

	"github.com/plugs-dev/plugs/instance"
	"golang.org/x/sys/unix"
)

// readPID waits for a pid file and returns the pid with its start time.
func readPID(t *testing.T, name string) procRef {
	t.Helper()
	var ref procRef
	eventually(t, "pid file "+name, func() bool {
		b, err := os.ReadFile(name)
		if err != nil || len(b) == 0 {
			return false
		}
		pid, err := strconv.Atoi(strings.TrimSpace(string(b)))
		if err != nil {
			return false
		}
		st, err := readProcStat(pid)
		if err != nil {
			return false
		}
		ref = procRef{pid, st.StartTime}
		return true
	})
	t.Cleanup(func() { killRef(ref) })
	return ref
}

// alive reports whether ref still runs (not a zombie).
func (ref procRef) alive() bool {
	st, err := readProcStat(ref.pid)
	return err == nil && st.StartTime == ref.start && st.State != 'Z'
}

// present reports whether ref is in the process table at all (a zombie
// counts): an adopted orphan must also be reaped.
func (ref procRef) present() bool {
	st, err := readProcStat(ref.pid)
	return err == nil && st.StartTime == ref.start
}

func killRef(ref procRef) {
	if ref.alive() {
		_ = syscallKill(ref.pid)
	}
}

// assertGone fails unless ref has exited and been reaped. Stop waits for
// it, so it is checked at once; reaping follows its SIGCHLD.
func assertGone(t *testing.T, ref procRef, after string) {
	t.Helper()
	if ref.alive() {
		st, _ := readProcStat(ref.pid)
		pst, _ := readProcStat(st.PPID)
		t.Fatalf("after %s: process %d of the instance still runs (%+v; parent %+v; supervisor %d)", after, ref.pid, st, pst, os.Getpid())
	}
	for range 1000 {
		if !ref.present() {
			return
		}
		time.Sleep(10 * time.Millisecond)
	}
	st, _ := readProcStat(ref.pid)
	forked.mu.Lock()
	_, inForked := forked.m[ref.pid]
	forked.mu.Unlock()
	t.Fatalf("orphan %d never reaped: %+v forked=%v held=%v self=%d", ref.pid, st, inForked, pidfdTargets()[ref.pid], os.Getpid())
}

// TestNoOrphansSetsidDoubleFork: a plugin that starts a setsid,
// double-forked child ignoring SIGTERM (a daemonising script) leaves
// nothing behind after a stop, a restart, a replace (stop + start), a
// crash, or Close (issue 11).
func TestNoOrphansSetsidDoubleFork(t *testing.T) {
	r, sts := newTestRunner(t, Options{})
	pids := t.TempDir()
	s := fakeSpec("daemonizer", "default", "daemonize", filepath.Join(pids, "a"))
	s.StopTimeout = 0 // the default 10s: the leader exits at SIGTERM at once

	if err := r.Start(t.Context(), s); err != nil {
		t.Fatal(err)
	}
	first := readPID(t, filepath.Join(pids, "a"))
	st, _ := readProcStat(first.pid)
	leader := sts.await(t, s.ID, "running", running).PID
	if st.PGRP == leader || st.PPID == leader {
		t.Fatalf("grandchild %+v is not out of the group of leader %d", st, leader)
	}

	// Restart.
	os.Remove(filepath.Join(pids, "a"))
	if err := r.Restart(t.Context(), s.ID); err != nil {
		t.Fatal(err)
	}
	assertGone(t, first, "plugs restart")
	second := readPID(t, filepath.Join(pids, "a"))

	// Stop, then a replace: stop and start.
	if err := r.Stop(t.Context(), s.ID); err != nil {
		t.Fatal(err)
	}
	assertGone(t, second, "stop")
	os.Remove(filepath.Join(pids, "a"))
	if err := r.Start(t.Context(), s); err != nil {
		t.Fatal(err)
	}
	third := readPID(t, filepath.Join(pids, "a"))

	// A crash: the main process exits after daemonising; the restart
	// finds no daemon of the previous run.
	crasher := fakeSpec("crasher", "default", "daemonize", filepath.Join(pids, "c"), "exit")
	crasher.Restart = instance.RestartPolicy{InitialDelay: time.Hour, MaxDelay: time.Hour, ResetAfter: time.Hour}
	if err := r.Start(t.Context(), crasher); err != nil {
		t.Fatal(err)
	}
	sts.await(t, crasher.ID, "in backoff after two exits", func(st instance.Status) bool {
		return st.State == instance.StateBackoff && st.Restarts >= 1
	})
	if left := withEnv("PLUGS_CONFIG=" + filepath.Join(InstanceDir(r.opts.StateDir, crasher.ID), "config.json")); len(left) > 0 {
		t.Fatalf("after the main process exited twice: processes %v of the instance still run", left)
	}

	// Close, as a clean daemon stop.
	if err := r.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
	assertGone(t, third, "close")
}

// TestNoOrphansShellSetsid: the same with a shell script and the real
// setsid(1), as a plugin author would write it.
func TestNoOrphansShellSetsid(t *testing.T) {
	if _, err := exec.LookPath("setsid"); err != nil {
		t.Skip("no setsid(1)")
	}
	r, sts := newTestRunner(t, Options{})
	pidFile := filepath.Join(t.TempDir(), "pid")
	s := fakeSpec("sh", "default", "sleep")
	s.Command = []string{"sh", "-c", `setsid -f sh -c 'trap "" TERM; echo $$ > "$0"; exec sleep 3600' "$0"; echo ready; exec sleep 3600`, pidFile}
	if err := r.Start(t.Context(), s); err != nil {
		t.Fatal(err)
	}
	sts.await(t, s.ID, "running", running)
	daemon := readPID(t, pidFile)
	if err := r.Stop(t.Context(), s.ID); err != nil {
		t.Fatal(err)
	}
	assertGone(t, daemon, "stop")
}

// TestAdoptedOrphanIsReaped: an orphan that exits on its own is reaped,
// not left a zombie of the supervisor; a child some other code of the
// process waits for (os/exec) is never reaped behind its back.
func TestAdoptedOrphanIsReaped(t *testing.T) {
	r, sts := newTestRunner(t, Options{})
	pidFile := filepath.Join(t.TempDir(), "pid")
	s := fakeSpec("z", "default", "daemonize", pidFile)
	if err := r.Start(t.Context(), s); err != nil {
		t.Fatal(err)
	}
	sts.await(t, s.ID, "running", running)
	orphan := readPID(t, pidFile)
	// Its parent exits right after writing the pid file.
	eventually(t, "the orphan adopted by the supervisor (subreaper)", func() bool {
		st, err := readProcStat(orphan.pid)
		return err == nil && st.PPID == os.Getpid()
	})
	killRef(orphan)
	eventually(t, "the orphan reaped", func() bool { return !orphan.present() })

	for i := range 20 {
		c := exec.Command("sh", "-c", "exit 7")
		err := c.Run()
		if ee, ok := err.(*exec.ExitError); !ok || ee.ExitCode() != 7 {
			t.Fatalf("os/exec run %d beside the reaper: %v, want exit status 7", i, err)
		}
	}
}

// TestOrphansLandOffSpawnerThreads: the assumption adoptedChildren rests
// on (spawnerTids). The runner's forks hang on the spawner threads, none of
// which is the main thread, and an orphan is reparented elsewhere, so
// skipping the spawner threads' lists still finds every adopted orphan.
func TestOrphansLandOffSpawnerThreads(t *testing.T) {
	r, sts := newTestRunner(t, Options{})
	pidFile := filepath.Join(t.TempDir(), "pid")
	s := fakeSpec("o", "default", "daemonize", pidFile)
	if err := r.Start(t.Context(), s); err != nil {
		t.Fatal(err)
	}
	leader := sts.await(t, s.ID, "running", running).PID
	orphan := readPID(t, pidFile)
	eventually(t, "the orphan adopted by the supervisor (subreaper)", func() bool {
		st, err := readProcStat(orphan.pid)
		return err == nil && st.PPID == os.Getpid()
	})
	onSpawner := map[int]bool{}
	spawnerTids.mu.Lock()
	for tid := range spawnerTids.m {
		if tid == os.Getpid() {
			t.Errorf("spawner thread %d is the main thread", tid)
		}
		for _, c := range appendChildrenAt(nil, unix.AT_FDCWD, "/proc/self/task/"+strconv.Itoa(tid)+"/children") {
			onSpawner[c] = true
		}
	}
	spawnerTids.mu.Unlock()
	if !onSpawner[leader] {
		t.Errorf("leader %d is on no spawner thread's children list", leader)
	}
	if onSpawner[orphan.pid] {
		t.Errorf("orphan %d was reparented to a spawner thread", orphan.pid)
	}
	adopted := adoptedChildren()
	if !slices.Contains(adopted, orphan.pid) {
		t.Errorf("adoptedChildren() = %v, want the orphan %d", adopted, orphan.pid)
	}
	if slices.Contains(adopted, leader) {
		t.Errorf("adoptedChildren() = %v holds the forked leader %d", adopted, leader)
	}
}

// TestLockOffThread: a spawner goroutine that the scheduler put on the
// thread to avoid (the main thread) moves to another before it forks.
func TestLockOffThread(t *testing.T) {
	done := make(chan [2]int)
	go func() {
		runtime.LockOSThread() // this thread plays the main thread
		avoid := unix.Gettid()
		var got int
		lockOffThread(avoid, func() { got = unix.Gettid() })
		done <- [2]int{avoid, got}
		// Returning locked: the runtime ends the thread lockOffThread left.
	}()
	r := <-done
	if r[1] == 0 || r[1] == r[0] {
		t.Fatalf("f ran on thread %d, avoiding %d", r[1], r[0])
	}
}

// TestTrackerLeavesOtherProcessesAlone: a process outside the instance's
// tree, even a child of the supervisor, is not signalled unless it
// carries the instance's PLUGS_CONFIG.
func TestTrackerLeavesOtherProcessesAlone(t *testing.T) {
	r, sts := newTestRunner(t, Options{})
	s := fakeSpec("mine", "default", "sleep")
	if err := r.Start(t.Context(), s); err != nil {
		t.Fatal(err)
	}
	sts.await(t, s.ID, "running", running)
	other := exec.Command("sleep", "3600")
	other.Env = []string{"PLUGS_CONFIG=" + filepath.Join(InstanceDir(r.opts.StateDir, instance.ID{Plug: "mine", Instance: "other"}), "config.json")}
	if err := other.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() {
		other.Process.Kill()
		other.Wait()
	}()
	if err := r.Stop(t.Context(), s.ID); err != nil {
		t.Fatal(err)
	}
	if st, err := readProcStat(other.Process.Pid); err != nil || st.State == 'Z' {
		t.Fatalf("another instance's process was killed: %+v %v", st, err)
	}
}

// withEnv lists the live processes of the machine started with kv in
// their environment.
func withEnv(kv string) []int {
	var pids []int
	for _, pid := range procPIDs() {
		if st, err := readProcStat(pid); err == nil && st.State != 'Z' && hasEnv(pid, kv) {
			pids = append(pids, pid)
		}
	}
	return pids
}

func syscallKill(pid int) error { return syscall.Kill(pid, syscall.SIGKILL) }

func syscallSignal(pid int, name string) error {
	sig, err := parseSignal(name)
	if err != nil {
		return err
	}
	return syscall.Kill(pid, sig)
}
