package runner

import (
	"errors"
	"fmt"
	"os"
	"runtime"
	"syscall"

	"golang.org/x/sys/unix"
)

// spawner forks every child from one OS thread that is locked and lives as
// long as the Runner. Linux delivers a child's parent-death signal when the
// thread that forked it exits, not the process (golang/go#27505): forking
// from arbitrary goroutines would kill children whenever the Go runtime
// retires a thread. When the spawner stops, its thread exits and any child
// still alive receives SIGKILL, which is the point.
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

// newSpawner starts the spawner thread. With noNewPrivs the thread sets
// PR_SET_NO_NEW_PRIVS first; the flag is per thread and inherited by every
// child it forks, so no_new_privs instances get their own spawner.
func newSpawner(noNewPrivs bool) (*spawner, error) {
	s := &spawner{reqs: make(chan spawnReq), done: make(chan struct{})}
	ready := make(chan error, 1)
	go s.loop(noNewPrivs, ready)
	if err := <-ready; err != nil {
		<-s.done
		return nil, err
	}
	return s, nil
}

func (s *spawner) loop(noNewPrivs bool, ready chan<- error) {
	// Never unlocked: when this goroutine returns, the runtime terminates
	// the thread instead of reusing it.
	runtime.LockOSThread()
	defer close(s.done)
	if noNewPrivs {
		if err := unix.Prctl(unix.PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0); err != nil {
			ready <- fmt.Errorf("set no_new_privs: %w", err)
			return
		}
	}
	ready <- nil
	for req := range s.reqs {
		p, err := os.StartProcess(req.path, req.argv, req.attr)
		req.reply <- spawnResult{p, err}
	}
}

// spawn starts a process from the spawner thread, with Pdeathsig SIGKILL
// and a process group of its own.
func (s *spawner) spawn(path string, argv []string, attr *os.ProcAttr) (*os.Process, error) {
	if attr.Sys == nil {
		attr.Sys = &syscall.SysProcAttr{}
	}
	attr.Sys.Setpgid = true
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

// stop ends the spawner thread.
func (s *spawner) stop() {
	close(s.reqs)
	<-s.done
}
