package runner

import (
	"os"
	"syscall"
	"testing"

	"github.com/prometheus/procfs"
)

// TestReadProcStat reads this process's stat: its parent, group and a
// start time that identifies it, and its environment through procEnv.
func TestReadProcStat(t *testing.T) {
	st, err := readProcStat(os.Getpid())
	if err != nil {
		t.Fatal(err)
	}
	if st.PPID != os.Getppid() || st.State == 0 || st.StartTime == 0 {
		t.Errorf("stat of self = %+v, parent %d", st, os.Getppid())
	}
	if pg, _ := syscall.Getpgid(os.Getpid()); st.PGRP != pg {
		t.Errorf("pgrp %d, want %d", st.PGRP, pg)
	}
	if _, err := readProcStat(1 << 30); err == nil {
		t.Error("stat of a pid that cannot exist")
	}
	vals, err := procEnv(os.Getpid(), "PATH")
	if err != nil || len(vals) != 1 || vals[0] != os.Getenv("PATH") {
		t.Errorf("procEnv(PATH) = %q, %v", vals, err)
	}
	if pids := procPIDs(); len(pids) < 2 || !containsInt(pids, os.Getpid()) {
		t.Errorf("procPIDs = %v", pids)
	}
}

// TestReadProcStatAgreesWithProcfs: the hand parser of /proc/<pid>/stat
// (kept for speed, see proc.go) reads what procfs reads, for every process
// on the machine.
func TestReadProcStatAgreesWithProcfs(t *testing.T) {
	fs, err := procfs.NewDefaultFS()
	if err != nil {
		t.Skip(err)
	}
	all, err := fs.AllProcs()
	if err != nil {
		t.Fatal(err)
	}
	compared := 0
	for _, p := range all {
		want, err := p.Stat()
		if err != nil {
			continue // gone
		}
		got, err := readProcStat(p.PID)
		if err != nil {
			continue
		}
		if got.PPID != want.PPID || got.PGRP != want.PGRP || got.StartTime != want.Starttime || string(got.State) != want.State {
			// A process may change state between the two reads.
			if got.StartTime == want.Starttime && got.PGRP == want.PGRP {
				continue
			}
			t.Errorf("pid %d: hand %+v, procfs state %s ppid %d pgrp %d start %d", p.PID, got, want.State, want.PPID, want.PGRP, want.Starttime)
		}
		compared++
	}
	if compared < 2 {
		t.Errorf("compared %d processes", compared)
	}
}

func containsInt(s []int, v int) bool {
	for _, x := range s {
		if x == v {
			return true
		}
	}
	return false
}

// BenchmarkReadProcStat is one read of /proc/self/stat: what a group or
// stray scan pays per process on the machine.
func BenchmarkReadProcStat(b *testing.B) {
	pid := os.Getpid()
	for b.Loop() {
		if _, err := readProcStat(pid); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkProcPIDs is one listing of /proc.
func BenchmarkProcPIDs(b *testing.B) {
	for b.Loop() {
		if len(procPIDs()) == 0 {
			b.Fatal("no processes")
		}
	}
}
