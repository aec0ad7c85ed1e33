package runner

import (
	"bytes"
	"fmt"
	"os"
	"strconv"
	"strings"
)

// procStat is what runner needs from /proc/<pid>/stat.
type procStat struct {
	State     byte
	PPID      int
	PGRP      int
	StartTime uint64 // field 22: clock ticks after boot; with the pid, it identifies a process
}

// readProcStat reads /proc/<pid>/stat. The command name (field 2) may hold
// spaces and parentheses, so fields are counted after its last ')'.
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

// groupMembers lists the live processes of process group pgid.
func groupMembers(pgid int) []int {
	var pids []int
	for _, pid := range procPIDs() {
		if st, err := readProcStat(pid); err == nil && st.PGRP == pgid && st.State != 'Z' {
			pids = append(pids, pid)
		}
	}
	return pids
}

// procPIDs lists the processes in /proc.
func procPIDs() []int {
	ents, err := os.ReadDir("/proc")
	if err != nil {
		return nil
	}
	pids := make([]int, 0, len(ents))
	for _, e := range ents {
		if pid, err := strconv.Atoi(e.Name()); err == nil {
			pids = append(pids, pid)
		}
	}
	return pids
}

// procEnv returns every value of the environment variable key that
// process pid was started with (/proc/<pid>/environ). It fails for the
// processes of other users unless the caller may trace them.
func procEnv(pid int, key string) ([]string, error) {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/environ")
	if err != nil {
		return nil, err
	}
	prefix := []byte(key + "=")
	var vals []string
	for kv := range bytes.SplitSeq(b, []byte{0}) {
		if v, ok := bytes.CutPrefix(kv, prefix); ok {
			vals = append(vals, string(v))
		}
	}
	return vals, nil
}
