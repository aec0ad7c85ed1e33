package daemon

import (
	"context"
	"fmt"
	"log/slog"
	"math"
	"path/filepath"
	"runtime"
	"runtime/debug"
	"runtime/metrics"
	"strings"
	"testing"
	"time"

	"github.com/plugs-dev/plugs/api"
	"github.com/plugs-dev/plugs/fetch"
	"github.com/plugs-dev/plugs/internal/exepages"
	"github.com/plugs-dev/plugs/render"
	"github.com/plugs-dev/plugs/spec"
)

func readUint(name string) uint64 {
	s := []metrics.Sample{{Name: name}}
	metrics.Read(s)
	return s[0].Value.Uint64()
}

// liveHeap is the heap live after a full GC.
func liveHeap() uint64 {
	runtime.GC()
	runtime.GC()
	return readUint("/gc/heap/live:bytes")
}

// writeSleepers writes a plugs.hcl of one plug with n instances of sleep.
func writeSleepers(t *testing.T, n int) string {
	t.Helper()
	dir := t.TempDir()
	writeFile(t, filepath.Join(dir, "plugins/sleeper/plugin.hcl"), `plugin "sleeper" {
  version = "1.0.0"
  kind    = "script"
  command = ["sleep", "3600"]
  param "n" {
    type    = string
    default = "0"
  }
}
`)
	var sb strings.Builder
	sb.WriteString("plug \"p\" {\n  source = \"./plugins/sleeper\"\n")
	for i := range n {
		fmt.Fprintf(&sb, "  instance \"i%05d\" { params = { n = \"%d\" } }\n", i, i)
	}
	sb.WriteString("}\n")
	file := filepath.Join(dir, "plugs.hcl")
	writeFile(t, file, sb.String())
	return file
}

