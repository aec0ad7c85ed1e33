package runner

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"runtime"
	"slices"
	"strconv"
	"sync"
	"syscall"

	"golang.org/x/sys/unix"
)

// spawner forks every child from a few OS threads that are locked and live
// as long as the Runner. Linux delivers a child's parent-death signal when
// the thread that forked it exits, not the process (golang/go#27505):
// forking from arbitrary goroutines would kill children whenever the Go
// runtime retires a thread. When the spawner stops, its threads exit and
// any child still alive receives SIGKILL, which is the point.
//
// A fork blocks its thread until the child has exec'd (CLONE_VFORK); with
// one thread per CPU, parallel starts fork in parallel. Only the fork runs
// there: callers prepare files, environment and pipes in their own
// goroutines.
//
// Each thread forks from a descriptor table of its own (privateFiles):
// an exec closes every close-on-exec descriptor the child inherited, one
// by one, and a daemon of 1,000 instances holds ~2,000 (a pidfd and an
// output pipe each), cold in the cache. That cost ~1 ms per exec, most of
// a restart. The thread's table holds a handful, and the descriptors a
// child gets are copied into it for its fork (pidfd_getfd).
type spawner struct {
	reqs chan spawnReq
	done chan struct{}
}

type spawnReq struct {
	path  string
	argv  []string
	attr  *syscall.ProcAttr // Files are the caller's descriptors
	reply chan spawnResult
}

type spawnResult struct {
	pid int
	err error
}

// threadReady is what a spawner thread reports once it serves.
type threadReady struct {
	err error
	// shared is the pidfd the thread opened before it took a table of its
	// own (privateFiles), to be closed in the process's table (-1: none).
	shared int
}

// newSpawner starts the spawner's threads. With noNewPrivs each thread sets
// PR_SET_NO_NEW_PRIVS first; the flag is per thread and inherited by every
// child it forks, so no_new_privs instances get a spawner of their own.
func newSpawner(noNewPrivs bool, threads int) (*spawner, error) {
	s := &spawner{reqs: make(chan spawnReq), done: make(chan struct{})}
	netpollReady()
	var wg sync.WaitGroup
	ready := make(chan threadReady, threads)
	for range threads {
		wg.Go(func() { s.loop(noNewPrivs, ready) })
	}
	go func() {
		wg.Wait()
		close(s.done)
	}()
	var errs []error
	for range threads {
		r := <-ready
		if r.shared >= 0 {
			unix.Close(r.shared)
		}
		errs = append(errs, r.err)
	}
	if err := errors.Join(errs...); err != nil {
		s.stop()
		return nil, err
	}
	return s, nil
}

func (s *spawner) loop(noNewPrivs bool, ready chan<- threadReady) {
	// Not on the main thread, where orphans are reparented (spawnerTids).
	lockOffThread(unix.Getpid(), func() { s.serve(noNewPrivs, ready) })
}

// lockOffThread runs f locked to an OS thread other than the thread tid,
// never unlocked: when f returns, the runtime terminates the thread
// instead of reusing it.
func lockOffThread(tid int, f func()) {
	runtime.LockOSThread()
	if unix.Gettid() != tid {
		f()
		return
	}
	// While this goroutine holds thread tid, no other can run on it.
	locked, done := make(chan struct{}), make(chan struct{})
	go func() {
		defer close(done)
		runtime.LockOSThread()
		close(locked)
		f()
	}()
	<-locked
	runtime.UnlockOSThread()
	<-done
}

// serve forks the requests from the calling thread, which it registers
// in spawnerTids while it may have children.
func (s *spawner) serve(noNewPrivs bool, ready chan<- threadReady) {
	tid := unix.Gettid()
	spawnerTids.add(tid)
	// Removed before the thread exits: a new thread may reuse the id.
	defer spawnerTids.remove(tid)
	if noNewPrivs {
		if err := unix.Prctl(unix.PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0); err != nil {
			ready <- threadReady{fmt.Errorf("set no_new_privs: %w", err), -1}
			return
		}
	}
	self := -1 // the pidfd of a table of its own, closed with it at exit
	if forkPrivate {
		self = privateFiles()
	}
	ready <- threadReady{nil, self}
	for req := range s.reqs {
		pid, err := forkExec(self, req.path, req.argv, req.attr)
		if err == nil {
			forked.add(pid) // the caller reaps it, and removes it then
		}
		req.reply <- spawnResult{pid, err}
	}
}

