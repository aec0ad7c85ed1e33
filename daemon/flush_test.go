package daemon

import (
	"context"
	"path/filepath"
	"testing"
	"time"
)

// TestNewTreesFlushedAfterReconcile: the trees a reconcile's load installs
// are written without an fsync each (fetch.FetchOptions.DeferSync); the
// daemon flushes them once the reconcile is done, at start and after a
// plugs apply that brought a new plug in, and nothing is left unflushed.
func TestNewTreesFlushedAfterReconcile(t *testing.T) {
	_, file := sleeperDir(t, sleeperDeployment(map[string]string{"a": "1s"}))
	d, c := startDaemonOf(t, Options{File: file, StateDir: filepath.Join(filepath.Dir(file), ".plugs"), NoWatch: true})
	flushed := func(when string) {
		t.Helper()
		for range 100 {
			if !d.treeCache.Unsynced() {
				return
			}
			time.Sleep(20 * time.Millisecond)
		}
		t.Fatalf("%s: the new trees were not flushed within 2s", when)
	}
	flushed("after the start")
	writeFile(t, file, sleeperDeployment(map[string]string{"a": "1s", "b": "2s"}))
	if _, err := c.Apply(context.Background()); err != nil {
		t.Fatal(err)
	}
	flushed("after plugs apply of a new plug")
}
