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

// burstHeadroom is how much the heap may grow, during a burst of work (a
// reconcile, the daemon's exit), before the garbage collector first runs,
// when that is more than GOGC lets it (holdGC).
const burstHeadroom = 64 << 20

// maxBurstGCPercent bounds the GOGC a burst sets: a second collection
// within the burst (a heap that outgrew the headroom) lets the heap grow at
// most this percentage of what is live then.
const maxBurstGCPercent = 800

// gcHold is the state of holdGC: the number of bursts under way and the
// GOGC to restore when the last one ends. It is the process's, as GOGC is.
var gcHold struct {
	mu     sync.Mutex
	n      int
	prev   int
	bursts int // holds since the process started
}

// holdGC relaxes the garbage collector for a burst of work and returns the
// function that ends it. A reconcile of 1,000 plugs allocates ~70 MB over
// a live heap of ~15 MB (parse trees, fetch, render, the starts), and the
// daemon's exit of 1,000 instances some MB per hundred stops: at GOGC=100
// the collector ran several times within each, its mark workers taking one
// of two cores and its write barriers slowing the rest (a perf record of an
// exit: 7% of the CPU in the collector alone; GOGC=off in the daemon's
// environment: exits of 173-179 ms against 213-215, converges of 276-329
// ms against 318-379). While a burst is held, GOGC is raised so that the
// first collection comes after burstHeadroom more than the live heap, up to
// maxBurstGCPercent and never below the GOGC it replaces; GOMEMLIMIT, when
// set, still bounds the heap. The load's garbage is collected and returned
// to the system after each reconcile (releaseMemory), as before.
func holdGC() (release func()) {
	gcHold.mu.Lock()
	defer gcHold.mu.Unlock()
	gcHold.n++
	gcHold.bursts++
	if gcHold.n == 1 {
		s := []metrics.Sample{{Name: "/gc/heap/live:bytes"}}
		metrics.Read(s)
		live := max(s[0].Value.Uint64(), 1<<20)
		pct := int(min(100*burstHeadroom/live, maxBurstGCPercent))
		gcHold.prev = debug.SetGCPercent(-1) // read it
		if gcHold.prev < 0 || pct <= gcHold.prev {
			pct = gcHold.prev // GOGC=off, or already as relaxed
		}
		debug.SetGCPercent(pct)
	}
	var once sync.Once
	return func() {
		once.Do(func() {
			gcHold.mu.Lock()
			defer gcHold.mu.Unlock()
			if gcHold.n--; gcHold.n == 0 {
				debug.SetGCPercent(gcHold.prev)
			}
		})
	}
}
