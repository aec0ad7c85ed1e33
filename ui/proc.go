package ui

import (
	"slices"
	"sync"
	"time"

	"github.com/prometheus/procfs"
)

// userHZ is the kernel's clock tick for /proc CPU times (100 on Linux).
const userHZ = 100

// proc is one process as the dashboard shows it: no command line, since a
// plugin may pass a secret on a child's argv.
type proc struct {
	PID, PPID, PGRP int
	Comm            string
	State           string
	CPUSeconds      float64
	RSSBytes        uint64
	Threads         int
}

// procTable is one scan of /proc.
type procTable struct {
	byPID    map[int]proc
	children map[int][]int
	byGroup  map[int][]int
}

// usage is an instance's CPU and memory: summed over its process group when
// its pid leads one (the runner starts every instance in its own group),
// like plugs_instance_cpu_seconds_total and _resident_memory_bytes.
type usage struct {
	CPUSeconds float64
	RSSBytes   uint64
	Known      bool
}

func (t *procTable) usage(pid int) usage {
	if t == nil || pid <= 0 {
		return usage{}
	}
	p, ok := t.byPID[pid]
	if !ok {
		return usage{}
	}
	if p.PGRP != pid {
		return usage{CPUSeconds: p.CPUSeconds, RSSBytes: p.RSSBytes, Known: true}
	}
	u := usage{Known: true}
	for _, m := range t.byGroup[pid] {
		q := t.byPID[m]
		u.CPUSeconds += q.CPUSeconds
		u.RSSBytes += q.RSSBytes
	}
	return u
}

// treeNode is a process with its depth in an instance's tree.
type treeNode struct {
	proc
	Depth int
}

// tree lists pid and its descendants depth first, then the members of its
// process group that left the tree (a double fork reparents them).
func (t *procTable) tree(pid int) []treeNode {
	if t == nil || pid <= 0 {
		return nil
	}
	if _, ok := t.byPID[pid]; !ok {
		return nil
	}
	seen := map[int]bool{}
	var out []treeNode
	var walk func(p, depth int)
	walk = func(p, depth int) {
		if seen[p] || depth > 64 || len(out) >= 500 {
			return
		}
		seen[p] = true
		out = append(out, treeNode{proc: t.byPID[p], Depth: depth})
		for _, c := range t.children[p] {
			walk(c, depth+1)
		}
	}
	walk(pid, 0)
	for _, m := range t.byGroup[pid] {
		if !seen[m] {
			walk(m, 1)
		}
	}
	return out
}

// procReader scans /proc at most once per maxAge, so that a page of 1,000
// instances and the event stream share a scan.
type procReader struct {
	root   string
	maxAge time.Duration
	now    func() time.Time

	mu   sync.Mutex
	at   time.Time
	last *procTable
}

func (r *procReader) table() *procTable {
	if r.root == "" {
		return nil
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	now := r.now()
	if r.last != nil && now.Sub(r.at) < r.maxAge {
		return r.last
	}
	r.last, r.at = scanProcs(r.root), now
	return r.last
}

func scanProcs(root string) *procTable {
	fs, err := procfs.NewFS(root)
	if err != nil {
		return nil
	}
	procs, err := fs.AllProcs()
	if err != nil {
		return nil
	}
	t := &procTable{
		byPID:    make(map[int]proc, len(procs)),
		children: map[int][]int{},
		byGroup:  map[int][]int{},
	}
	for _, p := range procs {
		st, err := p.Stat()
		if err != nil {
			continue // gone meanwhile
		}
		t.byPID[st.PID] = proc{
			PID: st.PID, PPID: st.PPID, PGRP: st.PGRP, Comm: st.Comm, State: st.State,
			CPUSeconds: float64(int64(st.UTime)+int64(st.STime)+int64(st.CUTime)+int64(st.CSTime)) / userHZ,
			RSSBytes:   uint64(max(st.ResidentMemory(), 0)),
			Threads:    st.NumThreads,
		}
		t.children[st.PPID] = append(t.children[st.PPID], st.PID)
		t.byGroup[st.PGRP] = append(t.byGroup[st.PGRP], st.PID)
	}
	for _, s := range t.children {
		slices.Sort(s)
	}
	for _, s := range t.byGroup {
		slices.Sort(s)
	}
	return t
}
