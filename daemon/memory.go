package daemon

import (
	"runtime/debug"
	"runtime/metrics"
	"sync"
	"time"

	"github.com/plugs-dev/plugs/internal/exepages"
)

// releaseAfter is how long after a reconcile's load releaseMemory runs:
// once the apply's aftermath (every started instance's state published,
// its files written) is garbage too.
const releaseAfter = 2 * time.Second

// releaseSoon runs releaseMemory releaseAfter from now, once for any
// number of loads before then: a one-shot timer, so an idle daemon does
// nothing.
func (d *daemon) releaseSoon() {
	d.relMu.Lock()
	defer d.relMu.Unlock()
	if d.relTimer == nil {
		d.relTimer = time.AfterFunc(releaseAfter, d.releaseMemory)
		return
	}
	d.relTimer.Reset(releaseAfter)
}

// releaseMemory returns the heap a reconcile's load left behind to the
// operating system (issue 17): a load of 1,000 plugs parses and renders
// ~30 MB that is garbage once it is applied, and the Go runtime would keep
// those pages resident (its scavenger returns only what exceeds the next
// GC goal, which that peak had doubled). One forced GC and scavenge per
// load (a few ms at N = 1,000). At N = 1,000 `sleep` instances it takes the
// daemon's PSS from ~103 MiB to ~75 MiB (bench/idle.sh). Then, unless
// Options.KeepBinaryPages, it gives back the binary's pages the start-up and
// the load mapped (package exepages, MADV_PAGEOUT: what memory pressure
// would do; a page needed again is read back from the file).
func (d *daemon) releaseMemory() {
	if d.runCtx != nil && d.runCtx.Err() != nil {
		return // stopping: the process ends anyway
	}
	t := time.Now()
	before := residentHeap()
	debug.FreeOSMemory()
	heap := int64(before) - int64(residentHeap())
	var exe int64
	if !d.opts.KeepBinaryPages {
		ms, err := exepages.Release()
		if err != nil {
			d.log.Debug("giving back the binary's start-up pages failed", "err", err)
		}
		for _, m := range ms {
			exe += m.Rss
		}
	}
	d.log.Debug("returned the load's memory to the OS", "released_bytes", heap, "released_binary_bytes", exe,
		"took", time.Since(t).Round(time.Microsecond))
}

// reconcileGCPercent is the GC target a reconcile runs with (issue 17). A
// load of 1,000 plugs allocates ~23 MB that is garbage once it is applied;
// at the default target (GOGC=100) that is one or two collections during
// the load, each marking the whole live heap of a daemon that supervises
// 1,000 instances: a quarter of a no-change load's CPU in a profile. The
// heap may grow to 5x its live size during a reconcile instead, and the
// forced collection of releaseMemory, releaseAfter after it, returns
// what it left. A memory limit (GOMEMLIMIT) still bounds it.
const reconcileGCPercent = 400

// gcBurst raises the GC target for a reconcile and returns the func that
// puts it back. A target already as high (GOGC=800), off (GOGC=off) or 0
// is left as it is.
func gcBurst() (restore func()) {
	s := []metrics.Sample{{Name: "/gc/gogc:percent"}}
	metrics.Read(s)
	if s[0].Value.Kind() != metrics.KindUint64 {
		return func() {}
	}
	// GOGC=off reads as -1 once converted, like SetGCPercent says it;
	// GOGC=0 (collect all the time) is left too.
	prev := int(int64(s[0].Value.Uint64()))
	if prev <= 0 || prev >= reconcileGCPercent {
		return func() {}
	}
	debug.SetGCPercent(reconcileGCPercent)
	return func() { debug.SetGCPercent(prev) }
}

// residentHeap is the heap memory the runtime holds from the OS and has
// not released.
func residentHeap() uint64 {
	s := []metrics.Sample{{Name: "/memory/classes/total:bytes"}, {Name: "/memory/classes/heap/released:bytes"}}
	metrics.Read(s)
	return s[0].Value.Uint64() - s[1].Value.Uint64()
}

// releaseState is the timer of releaseSoon.
type releaseState struct {
	relMu    sync.Mutex
	relTimer *time.Timer
}
