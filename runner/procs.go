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

var _ Tracker = (*ProcTracker)(nil)

// ProcTracker is the Tracker that needs no cgroups: the descendants of
// the leader outside its group, and the supervisor's adopted children
// (see the subreaper above) whose environment holds Target.Env, with their
// descendants. It requires the calling process to be a child subreaper.
//
// A walk reads the children lists of the supervisor's threads but the
// spawners' (spawnerTids), about 80 µs with 18 threads however many
// instances run; concurrent calls are combined all the same: the caller
// that finds no walk in progress serves every request that arrived
// meanwhile with one walk, as a group commit does. Each caller waits for
// the processes its own SIGKILL call killed, after the walk: in a stop of
// 1,000, one process slow to finish its exit held every later walk, and
// the stops queued behind it, for ~80 ms. The zero value is ready to use.
type ProcTracker struct {
	mu       sync.Mutex
	pending  []*trackReq
	scanning bool
	// signalled remembers, per Target.Env, the processes found by a call
	// with a signal other than SIGKILL (the group's members included),
	// until a SIGKILL call for that Env: one that the stop signal or the
	// group kill hit may still be exiting then, its environment already
	// unreadable, and is killed and waited for all the same.
	signalled map[string][]procRef
}

type trackReq struct {
	t    Target
	sig  syscall.Signal
	done chan int
	// fds are pidfds of the processes a SIGKILL request signalled, set
	// before done: the requester waits for them itself (wait), so that a
	// process slow to exit holds up its own stop, not the next walk.
	fds []unix.PollFd
}

// wait waits (bounded) for the processes r's walk sent SIGKILL to exit,
// and returns how many it signalled.
func (r *trackReq) wait() int {
	n := <-r.done
	if len(r.fds) == 0 {
		return n
	}
	waitPidfds(r.fds, trackerKillWait)
	for _, f := range r.fds {
		unix.Close(int(f.Fd))
	}
	// Their SIGCHLD may have come while the pidfds were open, which keep
	// the reaper off them (see reapAdopted).
	reapAdopted()
	return n
}

// trackerKillWait bounds how long a SIGKILL round waits for its processes
// to exit.
const trackerKillWait = 2 * time.Second

// maxTracked bounds a tracker walk, so that a fork bomb cannot make it run
// for ever; what is beyond is found by the next round.
const maxTracked = 4096

// Signal implements Tracker.
func (pt *ProcTracker) Signal(t Target, sig syscall.Signal) (int, error) {
	req := &trackReq{t: t, sig: sig, done: make(chan int, 1)}
	pt.mu.Lock()
	pt.pending = append(pt.pending, req)
	if pt.scanning {
		pt.mu.Unlock()
		return req.wait(), nil
	}
	pt.scanning = true
	for len(pt.pending) > 0 {
		batch := pt.pending
		pt.pending = nil
		pt.mu.Unlock()
		pt.serve(batch)
		pt.mu.Lock()
	}
	pt.scanning = false
	pt.mu.Unlock()
	return req.wait(), nil
}

