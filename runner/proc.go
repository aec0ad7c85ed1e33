package runner

import (
	"bytes"
	"fmt"
	"os"
	"strconv"
	"strings"
	"sync"

	"github.com/prometheus/procfs"
)

// The runner reads /proc through github.com/prometheus/procfs, as metrics
// does (the list of processes, an environment), but for three readings on
// the scans that run for every process of the machine:
//
//   - readProcStat parses /proc/<pid>/stat by hand: procfs's Proc.Stat
//     (an os.Stat, then fmt.Sscan of all 52 fields) measured 17.6–26 µs and
//     36 allocations a call against 6.5–8.9 µs and 10 (BenchmarkReadProcStat),
//     and a group or stray scan pays it once per process on the machine;
//     TestReadProcStatAgreesWithProcfs holds the two to the same answers;
//   - children (/proc/<pid>/task/*/children), which procfs does not read;
//   - envOwners and hasEnv (procs.go), which compare the bytes of environ
//     without making a string of each variable.

// procFS is the /proc every reading goes through, opened once.
var procFS = sync.OnceValues(func() (procfs.FS, error) { return procfs.NewFS(procfs.DefaultMountPoint) })

// procStat is what runner needs from /proc/<pid>/stat.
type procStat struct {
	State     byte
	PPID      int
	PGRP      int
	StartTime uint64 // field 22: clock ticks after boot; with the pid, it identifies a process
}

// readProcStat reads /proc/<pid>/stat (by hand: see above). The command
// name (field 2) may hold spaces and parentheses, so fields are counted
// after its last ')'.
func readProcStat(pid int) (procStat, error) {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return procStat{}, err
	}
	i := bytes.LastIndexByte(b, ')')
	if i < 0 {
		return procStat{}, fmt.Errorf("parse /proc/%d/stat: no command name", pid)
	}
	f := strings.Fields(string(b[i+1:]))
	// f[0] is field 3 (state), so field n is f[n-3].
	if len(f) < 20 {
		return procStat{}, fmt.Errorf("parse /proc/%d/stat: %d fields", pid, len(f)+2)
	}
	var st procStat
	st.State = f[0][0]
	if st.PPID, err = strconv.Atoi(f[4-3]); err != nil {
		return procStat{}, fmt.Errorf("parse /proc/%d/stat ppid: %w", pid, err)
	}
	if st.PGRP, err = strconv.Atoi(f[5-3]); err != nil {
		return procStat{}, fmt.Errorf("parse /proc/%d/stat pgrp: %w", pid, err)
	}
	if st.StartTime, err = strconv.ParseUint(f[22-3], 10, 64); err != nil {
		return procStat{}, fmt.Errorf("parse /proc/%d/stat starttime: %w", pid, err)
	}
	return st, nil
}

// proc is process pid of procFS.
func proc(pid int) (procfs.Proc, error) {
	fs, err := procFS()
	if err != nil {
		return procfs.Proc{}, err
	}
	return fs.Proc(pid)
}

// processGroups lists the live (not zombie) processes of every process
// group, by group id, from one read of /proc.
func processGroups() map[int][]int {
	groups := map[int][]int{}
	for _, pid := range procPIDs() {
		if st, err := readProcStat(pid); err == nil && st.State != 'Z' {
			groups[st.PGRP] = append(groups[st.PGRP], pid)
		}
	}
	return groups
}

// procPIDs lists the processes in /proc.
func procPIDs() []int {
	fs, err := procFS()
	if err != nil {
		return nil
	}
	all, err := fs.AllProcs()
	if err != nil {
		return nil
	}
	pids := make([]int, len(all))
	for i, p := range all {
		pids[i] = p.PID
	}
	return pids
}

// procEnv returns every value of the environment variable key that
// process pid was started with (/proc/<pid>/environ). It fails for the
// processes of other users unless the caller may trace them.
func procEnv(pid int, key string) ([]string, error) {
	p, err := proc(pid)
	if err != nil {
		return nil, err
	}
	env, err := p.Environ()
	if err != nil {
		return nil, err
	}
	var vals []string
	for _, kv := range env {
		if v, ok := strings.CutPrefix(kv, key+"="); ok {
			vals = append(vals, v)
		}
	}
	return vals, nil
}
