package main

import (
	"bytes"
	"os"
	"strconv"
	"strings"
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