// TestLoadKeepsNoSyntaxTrees: what a load returns is data; the syntax trees
// of plugs.hcl and the lock (which the reader's parser kept until the next
// load: ~5 MB at 1,000 plugs) are garbage once it returns. With the load's
// result dropped, the loader holds next to nothing but its caches' data.
func TestLoadKeepsNoSyntaxTrees(t *testing.T) {
	dir := t.TempDir()
	writeFile(t, filepath.Join(dir, "empty/.keep"), "")
	var sb strings.Builder
	for i := range 300 {
		fmt.Fprintf(&sb, "plug \"s%d\" {\n  source = \"./empty\"\n  plugin {\n    kind    = \"script\"\n    command = [\"sleep\", \"1000%d\"]\n  }\n}\n\n", i, i)
	}
	file := filepath.Join(dir, "plugs.hcl")
	writeFile(t, file, sb.String())
	l := newLoader(filepath.Join(dir, ".plugs"), fetch.Options{}, func(*spec.Deployment) render.BrokerInfo { return render.BrokerInfo{} })
	ld, err := l.load(context.Background(), file, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := fetch.WriteLock(ld.lock.Filename, ld.lock); err != nil { // a lock to parse too, as a daemon has
		t.Fatal(err)
	}
	base := liveHeap()
	ld, err = l.load(context.Background(), file, nil)
	if err != nil || len(ld.desired) != 300 {
		t.Fatalf("load: %v", err)
	}
	ld = nil
	kept := int64(liveHeap()) - int64(base)
	t.Logf("a load of 300 plugs, its result dropped, keeps %d KiB live", kept>>10)
	// Next to nothing but the lock's entries, which the reader keeps for
	// the next load (spec.LockCache: ~500 bytes a plug, no syntax tree).
	if kept > 256<<10+300*600 {
		t.Errorf("a load whose result is dropped keeps %d KiB live: its syntax trees?", kept>>10)
	}
	runtime.KeepAlive(l)
}

// TestReleaseAfterReconcile: a reconcile's load is followed, releaseAfter
// later, by one forced GC that returns its garbage to the OS; an idle
// daemon forces none after that.
func TestReleaseAfterReconcile(t *testing.T) {
	file := writeSleepers(t, 3)
	forced := func() uint64 { return readUint("/gc/cycles/forced:gc-cycles") }
	before := forced()
	c := startDaemon(t, Options{File: file, StateDir: filepath.Join(filepath.Dir(file), ".plugs")})
	waitStatus(t, c, "three instances running", func(s *api.Status) bool {
		n := 0
		for _, i := range s.Instances {
			if i.State == "running" {
				n++
			}
		}
		return n == 3
	})
	deadline := time.Now().Add(releaseAfter + 5*time.Second)
	for forced() == before {
		if time.Now().After(deadline) {
			t.Fatalf("no forced GC within %v of the start's reconcile", releaseAfter+5*time.Second)
		}
		time.Sleep(50 * time.Millisecond)
	}
	settled := forced()
	time.Sleep(releaseAfter + time.Second)
	if n := forced() - settled; n != 0 {
		t.Errorf("%d forced GCs in an idle daemon after the release; want none", n)
	}
}

// TestReleaseMemoryGivesBackBinaryPages: a load's memory release also gives
// back the binary's read-only pages (package exepages), unless
// KeepBinaryPages.
func TestReleaseMemoryGivesBackBinaryPages(t *testing.T) {
	resident := func() int64 {
		n, err := exepages.Resident()
		if err != nil {
			t.Fatal(err)
		}
		return n
	}
	before := resident()
	if before < 1<<20 {
		t.Skipf("only %d KiB of the test binary resident: nothing to measure", before>>10)
	}
	kept := &daemon{opts: Options{KeepBinaryPages: true}, log: slog.New(slog.DiscardHandler)}
	kept.releaseMemory()
	if n := resident(); n < before*3/4 {
		t.Errorf("KeepBinaryPages: %d KiB of the binary resident after the release, %d KiB before", n>>10, before>>10)
	}
	d := &daemon{log: slog.New(slog.DiscardHandler)}
	d.releaseMemory()
	after := resident()
	t.Logf("the test binary's read-only pages resident: %d KiB before the release, %d KiB after", before>>10, after>>10)
	if after > before/2 {
		t.Errorf("%d KiB of the binary resident after the release, %d KiB before: not given back", after>>10, before>>10)
	}
}

// gcSettings reads GOGC and the memory limit without changing them.
func gcSettings() (pct int, limit int64) {
	pct = debug.SetGCPercent(100)
	debug.SetGCPercent(pct)
	return pct, debug.SetMemoryLimit(-1)
}

// TestLessGCDuringReconcile: a reconcile's load runs at GOGC=400 under a soft
// memory limit of what the runtime held at its start plus at least
// 64 MiB, never above the user's limit; GOGC and the limit are put back
// after it, and a GOGC of off is left alone.
func TestLessGCDuringReconcile(t *testing.T) {
	pct0, limit0 := gcSettings()
	t.Cleanup(func() { debug.SetGCPercent(pct0); debug.SetMemoryLimit(limit0) })
	debug.SetGCPercent(100)
	debug.SetMemoryLimit(math.MaxInt64)
	restore := lessGC()
	pct, limit := gcSettings()
	held := int64(readUint("/memory/classes/total:bytes"))
	if pct != reconcileGCPercent || limit < 64<<20 || limit > 3*held+64<<20 {
		t.Errorf("during a reconcile: GOGC %d, limit %d with %d held; want GOGC %d, a limit of the held memory + max(it, 64 MiB)", pct, limit, held, reconcileGCPercent)
	}
	restore()
	if pct, limit := gcSettings(); pct != 100 || limit != math.MaxInt64 {
		t.Errorf("after: GOGC %d, limit %d; want 100 and none", pct, limit)
	}

	debug.SetMemoryLimit(32 << 20) // the user's GOMEMLIMIT is lower: kept
	restore = lessGC()
	if _, limit := gcSettings(); limit != 32<<20 {
		t.Errorf("a user's limit of 32 MiB became %d during a reconcile", limit)
	}
	restore()
	debug.SetMemoryLimit(math.MaxInt64)

	debug.SetGCPercent(-1) // GOGC=off
	restore = lessGC()
	if pct, _ := gcSettings(); pct != -1 {
		t.Errorf("GOGC=off became %d during a reconcile", pct)
	}
	restore()

	// A daemon's reconciles put them back too.
	debug.SetGCPercent(100)
	file := writeSleepers(t, 2)
	c := startDaemon(t, Options{File: file, StateDir: filepath.Join(filepath.Dir(file), ".plugs"), NoWatch: true})
	if _, err := c.Apply(context.Background()); err != nil {
		t.Fatal(err)
	}
	if pct, limit := gcSettings(); pct != 100 || limit != math.MaxInt64 {
		t.Errorf("after a daemon's reconciles: GOGC %d, limit %d; want 100 and none", pct, limit)
	}
}
