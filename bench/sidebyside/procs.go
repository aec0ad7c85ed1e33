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
	if err != nil || len(b) == 0 {
		return ""
	}
	args := bytes.Split(bytes.TrimRight(b, "\x00"), []byte{0})
	if len(args) != 2 || !bytes.HasSuffix(args[0], []byte("sleep")) {
		return ""
	}
	if !bytes.HasPrefix(args[1], []byte(prefix)) {
		return ""
	}
	// A zombie keeps its cmdline empty, so a readable one is alive; still,
	// skip processes in state Z or X.
	if st := state(pid); st == 'Z' || st == 'X' {
		return ""
	}
	return string(args[1])
}

func state(pid int) byte {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return 'X'
	}
	i := bytes.LastIndexByte(b, ')')
	if i < 0 || i+2 >= len(b) {
		return 'X'
	}
	return b[i+2]
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
	i := bytes.LastIndexByte(b, ')')
	if i < 0 {
		return p, false
	}
	f := strings.Fields(string(b[i+2:]))
	// fields after the comm: state(0) ppid(1) ... utime(11) stime(12)
	if len(f) < 13 {
		return p, false
	}
	p.ppid, _ = strconv.Atoi(f[1])
	ut, _ := strconv.ParseUint(f[11], 10, 64)
	stt, _ := strconv.ParseUint(f[12], 10, 64)
	p.ticks = ut + stt
	if sm, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/smaps_rollup"); err == nil {
		for _, line := range strings.Split(string(sm), "\n") {
			fs := strings.Fields(line)
			if len(fs) < 2 {
				continue
			}
			v, _ := strconv.ParseUint(fs[1], 10, 64)
			switch fs[0] {
			case "Rss:":
				p.rssKiB = v
			case "Pss:":
				p.pssKiB = v
			}
		}
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
}

type seenPID struct {
	marker string    // "" for a process that is not a child (yet)
	first  time.Time // when the pid was first seen
}

// execSettle is how long a new process that is not a child is read again:
// a child is forked by the supervisor (or a shell of its run script) and
// then execs sleep.
const execSettle = 500 * time.Millisecond

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
	for _, pid := range pids {
		live[pid] = struct{}{}
		e, ok := w.seen[pid]
		if ok && (e.marker != "" || now.Sub(e.first) > execSettle) {
			continue
		}
		if !ok {
			e.first = now
		}
		e.marker = markerOf(pid, w.prefix)
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
