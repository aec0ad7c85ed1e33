package main

import (
	"bytes"
	"os"
	"strconv"
	"strings"
	"time"

	"golang.org/x/sys/unix"
)

// procInfo is what the benchmark reads of one process from /proc.
type procInfo struct {
	pid    int
	ppid   int
	ticks  uint64 // utime + stime, in clock ticks
	rssKiB uint64
	pssKiB uint64
}

// listPIDs returns every numeric entry of /proc.
func listPIDs() []int {
	d, err := os.Open("/proc")
	if err != nil {
		return nil
	}
	defer d.Close()
	names, _ := d.Readdirnames(-1)
	pids := make([]int, 0, len(names))
	for _, n := range names {
		if pid, err := strconv.Atoi(n); err == nil {
			pids = append(pids, pid)
		}
	}
	return pids
}

// markerOf returns the marker argument of a benchmark child (`sleep MARKER`
// whose marker starts with prefix), or "".
func markerOf(pid int, prefix string) string {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/cmdline")
	if err != nil {
		return ""
	}
	m := cmdlineMarker(b, prefix)
	if m == "" {
		return ""
	}
	// A zombie keeps its cmdline empty, so a readable one is alive; still,
	// skip processes in state Z or X.
	if st := state(pid); st == 'Z' || st == 'X' {
		return ""
	}
	return m
}

// cmdlineMarker is the marker of a /proc/<pid>/cmdline that reads
// `sleep MARKER` (any path to sleep) with MARKER starting with prefix, or "".
func cmdlineMarker(b []byte, prefix string) string {
	if len(b) == 0 {
		return ""
	}
	args := bytes.Split(bytes.TrimRight(b, "\x00"), []byte{0})
	if len(args) != 2 || !bytes.HasSuffix(args[0], []byte("sleep")) {
		return ""
	}
	if !bytes.HasPrefix(args[1], []byte(prefix)) {
		return ""
	}
	return string(args[1])
}

func state(pid int) byte {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return 'X'
	}
	st, ok := parseStat(b)
	if !ok {
		return 'X'
	}
	return st.state
}

// statFields is what the benchmark reads of /proc/<pid>/stat.
type statFields struct {
	state     byte
	ppid      int
	ticks     uint64 // utime + stime, in clock ticks
	startTick uint64 // start time, in clock ticks since boot
}

// parseStat parses /proc/<pid>/stat; the command name in parentheses may
// hold spaces and parentheses of its own, so fields count from the last ')'.
func parseStat(b []byte) (statFields, bool) {
	var st statFields
	i := bytes.LastIndexByte(b, ')')
	if i < 0 || i+2 >= len(b) {
		return st, false
	}
	f := strings.Fields(string(b[i+2:]))
	// fields after the comm: state(0) ppid(1) ... utime(11) stime(12) ... starttime(19)
	if len(f) < 20 || len(f[0]) != 1 {
		return st, false
	}
	st.state = f[0][0]
	var err error
	if st.ppid, err = strconv.Atoi(f[1]); err != nil {
		return st, false
	}
	ut, err1 := strconv.ParseUint(f[11], 10, 64)
	stt, err2 := strconv.ParseUint(f[12], 10, 64)
	start, err3 := strconv.ParseUint(f[19], 10, 64)
	if err1 != nil || err2 != nil || err3 != nil {
		return st, false
	}
	st.ticks = ut + stt
	st.startTick = start
	return st, true
}

// parseSmapsRollup returns Rss and Pss (KiB) of /proc/<pid>/smaps_rollup.
func parseSmapsRollup(b []byte) (rss, pss uint64) {
	for _, line := range strings.Split(string(b), "\n") {
		fs := strings.Fields(line)
		if len(fs) < 2 {
			continue
		}
		v, _ := strconv.ParseUint(fs[1], 10, 64)
		switch fs[0] {
		case "Rss:":
			rss = v
		case "Pss:":
			pss = v
		}
	}
	return rss, pss
}

// scanMarkers maps every live benchmark child's marker to its pid.
func scanMarkers(prefix string) map[string]int {
	out := map[string]int{}
	for _, pid := range listPIDs() {
		if m := markerOf(pid, prefix); m != "" {
			out[m] = pid
		}
	}
	return out
}

// readProc reads ppid, cpu ticks, RSS and PSS of pid.
func readProc(pid int) (procInfo, bool) {
	p := procInfo{pid: pid}
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return p, false
	}
	st, ok := parseStat(b)
	if !ok {
		return p, false
	}
	p.ppid, p.ticks = st.ppid, st.ticks
	if sm, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/smaps_rollup"); err == nil {
		p.rssKiB, p.pssKiB = parseSmapsRollup(sm)
	}
	return p, true
}

// tree returns root and all its descendants that are not benchmark
// children (the supervisor's own processes).
func tree(root int, prefix string) []int {
	children := map[int][]int{}
	for _, pid := range listPIDs() {
		if p, ok := readProc(pid); ok {
			children[p.ppid] = append(children[p.ppid], pid)
		}
	}
	var out []int
	var walk func(int)
	walk = func(pid int) {
		if markerOf(pid, prefix) != "" {
			return
		}
		out = append(out, pid)
		for _, c := range children[pid] {
			walk(c)
		}
	}
	walk(root)
	return out
}

