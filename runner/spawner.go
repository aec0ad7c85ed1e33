package runner

import (
	"errors"
	"fmt"
	"os"
	"runtime"
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
// A fork blocks its thread until the child has exec'd (os.StartProcess
// uses CLONE_VFORK); with one thread per CPU, parallel starts fork in
// parallel. Only the fork runs there: callers prepare files, environment
// and pipes in their own goroutines.
type spawner struct {
	reqs chan spawnReq
	done chan struct{}
}

type spawnReq struct {
	path  string
	argv  []string
	attr  *os.ProcAttr
	reply chan spawnResult
}

type spawnResult struct {
	proc *os.Process
	err  error
}

// newSpawner starts the spawner's threads. With noNewPrivs each thread sets
// PR_SET_NO_NEW_PRIVS first; the flag is per thread and inherited by every
// child it forks, so no_new_privs instances get a spawner of their own.
func newSpawner(noNewPrivs bool, threads int) (*spawner, error) {
	s := &spawner{reqs: make(chan spawnReq), done: make(chan struct{})}
	var wg sync.WaitGroup
	ready := make(chan error, threads)
	for range threads {
		wg.Go(func() { s.loop(noNewPrivs, ready) })
	}
	go func() {
		wg.Wait()
		close(s.done)
	}()
	var errs []error
	for range threads {
		errs = append(errs, <-ready)
	}
	if err := errors.Join(errs...); err != nil {
		s.stop()
		return nil, err
	}
	return s, nil
}

func (s *spawner) loop(noNewPrivs bool, ready chan<- error) {
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
func (s *spawner) serve(noNewPrivs bool, ready chan<- error) {
	tid := unix.Gettid()
	spawnerTids.add(tid)
	// Removed before the thread exits: a new thread may reuse the id.
	defer spawnerTids.remove(tid)
	if noNewPrivs {
		if err := unix.Prctl(unix.PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0); err != nil {
			ready <- fmt.Errorf("set no_new_privs: %w", err)
			return
		}
	}
	ready <- nil
	for req := range s.reqs {
		p, err := os.StartProcess(req.path, req.argv, req.attr)
		if err == nil {
			forked.add(p.Pid) // the caller reaps it, and removes it then
		}
		req.reply <- spawnResult{p, err}
	}
}

// spawn starts a process from the spawner thread, with Pdeathsig SIGKILL
// and a process group of its own.
func (s *spawner) spawn(path string, argv []string, attr *os.ProcAttr) (*os.Process, error) {
	return s.spawnIn(path, argv, attr, true)
}

// spawnIn is spawn, with a process group of its own only when ownGroup
// (an interactive run stays in the caller's, with its terminal).
func (s *spawner) spawnIn(path string, argv []string, attr *os.ProcAttr, ownGroup bool) (*os.Process, error) {
	if attr.Sys == nil {
		attr.Sys = &syscall.SysProcAttr{}
	}
	attr.Sys.Setpgid = ownGroup
	attr.Sys.Pdeathsig = syscall.SIGKILL
	reply := make(chan spawnResult, 1)
	select {
	case s.reqs <- spawnReq{path, argv, attr, reply}:
	case <-s.done:
		return nil, errors.New("runner closed")
	}
	r := <-reply
	return r.proc, r.err
}

// stop ends the spawner's threads.
func (s *spawner) stop() {
	close(s.reqs)
	<-s.done
}
