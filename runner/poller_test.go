package runner

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"

	"github.com/plugs-dev/plugs/instance"
	"go.uber.org/goleak"
	"golang.org/x/sys/unix"
)

// TestIdleInstancesCostOneGoroutine: the design's promise. Running
// instances cost their run goroutine each, plus the one poller for all:
// their exits and output are watched without a goroutine of their own.
func TestIdleInstancesCostOneGoroutine(t *testing.T) {
	const n = 40
	r, sts := newTestRunner(t, Options{})
	base := runtime.NumGoroutine()
	var ids []instance.ID
	for i := range n {
		s := fakeSpec("idle", "i"+strconv.Itoa(i), "ready")
		if err := r.Start(t.Context(), s); err != nil {
			t.Fatal(err)
		}
		ids = append(ids, s.ID)
	}
	for _, id := range ids {
		sts.await(t, id, "running", running)
		awaitReady(t, r, id, 1) // its output read, the drain goroutine gone
	}
	eventually(t, fmt.Sprintf("at most %d goroutines for %d idle instances", n+1, n), func() bool {
		return runtime.NumGoroutine()-base <= n+1
	})
}

// pipeOf is the pipe (pipe:[inode]) on fd of process pid.
func pipeOf(t *testing.T, pid, fd int) string {
	t.Helper()
	l, err := os.Readlink(fmt.Sprintf("/proc/%d/fd/%d", pid, fd))
	if err != nil || !strings.HasPrefix(l, "pipe:") {
		t.Fatalf("fd %d of %d: %q %v", fd, pid, l, err)
	}
	return l
}

// holds reports whether this process has an fd on the pipe.
func holds(pipe string) bool {
	ents, _ := os.ReadDir("/proc/self/fd")
	for _, e := range ents {
		if l, _ := os.Readlink("/proc/self/fd/" + e.Name()); l == pipe {
			return true
		}
	}
	return false
}

// TestPipeClosedWhileProcessLives: a child that closes its stdout and
// stderr is EOF for the poller, which closes its end; the exit is still
// seen (the pidfd), and the instance restarts.
func TestPipeClosedWhileProcessLives(t *testing.T) {
	r, sts := newTestRunner(t, Options{})
	s := fakeSpec("closing", "default", "closeout")
	s.Restart.ResetAfter = 1 // every run stable: each kill restarts at once
	dir := t.TempDir()
	s.Command = []string{"sh", "-c", `p=$(readlink /proc/$$/fd/1); echo "$p" >` + filepath.Join(dir, "fd1") + `; exec "$0" "$@"`, s.Command[0]}
	if err := r.Start(t.Context(), s); err != nil {
		t.Fatal(err)
	}
	pid := sts.await(t, s.ID, "running", running).PID
	var pipe string
	eventually(t, "the child's stdout noted", func() bool {
		b, _ := os.ReadFile(filepath.Join(dir, "fd1"))
		if i := bytes.Index(b, []byte("pipe:")); i >= 0 {
			pipe = strings.TrimSpace(string(b[i:]))
			return true
		}
		return false
	})
	eventually(t, "the closed pipe's read end closed", func() bool { return !holds(pipe) })
	if st, _ := r.Status(s.ID); st.State != instance.StateRunning || st.PID != pid {
		t.Fatalf("after its pipe closed: %+v", st)
	}
	syscall.Kill(pid, syscall.SIGKILL)
	st := sts.await(t, s.ID, "running again", func(st instance.Status) bool { return running(st) && st.PID != pid })
	if st.LastExit == nil || st.LastExit.Signal != "SIGKILL" {
		t.Errorf("last exit %+v, want SIGKILL", st.LastExit)
	}
}

