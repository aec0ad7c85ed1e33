package daemon

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"runtime/pprof"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/plugs-dev/plugs/api"
	"github.com/plugs-dev/plugs/fetch"
	"github.com/plugs-dev/plugs/instance"
	"github.com/plugs-dev/plugs/render"
	"github.com/plugs-dev/plugs/spec"
)

// sideBySide is the deployment of bench/sidebyside: N plugs of one
// instance each, every one its own local source with an inline script
// plugin running `sleep MARKER`.
type sideBySide struct {
	b    *testing.B
	file string
	// plugs are the declared plugs, in order: their name and marker.
	plugs []sbsPlug
	next  int // index of the next added plug
}

type sbsPlug struct {
	name string
	gen  int
}

func (p sbsPlug) marker() string { return fmt.Sprintf("3600%d", p.gen) }

func newSideBySide(b *testing.B, n int) *sideBySide {
	dir := b.TempDir()
	if err := os.MkdirAll(filepath.Join(dir, "empty"), 0o755); err != nil {
		b.Fatal(err)
	}
	s := &sideBySide{b: b, file: filepath.Join(dir, "plugs.hcl")}
	for range n {
		s.add()
	}
	s.write()
	return s
}

func (s *sideBySide) add() {
	s.plugs = append(s.plugs, sbsPlug{name: fmt.Sprintf("c%05d", s.next)})
	s.next++
}

// change is the side-by-side's converge: the first tenth removed, the next
// tenth with a changed param (its command), a tenth added. It returns the
// names that must run a new process.
func (s *sideBySide) change() map[string]bool {
	tenth := len(s.plugs) / 10
	s.plugs = append([]sbsPlug(nil), s.plugs[tenth:]...)
	want := map[string]bool{}
	for i := range tenth {
		s.plugs[i].gen++
		want[s.plugs[i].name] = true
	}
	for range tenth {
		s.add()
		want[s.plugs[len(s.plugs)-1].name] = true
	}
	s.write()
	return want
}

// write saves plugs.hcl as the side-by-side does: a temp file renamed over it.
func (s *sideBySide) write() {
	var sb strings.Builder
	for _, p := range s.plugs {
		fmt.Fprintf(&sb, "plug %q {\n  source = \"./empty\"\n  plugin {\n    kind    = \"script\"\n    command = [\"sleep\", %q]\n  }\n}\n\n", p.name, p.marker())
	}
	tmp := s.file + ".tmp"
	if err := os.WriteFile(tmp, []byte(sb.String()), 0o644); err != nil {
		s.b.Fatal(err)
	}
	if err := os.Rename(tmp, s.file); err != nil {
		s.b.Fatal(err)
	}
}

// runningByPlug is the pid of every running instance, by plug.
func runningByPlug(b *testing.B, c *api.Client) map[string]int {
	st, err := c.Status(context.Background())
	if err != nil {
		b.Fatal(err)
	}
	out := map[string]int{}
	for _, i := range st.Instances {
		if i.State == "running" {
			out[i.Plug] = i.PID
		}
	}
	return out
}

// BenchmarkApplySideBySide measures what bench/sidebyside's converge row
// times, in process: N plugs (PLUGS_BENCH_INSTANCES, default 200) of one
// `sleep` instance each, running under a daemon with its file watch and
// default debounce; plugs.hcl is rewritten with 10% of the plugs removed,
// 10% added and 10% with a changed command, and the op is `plugs apply`
// (POST /v1/apply) until it has returned. Every changed plug must then run
// a new process and no other one a new pid (restarted/op counts the
// processes that changed, needless ones fail the benchmark).
// reconcile-ms/op is the daemon's own time for the apply, cpu-ms/op the
// CPU time of the test process (daemon and client) during the apply.
// PLUGS_BENCH_CPUPROFILE names a CPU profile of the applies alone
// (profileFromHere).
func BenchmarkApplySideBySide(b *testing.B) {
	s := newSideBySide(b, benchInstances(b, 200))
	n := len(s.plugs)
	c := startDaemon(b, Options{File: s.file, StateDir: filepath.Join(filepath.Dir(s.file), ".plugs"), Logger: benchLogger(b)})
	waitStatus(b, c, "every instance running", func(st *api.Status) bool {
		running := 0
		for _, i := range st.Instances {
			if i.State == "running" {
				running++
			}
		}
		return running == n
	})
	profileFromHere(b) // the applies only, not the daemon's start
	ctx := context.Background()
	var restarted int
	var reconciling, cpu time.Duration
	for b.Loop() {
		b.StopTimer()
		before := runningByPlug(b, c)
		want := s.change()
		b.StartTimer()
		cpu0 := processCPU()
		rep, err := c.Apply(ctx)
		if err != nil {
			b.Fatal(err)
		}
		cpu += processCPU() - cpu0
		b.StopTimer()
		if rep.Failed > 0 {
			b.Fatalf("apply: %d failed", rep.Failed)
		}
		after := runningByPlug(b, c)
		if len(after) != n {
			b.Fatalf("%d instances run after apply returned, want %d", len(after), n)
		}
		for name, pid := range after {
			switch {
			case want[name] && pid == before[name]:
				b.Fatalf("%s runs its old process after apply returned", name)
			case !want[name] && pid != before[name]:
				b.Errorf("%s restarted though unchanged", name)
			case want[name]:
				restarted++
			}
		}
		st, err := c.Status(ctx)
		if err != nil {
			b.Fatal(err)
		}
		if lr := st.Daemon.LastReconcile; lr != nil {
			reconciling += lr.Duration
		}
		// Let the file watch's reconcile of the same save find it applied,
		// and the memory release after the load run, before the next round
		// (the side-by-side's apply follows a long idle window).
		time.Sleep(releaseAfter + 500*time.Millisecond)
		b.StartTimer()
	}
	b.ReportMetric(float64(restarted)/float64(b.N), "restarted/op")
	b.ReportMetric(float64(reconciling.Milliseconds())/float64(b.N), "reconcile-ms/op")
	b.ReportMetric(float64(cpu.Microseconds())/1e3/float64(b.N), "cpu-ms/op")
}