// privateFiles gives the calling thread a descriptor table of its own and
// returns a pidfd of the process in it, through which the thread copies
// the process's descriptors (pidfd_getfd, Linux 5.6); -1 when it cannot
// (an old kernel, a seccomp filter): the thread then shares the process's
// table, and its forks are as dear as any. The thread must never run
// another goroutine: it is locked and exits with its goroutine
// (lockOffThread), and Go makes the threads a locked thread needs from
// its template thread, never by cloning this one.
//
// The table keeps 0-2 (where the runtime writes a crash), the runtime's
// netpoller (its epoll set and eventfd, which a stop or start of the
// world on this thread uses: netpollReady made them first) and the pidfd;
// every other descriptor is closed here, in this table only.
func privateFiles() int {
	self, err := unix.PidfdOpen(os.Getpid(), 0)
	if err != nil {
		return -1
	}
	probe, err := unix.PidfdGetfd(self, self, 0)
	if err != nil {
		unix.Close(self)
		return -1
	}
	unix.Close(probe)
	// Which descriptors are the runtime's is read from /proc: without it,
	// the table is not taken.
	if _, err := ownFDs(); err != nil {
		unix.Close(self)
		return -1
	}
	if err := unix.Unshare(unix.CLONE_FILES); err != nil {
		unix.Close(self)
		return -1
	}
	// self is in both tables now: the caller closes the process's copy
	// (serve reports it), this table keeps its own.
	fds, err := ownFDs()
	if err != nil {
		// The listing needs a descriptor, which a full table lacks: each
		// number up to the limit is looked at instead.
		var lim unix.Rlimit
		_ = unix.Getrlimit(unix.RLIMIT_NOFILE, &lim)
		for fd := 3; fd < int(min(lim.Cur, 1<<20)); fd++ {
			fds = append(fds, fd)
		}
	}
	for _, fd := range fds {
		if fd <= 2 || fd == self {
			continue
		}
		l, err := os.Readlink("/proc/thread-self/fd/" + strconv.Itoa(fd))
		switch {
		case errors.Is(err, fs.ErrNotExist): // not open
		case err != nil, l == "anon_inode:[eventpoll]", l == "anon_inode:[eventfd]":
			// The runtime's netpoller, or one that cannot be told apart
			// from it: kept.
		default:
			unix.Close(fd)
		}
	}
	return self
}

// ownFDs lists the open descriptors of the calling thread's table.
func ownFDs() ([]int, error) {
	ents, err := os.ReadDir("/proc/thread-self/fd")
	if err != nil {
		return nil, err
	}
	fds := make([]int, 0, len(ents))
	for _, e := range ents {
		if fd, err := strconv.Atoi(e.Name()); err == nil {
			fds = append(fds, fd)
		}
	}
	return fds, nil
}

// forkPrivate lets spawner threads take a table of their own; tests turn
// it off for the shared path, which a kernel without pidfd_getfd takes.
var forkPrivate = true

// netpollReady makes sure the runtime's netpoller has its descriptors
// before a spawner thread copies the table: a pipe is registered with it.
var netpollReady = sync.OnceFunc(func() {
	if r, w, err := os.Pipe(); err == nil {
		r.Close()
		w.Close()
	}
})

// forkExec forks and execs path from the calling spawner thread. With a
// private table (self >= 0) the child's files are first copied into it,
// and closed after the fork; no pidfd is made then (*attr.Sys.PidFD stays
// as it was, -1): one made here would be in this table, and the caller
// opens its own (watchExit).
func forkExec(self int, path string, argv []string, attr *syscall.ProcAttr) (int, error) {
	if self < 0 {
		pid, err := syscall.ForkExec(path, argv, attr)
		return pid, wrapForkErr(path, err)
	}
	a := *attr
	a.Files = make([]uintptr, len(attr.Files))
	var copied []int
	defer func() {
		for _, fd := range copied {
			unix.Close(fd)
		}
	}()
	for i, fd := range attr.Files {
		if fd == ^uintptr(0) {
			a.Files[i] = fd
			continue
		}
		if j := slices.Index(attr.Files[:i], fd); j >= 0 {
			a.Files[i] = a.Files[j]
			continue
		}
		n, err := unix.PidfdGetfd(self, int(fd), 0)
		if err != nil {
			return 0, wrapForkErr(path, fmt.Errorf("copy descriptor %d: %w", fd, err))
		}
		copied = append(copied, n)
		a.Files[i] = uintptr(n)
	}
	if attr.Sys != nil && attr.Sys.PidFD != nil {
		sys := *attr.Sys
		sys.PidFD = nil
		a.Sys = &sys
	}
	pid, err := syscall.ForkExec(path, argv, &a)
	return pid, wrapForkErr(path, err)
}

// wrapForkErr is the error os.StartProcess returns.
func wrapForkErr(path string, err error) error {
	if err == nil {
		return nil
	}
	return &os.PathError{Op: "fork/exec", Path: path, Err: err}
}

// spawn starts a process from the spawner thread, with Pdeathsig SIGKILL
// and a process group of its own, and returns its pid. The caller reaps
// it (waitPid) and removes it from forked. A pidfd asked for in
// attr.Sys.PidFD (set to -1 first) may not be made: see forkExec.
func (s *spawner) spawn(path string, argv []string, attr *os.ProcAttr) (int, error) {
	return s.spawnIn(path, argv, attr, true)
}

// spawnIn is spawn, with a process group of its own only when ownGroup
// (an interactive run stays in the caller's, with its terminal).
func (s *spawner) spawnIn(path string, argv []string, attr *os.ProcAttr, ownGroup bool) (int, error) {
	if attr.Sys == nil {
		attr.Sys = &syscall.SysProcAttr{}
	}
	attr.Sys.Setpgid = ownGroup
	attr.Sys.Pdeathsig = syscall.SIGKILL
	env := attr.Env
	if env == nil {
		env = os.Environ()
	}
	sa := &syscall.ProcAttr{Dir: attr.Dir, Env: env, Sys: attr.Sys, Files: make([]uintptr, len(attr.Files))}
	for i, f := range attr.Files {
		// Fd puts the file in blocking mode, as os.StartProcess does: the
		// child gets it as it would from a shell.
		sa.Files[i] = f.Fd()
	}
	reply := make(chan spawnResult, 1)
	select {
	case s.reqs <- spawnReq{path, argv, sa, reply}:
	case <-s.done:
		return 0, errors.New("runner closed")
	}
	r := <-reply
	runtime.KeepAlive(attr) // its files stay open until the fork is done
	return r.pid, r.err
}

// stop ends the spawner's threads.
func (s *spawner) stop() {
	close(s.reqs)
	<-s.done
}
