package runner

import (
	"net"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"sync"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/plugs-dev/plugs/instance"
	"github.com/plugs-dev/plugs/reconcile/reconciletest"
)

// threadFDs lists the descriptors of every spawner thread, by thread.
func threadFDs(t *testing.T) map[int][]string {
	t.Helper()
	spawnerTids.mu.Lock()
	var tids []int
	for tid := range spawnerTids.m {
		tids = append(tids, tid)
	}
	spawnerTids.mu.Unlock()
	out := map[int][]string{}
	for _, tid := range tids {
		dir := "/proc/self/task/" + strconv.Itoa(tid) + "/fd"
		ents, err := os.ReadDir(dir)
		if err != nil {
			t.Fatalf("spawner thread %d: %v", tid, err)
		}
		for _, e := range ents {
			l, _ := os.Readlink(filepath.Join(dir, e.Name()))
			out[tid] = append(out[tid], e.Name()+" -> "+l)
		}
	}
	return out
}

// childFDs lists the descriptors process pid holds once they are want,
// or after 2 s: a dynamically linked program's loader opens its libraries
// for a moment after the exec.
func childFDs(t *testing.T, pid int, want []string) []string {
	t.Helper()
	deadline := time.Now().Add(2 * time.Second)
	for {
		ents, err := os.ReadDir("/proc/" + strconv.Itoa(pid) + "/fd")
		if err != nil {
			t.Fatal(err)
		}
		var fds []string
		for _, e := range ents {
			fds = append(fds, e.Name())
		}
		slices.Sort(fds)
		if slices.Equal(fds, want) || time.Now().After(deadline) {
			return fds
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// openMany opens n descriptors in the test process, closed at its end.
func openMany(t *testing.T, n int) {
	t.Helper()
	for range n {
		f, err := os.Open(os.DevNull)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { f.Close() })
	}
}

// maxThreadFDs bounds a spawner thread's table: 0-2, the pidfd of the
// process, the netpoller's epoll set and eventfd, and those of other
// epoll sets and eventfds alive when the thread started (the runner's
// poller's).
const maxThreadFDs = 8

// TestSpawnerForksFromSmallTable: with 300 more descriptors open in the
// process, every spawner thread (the plain ones and the no_new_privs
// one, made later, when the instances' own descriptors are open too)
// holds a handful, and does not gain any over starts, failed execs
// included; an instance's process gets exactly 0-2, not even a
// descriptor the process holds without close-on-exec (one it inherited).
func TestSpawnerForksFromSmallTable(t *testing.T) {
	openMany(t, 300)
	leaky, err := syscall.Open(os.DevNull, syscall.O_RDONLY, 0) // no O_CLOEXEC
	if err != nil {
		t.Fatal(err)
	}
	defer syscall.Close(leaky)
	r, st := newTestRunner(t, Options{})
	dir := t.TempDir()
	check := func(when string) {
		t.Helper()
		for tid, fds := range threadFDs(t) {
			if len(fds) > maxThreadFDs {
				t.Errorf("%s: spawner thread %d holds %d descriptors, want at most %d: %v", when, tid, len(fds), maxThreadFDs, fds)
			}
		}
	}
	check("after New")
	var pids []int
	for i, nnp := range []bool{false, true} {
		s := reconciletest.Spec(dir, "p", "i"+strconv.Itoa(i), "1")
		s.Command = []string{"sleep", "60"}
		s.Limits.NoNewPrivs = nnp
		if err := r.Start(t.Context(), s); err != nil {
			t.Fatal(err)
		}
		got := st.await(t, s.ID, "running", func(s instance.Status) bool { return s.State == instance.StateRunning })
		pids = append(pids, got.PID)
	}
	for _, pid := range pids {
		if fds := childFDs(t, pid, []string{"0", "1", "2"}); !slices.Equal(fds, []string{"0", "1", "2"}) {
			t.Errorf("instance process %d holds descriptors %v, want 0, 1, 2 (%d is the process's without close-on-exec)", pid, fds, leaky)
		}
	}
	bad := t.TempDir()
	if err := os.WriteFile(filepath.Join(bad, "run"), []byte("#!/nonexistent/interpreter\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	s := reconciletest.Spec(bad, "badexec", "default", "1")
	s.Command = []string{"./run"}
	before := threadFDs(t)
	for range 10 {
		if err := r.Start(t.Context(), s); err == nil {
			t.Fatal("a start of a script without its interpreter succeeded")
		}
		if err := r.Remove(t.Context(), s.ID); err != nil {
			t.Fatal(err)
		}
	}
	for tid, fds := range threadFDs(t) {
		if len(fds) > len(before[tid]) {
			t.Errorf("spawner thread %d: %d descriptors after 10 failed execs, %d before", tid, len(fds), len(before[tid]))
		}
	}
	check("after the starts")
}

// TestSpawnerKeepsNoClosedDescriptor: a spawner thread's table is a copy
// of the process's, taken when the thread starts. What the process had
// open then and closes later must close: a pipe's reader sees its end, a
// listener's port can be bound again.
func TestSpawnerKeepsNoClosedDescriptor(t *testing.T) {
	pr, pw, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	defer pr.Close()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	r, _ := newTestRunner(t, Options{})
	// The no_new_privs spawner starts with the first instance that asks.
	s := reconciletest.Spec(t.TempDir(), "p", "nnp", "1")
	s.Command = []string{"true"}
	s.Limits.NoNewPrivs = true
	if _, err := r.RunOnce(t.Context(), Once{Spec: s}); err != nil {
		t.Fatal(err)
	}
	pw.Close()
	ln.Close()
	_ = pr.SetReadDeadline(time.Now().Add(5 * time.Second))
	var b [1]byte
	if n, err := pr.Read(b[:]); n != 0 || err == nil || os.IsTimeout(err) {
		t.Errorf("read from a pipe whose writer the process closed: %d, %v; want its end (a spawner thread holds the writer)", n, err)
	}
	ln2, err := net.Listen("tcp", addr)
	if err != nil {
		t.Errorf("listen again on %s after closing its listener: %v (a spawner thread holds it)", addr, err)
	} else {
		ln2.Close()
	}
}

// TestSpawnerForksUnderGC: a spawner thread stops and starts the world
// when its fork's allocations start a GC, and wakes the netpoller (timers
// handed off when it parks): both use the runtime's netpoller
// descriptors, which its own table keeps. Forks from every spawner while
// another goroutine collects and arms timers without pause: each
// succeeds, and the process lives.
func TestSpawnerForksUnderGC(t *testing.T) {
	r, _ := newTestRunner(t, Options{})
	stop := make(chan struct{})
	var wg sync.WaitGroup
	wg.Go(func() {
		for {
			select {
			case <-stop:
				return
			default:
			}
			runtime.GC()
			tm := time.AfterFunc(time.Microsecond, func() {})
			time.Sleep(50 * time.Microsecond)
			tm.Stop()
		}
	})
	defer func() {
		close(stop)
		wg.Wait()
	}()
	dir := t.TempDir()
	var runs sync.WaitGroup
	errs := make(chan error, 4*25)
	for w := range 4 {
		runs.Go(func() {
			s := reconciletest.Spec(dir, "gc", "w"+strconv.Itoa(w), "1")
			s.Command = []string{"true"}
			s.Limits.NoNewPrivs = w%2 == 1
			for range 25 {
				res, err := r.RunOnce(t.Context(), Once{Spec: s})
				if err == nil {
					err = res.Err()
				}
				if err != nil {
					errs <- err
				}
			}
		})
	}
	runs.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
}

// TestSpawnerSharedTable: without a table of its own (a kernel without
// pidfd_getfd, a seccomp filter that refuses it or unshare), a spawner
// forks from the process's; instances start and get 0-2 and nothing of
// the runner's (there, as with os/exec, descriptors the process holds
// without close-on-exec pass too).
func TestSpawnerSharedTable(t *testing.T) {
	forkPrivate = false
	t.Cleanup(func() { forkPrivate = true })
	openMany(t, 50)
	r, st := newTestRunner(t, Options{})
	for tid, fds := range threadFDs(t) {
		if len(fds) < 50 {
			t.Errorf("spawner thread %d holds %d descriptors, want the process's table", tid, len(fds))
		}
	}
	s := reconciletest.Spec(t.TempDir(), "p", "shared", "1")
	s.Command = []string{"sleep", "60"}
	if err := r.Start(t.Context(), s); err != nil {
		t.Fatal(err)
	}
	got := st.await(t, s.ID, "running", func(s instance.Status) bool { return s.State == instance.StateRunning })
	want := []string{"0", "1", "2"}
	ents, _ := os.ReadDir("/proc/self/fd")
	for _, e := range ents {
		if fd, _ := strconv.Atoi(e.Name()); fd > 2 {
			if flags, err := unix.FcntlInt(uintptr(fd), unix.F_GETFD, 0); err == nil && flags&unix.FD_CLOEXEC == 0 {
				want = append(want, e.Name())
			}
		}
	}
	slices.Sort(want)
	if fds := childFDs(t, got.PID, want); !slices.Equal(fds, want) {
		t.Errorf("instance process holds descriptors %v, want %v", fds, want)
	}
	if err := r.Stop(t.Context(), s.ID); err != nil {
		t.Fatal(err)
	}
}

// TestSpawnerAtDescriptorLimit: a spawner made while the process's table
// is full (a daemon at its RLIMIT_NOFILE) cannot open the pidfd it needs
// for a table of its own, and forks from the shared one: once descriptors
// are free again its forks work.
//
// The table is made full by a soft limit of 3 (0-2 are open), which no
// descriptor closed elsewhere in the process can undo; only the threads of
// this spawner are looked at (another test's may still be exiting).
func TestSpawnerAtDescriptorLimit(t *testing.T) {
	var old unix.Rlimit
	if err := unix.Getrlimit(unix.RLIMIT_NOFILE, &old); err != nil {
		t.Fatal(err)
	}
	openMany(t, 20) // the shared table is larger than a private one
	before := threadFDs(t)
	lim := unix.Rlimit{Cur: 3, Max: old.Max}
	if err := unix.Setrlimit(unix.RLIMIT_NOFILE, &lim); err != nil {
		t.Fatal(err)
	}
	if f, err := os.Open(os.DevNull); err == nil {
		f.Close()
		_ = unix.Setrlimit(unix.RLIMIT_NOFILE, &old)
		t.Fatal("a descriptor opens with a soft limit of 3: 0-2 are not all open")
	}
	sp, err := newSpawner(false, 1)
	if err := unix.Setrlimit(unix.RLIMIT_NOFILE, &old); err != nil {
		t.Fatal(err)
	}
	if err != nil {
		t.Fatal(err)
	}
	defer sp.stop()
	mine := 0
	for tid, fds := range threadFDs(t) {
		if _, ok := before[tid]; ok {
			continue
		}
		mine++
		if len(fds) <= maxThreadFDs {
			t.Errorf("spawner thread %d made at the limit holds %d descriptors: a table of its own, without the pidfd it needs?", tid, len(fds))
		}
	}
	if mine != 1 {
		t.Errorf("%d new spawner threads, want 1", mine)
	}
	pid, err := sp.spawn("/bin/true", []string{"true"}, &os.ProcAttr{Files: []*os.File{nil, nil, nil}})
	if err != nil {
		t.Fatal(err)
	}
	ws, err := waitPid(pid)
	forked.remove(pid)
	if err != nil || !ws.Exited() || ws.ExitStatus() != 0 {
		t.Errorf("true from a spawner made at the limit: %v, %v", ws, err)
	}
}
