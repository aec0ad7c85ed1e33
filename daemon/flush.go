package daemon

import "sync"

// flushState is the daemon's side of fetch's deferred sync: a reconcile's
// load installs new trees without an fsync each (FetchOptions.DeferSync)
// and they are flushed to disk together, with one syncfs, as soon as the
// reconcile is done: off the path of plugs apply's answer, which at 100
// new plugs waited for 100 fsyncs before (issue 17, converge).
type flushState struct {
	flushWG sync.WaitGroup // the flush under way, waited for by close
}

// flushSoon flushes, in the background, the trees the loads installed
// since the last flush; nothing when none was.
func (d *daemon) flushSoon() {
	if !d.treeCache.Unsynced() {
		return
	}
	d.flushWG.Go(d.flushStore)
}

// flushStore flushes the trees installed since the last flush. A failure
// is logged and retried by the next flush; the trees keep running, and a
// marker a crash leaves torn is fetched again (fetch: TestTornMarkerRefetched).
func (d *daemon) flushStore() {
	if err := d.treeCache.Sync(d.opts.StateDir); err != nil {
		d.log.Warn("flushing new plugin trees to disk failed; retried after the next reconcile", "err", err)
	}
}