func alive(pid int) bool {
	st := state(pid)
	return st != 'X' && st != 'Z'
}

// watcher follows the benchmark's children from poll to poll for the cost
// of one read of /proc's directory, the cmdline of pids not classified yet,
// and one poll(2) over pidfds of the children that should be gone. A poll
// that read every process's cmdline and stat (over 2,000 of them at
// N = 1,000, 3,000 with s6 or runit) took most of a core of the two the
// supervisor under test has, every 10 ms: it slowed every peer, the
// fastest most, and so made the ratios to the baseline look smaller.
type watcher struct {
	prefix string
	seen   map[int]seenPID
	fds    map[int]int // pidfds of children that should be gone
	late   int         // children that exec'd sleep over 500 ms after their fork
}

type seenPID struct {
	marker string    // "" for a process that is not a child (yet)
	born   time.Time // when the process started (its start time in /proc)
	next   time.Time // when a process that is not a child is read again
}

// A child is forked by the supervisor (or a shell of its run script) and
// then execs sleep, so a process that is not a child yet may become one.
// It is read again after rereadAfter(its age): every poll while it is
// young, then ever more rarely, so that the supervisor's long-lived
// processes (an s6-supervise or runsv per child) cost little, and a fork
// that execs late is still found, at most 1/16 of its age late.
//
// The watcher used to give up on a process after 500 ms: supervisord's
// forked child closes every descriptor up to minfds in Python before it
// execs, and s6's and runit's run scripts start a shell; on 2 loaded cores
// some of 1,000 took longer than that, were never read again, and the
// cold start waited at 994 of 1,000 until its 5-minute limit.
func rereadAfter(age time.Duration) time.Duration {
	return max(pollEvery, age/16)
}

func newWatcher(prefix string) *watcher {
	return &watcher{prefix: prefix, seen: map[int]seenPID{}, fds: map[int]int{}}
}

// close releases the pidfds.
func (w *watcher) close() {
	for pid, fd := range w.fds {
		unix.Close(fd)
		delete(w.fds, pid)
	}
}

// poll returns the live children by marker. A child that exited but is
// not reaped yet (a zombie) is dropped when want does not hold it.
func (w *watcher) poll(want map[string]bool) map[string]int {
	now := time.Now()
	pids := listPIDs()
	live := make(map[int]struct{}, len(pids))
	boot := sinceBoot()
	for _, pid := range pids {
		live[pid] = struct{}{}
		e, ok := w.seen[pid]
		if ok && (e.marker != "" || now.Before(e.next)) {
			continue
		}
		if !ok {
			e.born = now
			if b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat"); err == nil {
				if st, ok := parseStat(b); ok && boot > 0 {
					age := boot - time.Duration(st.startTick)*time.Second/clkTck
					e.born = now.Add(-max(age, 0))
				}
			}
		}
		e.marker = markerOf(pid, w.prefix)
		if ok && e.marker != "" && now.Sub(e.born) > 500*time.Millisecond {
			w.late++ // the old watcher's blind spot
		}
		e.next = now.Add(rereadAfter(now.Sub(e.born)))
		w.seen[pid] = e
	}
	for pid := range w.seen {
		if _, ok := live[pid]; !ok {
			delete(w.seen, pid)
		}
	}
	got := map[string]int{}
	for pid, e := range w.seen {
		if e.marker != "" {
			got[e.marker] = pid
		}
	}
	// Children that should be gone: exited (zombie or reaped) once their
	// pidfd is readable.
	var pfds []unix.PollFd
	var pend []string // the marker of each of pfds
	for m, pid := range got {
		if want[m] {
			continue
		}
		fd, ok := w.fds[pid]
		if !ok {
			var err error
			if fd, err = unix.PidfdOpen(pid, 0); err != nil {
				delete(got, m) // gone
				continue
			}
			w.fds[pid] = fd
		}
		pfds = append(pfds, unix.PollFd{Fd: int32(fd), Events: unix.POLLIN})
		pend = append(pend, m)
	}
	if len(pfds) > 0 {
		_, _ = unix.Poll(pfds, 0)
		for i, p := range pfds {
			if p.Revents != 0 {
				delete(got, pend[i])
			}
		}
	}
	for pid, fd := range w.fds {
		if _, ok := live[pid]; !ok {
			unix.Close(fd)
			delete(w.fds, pid)
		}
	}
	return got
}

// sinceBoot is CLOCK_BOOTTIME, the clock of the start times in /proc, or 0.
func sinceBoot() time.Duration {
	var ts unix.Timespec
	if unix.ClockGettime(unix.CLOCK_BOOTTIME, &ts) != nil {
		return 0
	}
	return time.Duration(ts.Nano())
}

// openFDs counts the open descriptors of pid.
func openFDs(pid int) int {
	d, err := os.Open("/proc/" + strconv.Itoa(pid) + "/fd")
	if err != nil {
		return 0
	}
	defer d.Close()
	names, _ := d.Readdirnames(-1)
	return len(names)
}
