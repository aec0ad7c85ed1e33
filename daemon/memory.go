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

// reconcileGCPercent is the GOGC of a reconcile (lessGC).
const reconcileGCPercent = 400

// lessGC makes the garbage collector run less while a reconcile loads
// (loadStable), and returns what puts it back. A load of 1,000 plugs
// allocates ~45 MB that is garbage once it is applied (releaseMemory
// returns it), and at GOGC=100 a converge paid for three to five
// collections, each scanning the stacks of the ~3,000 goroutines that
// supervise: 47–120 ms of CPU, against one or two and 21–101 ms with the
// load at GOGC=400 (GODEBUG=gctrace=1 of the daemon during
// bench/daemon-times.sh's converge, 8 runs each over two sessions of this
// VM). The apply is left at the user's GOGC: run at 400 too, the
// supervisors' long-lived state was spread over a larger heap, and the
// idle PSS at 1,000 instances rose from 29–32 to 38–40 MiB (bench/idle.sh);
// with the load alone it stays (32.8–34.2 against 32.0–34.0 MiB). The
// heap may grow by more than at GOGC=100, but no more than what the
// runtime holds from the OS at the load's start or 64 MiB, whichever is
// more: a soft memory limit, which never goes above one the user set
// (GOMEMLIMIT).
// A GOGC the user set to off or above 400 is left as it is.
func lessGC() (restore func()) {
	pct := debug.SetGCPercent(reconcileGCPercent)
	if pct < 0 || pct >= reconcileGCPercent {
		debug.SetGCPercent(pct)
		return func() {}
	}
	limit := debug.SetMemoryLimit(-1) // reads it
	s := []metrics.Sample{{Name: "/memory/classes/total:bytes"}}
	metrics.Read(s)
	held := int64(s[0].Value.Uint64())
	debug.SetMemoryLimit(min(limit, held+max(held, 64<<20)))
	return func() {
		debug.SetGCPercent(pct)
		debug.SetMemoryLimit(limit)
	}
}