// TestGrandchildHoldsPipe: the main process exits while a grandchild that
// escaped the instance (its own session, no PLUGS_CONFIG, adopted by the
// supervisor) still holds the pipe. The restart does not wait for the
// pipe; the old pipe is read until outputGrace after the exit, then
// closed, the grandchild alive.
func TestGrandchildHoldsPipe(t *testing.T) {
	r, sts := newTestRunner(t, Options{})
	mark := filepath.Join(t.TempDir(), "mark")
	s := fakeSpec("holder", "default", "sleep")
	s.Command = []string{"sh", "-c", `if [ -e ` + mark + ` ]; then echo second; exec sleep 300; fi
touch ` + mark + `
( setsid env -i PATH=/usr/bin:/bin sh -c 'echo "grandchild $$"; ls -l /proc/$$/fd/1; exec sleep 300' & )
sleep 0.2; exit 3`}
	s.Restart.ResetAfter = 1
	if err := r.Start(t.Context(), s); err != nil {
		t.Fatal(err)
	}
	log := filepath.Join(InstanceDir(r.opts.StateDir, s.ID), "output.log")
	var gc int
	var pipe string
	eventually(t, "the grandchild's line", func() bool {
		b, _ := os.ReadFile(log)
		for line := range strings.SplitSeq(string(b), "\n") {
			if v, ok := strings.CutPrefix(line, "grandchild "); ok {
				gc, _ = strconv.Atoi(v)
			}
			if i := strings.Index(line, "pipe:"); i >= 0 {
				pipe = line[i:]
			}
		}
		return gc > 0 && pipe != ""
	})
	t.Cleanup(func() { syscall.Kill(gc, syscall.SIGKILL) })
	st := sts.await(t, s.ID, "restarted", func(st instance.Status) bool { return running(st) && st.Restarts == 1 })
	if st.LastExit == nil || st.LastExit.Code != 3 {
		t.Errorf("last exit %+v, want code 3", st.LastExit)
	}
	if !holds(pipe) {
		t.Errorf("the first process's pipe was closed before outputGrace (%v) passed", outputGrace)
	}
	eventually(t, "the old pipe closed after outputGrace", func() bool { return !holds(pipe) })
	if gone(gc) {
		t.Error("the grandchild is gone: this test no longer shows a pipe held past the exit")
	}
	awaitReadyLine(t, log, "second")
}

func awaitReadyLine(t *testing.T, log, line string) {
	t.Helper()
	eventually(t, "line "+line, func() bool {
		b, _ := os.ReadFile(log)
		return strings.Contains(string(b), line+"\n")
	})
}

// TestStaleEventForReusedFD: an event still pending for a pidfd closed
// since, whose fd number a new pipe got, reaches nobody: registrations
// are named by tokens, never reused, so the exit is seen once and the new
// pipe is not taken for a process.
func TestStaleEventForReusedFD(t *testing.T) {
	cmd := exec.Command("sleep", "60")
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	var exits atomic.Int32
	exited := make(chan struct{})
	reg := watchExit(cmd.Process.Pid, -1, func() {
		exits.Add(1)
		close(exited)
	})
	if reg == nil {
		t.Skip("no pidfd: the exit is waited for by a goroutine")
	}
	fd, token := reg.fd, reg.token
	cmd.Process.Kill()
	<-exited
	cmd.Wait()

	dir := t.TempDir()
	var bufs sync.Pool
	var done sync.WaitGroup
	done.Add(1)
	out := newRotatingFile(filepath.Join(dir, "b.log"), 1<<20, 1)
	p, w, err := newOutPipe(out, &bufs, done.Done)
	if err != nil {
		t.Fatal(err)
	}
	if p.reg.fd != fd {
		t.Logf("fd %d not reused (%d): the stale event is checked all the same", fd, p.reg.fd)
	}
	poll.mu.Lock()
	stale := poll.dispatch([]unix.EpollEvent{*epollEvent(unix.EPOLLIN, token)}, -1)
	poll.mu.Unlock()
	if len(stale) != 0 || exits.Load() != 1 {
		t.Fatalf("a stale exit event dispatched (%d exits)", exits.Load())
	}
	if _, err := w.Write([]byte("b\n")); err != nil {
		t.Fatal(err)
	}
	w.Close()
	done.Wait()
	out.Close()
	if got, _ := os.ReadFile(filepath.Join(dir, "b.log")); string(got) != "b\n" {
		t.Errorf("b.log = %q", got)
	}
	goleak.VerifyNone(t, goleak.IgnoreCurrent())
}