// serve finds the processes of every request with one walk, signals
// them, and answers each request; a SIGKILL request gets the pidfds of
// the processes it signalled, to wait for.
func (pt *ProcTracker) serve(reqs []*trackReq) {
	targets := make([]Target, len(reqs))
	for i, r := range reqs {
		targets[i] = r.t
	}
	found, grouped := targetProcesses(targets)
	pt.mu.Lock()
	if pt.signalled == nil {
		pt.signalled = map[string][]procRef{}
	}
	for i, r := range reqs {
		if r.t.Env == "" {
			continue
		}
		if r.sig == syscall.SIGKILL {
			found[i] = append(found[i], pt.signalled[r.t.Env]...)
			delete(pt.signalled, r.t.Env)
		} else {
			// The group's members too: the group kill that follows a stop
			// signal leaves them exiting, with unreadable environments.
			pt.signalled[r.t.Env] = append(append(pt.signalled[r.t.Env], found[i]...), grouped[i]...)
		}
	}
	pt.mu.Unlock()
	for i, r := range reqs {
		n := 0
		for _, p := range found[i] {
			fd, err := unix.PidfdOpen(p.pid, 0)
			if err != nil {
				continue // gone
			}
			// The pidfd names the process alive at the check, never a
			// newcomer that reused the pid after it.
			if st, err := readProcStat(p.pid); err != nil || st.StartTime != p.start || st.State == 'Z' {
				unix.Close(fd)
				continue
			}
			if unix.PidfdSendSignal(fd, r.sig, nil, 0) != nil {
				unix.Close(fd)
				continue
			}
			n++
			if r.sig == syscall.SIGKILL {
				r.fds = append(r.fds, unix.PollFd{Fd: int32(fd), Events: unix.POLLIN})
			} else {
				unix.Close(fd)
			}
		}
		found[i] = nil
		r.done <- n
	}
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

// targetProcesses lists, for each target, its live processes outside its
// leader's group: the leader's descendants, and the adopted children of
// this process that carry the target's Env, with theirs. Below an adopted
// child that carries none (another program's, or one exiting, whose
// environment reads empty) the walk goes on looking for processes that do.
//
// grouped lists, per target, the processes found in its leader's group,
// which the runner signals itself.
func targetProcesses(targets []Target) (out, grouped [][]procRef) {
	out = make([][]procRef, len(targets))
	grouped = make([][]procRef, len(targets))
	byEnv := map[string][]int{}
	for i, t := range targets {
		if t.Env != "" {
			byEnv[t.Env] = append(byEnv[t.Env], i)
		}
	}
	// expand adds the requests that share a target's Env (a stop's signal
	// and the kill after its exit may be served by one walk).
	expand := func(i int) []int {
		if ids, ok := byEnv[targets[i].Env]; ok && targets[i].Env != "" {
			return ids
		}
		return []int{i}
	}
	seen := map[int]bool{}
	type node struct {
		pid    int
		owners []int // indexes of the targets it belongs to; nil while unknown
	}
	var queue []node
	for i, t := range targets {
		if t.Leader > 0 {
			for _, c := range children(t.Leader) {
				queue = append(queue, node{c, expand(i)})
			}
		}
	}
	visit := func(n node) {
		if seen[n.pid] {
			return
		}
		seen[n.pid] = true
		st, err := readProcStat(n.pid)
		if err != nil {
			return
		}
		if st.State == 'Z' {
			// A zombie leader may still have live threads, and children
			// parented to them until the last one exits: walk them.
			for _, c := range children(n.pid) {
				queue = append(queue, node{c, n.owners})
			}
			return
		}
		owners := n.owners
		if owners == nil && len(byEnv) > 0 {
			owners = envOwners(n.pid, byEnv)
		}
		for _, i := range owners {
			// The runner signals a target's group itself.
			if l := targets[i].Leader; l <= 0 || st.PGRP != l {
				out[i] = append(out[i], procRef{n.pid, st.StartTime})
			} else {
				grouped[i] = append(grouped[i], procRef{n.pid, st.StartTime})
			}
		}
		for _, c := range children(n.pid) {
			queue = append(queue, node{c, owners})
		}
	}
	drain := func() {
		for len(queue) > 0 && len(seen) < maxTracked {
			n := queue[0]
			queue = queue[1:]
			visit(n)
		}
	}
	drain()
	// Processes only move towards this process (their subreaper) while
	// the walk runs: one whose parent exited after its parent was read is
	// among the adopted children at the next read. The walk ends when a
	// read adds none. With no adopted child at all (the common case) one
	// read is enough: nothing of a target can be moving then.
	for round := 0; len(seen) < maxTracked; round++ {
		added := false
		for _, c := range adoptedChildren() {
			if !seen[c] {
				queue = append(queue, node{c, nil})
				added = true
			}
		}
		if !added {
			break
		}
		drain()
	}
	return out, grouped
}

// envOwners returns the indexes of the targets whose Env process pid was
// started with, or nil.
func envOwners(pid int, byEnv map[string][]int) []int {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/environ")
	if err != nil {
		return nil
	}
	for e := range bytes.SplitSeq(b, []byte{0}) {
		if idx, ok := byEnv[string(e)]; ok {
			return idx
		}
	}
	return nil
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
	return threadChildren(pid, nil)
}

// threadChildren lists the children of pid's threads but those skip
// reports. It opens each file relative to the task directory, which costs
// half as much as its full path.
func threadChildren(pid int, skip func(tid int) bool) []int {
	dir, err := os.Open("/proc/" + strconv.Itoa(pid) + "/task")
	if err != nil {
		return nil
	}
	defer dir.Close()
	tasks, err := dir.Readdirnames(-1)
	if err != nil {
		return nil
	}
	var out []int
	for _, task := range tasks {
		if skip != nil {
			if tid, err := strconv.Atoi(task); err != nil || skip(tid) {
				continue
			}
		}
		out = appendChildrenAt(out, int(dir.Fd()), task+"/children")
	}
	return out
}

// appendChildrenAt appends the pids listed in the children file name,
// relative to the directory dirfd. It reads with plain system calls:
// os.ReadFile adds a stat and a poller registration to each of the twenty
// files a walk reads.
func appendChildrenAt(out []int, dirfd int, name string) []int {
	fd, err := unix.Openat(dirfd, name, unix.O_RDONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		return out
	}
	defer unix.Close(fd)
	var buf [4096]byte
	pid, digits := 0, false
	for {
		n, err := unix.Read(fd, buf[:])
		if err == unix.EINTR {
			continue
		}
		if n <= 0 {
			break
		}
		for _, c := range buf[:n] {
			if c >= '0' && c <= '9' {
				pid, digits = pid*10+int(c-'0'), true
				continue
			}
			if digits {
				out = append(out, pid)
			}
			pid, digits = 0, false
		}
	}
	if digits {
		out = append(out, pid)
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

func (s *pidSet) has(pid int) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	_, ok := s.m[pid]
	return ok
}

// spawnerTids holds the thread ids of the live spawner threads
// (spawner.go). A child hangs on the children list of the thread that
// forked it, so their lists hold the runner's forked children and nothing
// else; an orphan is reparented to the subreaper's first live thread
// (find_new_reaper in the kernel's exit.c), its main thread, which is
// never a spawner's. adoptedChildren therefore skips their lists: with
// 1,000 instances those are 1,000 pids to read and parse on every exit of
// an instance, for none that it wants (a walk took 470 µs with them, 85
// without, on a 2-core test machine).
var spawnerTids = &pidSet{m: map[int]struct{}{}}

// adoptedChildren lists the children of this process the runner did not
// fork: orphans reparented to it, and children of other code in the
// process (a build command, a git helper), which never match an instance's
// environment.
func adoptedChildren() []int {
	self := os.Getpid()
	kids := threadChildren(self, func(tid int) bool { return tid != self && spawnerTids.has(tid) })
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
//
// It reports whether it left an adopted zombie because a pidfd was held on
// it (by a walk of the tracker, for an instant): then it is worth trying
// again later, since no other SIGCHLD may come.
func reapAdopted() (retry bool) {
	// Cheap first: is any child a zombie at all?
	var peek unix.Siginfo
	if err := unix.Waitid(unix.P_ALL, 0, &peek, unix.WEXITED|unix.WNOHANG|unix.WNOWAIT, nil); err != nil || peek.Signo == 0 {
		return false
	}
	self := os.Getpid()
	var zombies []int
	for _, pid := range adoptedChildren() {
		if st, err := readProcStat(pid); err == nil && st.State == 'Z' && st.PPID == self {
			zombies = append(zombies, pid)
		}
	}
	if len(zombies) == 0 {
		return false
	}
	held := pidfdTargets()
	for _, z := range zombies {
		if held[z] {
			retry = true
			continue
		}
		var info unix.Siginfo
		_ = unix.Waitid(unix.P_PID, z, &info, unix.WEXITED|unix.WNOHANG, nil)
	}
	return retry
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

// reapInterval bounds how often SIGCHLDs make the reaper list the
// supervisor's children (see ProcTracker on that cost): a burst of exits
// costs one listing now and at most one per interval after it. Zombies
// wait that long at most.
const reapInterval = time.Second

func startReaper() *reaper {
	rp := &reaper{quit: make(chan struct{}), done: make(chan struct{})}
	c := make(chan os.Signal, 1)
	signal.Notify(c, syscall.SIGCHLD)
	go func() {
		defer close(rp.done)
		defer signal.Stop(c)
		var last time.Time
		var later <-chan time.Time
		t := time.NewTimer(time.Hour)
		t.Stop()
		defer t.Stop()
		for {
			select {
			case <-c:
				if later != nil {
					continue // a listing is due already
				}
				if wait := reapInterval - time.Since(last); wait > 0 {
					t.Reset(wait)
					later = t.C
					continue
				}
			case <-later:
				later = nil
			case <-rp.quit:
				reapAdopted()
				return
			}
			retry := reapAdopted()
			last = time.Now()
			if retry { // a zombie some code may wait for: look again later
				t.Reset(reapInterval)
				later = t.C
			}
		}
	}()
	return rp
}

func (rp *reaper) stop() {
	close(rp.quit)
	<-rp.done
}

// waitPid reaps the child pid, which has exited (or is about to), and
// returns its wait status.
func waitPid(pid int) (syscall.WaitStatus, error) {
	var ws unix.WaitStatus
	for {
		_, err := unix.Wait4(pid, &ws, 0, nil)
		if err != unix.EINTR {
			return syscall.WaitStatus(ws), err
		}
	}
}