// BenchmarkLoadSideBySide measures the load step of BenchmarkApplySideBySide's
// apply on its own, with the lock write a reconcile does after it: parse
// plugs.hcl and the lock, fetch the 100 new plugs (of N = PLUGS_BENCH_INSTANCES,
// default 1000), check the runnable trees, render every instance. Each op
// is two changes and loads, alternated: "all" verifies the content of
// every tree (the load of plugs plan), "started" only those of the 200
// instances the change starts (the load of a reconcile, which leaves the
// others' trees to their next start). all-ms, started-ms: the wall clock
// of each; *-cpu-ms its CPU time, every goroutine's. The new trees are
// flushed to disk after each op, untimed, as the daemon flushes them after
// its reconcile (daemon/flush.go).
func BenchmarkLoadSideBySide(b *testing.B) {
	s := newSideBySide(b, benchInstances(b, 1000))
	l := newLoader(filepath.Join(filepath.Dir(s.file), ".plugs"), fetch.Options{}, func(*spec.Deployment) render.BrokerInfo { return render.BrokerInfo{} })
	l.deferSync = true
	ctx := context.Background()
	load := func(started map[string]bool) *loaded {
		ld, err := l.loadFor(ctx, s.file, nil, started != nil)
		if err != nil {
			b.Fatal(err)
		}
		if len(ld.desired) != len(s.plugs) {
			b.Fatalf("%d instances desired, want %d", len(ld.desired), len(s.plugs))
		}
		if started != nil {
			var specs []instance.Spec
			for _, d := range ld.desired {
				if started[d.ID.Plug] {
					specs = append(specs, d)
				}
			}
			if len(specs) != len(started) {
				b.Fatalf("%d of the %d started instances desired", len(specs), len(started))
			}
			if err := l.verify(specs); err != nil {
				b.Fatal(err)
			}
		}
		if ld.lockChanged {
			if err := fetch.WriteLock(ld.lock.Filename, ld.lock); err != nil {
				b.Fatal(err)
			}
		}
		return ld
	}
	load(nil)
	profileFromHere(b)
	var wall, cpu [2]time.Duration
	for b.Loop() {
		for k := range 2 {
			b.StopTimer()
			started := s.change()
			if k == 0 {
				started = nil
			}
			b.StartTimer()
			t0, cpu0 := time.Now(), processCPU()
			load(started)
			wall[k] += time.Since(t0)
			cpu[k] += processCPU() - cpu0
			b.StopTimer()
			if err := l.store.Sync(); err != nil {
				b.Fatal(err)
			}
			b.StartTimer()
		}
	}
	for k, name := range []string{"all", "started"} {
		b.ReportMetric(float64(wall[k].Microseconds())/1e3/float64(b.N), name+"-ms/op")
		b.ReportMetric(float64(cpu[k].Microseconds())/1e3/float64(b.N), name+"-cpu-ms/op")
	}
}

// processCPU is the CPU time (user and system) of this process so far,
// every goroutine's: on a machine shared with other work it varies less
// than the wall clock.
func processCPU() time.Duration {
	var ru syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// profileFromHere writes a CPU profile from now to the end of the benchmark
// to the file PLUGS_BENCH_CPUPROFILE names, if any: -cpuprofile would also
// profile the setup (a start of N instances, a first fetch).
func profileFromHere(b *testing.B) {
	name := os.Getenv("PLUGS_BENCH_CPUPROFILE")
	if name == "" {
		return
	}
	f, err := os.Create(name)
	if err != nil {
		b.Fatal(err)
	}
	if err := pprof.StartCPUProfile(f); err != nil {
		f.Close()
		b.Fatal(err)
	}
	b.Cleanup(func() { pprof.StopCPUProfile(); f.Close() })
}