// TestManyExitAtOnce: every instance's process SIGKILLed in the same
// instant: each exit is seen once and each instance restarts once.
func TestManyExitAtOnce(t *testing.T) {
	const n = 60
	r, sts := newTestRunner(t, Options{})
	pids := map[instance.ID]int{}
	for i := range n {
		s := fakeSpec("many", "i"+strconv.Itoa(i), "sleep")
		s.Restart.ResetAfter = 1
		if err := r.Start(t.Context(), s); err != nil {
			t.Fatal(err)
		}
		pids[s.ID] = 0
	}
	for id := range pids {
		pids[id] = sts.await(t, id, "running", running).PID
	}
	for _, pid := range pids {
		syscall.Kill(pid, syscall.SIGKILL)
	}
	for id, pid := range pids {
		st := sts.await(t, id, "restarted", func(st instance.Status) bool { return running(st) && st.PID != pid })
		if st.Restarts != 1 || st.LastExit == nil || st.LastExit.Signal != "SIGKILL" {
			t.Errorf("%s: restarts %d, last exit %+v", id, st.Restarts, st.LastExit)
		}
	}
}

// TestCloseWhileOutputPending: Close while every instance floods its
// output: it returns with no goroutine or fd left, and every log file
// holds whole lines (rotation on line boundaries, the pipe read to EOF).
func TestCloseWhileOutputPending(t *testing.T) {
	const n = 8
	fds := func() int {
		ents, _ := os.ReadDir("/proc/self/fd")
		return len(ents)
	}
	before := fds()
	stateDir := t.TempDir()
	r, err := New(Options{StateDir: stateDir, LogMaxSize: 256 << 10, LogBackups: 1})
	if err != nil {
		t.Fatal(err)
	}
	for i := range n {
		if err := r.Start(t.Context(), fakeSpec("flood", "i"+strconv.Itoa(i), "flood")); err != nil {
			t.Fatal(err)
		}
	}
	eventually(t, "output flowing", func() bool {
		fi, err := os.Stat(filepath.Join(InstanceDir(stateDir, instance.ID{Plug: "flood", Instance: "i0"}), "output.log"))
		return err == nil && fi.Size() > 64<<10
	})
	if err := r.Close(t.Context()); err != nil {
		t.Fatal(err)
	}
	goleak.VerifyNone(t, goleak.IgnoreCurrent())
	if got := fds(); got > before {
		t.Errorf("open fds: %d before, %d after", before, got)
	}
	logs, _ := filepath.Glob(filepath.Join(stateDir, "instances", "flood", "*", "output.log*"))
	line := strings.Repeat("x", 1023)
	for _, l := range logs {
		b, err := os.ReadFile(l)
		if err != nil {
			t.Fatal(err)
		}
		if len(b) == 0 {
			continue
		}
		for i, got := range strings.Split(strings.TrimSuffix(string(b), "\n"), "\n") {
			if got != line {
				t.Errorf("%s: line %d is %d bytes, not a whole line", l, i+1, len(got))
				break
			}
		}
		if b[len(b)-1] != '\n' {
			t.Errorf("%s ends mid-line", l)
		}
	}
}

// TestObserveSorted: Observe lists the instances in id order, whatever
// the order they were started and stopped in.
func TestObserveSorted(t *testing.T) {
	r, _ := newTestRunner(t, Options{})
	live := map[instance.ID]bool{}
	for i := range 24 {
		s := fakeSpec("p"+strconv.Itoa((i*7919)%5), "i"+strconv.Itoa((i*104729)%24), "sleep")
		if err := r.Start(t.Context(), s); err != nil {
			t.Fatal(err)
		}
		live[s.ID] = true
		if i%3 == 2 { // stop one started earlier
			for id := range live {
				if err := r.Stop(t.Context(), id); err != nil {
					t.Fatal(err)
				}
				delete(live, id)
				break
			}
		}
	}
	var got, want []instance.ID
	for _, o := range r.Observe() {
		got = append(got, o.ID)
	}
	for id := range live {
		want = append(want, id)
	}
	slices.SortFunc(want, compareIDs)
	if !slices.Equal(got, want) {
		t.Fatalf("Observe: %v, want %v", got, want)
	}
}
