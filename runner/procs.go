package runner

import (
	"bytes"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// No orphans, without cgroups. A plugin may move processes out of its
// process group (setsid, setpgid) and double-fork them, so a signal to the
// group misses them, and their parent-death signal was cleared by the fork.
// The runner therefore makes the supervisor a child subreaper
// (PR_SET_CHILD_SUBREAPER): whatever an instance orphans is reparented to
// the supervisor instead of init, where it can be found among the
// supervisor's children, recognised by the PLUGS_CONFIG (or PLUGS_RUN_ID)
// every descendant inherits, signalled through a pidfd checked against its
// start time, and reaped. A process that clears its environment and leaves
// its group escapes this; cgroups (a Tracker of the sandbox) close that gap.

// Tracker signals the processes of one instance (or one run) that are not
// in its process group: children that called setsid or setpgid, and
// double-forked daemons. The runner signals the group itself. The default
// is ProcTracker; the sandbox's cgroup tracker can take its place.
type Tracker interface {
	// Signal sends sig to every live process of t outside the process
	// group of t.Leader and returns how many it signalled. With SIGKILL it
	// returns once they have exited (bounded), so that a caller can tell
	// that none is left when a second call signals none.
	Signal(t Target, sig syscall.Signal) (int, error)
}

// Target names the processes of an instance, or of one run, for a Tracker.
type Target struct {
	// Leader is the pid of the process group leader the runner started;
	// 0 once it is reaped.
	Leader int
	// Env is the environment variable (KEY=value) that every process of
	// the target inherits: PLUGS_CONFIG=<config.json> for an instance,
	// PLUGS_RUN_ID=<id> for a run.
	Env string
}

var _ Tracker = ProcTracker{}

// ProcTracker is the Tracker that needs no cgroups: the descendants of
// the leader outside its group, and the supervisor's adopted children
// (see the subreaper above) whose environment holds Target.Env, with their
// descendants. It requires the calling process to be a child subreaper.
type ProcTracker struct{}

// trackerKillWait bounds how long a SIGKILL round waits for its processes
// to exit.
const trackerKillWait = 2 * time.Second

// maxTracked bounds a tracker walk, so that a fork bomb cannot make it run
// for ever; what is beyond is found by the next round.
const maxTracked = 4096

// Signal implements Tracker.
func (ProcTracker) Signal(t Target, sig syscall.Signal) (int, error) {
	procs := targetProcesses(t)
	fds := make([]unix.PollFd, 0, len(procs))
	defer func() {
		for _, f := range fds {
			unix.Close(int(f.Fd))
		}
		// Their SIGCHLD may have come while the pidfds above were open,
		// which keep the reaper off them (see reapAdopted).
		if len(fds) > 0 {
			reapAdopted()
		}
	}()
	n := 0
	for _, p := range procs {
		fd, err := unix.PidfdOpen(p.pid, 0)
		if err != nil {
			continue // gone
		}
		// The pidfd names the process alive at the check, never a newcomer
		// that reused the pid after it.
		if st, err := readProcStat(p.pid); err != nil || st.StartTime != p.start || st.State == 'Z' {
			unix.Close(fd)
			continue
		}
		if unix.PidfdSendSignal(fd, sig, nil, 0) != nil {
			unix.Close(fd)
			continue
		}
		n++
		fds = append(fds, unix.PollFd{Fd: int32(fd), Events: unix.POLLIN})
	}
	if sig == syscall.SIGKILL {
		waitPidfds(fds, trackerKillWait)
	}
	return n, nil
}

// killAll SIGKILLs t's processes until a round finds none (bounded).
func killAll(tr Tracker, t Target) {
	for range strayKillRounds {
		if n, err := tr.Signal(t, syscall.SIGKILL); n == 0 || err != nil {
			return
		}
	}
}

// waitPidfds waits up to d for every pidfd in fds to become readable
// (its process exited).
func waitPidfds(fds []unix.PollFd, d time.Duration) {
	deadline := time.Now().Add(d)
	pending := append([]unix.PollFd(nil), fds...)
	for len(pending) > 0 {
		left := time.Until(deadline)
		if left <= 0 {
			return
		}
		n, err := unix.Poll(pending, int(left.Milliseconds())+1)
		if err != nil && err != unix.EINTR {
			return
		}
		if n <= 0 {
			continue
		}
		alive := pending[:0]
		for _, f := range pending {
			if f.Revents == 0 {
				alive = append(alive, f)
			}
		}
		for i := range alive {
			alive[i].Revents = 0
		}
		pending = alive
	}
}

// procRef identifies a process: its pid and start time.
type procRef struct {
	pid   int
	start uint64
}

// targetProcesses lists the live processes of t outside the leader's
// group: the leader's descendants, and the adopted children of this
// process that carry t.Env, with theirs. Below an adopted child that does
// not carry it (another program's, or one exiting, whose environment reads
// empty) the walk goes on looking for processes that do.
func targetProcesses(t Target) []procRef {
	var out []procRef
	seen := map[int]bool{}
	type node struct {
		pid   int
		owned bool // a descendant of the leader or of a matching process
	}
	var queue []node
	if t.Leader > 0 {
		for _, c := range children(t.Leader) {
			queue = append(queue, node{c, true})
		}
	}
	for len(seen) < maxTracked {
		if len(queue) == 0 {
			// Processes only move towards this process (their subreaper)
			// while the walk runs: one whose parent exited after its
			// parent was read is among the adopted children now. The walk
			// ends when a fresh read adds none.
			for _, c := range adoptedChildren() {
				if !seen[c] {
					queue = append(queue, node{c, false})
				}
			}
			if len(queue) == 0 {
				break
			}
		}
		n := queue[0]
		queue = queue[1:]
		if seen[n.pid] {
			continue
		}
		seen[n.pid] = true
		st, err := readProcStat(n.pid)
		if err != nil || st.State == 'Z' {
			continue // a zombie's children are reparented already
		}
		owned := n.owned || hasEnv(n.pid, t.Env)
		if owned && (t.Leader <= 0 || st.PGRP != t.Leader) {
			out = append(out, procRef{n.pid, st.StartTime})
		}
		for _, c := range children(n.pid) {
			queue = append(queue, node{c, owned})
		}
	}
	return out
}

// hasEnv reports whether process pid was started with kv ("KEY=value")
// in its environment.
func hasEnv(pid int, kv string) bool {
	if kv == "" {
		return false
	}
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/environ")
	if err != nil {
		return false
	}
	want := []byte(kv)
	for e := range bytes.SplitSeq(b, []byte{0}) {
		if bytes.Equal(e, want) {
			return true
		}
	}
	return false
}

// children lists the children of pid, from /proc/<pid>/task/*/children
// (a child belongs to the thread that forked it, or that adopted it).
func children(pid int) []int {
	base := "/proc/" + strconv.Itoa(pid) + "/task/"
	tasks, err := os.ReadDir(base)
	if err != nil {
		return nil
	}
	var out []int
	for _, task := range tasks {
		b, err := os.ReadFile(base + task.Name() + "/children")
		if err != nil {
			continue
		}
		for f := range strings.FieldsSeq(string(b)) {
			if c, err := strconv.Atoi(f); err == nil {
				out = append(out, c)
			}
		}
	}
	return out
}

// forked is the set of processes the runner forked and reaps itself (the
// leaders of instances, one-shot runs). It is process-wide because the
// subreaper role is: every Runner of the process, and its reaper, must
// know the children of the others.
var forked = &pidSet{m: map[int]struct{}{}}

type pidSet struct {
	mu sync.Mutex
	m  map[int]struct{}
}

func (s *pidSet) add(pid int) {
	s.mu.Lock()
	s.m[pid] = struct{}{}
	s.mu.Unlock()
}

func (s *pidSet) remove(pid int) {
	s.mu.Lock()
	delete(s.m, pid)
	s.mu.Unlock()
}

// adoptedChildren lists the children of this process the runner did not
// fork: orphans reparented to it, and children of other code in the
// process (a build command, a git helper), which never match an instance's
// environment.
func adoptedChildren() []int {
	kids := children(os.Getpid())
	forked.mu.Lock()
	out := kids[:0]
	for _, c := range kids {
		if _, ok := forked.m[c]; !ok {
			out = append(out, c)
		}
	}
	forked.mu.Unlock()
	return out
}

// subreaper counts the live Runners of the process: the first makes the
// process the reaper of its descendants' orphans, the last Close gives the
// role up (a process without a Runner, such as a test running
// CleanupStale, sees orphans go to init as usual).
var subreaper struct {
	mu   sync.Mutex
	refs int
}

func becomeSubreaper() error {
	subreaper.mu.Lock()
	defer subreaper.mu.Unlock()
	subreaper.refs++
	if subreaper.refs > 1 {
		return nil
	}
	return unix.Prctl(unix.PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0)
}

func releaseSubreaper() {
	subreaper.mu.Lock()
	defer subreaper.mu.Unlock()
	if subreaper.refs--; subreaper.refs == 0 {
		_ = unix.Prctl(unix.PR_SET_CHILD_SUBREAPER, 0, 0, 0, 0)
	}
}

// reapAdopted reaps the zombie children nobody waits for: adopted orphans.
// A zombie that some code of this process will wait for is left alone: Go
// holds a pidfd for every child it starts (os.StartProcess, os/exec) until
// Wait, so a zombie child without a pidfd in this process is nobody's.
func reapAdopted() {
	self := os.Getpid()
	var zombies []int
	for _, pid := range adoptedChildren() {
		if st, err := readProcStat(pid); err == nil && st.State == 'Z' && st.PPID == self {
			zombies = append(zombies, pid)
		}
	}
	if len(zombies) == 0 {
		return
	}
	held := pidfdTargets()
	for _, z := range zombies {
		if held[z] {
			continue
		}
		var info unix.Siginfo
		_ = unix.Waitid(unix.P_PID, z, &info, unix.WEXITED|unix.WNOHANG, nil)
	}
}

// pidfdTargets lists the pids this process holds a pidfd for.
func pidfdTargets() map[int]bool {
	held := map[int]bool{}
	ents, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		return held
	}
	for _, e := range ents {
		if l, err := os.Readlink("/proc/self/fd/" + e.Name()); err != nil || !strings.Contains(l, "pidfd") {
			continue
		}
		b, err := os.ReadFile("/proc/self/fdinfo/" + e.Name())
		if err != nil {
			continue
		}
		for line := range strings.SplitSeq(string(b), "\n") {
			if v, ok := strings.CutPrefix(line, "Pid:"); ok {
				if pid, err := strconv.Atoi(strings.TrimSpace(v)); err == nil {
					held[pid] = true
				}
			}
		}
	}
	return held
}

// reaper reaps adopted orphans on every SIGCHLD until stop is called.
type reaper struct {
	quit chan struct{}
	done chan struct{}
}

func startReaper() *reaper {
	rp := &reaper{quit: make(chan struct{}), done: make(chan struct{})}
	c := make(chan os.Signal, 1)
	signal.Notify(c, syscall.SIGCHLD)
	go func() {
		defer close(rp.done)
		defer signal.Stop(c)
		for {
			select {
			case <-c:
				reapAdopted()
			case <-rp.quit:
				reapAdopted()
				return
			}
		}
	}()
	return rp
}

func (rp *reaper) stop() {
	close(rp.quit)
	<-rp.done
}
